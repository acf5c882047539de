#!/usr/bin/env bash
# Compile src/ailedger/rwa/contracts/*.sol (the permissioned asset token with its identity registry and
# compliance, the NAV desk, the EIP-4626 vault) with the solc pinned in contracts/package-lock.json.
# Usage: scripts/compile-rwa-contracts.sh [outdir]   (default src/ailedger/rwa/contracts)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/src/ailedger/rwa/contracts"
exec "$root/scripts/compile-contracts.sh" --src "$src" --out "${1:-$src}"
