"""Issue 17: Croissant 1.0 metadata for a committed dataset, valid under mlcroissant (offline)."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlcroissant as mlc
import pytest
from click.testing import CliRunner

from ailedger.errors import BadInputError
from ailedger.provenance import commit_dataset
from ailedger.provenance.croissant import croissant_metadata


@pytest.fixture
def mixed(ledger, alice, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]) * 20)
    jl = tmp_path / "captions.jsonl"
    jl.write_text("".join(json.dumps({"image": f"{i}.png", "caption": f"picture {i}"}) + "\n" for i in range(4)))
    cs = tmp_path / "labels.csv"
    cs.write_text("image,label\n0.png,cat\n1.png,dog\n")
    res = commit_dataset(ledger, [str(folder), str(jl), str(cs)], "pets", alice,
                         source_meta=[{"license": "CC-BY-4.0", "url": "https://example.org/pets"}],
                         description="Pets with captions and labels")
    return res, {"captions.jsonl": jl, "labels.csv": cs}


def test_croissant_is_valid_and_carries_digests_and_commitment(ledger, mixed, tmp_path):
    res, files = mixed
    doc = croissant_metadata(ledger, "pets")
    out = tmp_path / "meta.json"
    out.write_text(json.dumps(doc, indent=1))
    ds = mlc.Dataset(jsonld=out)  # raises mlc.ValidationError on any error
    assert ds.metadata.name == "pets"
    by_id = {d["@id"]: d for d in doc["distribution"]}
    for name, path in files.items():
        assert by_id[name]["@type"] == "cr:FileObject"
        assert by_id[name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert by_id["images"]["@type"] == "cr:FileSet" and by_id["images"]["includes"] == "images/**"
    c = doc["ailedger:commitment"]
    assert c["ailedger:root"] == res["root"] and c["ailedger:entryIndex"] == res["index"]
    assert c["ailedger:log"] == "test.example/ledger" and doc["license"] == "CC-BY-4.0"
    assert [f["name"] for f in doc["recordSet"][0]["field"]] == ["image", "label"]
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.0" and doc["version"] == "1.0.0"


def _validate_cli(path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("mlcroissant") or str(Path(sys.executable).with_name("mlcroissant"))
    return subprocess.run([exe, "validate", "--jsonld", str(path)], capture_output=True, text=True, timeout=120, check=False)


def test_cli_output_passes_mlcroissant_validate_and_a_broken_file_fails(tmp_path):
    from ailedger.cli.main import main
    from ailedger.tlog.ledger import Ledger

    lg = Ledger.init(tmp_path / "ledger", origin="test.example/ledger")
    lg.identities.create("alice")
    lg.close()
    env = {"AILEDGER_LEDGER": str(tmp_path / "ledger")}
    cs = tmp_path / "rows.csv"
    cs.write_text("a,b\n1,2\n3,4\n")
    assert CliRunner().invoke(main, ["dataset", "commit", str(cs), "--name", "rows", "--as", "alice"],
                              env=env).exit_code == 0
    meta = tmp_path / "meta.json"
    r = CliRunner().invoke(main, ["dataset", "croissant", "rows", "-o", str(meta), "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["index"] == 0
    ok = _validate_cli(meta)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = json.loads(meta.read_text())
    del broken["distribution"][0]["sha256"]  # a FileObject needs its digest
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    fail = _validate_cli(bad)
    assert fail.returncode != 0 and "sha256" in (fail.stdout + fail.stderr)
    with pytest.raises(mlc.ValidationError):
        mlc.Dataset(jsonld=bad)


def test_entries_without_source_digests_are_refused(ledger, alice, mixed):
    res, _ = mixed
    body = json.loads(json.dumps(ledger.entry(res["index"]).body))
    for s in body["sources"]:
        s.pop("sha256", None)
    body["name"] = "old"
    ledger.append_record("dataset.commit", body, alice, terms=["dataset:old"])
    with pytest.raises(BadInputError, match="predates source digests"):
        croissant_metadata(ledger, "old")
