#!/bin/bash
# fuzz.sh — run libFuzzer harnesses (built by `make fuzz-build` into build-fuzz/).
#
#   scripts/fuzz.sh SECONDS HARNESS...     e.g. scripts/fuzz.sh 600 verdict request
#
# Each harness starts from its seed corpus, tests/fuzz/corpus/HARNESS/ (read-only here), and
# keeps what it finds in build-fuzz/corpus/HARNESS/ for the next run. A crash is written to
# build-fuzz/crashes/ and stops the script with a failure: copy it into the seed corpus as a
# regression file once the parser is fixed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:?usage: fuzz.sh SECONDS HARNESS...}
shift
cd "$top"
for h in "$@"; do
        bin=build-fuzz/fuzz_$h
        [ -x "$bin" ] || { echo "fuzz.sh: missing $bin (make fuzz-build)" >&2; exit 1; }
        mkdir -p "build-fuzz/corpus/$h" build-fuzz/crashes
        dict=()
        case $h in
        request | validate | verdict | mcp) dict=(-dict=tests/fuzz/json.dict) ;;
        config) dict=(-dict=tests/fuzz/config.dict) ;;
        keys) dict=(-dict=tests/fuzz/keys.dict) ;;
        esac
        echo "fuzz.sh: $h for ${seconds}s" >&2
        # -timeout: a parser that takes a second on one input is a finding too.
        # -rss_limit_mb: far above what any of them needs, far below the machine.
        "$bin" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
                -artifact_prefix="build-fuzz/crashes/$h-" "${dict[@]}" \
                "build-fuzz/corpus/$h" "tests/fuzz/corpus/$h"
done
