"""Hugging Face: dataset commit reads `datasets` save_to_disk folders like Parquet exports; model cards."""

import shutil

import pytest
import yaml

from tests.integrations.conftest import cli

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """The wine dataset (scikit-learn) as a `datasets` Dataset, saved every way a team ships it."""
    from sklearn.datasets import load_wine

    d = tmp_path_factory.mktemp("wine")
    df = load_wine(as_frame=True).frame
    df["label"] = [f"class-{t}" for t in df["target"]]  # a string column too
    ds = datasets.Dataset.from_pandas(df, preserve_index=False)
    ds.save_to_disk(str(d / "disk"))
    ds.to_parquet(str(d / "wine.parquet"))
    split = ds.train_test_split(test_size=0.3, seed=1)
    split.save_to_disk(str(d / "dict"))
    split["train"].to_parquet(str(d / "train.parquet"))
    split["test"].to_parquet(str(d / "test.parquet"))
    changed = ds.map(lambda r, i: {"alcohol": r["alcohol"] + 1.0} if i == 5 else {}, with_indices=True)
    changed.save_to_disk(str(d / "changed"))
    return d, len(ds)


def commit(led, name, *paths):
    code, obj, out = cli(led, "dataset", "commit", *map(str, paths), "--name", name, "--as", "alice")
    assert code == 0, out
    return obj


def test_save_to_disk_folder_and_parquet_give_the_same_root(led, wine):
    d, n = wine
    a = commit(led, "wine-disk", d / "disk")
    b = commit(led, "wine-parquet", d / "wine.parquet")
    c = commit(led, "wine-dict", d / "dict")  # a DatasetDict: every split's rows
    e = commit(led, "wine-splits", d / "train.parquet", d / "test.parquet")
    assert a["records"] == n == b["records"] == c["records"] == e["records"]
    assert a["root"] == b["root"] == c["root"] == e["root"]
    # one changed record, another root
    f = commit(led, "wine-changed", d / "changed")
    assert f["records"] == n and f["root"] != a["root"]


def test_a_record_of_the_saved_folder_proves_like_a_parquet_row(led, wine, tmp_path):
    d, _ = wine
    commit(led, "wine", d / "disk")
    import pyarrow.parquet as pq

    row = pq.read_table(d / "wine.parquet").slice(3, 1).to_pylist()[0]
    import json

    cand = tmp_path / "row.json"
    cand.write_text(json.dumps(row))
    proof = tmp_path / "row.proof"
    code, _, out = cli(led, "dataset", "prove", "wine", str(cand), "-o", str(proof))
    assert code == 0, out
    code, obj, out = cli(led, "dataset", "verify", str(proof), "--candidate", str(cand))
    assert code == 0 and obj["result"] == "member", out


def test_a_saved_folder_naming_a_missing_arrow_file_is_bad_input_and_nothing_is_logged(led, wine, tmp_path):
    d, _ = wine
    broken = tmp_path / "broken"
    shutil.copytree(d / "disk", broken)
    for f in broken.glob("*.arrow"):
        f.unlink()
    code, obj, out = cli(led, "dataset", "commit", str(broken), "--name", "w", "--as", "alice")
    assert code == 2 and "missing" in obj["error"]["message"], out
    code, obj, _ = cli(led, "dataset", "show", "w")
    assert code != 0


def test_a_corrupt_arrow_file_is_reported_not_logged(led, wine, tmp_path):
    d, _ = wine
    broken = tmp_path / "corrupt"
    shutil.copytree(d / "disk", broken)
    f = next(broken.glob("*.arrow"))
    f.write_bytes(f.read_bytes()[:200])
    code, obj, out = cli(led, "dataset", "commit", str(broken), "--name", "w", "--as", "alice")
    assert code == 2 and "Arrow" in obj["error"]["message"], out


def _model(tmp_path, led, name="wine-clf"):
    m = tmp_path / "model"
    m.mkdir(exist_ok=True)
    (m / "config.json").write_text('{"layers": 2}\n')
    (m / "weights.bin").write_bytes(bytes(range(256)) * 40)
    code, obj, out = cli(led, "model", "register", str(m), "--name", name, "--as", "alice")
    assert code == 0, out
    return m, obj


