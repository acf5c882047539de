#!/usr/bin/env bash
# Installs the pinned npm tools used by the anchoring feature (from the npm registry, by lockfile):
#   contracts/   solc (soljson) to compile contracts/*.sol  -> scripts/compile-contracts.sh
#   tools/anvil/ @foundry-rs/anvil-linux-amd64 (the anvil binary) for the Ethereum integration tests
# Idempotent; skips quietly when npm is not installed (the tests that need these then skip).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "setup-node-tools: npm not found; skipping solc/anvil install" >&2
  exit 0
fi
for d in contracts tools/anvil; do
  if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules" ]; then
    (cd "$d" && npm ci --no-audit --no-fund --silent >/dev/null 2>&1) || echo "setup-node-tools: npm ci failed in $d" >&2
    touch "$d/node_modules" 2>/dev/null || true
  fi
done
