#!/usr/bin/env bash
# Creates .venv (if needed) and installs ailedger with everything it needs.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# a C compiler builds the optional C parts (src/ailedger/encoding/_speedups.c, _tiled.c, _front.c); without one the
# install still works, on the slower pure-Python path (and `tiles serve` says what is missing)
if ! command -v cc >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get install gcc (for the optional C speed-up)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null || true
fi
inc=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [ ! -f "$inc/Python.h" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get install python3-dev (headers for the optional C speed-up)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dev >/dev/null || true
fi
stamp=.venv/.ailedger-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
   || [ src/ailedger/encoding/_speedups.c -nt "$stamp" ] || [ src/ailedger/tlog/_tiled.c -nt "$stamp" ] \
   || [ src/ailedger/tlog/_front.c -nt "$stamp" ] || [ src/ailedger/tlog/_http1.h -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch must never be pulled unpinned (it would download a CUDA build)
  # every extra (`pip install ailedger` alone is the light kernel: see pyproject.toml) + the test tools
  .venv/bin/python -m pip install -q -e ".[all,dev]"
  # the federated extra (Flower) without Flower's pins of older starlette/uvicorn/fastapi/rich/protobuf (its
  # strategies and server loop, all ailedger uses, import none of them): flwr alone, then what it imports
  .venv/bin/python -m pip install -q --no-deps "flwr==1.42.*"
  .venv/bin/python -m pip install -q "grpcio>=1.70,<2" "iterators>=0.0.2,<0.0.3" "typer>=0.13,<0.21" \
    "tomli>=2,<3" "tomli-w>=1,<2" "prompt-toolkit>=3.0.52,<4" "pycryptodome>=3.18,<4" "pathspec>=1.0.4,<2" \
    "pyyaml>=6,<7"
  # the contractaudit extra (Slither) without slither-analyzer's pin of web3<8 (its detectors never import web3;
  # the anchoring, governance, compute and defi extras are tested with web3 8): slither alone, then its imports
  .venv/bin/python -m pip install -q --no-deps "slither-analyzer==0.11.*" "crytic-compile>=0.4.2,<0.5" "solc-select>=1.0.4"
  .venv/bin/python -m pip install -q "prettytable>=3.10.2" "cbor2" "pycryptodome>=3.4.6" "eth-abi>=5.0.1" \
    "eth-typing>=5.0.0" "eth-utils>=5.0.0"
  # the MLflow server the tests start (tests/integrations): mlflow 3.17 pins pyarrow<26, older than the
  # provenance extra is tested with; its server imports none of pyarrow's newer API, so mlflow alone, then its
  # server's own requirements (docs/mlflow.md, "Installing MLflow")
  .venv/bin/python -m pip install -q --no-deps "mlflow==3.17.2"
  .venv/bin/python -m pip install -q "mlflow-skinny==3.17.2" "mlflow-tracing==3.17.2" "Flask<4" "Flask-CORS<7" \
    "alembic!=1.10.0,<2" "docker>=4,<8" "graphene<4" "gunicorn<27" "huey>=2.5.4,<4" "sqlalchemy>=1.4,<3" "skops<1"
  touch "$stamp"
fi
