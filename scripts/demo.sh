#!/usr/bin/env bash
# Sets everything up and runs the main job on the embedded default (SQLite, no servers):
# a ledger, two identities, signed records, checkpoints, an offline proof, consistency, audit, tiles.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
out=${1:-demo-out}
rm -rf "$out"
mkdir -p "$out"
cd "$out"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
say ailedger init ./ledger --origin example.org/ai-ledger
export AILEDGER_LEDGER=$PWD/ledger
say ailedger identity new alice
say ailedger identity new bob
cat > record.json <<'JSON'
{"type": "dataset.note", "body": {"name": "wiki-2026", "licence": "CC-BY-SA-4.0", "note": "first crawl"}}
JSON
say ailedger append --as alice record.json
python3 - <<'PY'
import json
with open("batch.jsonl", "w") as f:
    for i in range(120):
        f.write(json.dumps({"type": "model.eval", "body": {"model": "demo-net", "run": i, "accuracy_pct": 90 + i % 7}}) + "\n")
PY
say ailedger append --as bob --jsonl batch.jsonl --json > /dev/null
say ailedger checkpoint -o cp-old
for i in 1 2 3; do
  echo "{\"type\":\"dataset.note\",\"body\":{\"name\":\"wiki-2026\",\"note\":\"update $i\"}}" > upd$i.json
  ailedger append --as alice upd$i.json >/dev/null
done
say ailedger checkpoint -o cp-new
say ailedger prove 41 -o entry41.tlog-proof
say ailedger entry 41 -o entry41.bin
ailedger vkey > log.vkey
echo "(verifying offline: no ledger in the environment)"
say env -u AILEDGER_LEDGER ailedger verify entry41.tlog-proof --vkey log.vkey --entry entry41.bin
say ailedger consistency --old cp-old --new cp-new
say ailedger audit
say ailedger tiles export ./site
echo
echo "demo finished: ledger in $out/ledger, proof in $out/entry41.tlog-proof, tiles in $out/site"
