#!/usr/bin/env bash
# Compile src/ailedger/compute/contracts/*.sol with the solc pinned in contracts/package-lock.json.
# Usage: scripts/compile-compute-contracts.sh [outdir]   (default: next to the sources, package data)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$root/contracts/node_modules/solc" ]; then
  (cd "$root/contracts" && npm ci --no-audit --no-fund --silent >/dev/null)
fi
exec node "$root/contracts/compute/compile.js" "$@"
