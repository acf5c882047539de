#!/usr/bin/env bash
# clang with libFuzzer and the sanitizer runtimes: tests/fuzz/tiled/ builds a libFuzzer harness over the
# C tile server (src/ailedger/tlog/_tiled.c) under AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
probe() {  # can this clang link a libFuzzer + ASan + UBSan program?
  command -v clang >/dev/null 2>&1 || return 1
  local d
  d=$(mktemp -d)
  printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' > "$d/p.c"
  clang -fsanitize=fuzzer,address,undefined "$d/p.c" -o "$d/p" >/dev/null 2>&1
  local rc=$?
  rm -rf "$d"
  return $rc
}
if probe; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get install clang libclang-rt-dev (libFuzzer for the tile server's fuzz harness)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-dev >/dev/null
else
  echo "setup: clang with libFuzzer missing and apt-get unavailable (not root?): the tile server fuzz tests will skip" >&2
fi
