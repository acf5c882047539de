#!/usr/bin/env bash
# Compile contracts/*.sol with the solc pinned in contracts/package-lock.json (npm soljson).
# Usage: scripts/compile-contracts.sh [outdir]   (default: CheckpointAnchor.json into
# src/ailedger/anchoring/contracts, RecordRegistry.json into contracts/build; tests pass a temp dir)
set -euo pipefail
cd "$(dirname "$0")/../contracts"
if [ ! -d node_modules/solc ]; then
  npm ci --no-audit --no-fund --silent >/dev/null
fi
exec node compile.js "$@"
