#!/usr/bin/env bash
# Sets everything up from nothing (venv, Python packages, npm tools, apt packages) and runs the tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k merkle
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
set +e
.venv/bin/python -m pytest -m "not slow" -p no:cacheprovider "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "no tests were collected"; exit 1; fi
exit $rc
