#!/usr/bin/env bash
# older Solidity compilers from npm (soljson; no download at run time): tools/solc-versions holds solc 0.4.9,
# 0.4.24, 0.4.25, 0.4.26 and 0.5.17 (npm aliases, pinned by its lockfile); contractaudit's solc shim picks the
# highest installed version a source's pragma allows (docs/contract-audit.md). Needed for legacy sources such
# as the SmartBugs curated set; the 0.8.28 compiler in contracts/ is the default.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm not found; audits of pre-0.8 Solidity will be refused (no compiler for the pragma)" >&2
  exit 0
fi
d=tools/solc-versions
if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules" ]; then
  echo "setup: npm ci in $d"
  (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$d/node_modules"
fi
