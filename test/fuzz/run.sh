#!/usr/bin/env bash
# test/fuzz/run.sh SECONDS — builds each parser's libFuzzer target with
# AddressSanitizer and UndefinedBehaviorSanitizer (clang) and runs it for
# SECONDS from the seed corpus in corpus/<target>/ (shapes from
# docs/graph_api.md). A target passes when it ran with no crash, leak, sanitizer
# report or broken parser promise. Last line: "N passed, N failed".
#   test/fuzz/run.sh 10          the short run scripts/test.sh does
#   test/fuzz/run.sh 600         a longer campaign (findings land in out/)
set -u
SECONDS_EACH=${1:-10}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/out
mkdir -p "$out"
targets=(profile conversations messages error usage batch webhook iso_time redact secret_box)
sanitize="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

# the core library once, instrumented, then each target links it
objs=()
for src in "$root"/src/core/*.cpp; do
    obj="$out/$(basename "${src%.cpp}").o"
    clang++ -std=c++17 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
        -I"$root/src" -c "$src" -o "$obj" || { echo "build of $src failed"; echo "0 passed, ${#targets[@]} failed"; exit 1; }
    objs+=("$obj")
done

passed=0 failed=0
for i in "${!targets[@]}"; do
    t=${targets[$i]}
    bin="$out/fuzz_$t"
    if ! clang++ -std=c++17 -O1 -g $sanitize -I"$root/src" -DIGID_FUZZ_TARGET=$((i + 1)) \
            "$here/fuzz_parsers.cpp" "${objs[@]}" $(pkg-config --libs jansson libcurl libcrypto) -o "$bin"; then
        echo "fuzz_$t: build failed"; failed=$((failed + 1)); continue
    fi
    work="$out/corpus_$t"
    mkdir -p "$work"
    if (cd "$out" && "$bin" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -dict="$here/json.dict" \
            -print_final_stats=1 "$work" "$here/corpus/$t" >"$out/fuzz_$t.log" 2>&1); then
        echo "fuzz_$t: ok ($(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$out/fuzz_$t.log" | grep -oE '[0-9]+$') runs in ${SECONDS_EACH}s)"
        passed=$((passed + 1))
    else
        echo "fuzz_$t: FINDING — see $out/fuzz_$t.log"
        tail -n 30 "$out/fuzz_$t.log"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
