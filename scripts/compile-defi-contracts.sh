#!/usr/bin/env bash
# Compile src/ailedger/defi/contracts/*.sol (the agent guard, deny list, test token and AMM) with the solc
# pinned in contracts/package-lock.json.
# Usage: scripts/compile-defi-contracts.sh [outdir]   (default src/ailedger/defi/contracts)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$root/contracts/node_modules/solc" ]; then
  (cd "$root/contracts" && npm ci --no-audit --no-fund --silent >/dev/null)
fi
exec node "$root/src/ailedger/defi/contracts/compile.js" "$@"
