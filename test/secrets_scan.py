#!/usr/bin/env python3
"""secrets_scan.py — the end-of-run secrets scan of ig_identity's tests.

    secrets_scan.py run ROOT WORK        self-test + list check + scan (scripts/test.sh secrets)
    secrets_scan.py check-list ROOT      only: is test/tokens.txt complete?
    secrets_scan.py scan ROOT WORK       only: scan the files under WORK
    secrets_scan.py self-test            only: does the scanner find planted leaks?

ROOT is the repository (test/tokens.txt, the test sources); WORK is the work
directory of one scripts/test.sh run.  Prints one line per finding, with the
token masked as [token#N] (N: its line in test/tokens.txt), and ends with
"N passed, N failed".  Python 3 standard library only.

What it proves, after every suite has run:

  * no token appears in any server log record the product could have
    written (message, DETAIL, HINT, CONTEXT, QUERY ...) of any cluster of
    the run: pg_regress ($SRC/log), isolation ($SRC/output_iso/log) and TAP
    (PostgreSQL::Test::Cluster keeps its logs in $SRC/tmp_check/log even
    when it removes the data directories);
  * no token appears in any message line (ERROR, WARNING, NOTICE, DETAIL,
    HINT, CONTEXT ...) that a client saw: pg_regress/isolation results and
    diffs, TAP logs, the suite logs;
  * no token appears anywhere in any other file of the run (the Graph API
    mock's stdout/stderr, unit/mock/fuzz logs, configuration files).

Not counted as leaks, and reported as a note: records in which PostgreSQL
echoes the client's own SQL text ("LOG:  statement:", "STATEMENT:",
"DETAIL:  parameters:"): a test that passes a token as a literal sees it
echoed when log_statement = all (every TAP cluster) or when its statement
fails (README, Security notes: pass the token as a bind parameter).  The
query echo in pg_regress results is client output too, not a message.
Dumps are scanned like any other file: TAP 021_encryption leaves its plain
pg_dump outputs under tmp_check/021_dumps, and they must hold no token
(ig_identity.account_tokens is dumped as ciphertext).

Not scanned: copies of the sources (WORK/src/{sql,expected,test,src}), data
directories (the heap files of ig_identity.account_tokens hold ciphertext,
but a test cluster's WAL or a freed page may still hold a statement's text)
and binary files.

The list check: every token-like quoted literal in the test sources must
contain a listed token or be declared harmless ("! literal"), and every
listed token must still occur in the sources.  Token-like: a quoted word of
5+ characters containing "tok" or "secret", the 4th argument of a literal
ig_connect_account(...) call, or a literal assigned to something named
*token* (C++ `token = "..."`, Perl `TOKEN_X => '...'`, Python `token="..."`).
A literal passes when it contains a listed token, is declared harmless, or
holds "tok"/"secret" only inside declared identifiers with an underscore
(ig_identity.account_tokens).
The scan cannot pass vacuously: it fails when it finds no server log, or a
suite's directory without one.
"""
import os
import re
import shutil
import sys
import tempfile

# ---------------------------------------------------------------- token list

def load_tokens(path):
    """Returns (tokens, harmless): tokens as [(line_no, token)]."""
    tokens, harmless = [], set()
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("!"):
                fields = line[1:].split()
                if fields:
                    harmless.add(fields[0])
                continue
            tokens.append((n, line.split()[0]))
    return tokens, harmless


SOURCE_DIRS = ("sql", "test", "scripts")
SOURCE_EXT = (".sql", ".pl", ".pm", ".spec", ".cpp", ".h", ".py", ".sh", ".json", ".txt")
SKIP_DIRS = {"out", "tmp_check", "results", "output_iso", "log", "__pycache__", "build"}


def source_files(root):
    for d in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
            dirnames[:] = sorted(x for x in dirnames if x not in SKIP_DIRS)
            for name in sorted(filenames):
                # the token list and this scanner (whose self-test plants its own tokens)
                if name.endswith(SOURCE_EXT) and name not in ("tokens.txt", "secrets_scan.py"):
                    yield os.path.join(dirpath, name)


