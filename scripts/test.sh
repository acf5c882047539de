#!/usr/bin/env bash
# Sets everything up from nothing (venv, Python packages, npm tools, apt packages) and runs the tests.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/tlog -k merkle (then one run, in this process).
# Without arguments the suite runs on every core (pytest-xdist): first everything but the docs pages, then
# the docs pages (every command block of README.md and docs/, one test per page). The two phases are kept
# apart because the docs start servers on the fixed ports they show; the tests never use those ports, and
# no two pages share one, so within each phase anything may run side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# feature setup steps (npm packages, apt packages, ...) live in scripts/setup.d/, one file each
for s in scripts/setup.d/*.sh; do
  [ -e "$s" ] || continue
  echo "setup: $s"
  bash "$s"
done
mkdir -p test-artifacts
PYTEST=(.venv/bin/python -m pytest -m "not slow" -p no:cacheprovider)
set +e
if [ $# -gt 0 ]; then
  "${PYTEST[@]}" "$@"
  rc=$?
  if [ $rc -eq 5 ]; then echo "no tests were collected"; exit 1; fi
  exit $rc
fi
WORKERS=${AILEDGER_TEST_WORKERS:-$(.venv/bin/python -c 'import os; print(max(2, len(os.sched_getaffinity(0))))')}
echo "tests: $WORKERS workers; phase 1 of 2: everything but the docs pages"
"${PYTEST[@]}" -n "$WORKERS" --dist loadfile --ignore=tests/docs --durations=25
rc1=$?
echo "tests: phase 2 of 2: the docs pages (tests/docs)"
"${PYTEST[@]}" -n "$WORKERS" --dist load tests/docs --durations=10
rc2=$?
set -e
for rc in $rc1 $rc2; do
  if [ $rc -eq 5 ]; then echo "no tests were collected"; exit 1; fi
done
if [ $rc1 -ne 0 ]; then exit $rc1; fi
exit $rc2
