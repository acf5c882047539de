#!/usr/bin/env bash
# Compile src/ailedger/defi/contracts/*.sol (the agent guard, deny list, test token and AMM) with the solc
# pinned in contracts/package-lock.json.
# Usage: scripts/compile-defi-contracts.sh [outdir]   (default src/ailedger/defi/contracts)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/src/ailedger/defi/contracts"
exec "$root/scripts/compile-contracts.sh" --src "$src" --out "${1:-$src}"