LITERAL = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")
WORD_SPLIT = re.compile(r"[\s'\",;()\[\]{}<>]+")
TOKENISH = re.compile(r"(?i)tok|secret")
# A literal given to something named *token*: C++/Python/Perl assignments
# and keyword arguments, JSON/Python dict entries.
ASSIGNED = re.compile(
    r"(?i)\b\w*token\w*[\"']?\s*(?:=>?|:)\s*(?:'([^'\n]+)'|\"([^\"\n]+)\")")


def connect_token_args(text):
    """The 4th argument of each ig_connect_account( ... ) call when it is a
    literal ('x', or ''x'' inside a quoted SQL string)."""
    out = []
    for m in re.finditer(r"ig_connect_account\s*\(", text):
        i, depth, args, cur, quote = m.end(), 0, [], [], None
        while i < len(text):
            c = text[i]
            if quote:
                cur.append(c)
                if c == quote:
                    quote = None
            elif c in "'\"":
                quote = c
                cur.append(c)
            elif c == "(":
                depth += 1
                cur.append(c)
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
                cur.append(c)
            elif c == "," and depth == 0:
                args.append("".join(cur).strip())
                cur = []
            else:
                cur.append(c)
            i += 1
        args.append("".join(cur).strip())
        if len(args) >= 4:
            a = args[3]
            lit = re.fullmatch(r"''([^']+)''|'([^']+)'", a)
            if lit:
                out.append(lit.group(1) or lit.group(2))
    return out


def candidates(text):
    """Token-like strings of one source file: [(string, line_no, by_shape)];
    by_shape: found for its letters ("tok", "secret"), not its position."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in LITERAL.finditer(line):
            s = m.group(1) if m.group(1) is not None else m.group(2)
            for w in WORD_SPLIT.split(s):
                parts = re.split(r"[=&?]", w) if re.search(r"[=&?]", w) else [w]
                for p in parts:
                    p = p.strip(":.!")
                    # "$x", "@x", "a.$x.b": interpolated, the value is elsewhere
                    if len(p) >= 5 and TOKENISH.search(p) and "$" not in p and not p.startswith("@"):
                        found.append((p, n, True))
        for m in ASSIGNED.finditer(line):
            s = m.group(1) or m.group(2)
            if s and not s.startswith(("$", "@")) and "%" not in s and " " not in s:
                found.append((s, n, False))
    for s in connect_token_args(text):
        if s.startswith(("$", "@")) or '"' in s:  # a Perl variable or concatenation
            continue
        line_no = text[: text.find(s)].count("\n") + 1 if s in text else 0
        found.append((s, line_no, False))
    return found


def check_list(root, tokens_path, out):
    """Returns (passed, failed) for the completeness of the token list."""
    tokens, harmless = load_tokens(tokens_path)
    names = [t for _, t in tokens]
    problems = []
    used = {t: False for t in names}
    all_text = []
    for path in source_files(root):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        all_text.append(text)
        for s, n, by_shape in candidates(text):
            if s in harmless or any(t in s for t in names):
                continue
            # A qualified name made of harmless identifiers (ig_identity.account_tokens).
            rest = s
            for h in harmless:
                if "_" in h:
                    rest = rest.replace(h, "")
            if by_shape and not TOKENISH.search(rest):
                continue
            problems.append("%s:%d: token-like literal %r is neither in test/tokens.txt "
                            "nor declared harmless there" % (os.path.relpath(path, root), n, s))
    blob = "\n".join(all_text)
    # The fuzz corpus is data, not source: a token only there still counts as used.
    corpus = os.path.join(root, "test", "fuzz", "corpus")
    for dirpath, _, filenames in os.walk(corpus):
        for name in filenames:
            with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                blob += "\n" + f.read()
    for t in names:
        if t not in blob:
            problems.append("test/tokens.txt: %r occurs in no test source (stale entry?)" % t)
    for p in sorted(set(problems)):
        out.append("LIST " + p)
    ok = not problems
    out.append("list: %d tokens, %d harmless literals, %s" % (
        len(names), len(harmless), "complete" if ok else "%d problems" % len(problems)))
    return (1, 0) if ok else (0, 1)

# ---------------------------------------------------------------- scanning

SERVER_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ ")
LEVEL = re.compile(r"\b(LOG|ERROR|WARNING|NOTICE|INFO|DETAIL|HINT|CONTEXT|STATEMENT|FATAL|PANIC|"
                   r"DEBUG[1-5]|QUERY|LOCATION):  ?(.*)$")
MESSAGE_LINE = re.compile(
    r"^[-+ ]?(?:\[[0-9:.]+\]\([0-9.]+s\) )?(?:#\s*)?(?:psql:\S*:\d+: )?(?:\S+: )?"
    r"(?:ERROR|WARNING|NOTICE|INFO|LOG|DETAIL|HINT|CONTEXT|FATAL|PANIC|DEBUG[1-5]|QUERY|"
    r"STATEMENT|LOCATION):\s")
TRANSCRIPT_NAMES = re.compile(r"(^regress_log_|\.diffs$|^regression\.out$)")
TRANSCRIPT_SUITE_LOGS = {"regress.log", "isolation.log", "tap.log"}


def is_echo(level, message):
    """True for a record in which PostgreSQL echoes the client's SQL text."""
    if level == "STATEMENT":
        return True
    if level == "LOG" and re.match(r"(statement: |execute \S*: |duration: \S+ ms  (statement|execute))",
                                   message):
        return True
    if level == "DETAIL" and message.startswith("parameters: "):
        return True
    return False


