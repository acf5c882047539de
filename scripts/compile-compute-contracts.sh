#!/usr/bin/env bash
# Compile src/ailedger/compute/contracts/*.sol with the solc pinned in contracts/package-lock.json.
# Usage: scripts/compile-compute-contracts.sh [outdir]   (default: next to the sources, package data)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/src/ailedger/compute/contracts"
exec "$root/scripts/compile-contracts.sh" --src "$src" --out "${1:-$src}"
