#!/usr/bin/env bash
# Compile contracts/governance/*.sol against the pinned @openzeppelin/contracts (contracts/governance/
# package-lock.json) with the solc pinned in contracts/package-lock.json.
# Usage: scripts/compile-governance-contracts.sh [outdir]   (default src/ailedger/governance/contracts)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
gov="$root/contracts/governance"
if [ ! -d "$gov/node_modules/@openzeppelin/contracts" ]; then
  (cd "$gov" && npm ci --no-audit --no-fund --silent >/dev/null)
fi
exec "$root/scripts/compile-contracts.sh" --src "$gov" --out "${1:-$root/src/ailedger/governance/contracts}" \
  --imports "$gov/node_modules" --openzeppelin