def is_binary(path):
    try:
        with open(path, "rb") as f:
            return b"\0" in f.read(65536)
    except OSError:
        return True


def kind_of(path, work):
    name = os.path.basename(path)
    rel = os.path.relpath(path, work)
    parts = rel.split(os.sep)
    if (TRANSCRIPT_NAMES.search(name) or "results" in parts[:-1]
            or (parts[0] == "logs" and name in TRANSCRIPT_SUITE_LOGS)):
        return "transcript"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f):
                if SERVER_LINE.match(line):
                    return "server-log"
                if i > 200:
                    break
    except OSError:
        pass
    return "plain"


def files_to_scan(work, src, root, notes):
    """Yields (path, kind); skips source copies, data directories, binaries."""
    copied = {os.path.join(src, d) for d in ("sql", "expected", "test", "src")} if src else set()
    skipped = {"source copies": 0, "data directories": 0, "binary files": 0}
    for dirpath, dirnames, filenames in os.walk(work):
        if "PG_VERSION" in filenames or re.match(r"^t_.*_data$", os.path.basename(dirpath)):
            skipped["data directories"] += 1
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            if any(path.startswith(c + os.sep) for c in copied) and root and \
                    os.path.exists(os.path.join(root, os.path.relpath(path, src))):
                skipped["source copies"] += 1
                continue
            if is_binary(path):
                skipped["binary files"] += 1
                continue
            yield path, kind_of(path, work)
    notes.append("not scanned: " + ", ".join("%d %s" % (v, k) for k, v in skipped.items()))


def mask(line, tokens):
    for n, t in tokens:
        line = line.replace(t, "[token#%d]" % n)
    line = line.rstrip("\n")
    return line if len(line) <= 240 else line[:240] + "..."


def scan_file(path, kind, tokens):
    """Returns (hits, echoes): hits as [(line_no, token_no, masked line)],
    echoes as {token_no: count}."""
    hits, echoes = [], {}
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    present = [(n, t) for n, t in tokens if any(t in l for l in lines)]
    if not present:
        return hits, echoes

    def hit(i, line):
        for n, t in present:
            if t in line:
                hits.append((i, n, mask(line, tokens)))

    if kind == "plain":
        for i, line in enumerate(lines, 1):
            hit(i, line)
    elif kind == "transcript":
        for i, line in enumerate(lines, 1):
            if MESSAGE_LINE.match(line) or (SERVER_LINE.match(line) and not _echo_line(line)):
                hit(i, line)
    else:  # server log: records, a header line and its continuation lines
        echo = None  # None: before the first record (checked like a plain file)
        for i, line in enumerate(lines, 1):
            if SERVER_LINE.match(line):
                echo = _echo_line(line)
            if echo:
                for n, t in present:
                    if t in line:
                        echoes[n] = echoes.get(n, 0) + 1
            else:
                hit(i, line)
    return hits, echoes


def _echo_line(line):
    m = LEVEL.search(line)
    return bool(m) and is_echo(m.group(1), m.group(2))


