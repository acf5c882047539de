#!/usr/bin/env bash
# Creates .venv (if needed) and installs ailedger with everything it needs.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.ailedger-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch must never be pulled unpinned (it would download a CUDA build)
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
