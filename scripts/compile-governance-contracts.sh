#!/usr/bin/env bash
# Compile contracts/governance/*.sol against the pinned @openzeppelin/contracts (contracts/governance/
# package-lock.json) with the solc pinned in contracts/package-lock.json.
# Usage: scripts/compile-governance-contracts.sh [outdir]   (default src/ailedger/governance/contracts)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$root/contracts/node_modules/solc" ]; then
  (cd "$root/contracts" && npm ci --no-audit --no-fund --silent >/dev/null)
fi
if [ ! -d "$root/contracts/governance/node_modules/@openzeppelin/contracts" ]; then
  (cd "$root/contracts/governance" && npm ci --no-audit --no-fund --silent >/dev/null)
fi
exec node "$root/contracts/governance/compile.js" "$@"
