#!/usr/bin/env bash
# Compile one folder of Solidity with the solc pinned in contracts/package-lock.json (npm soljson), through the
# one compile script contracts/compile.js (its flags: --src DIR --out DIR --imports DIR --openzeppelin [OUTDIR]).
# Usage: scripts/compile-contracts.sh [flags] [outdir]   (no flags: contracts/*.sol, CheckpointAnchor.json into
# src/ailedger/anchoring/contracts, RecordRegistry.json into contracts/build; tests pass a temp dir)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$root/contracts/node_modules/solc" ]; then
  (cd "$root/contracts" && npm ci --no-audit --no-fund --silent >/dev/null)
fi
exec node "$root/contracts/compile.js" "$@"