def scan(root, tokens_path, work, src, out, require_logs=True):
    """Returns (passed, failed)."""
    tokens, _ = load_tokens(tokens_path)
    notes, per_kind, leaks, echoes = [], {}, [], {}
    for path, kind in files_to_scan(work, src, root, notes):
        per_kind.setdefault(kind, []).append(path)
        h, e = scan_file(path, kind, tokens)
        for i, n, text in h:
            leaks.append((path, i, n, kind, text))
        for n, c in e.items():
            echoes[n] = echoes.get(n, 0) + c
    failed = 0
    seen_pairs = set()
    for path, i, n, kind, text in leaks:
        out.append("LEAK %s:%d (%s): %s" % (os.path.relpath(path, work), i, kind, text))
        if (n, path) not in seen_pairs:
            seen_pairs.add((n, path))
            failed += 1
    # passed: (token, kind of log) pairs with no hit in any file of that kind
    leaked_kinds = {(n, kind) for _, _, n, kind, _ in leaks}
    passed = sum(1 for kind in per_kind for n, _ in tokens if (n, kind) not in leaked_kinds)
    if require_logs:
        server_logs = per_kind.get("server-log", [])
        if not server_logs:
            out.append("FAIL no server log found under %s: nothing was scanned "
                       "(run the secrets suite after the others)" % work)
            failed += 1
        # make installcheck's parts, run in WORK/src: pg_regress logs to
        # log/, pg_isolation_regress to output_iso/log/, TAP to tmp_check/log/
        for d in (os.path.join("src", "log"), os.path.join("src", "output_iso"),
                  os.path.join("src", "tmp_check")):
            full = os.path.join(work, d)
            if os.path.isdir(full) and not any(p.startswith(full + os.sep) for p in server_logs):
                out.append("FAIL %s exists but holds no server log" % d)
                failed += 1
    for kind in sorted(per_kind):
        out.append("scanned %d %s files" % (len(per_kind[kind]), kind))
    out.extend(notes)
    if echoes:
        out.append("note: %d log lines where PostgreSQL echoes a client's SQL text holding a test "
                   "token (log_statement = all, or a failing statement's STATEMENT:) were not counted: %s"
                   % (sum(echoes.values()),
                      ", ".join("token#%d x%d" % (n, c) for n, c in sorted(echoes.items()))))
    return passed, failed

# ---------------------------------------------------------------- self-test

