#!/usr/bin/env python3
"""scripts/function_sizes.py: the length, in lines, of every SQL function of
src/sql and every C++ function of src/, to keep each one short enough to read.

    scripts/function_sizes.py            the summary and the functions over the limits
    scripts/function_sizes.py --all      every function, longest first
    scripts/function_sizes.py --check    exit 1 when a function is over its limit

Limits: 60 lines for a SQL function (from CREATE to the end of its body),
80 lines for a C++ function (from its signature's first line to its closing
brace). Standard library only; a simple scanner, not a compiler: it skips
comments, strings and character literals, and counts a brace block at
namespace or class level that follows a ')' as a function.
"""
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SQL_LIMIT, CPP_LIMIT = 60, 80

CREATE_FN = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\s+([^\s(]+)\s*\(", re.I)
DOLLAR = re.compile(r"\$[A-Za-z_]*\$")


def sql_functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = CREATE_FN.match(lines[i])
        if not m:
            i += 1
            continue
        start, tag, j = i, None, i
        # the body opens at the first dollar quote and ends at the same tag
        while j < len(lines):
            text = lines[j] if j != start else lines[j][m.end():]
            if tag is None:
                t = DOLLAR.search(text)
                if t:
                    tag = t.group(0)
                    rest = text[t.end():]
                    if tag in rest:
                        break
                elif ";" in text:
                    break  # a LANGUAGE C function: no body
            elif tag in text:
                break
            j += 1
        name = m.group(2).replace("@extschema@.", "")
        out.append((j - start + 1, name, os.path.relpath(path, ROOT), start + 1))
        i = j + 1
    return out


def strip_cpp(src):
    """The source with comments, strings and char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j])); i = j
        elif src.startswith('R"', i):
            k = src.find("(", i)
            delim = ")" + src[i + 2:k] + '"'
            j = src.find(delim, k)
            j = n if j < 0 else j + len(delim)
            out.append(re.sub(r"[^\n]", " ", src[i:j])); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j])); i = j
        else:
            out.append(c); i += 1
    return "".join(out)


def cpp_functions(path):
    src = strip_cpp(open(path, encoding="utf-8").read())
    out, depth, stack = [], 0, []
    # stack: for each open brace, whether it opened a function body
    last_sig_start = 0
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "{":
            in_fn = any(stack)
            before = src[last_sig_start:i].strip()
            is_fn = (not in_fn and re.search(r"\)\s*(const|noexcept|override|final|\s|->\s*[\w:<>,\s*&]+|:\s*[^;{}]*)*$", before)
                     and not re.match(r"^(namespace|struct|class|union|enum|extern)\b", before.split("\n")[-1].strip() or before)
                     and not re.search(r"\b(if|for|while|switch|catch)\s*\(", before.split("\n")[0]))
            stack.append(bool(is_fn))
            if is_fn:
                sig = before
                start_line = src.count("\n", 0, last_sig_start + (len(src[last_sig_start:i]) - len(src[last_sig_start:i].lstrip())))
                name = re.findall(r"([~\w:]+)\s*\(", sig)
                fn_start = (start_line, name[0] if name else "?")
            if is_fn:
                stack[-1] = fn_start
            last_sig_start = i + 1
        elif c == "}":
            top = stack.pop() if stack else False
            if top:
                end_line = src.count("\n", 0, i)
                out.append((end_line - top[0] + 1, top[1], os.path.relpath(path, ROOT), top[0] + 1))
            last_sig_start = i + 1
        elif c == ";" and not any(stack):
            last_sig_start = i + 1
        elif c == "#" and (i == 0 or src[i - 1] == "\n"):
            j = src.find("\n", i)
            while j > 0 and src[j - 1] == "\\":
                j = src.find("\n", j + 1)
            j = n if j < 0 else j
            i = j
            last_sig_start = i
            continue
        i += 1
    return out


def collect():
    sql, cpp = [], []
    for f in sorted(os.listdir(os.path.join(ROOT, "src", "sql"))):
        if f.endswith(".sql"):
            sql += sql_functions(os.path.join(ROOT, "src", "sql", f))
    for d, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in sorted(files):
            if f.endswith((".cpp", ".h")):
                cpp += cpp_functions(os.path.join(d, f))
    return sql, cpp


def report(kind, fns, limit, show_all):
    sizes = [f[0] for f in fns] or [0]
    over = sorted((f for f in fns if f[0] > limit), reverse=True)
    print(f"{kind}: {len(fns)} functions, median {statistics.median(sizes):.0f} lines, "
          f"longest {max(sizes)}, {len(over)} over {limit}")
    for f in (sorted(fns, reverse=True) if show_all else over):
        print(f"  {f[0]:5d}  {f[1]}  ({f[2]}:{f[3]})")
    return len(over)


def main():
    sql, cpp = collect()
    show_all = "--all" in sys.argv
    bad = report("SQL", sql, SQL_LIMIT, show_all) + report("C++", cpp, CPP_LIMIT, show_all)
    if "--check" in sys.argv and bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
