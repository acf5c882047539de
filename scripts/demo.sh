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

echo; echo "== provenance: a dataset and a model trained on it =="
python3 - <<'PY'
import json, os, struct
os.makedirs("books", exist_ok=True)
with open("books/records.jsonl", "w") as f:
    for i in range(500):
        f.write(json.dumps({"title": f"Book {i}", "author": f"Author {i % 37}", "year": 1900 + i % 120}) + "\n")
with open("my-book.json", "w") as f:
    json.dump({"title": "Book 7", "author": "Author 7", "year": 1907}, f)
with open("not-my-book.json", "w") as f:
    json.dump({"title": "Unwritten", "author": "Nobody", "year": 2030}, f)
os.makedirs("model", exist_ok=True)
# a small safetensors file: 8-byte header length, JSON header, raw tensor bytes
w = bytes(range(256)) * 64
hdr = json.dumps({"dense.weight": {"dtype": "U8", "shape": [128, 128], "data_offsets": [0, len(w)]}}).encode()
with open("model/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr + w)
with open("model/config.json", "w") as f:
    json.dump({"layers": 1, "hidden": 128}, f)
PY
say ailedger dataset commit books/records.jsonl --name books-2026 --as alice --license CC-BY-4.0
say ailedger dataset prove books-2026 my-book.json -o my-book.proof
say env -u AILEDGER_LEDGER ailedger verify my-book.proof --candidate my-book.json --vkey log.vkey
say ailedger dataset prove books-2026 not-my-book.json -o not-my-book.proof
say env -u AILEDGER_LEDGER ailedger verify not-my-book.proof --candidate not-my-book.json --vkey log.vkey
say ailedger model register ./model --name demo-net --as bob --dataset books-2026 --hp lr=0.001
say ailedger model verify ./model
printf 'X' | dd of=model/model.safetensors bs=1 seek=5000 conv=notrunc status=none
echo "(one byte of a tensor changed)"
say ailedger model verify ./model || true
say ailedger model lineage demo-net --svg lineage.svg
echo
echo "demo finished: ledger in $out/ledger, proof in $out/entry41.tlog-proof, tiles in $out/site"