def self_test(out):
    """Plants leaks in a fake work directory and checks exactly those are found."""
    tmp = tempfile.mkdtemp(prefix="igid_secrets_selftest.")
    try:
        root = os.path.join(tmp, "root")
        work = os.path.join(tmp, "work")
        src = os.path.join(work, "src")

        def write(path, text, mode="w"):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, mode) as f:
                f.write(text)

        T, U = "tok-selftest-1111", "tok-selftest-2222"
        write(os.path.join(root, "test", "tokens.txt"),
              "%s\n%s\n! tokens  a word\n! account_tokens  a name\n" % (T, U))
        write(os.path.join(root, "sql", "a.sql"),
              "SELECT ig_connect_account('l', '1', '1', '%s');\n-- tokens\n"
              "SELECT ig_connect_account('l', '1', '1', 'plain-unlisted-value');\n"
              "SELECT 'ig.account_tokens', '$TOKEN_X';\n" % T)
        write(os.path.join(root, "test", "unit", "b.cpp"),
              "a.token = \"%s\"; EXPECT(\"tok-unlisted-9\");\n" % U)
        ts = "2026-01-01 00:00:00.000 UTC [1] client backend "
        write(os.path.join(work, "regress", "log", "postmaster.log"),
              "%sLOG:  statement: SELECT f('%s')\n"          # 1 echo
              "%sERROR:  bad value %s\n"                      # 2 leak
              "%sSTATEMENT:  SELECT f(\n\t'%s')\n"            # 3-4 echo, continuation
              "%sCONTEXT:  PL/pgSQL function f line 1\n\tSQL statement \"x %s\"\n"  # 5-6 leak on 6
              "%sDETAIL:  parameters: $1 = '%s'\n"           # 7 echo
              % (ts, T, ts, T, ts, T, ts, U, ts, U))
        write(os.path.join(work, "regress", "results", "p.out"),
              "SELECT f('%s');\nERROR:  denied %s\n  %s  \n+DETAIL:  x %s\n" % (T, T, T, U))
        write(os.path.join(work, "regress", "mock", "mock.err"), "GET /me Bearer %s\n" % U)
        write(os.path.join(work, "isolation", "log", "postmaster.log"), ts + "LOG:  ok\n")
        write(os.path.join(work, "regress", "tmp_check", "data", "PG_VERSION"), "15\n")
        write(os.path.join(work, "regress", "tmp_check", "data", "base", "1", "t"), "x %s\n" % T)
        write(os.path.join(work, "src", "tmp_check", "t_013_x_data", "pgdata", "f"), "%s\n" % T)
        write(os.path.join(work, "src", "tmp_check", "log", "013_x_node.log"), ts + "WARNING:  w\n")
        write(os.path.join(work, "logs", "blob.bin"), (b"\0" + T.encode()), "wb")
        write(os.path.join(src, "sql", "a.sql"), T)  # a copy of a source file

        got = []
        passed, failed = scan(root, os.path.join(root, "test", "tokens.txt"), work, src, got)
        leaks = sorted(l.split(" (")[0] for l in got if l.startswith("LEAK "))
        want = sorted(["LEAK regress/log/postmaster.log:2", "LEAK regress/log/postmaster.log:6",
                       "LEAK regress/results/p.out:2", "LEAK regress/results/p.out:4",
                       "LEAK regress/mock/mock.err:1"])
        problems = []
        if leaks != want:
            problems.append("leaks found %s, expected %s" % (leaks, want))
        if failed != len(want):
            problems.append("failed = %d, expected %d" % (failed, len(want)))
        if any(T in l or U in l for l in got):
            problems.append("a token was printed unmasked")
        if not any("token#1 x2" in l and "token#2 x1" in l for l in got):
            problems.append("echo note wrong: %s" % [l for l in got if l.startswith("note")])

        # no server log at all: must fail
        empty = os.path.join(tmp, "empty")
        os.makedirs(os.path.join(empty, "logs"))
        got2 = []
        _, f2 = scan(root, os.path.join(root, "test", "tokens.txt"), empty, None, got2)
        if f2 == 0:
            problems.append("an empty work directory passed")

        # list check: the unlisted literals are reported, the listed ones are not
        got3 = []
        _, f3 = check_list(root, os.path.join(root, "test", "tokens.txt"), got3)
        reported = " ".join(got3)
        if f3 != 1 or "plain-unlisted-value" not in reported or "tok-unlisted-9" not in reported \
                or T in reported or U in reported or "account_tokens" in reported or "TOKEN_X" in reported:
            problems.append("list check wrong: %s" % got3)
        write(os.path.join(root, "test", "tokens.txt"), "%s\n%s\ntok-stale-3333\n! tokens\n"
              "! plain-unlisted-value\n! tok-unlisted-9\n" % (T, U))
        got4 = []
        _, f4 = check_list(root, os.path.join(root, "test", "tokens.txt"), got4)
        if f4 != 1 or "tok-stale-3333" not in " ".join(got4):
            problems.append("stale entry not reported: %s" % got4)
        for p in problems:
            out.append("SELF-TEST " + p)
        out.append("self-test: %s" % ("the scanner finds every planted leak and nothing else"
                                      if not problems else "FAILED"))
        return (0, 1) if problems else (1, 0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

# ---------------------------------------------------------------- main

def main(argv):
    if len(argv) < 2 or argv[1] not in ("run", "check-list", "scan", "self-test"):
        print(__doc__)
        return 2
    cmd, out, passed, failed = argv[1], [], 0, 0
    if cmd in ("run", "self-test"):
        p, f = self_test(out)
        passed, failed = passed + p, failed + f
    if cmd in ("run", "check-list", "scan"):
        root = argv[2]
        tokens_path = os.path.join(root, "test", "tokens.txt")
        if cmd in ("run", "check-list"):
            p, f = check_list(root, tokens_path, out)
            passed, failed = passed + p, failed + f
        if cmd in ("run", "scan"):
            work = argv[3]
            p, f = scan(root, tokens_path, work, os.path.join(work, "src"), out)
            passed, failed = passed + p, failed + f
    for line in out:
        print(line)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