def test_model_card_is_a_hub_model_card_and_its_commands_verify_offline(led, wine, tmp_path):
    from huggingface_hub import ModelCard

    d, _ = wine
    ds = commit(led, "wine", d / "disk")
    m = tmp_path / "model"
    m.mkdir()
    (m / "config.json").write_text('{"layers": 2}\n')
    (m / "weights.bin").write_bytes(bytes(range(256)) * 40)
    code, reg, out = cli(led, "model", "register", str(m), "--name", "wine-clf", "--as", "alice", "--dataset", "wine")
    assert code == 0, out
    card_path = tmp_path / "hub" / "README.md"
    code, _rep, out = cli(led, "model", "card", "wine-clf", "-o", str(card_path))
    assert code == 0, out
    card = ModelCard.load(card_path)  # huggingface_hub parses it: YAML metadata + text
    meta = card.data.to_dict()
    assert "ailedger" in meta["tags"] and meta["datasets"] == ["wine"]
    assert meta["ailedger"]["entry"] == reg["index"] and meta["ailedger"]["manifest_root"] == reg["manifest_root"]
    assert meta["ailedger"]["datasets"][0]["root"] == ds["root"] and meta["ailedger"]["status"] == "active"
    assert "## Verify this model offline" in card.text and "REVOKED" not in card.text
    # the card's own commands, run in a hub-like copy: the model files, this card, the proof, .cache
    hub = tmp_path / "download"
    shutil.copytree(m, hub)
    shutil.copy(card_path, hub / "README.md")
    shutil.copy(card_path.parent / "ailedger-model.proof", hub / "ailedger-model.proof")
    (hub / ".cache" / "huggingface").mkdir(parents=True)
    (hub / ".cache" / "huggingface" / "x.lock").write_text("")
    (hub / ".gitattributes").write_text("*.bin filter=lfs\n")
    vkey = meta["ailedger"]["log"]["vkey"]
    assert f"echo '{vkey}' > log.vkey" in card.text
    (hub / "log.vkey").write_text(vkey + "\n")
    line = next(ln for ln in card.text.splitlines() if ln.startswith("ailedger model verify-offline"))
    toks = line.split()[1:]  # run in the folder: "." and the files named by --proof/--vkey are in it
    args = [str(hub) if a == "." else str(hub / a) if toks[i - 1] in ("--proof", "--vkey") else a
            for i, a in enumerate(toks)]
    code, obj, out = cli(led, *args)
    assert code == 0 and obj["ok"] and obj["index"] == reg["index"] and obj["files"] == 2, out
    # a file the model never had is a difference
    (hub / "extra.txt").write_text("x")
    code, obj, out = cli(led, *args)
    assert code == 1 and "extra.txt" in obj["error"]["message"], out
    (hub / "extra.txt").unlink()
    # one changed byte: exit 1, the file named
    w = hub / "weights.bin"
    b = bytearray(w.read_bytes())
    b[100] ^= 1
    w.write_bytes(bytes(b))
    code, obj, out = cli(led, *args)
    assert code == 1 and "weights.bin" in obj["error"]["message"], out


def test_verify_offline_refuses_another_logs_key_and_a_non_proof(led, tmp_path):
    from ailedger.tlog.ledger import Ledger

    m, _ = _model(tmp_path, led)
    code, _, out = cli(led, "model", "card", "wine-clf", "-o", str(tmp_path / "c" / "README.md"))
    assert code == 0, out
    other = Ledger.init(tmp_path / "other", origin="test.example/integrations")  # same origin, another key
    (tmp_path / "other.vkey").write_text(other.vkey + "\n")
    other.close()
    code, obj, out = cli(led, "model", "verify-offline", str(m), "--proof", str(tmp_path / "c" / "ailedger-model.proof"),
                         "--vkey", str(tmp_path / "other.vkey"))
    assert code == 1, out
    (tmp_path / "junk.proof").write_text("hello\n")
    code, obj, out = cli(led, "model", "verify-offline", str(m), "--proof", str(tmp_path / "junk.proof"),
                         "--vkey", str(tmp_path / "other.vkey"))
    assert code == 2 and "ailedger-model-proof/v1" in obj["error"]["message"], out


def test_card_of_a_revoked_model_says_revoked_and_an_unknown_model_gets_no_card(led, tmp_path):
    from ailedger.tlog.ledger import Ledger

    _model(tmp_path, led)
    with Ledger.open(led) as lg:
        lg.append_record("model.revoke", {"name": "wine-clf", "reason": "leaks training data"},
                         lg.identities.load("alice", ""))
    out_path = tmp_path / "hub" / "README.md"
    code, rep, out = cli(led, "model", "card", "wine-clf", "-o", str(out_path))
    assert code == 0 and rep["status"] == "revoked" and rep["usable"] is False, out
    text = out_path.read_text()
    head = yaml.safe_load(text.split("---")[1])
    assert head["ailedger"]["status"] == "revoked" and "revoked" in head["tags"]
    assert "REVOKED: do not use this model" in text and "leaks training data" in text
    # unknown: exit 2, nothing written
    code, obj, out = cli(led, "model", "card", "no-such-model", "-o", str(tmp_path / "x" / "README.md"))
    assert code == 2 and "no registered model named 'no-such-model'" in obj["error"]["message"], out
    assert not (tmp_path / "x").exists()
