#!/usr/bin/env bash
# scripts/test.sh — runs every test of ig_identity on this machine.
#
#   scripts/test.sh              all suites
#   scripts/test.sh unit regress only the named suites
#   IGID_TAP="test/t/003_leases.pl" scripts/test.sh tap   only those TAP files
#   PG_CONFIG=/path/to/pg_config scripts/test.sh   another PostgreSQL installation
#
# Suites: release (META.json, LICENSE, CHANGELOG, upgrade scripts, make dist;
# scripts/release_check.sh), unit (GoogleTest via ctest), asan (the same tests built with
# AddressSanitizer and UndefinedBehaviorSanitizer), mock (the Graph API mock's own tests),
# fuzz (each parser's libFuzzer target, a short bounded run), regress
# (pg_regress), isolation (pg_isolation_regress), tap (prove, worker tests),
# deb (the Debian package built, installed, tested and purged),
# secrets (last: the token strings of test/tokens.txt in no log, error
# message or output file of the whole run; test/secrets_scan.py).
# Installs missing Debian packages, builds, installs the extension, then runs
# PostgreSQL as the unprivileged postgres user in throwaway clusters with the
# local Graph API mock; nothing here touches the network beyond loopback.
# The last line is "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"

ALL_SUITES=(release unit asan mock fuzz regress isolation tap deb secrets)
SUITES=("$@")
[ ${#SUITES[@]} -eq 0 ] && SUITES=("${ALL_SUITES[@]}")
FUZZ_SECONDS=${FUZZ_SECONDS:-10}

ensure_deps
# No warning lands: the test command builds with -Werror (CMake always does).
export IGID_WERROR=1
build_extension

WORK=$(make_workdir)
LOGS=$WORK/logs
mkdir -p "$LOGS"
trap 'stop_mock; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

# The postgres user cannot read a clone under root's private temp dirs:
# give the suites that run as postgres their own readable copy.
SRC=$WORK/src
mkdir -p "$SRC"
cp -a "$IGID_ROOT"/{Makefile,ig_identity.control,README.md,sql,expected,test,src} "$SRC"/ 2>/dev/null
chown -R "$PG_USER" "$WORK"

TOTAL_PASSED=0
TOTAL_FAILED=0
SUMMARY=()

# record SUITE PASSED FAILED LOG: adds a suite's figures; shows its log on failure.
record() {
    local suite=$1 passed=$2 failed=$3 logf=$4
    TOTAL_PASSED=$((TOTAL_PASSED + passed))
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
    SUMMARY+=("$(printf '%-10s %5d passed, %d failed' "$suite" "$passed" "$failed")")
    if [ "$failed" -ne 0 ]; then
        echo "---- $suite failed; last lines of $logf ----"
        tail -n 60 "$logf"
    fi
}

# last_counts LOG: reads "N passed, N failed" from the end of a log.
last_counts() {
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    [ -n "$line" ] || { echo "0 1"; return; }
    echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1 \2/'
}

suite_release() {
    local logf=$LOGS/release.log
    log "release: META.json, LICENSE, CHANGELOG, upgrade scripts, make dist"
    "$IGID_ROOT/scripts/release_check.sh" >"$logf" 2>&1
    local rc=$? p f
    read -r p f < <(last_counts "$logf")
    [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
    record release "$p" "$f" "$logf"
    tail -n 1 "$logf"
}

suite_unit() {
    log "unit: GoogleTest (ctest)"
    ctest_suite unit "$IGID_ROOT/build"
}

# ctest_suite NAME BUILD_DIR [cmake args...]: configures, builds and runs the
# unit tests in BUILD_DIR, and records them under NAME.
ctest_suite() {
    local name=$1 dir=$2; shift 2
    local logf=$LOGS/$name.log
    {
        cmake -S "$IGID_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
        cmake --build "$dir" -j2 &&
        ctest --test-dir "$dir" --output-on-failure -j2
    } >"$logf" 2>&1
    local rc=$? line total failed
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$logf" | tail -n 1)
    if [ -n "$line" ]; then
        failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
        total=$(echo "$line" | sed -E 's/.* tests failed out of ([0-9]+).*/\1/')
        [ $rc -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
        record "$name" $((total - failed)) "$failed" "$logf"
    else
        record "$name" 0 1 "$logf"
    fi
    grep -E 'tests passed|Total Test time' "$logf"
}

suite_asan() {
    log "asan: the unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ctest_suite asan "$IGID_ROOT/build-asan" -DIGID_SANITIZE=ON
}

suite_mock() {
    local logf=$LOGS/mock.log
    [ -f "$IGID_ROOT/test/mock_graph/test_mock_graph.py" ] || return 0
    log "mock: Graph API mock self-tests"
    "$PYTHON" "$IGID_ROOT/test/mock_graph/test_mock_graph.py" >"$logf" 2>&1
    local rc=$?
    read -r p f < <(last_counts "$logf")
    [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
    record mock "$p" "$f" "$logf"
    tail -n 1 "$logf"
}

suite_fuzz() {
    local logf=$LOGS/fuzz.log
    [ -x "$IGID_ROOT/test/fuzz/run.sh" ] || return 0
    log "fuzz: each parser for ${FUZZ_SECONDS}s"
    "$IGID_ROOT/test/fuzz/run.sh" "$FUZZ_SECONDS" >"$logf" 2>&1
    local rc=$?
    read -r p f < <(last_counts "$logf")
    [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
    record fuzz "$p" "$f" "$logf"
    tail -n 1 "$logf"
}

# make_target TARGET [make args...]: runs one of the Makefile's standard
# test targets (make installcheck's parts) as postgres in the readable copy:
# each suite is the command a user runs, against the installation PG_CONFIG
# names, with a temporary instance and a mock of its own.
make_target() {
    local target=$1; shift
    (cd "$SRC" && as_pg make -s --no-print-directory "$target" PG_CONFIG="$PG_CONFIG" \
        PYTHON="$PYTHON" IGID_SRC="$SRC" "$@")
}

# pg_regress_counts SUITE LOG RC [DIFFS]: records a pg_regress run's figures.
pg_regress_counts() {
    local suite=$1 logf=$2 rc=$3 diffs=${4:-}
    [ -n "$diffs" ] && [ -f "$diffs" ] && cat "$diffs" >>"$logf"
    local total failed
    if grep -qE 'All [0-9]+ tests passed' "$logf"; then
        total=$(grep -oE 'All [0-9]+ tests passed' "$logf" | grep -oE '[0-9]+')
        failed=0
    elif grep -qE '[0-9]+ of [0-9]+ tests failed' "$logf"; then
        failed=$(grep -oE '[0-9]+ of [0-9]+ tests failed' "$logf" | sed -E 's/ of.*//')
        total=$(grep -oE '[0-9]+ of [0-9]+ tests failed' "$logf" | sed -E 's/.* of ([0-9]+).*/\1/')
    else
        total=1; failed=1
    fi
    [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
    record "$suite" $((total - failed)) "$failed" "$logf"
    grep -E 'tests passed|tests failed' "$logf" | tail -n 1
}

suite_regress() {
    local logf=$LOGS/regress.log
    log "regress: make installcheck-regress (pg_regress)"
    make_target installcheck-regress >"$logf" 2>&1
    pg_regress_counts regress "$logf" $? "$SRC/regression.diffs"
}

suite_isolation() {
    local logf=$LOGS/isolation.log
    log "isolation: make installcheck-isolation (pg_isolation_regress)"
    make_target installcheck-isolation >"$logf" 2>&1
    pg_regress_counts isolation "$logf" $? "$SRC/output_iso/regression.diffs"
}

suite_tap() {
    local logf=$LOGS/tap.log
    # The scale-out test needs Citus in this installation: built from
    # test/vendor/ when citus.so is missing (scripts/citus_build.sh); the test
    # skips, saying why, only when that build fails.
    case " ${IGID_TAP:-test/t/*.pl} " in
        *citus*|*"test/t/*.pl"*)
            if "$IGID_ROOT/scripts/citus_build.sh" >"$LOGS/citus_build.log" 2>&1; then
                export IGID_CITUS=built
            else
                export IGID_CITUS="could not be built: $(tail -n 1 "$LOGS/citus_build.log")"
                log "tap: Citus $IGID_CITUS (the Citus test is skipped)"
            fi ;;
    esac
    log "tap: make prove_installcheck (worker tests)"
    make_target prove_installcheck PROVE_FLAGS=-v PROVE_TESTS="${IGID_TAP:-test/t/*.pl}" \
        >"$logf" 2>&1
    local rc=$? tests failed
    tests=$(grep -oE 'Tests=[0-9]+' "$logf" | tail -n 1 | grep -oE '[0-9]+')
    failed=$(grep -cE '^not ok' "$logf")
    [ -n "$tests" ] || { tests=1; failed=1; }
    [ $rc -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
    record tap $((tests - failed)) "$failed" "$logf"
    grep -E '^Result:' "$logf"
}

# The Debian package: built, installed, tested through make installcheck
# against the installed files only, purged (scripts/deb_check.sh).
suite_deb() {
    local logf=$LOGS/deb.log
    log "deb: build, install, installcheck and purge the Debian package"
    "$IGID_ROOT/scripts/deb_check.sh" >"$logf" 2>&1
    local rc=$? p f
    read -r p f < <(last_counts "$logf")
    [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
    record deb "$p" "$f" "$logf"
    tail -n 1 "$logf"
}

# The end-of-run secrets scan: every file the suites above left under $WORK
# (server logs, pg_regress/isolation outputs, TAP logs in $SRC/tmp_check/log,
# mock and suite logs) is searched for every token of test/tokens.txt; the
# list itself is checked against the test sources. Run it last; alone it
# fails, having no server log to scan. P counts (token, kind of log) checks.
suite_secrets() {
    local logf=$LOGS/secrets.log
    log "secrets: test tokens in the logs and outputs of the whole run"
    "$PYTHON" "$IGID_ROOT/test/secrets_scan.py" run "$IGID_ROOT" "$WORK" >"$logf" 2>&1
    local rc=$? p f
    read -r p f < <(last_counts "$logf")
    [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
    record secrets "$p" "$f" "$logf"
    tail -n 1 "$logf"
}

for s in "${SUITES[@]}"; do
    case "$s" in
        release|unit|asan|mock|fuzz|regress|isolation|tap|deb) "suite_$s" ;;
        secrets) suite_secrets ;;
        *) die "unknown suite '$s' (known: ${ALL_SUITES[*]})" ;;
    esac
done

echo
echo "Summary:"
printf '  %s\n' "${SUMMARY[@]}"
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" -eq 0 ]
