#!/usr/bin/env bash
# Line coverage of src/ailedger/tlog/_tiled.c reached by the fuzz harness: builds it with clang's source
# coverage, fuzzes for SECONDS (default 30) from the seed corpus, prints llvm-cov's report.
#   bash tests/fuzz/tiled/coverage.sh [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../../src/ailedger/tlog
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clang -g -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -Wno-unused-function \
  -I "$src" "$here/fuzz_tiled.c" -o "$work/fuzz_cov"
cp -r "$here/corpus" "$work/corpus"
(cd "$work" && TMPDIR=$work LLVM_PROFILE_FILE=$work/cov.profraw ./fuzz_cov -dict="$here/tiled.dict" \
  -max_total_time="${1:-30}" corpus >/dev/null 2>&1)
llvm-profdata merge -sparse "$work/cov.profraw" -o "$work/cov.profdata"
llvm-cov report "$work/fuzz_cov" -instr-profile="$work/cov.profdata" -show-functions "$src/_tiled.c"
