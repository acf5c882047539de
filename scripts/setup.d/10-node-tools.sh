#!/usr/bin/env bash
# npm tools pinned by lockfiles: solc (contracts/; 0.8.20 for EZKL verifiers in tools/zk-solc/), anvil (tools/anvil/), IPFS reference importer (tests/interop/ipfs/)
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm not found; the Ethereum and IPFS interop tests will skip" >&2
  exit 0
fi
for d in contracts contracts/governance tools/anvil tools/zk-solc tests/interop/ipfs; do
  [ -f "$d/package-lock.json" ] || continue
  if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules" ]; then
    echo "setup: npm ci in $d"
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$d/node_modules"
  fi
done
# anvil (the pinned build) on the venv's PATH beside `ailedger`, so that docs/decentralisation.md's
# `anvil --port ...` runs as written once .venv/bin is on the PATH
anvil_bin=tools/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
if [ -x "$anvil_bin" ] && [ -d .venv/bin ] && ! command -v .venv/bin/anvil >/dev/null 2>&1; then
  ln -sfn "../../$anvil_bin" .venv/bin/anvil
fi
