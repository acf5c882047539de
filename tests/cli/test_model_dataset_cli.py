import json

import click
import pytest
from click.testing import CliRunner

from ailedger.cli import dataset as dataset_cli
from ailedger.cli import model as model_cli
from ailedger.errors import BadInputError


@pytest.fixture
def main():
    @click.group()
    def main():
        pass

    model_cli.register(main)
    dataset_cli.register(main)
    return main


@pytest.fixture
def env(tmp_path):
    from ailedger.tlog.ledger import Ledger

    lg = Ledger.init(tmp_path / "ledger", origin="test.example/ledger")
    lg.identities.create("alice")
    vkey = lg.vkey
    lg.close()
    return {"AILEDGER_LEDGER": str(tmp_path / "ledger")}, vkey


def run(main, env, *args):
    return CliRunner().invoke(main, list(args), env=env[0], catch_exceptions=True)


def test_model_register_verify_lineage(main, env, tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "weights.bin").write_bytes(bytes(range(256)) * 100)
    (d / "config.json").write_text("{}")
    data = tmp_path / "data.jsonl"
    data.write_text('{"t": "hello"}\n{"t": "world"}\n')
    r = run(main, env, "dataset", "commit", str(data), "--name", "corpus", "--as", "alice", "--license", "MIT",
            "--json")
    assert r.exit_code == 0, r.output
    r = run(main, env, "model", "register", str(d), "--name", "m1", "--as", "alice", "--dataset", "corpus",
            "--code-repo", "https://example.org/x.git", "--code-commit", "b" * 40, "--hp", "epochs=3",
            "--hp", "lr=3e-4", "--chunk-size", "4096", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["files"] == 2 and res["hashing"]["files_hashed"] == 2
    r = run(main, env, "model", "verify", str(d))
    assert r.exit_code == 0, r.output
    assert "OK:" in r.output and "signed by" in r.output and "checkpoint" in r.output
    with open(d / "weights.bin", "r+b") as f:
        f.seek(9000)
        f.write(b"\xff")
    r = run(main, env, "model", "verify", str(d))
    assert r.exit_code == 1
    assert "weights.bin chunk 2 (bytes 8192..12288) changed" in r.output
    svg = tmp_path / "l.svg"
    png = tmp_path / "l.png"
    r = run(main, env, "model", "lineage", "m1", "--svg", str(svg), "--png", str(png))
    assert r.exit_code == 0, r.output
    assert "dataset corpus" in r.output and "--trained-->" in r.output
    assert svg.read_text().startswith("<svg") and png.read_bytes()[:4] == b"\x89PNG"


def test_model_part_proof_cli(main, env, tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "w.bin").write_bytes(b"x" * 20000)
    assert run(main, env, "model", "register", str(d), "--name", "m", "--as", "alice",
               "--chunk-size", "4096").exit_code == 0
    pf = tmp_path / "p.proof"
    r = run(main, env, "model", "prove", "m", "w.bin", "--chunk", "1", "-o", str(pf))
    assert r.exit_code == 0, r.output
    r = run(main, env, "model", "verify-part", str(pf), str(d / "w.bin"), "--vkey", env[1], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["chunk"] == 1


def test_dataset_prove_verify_cli(main, env, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(50)))
    assert run(main, env, "dataset", "commit", str(data), "--name", "d", "--as", "alice").exit_code == 0
    cand = tmp_path / "c.json"
    cand.write_text('{"i": 7}')
    pf = tmp_path / "c.proof"
    r = run(main, env, "dataset", "prove", "d", str(cand), "-o", str(pf), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["result"] == "member"
    assert pf.read_bytes().startswith(b"ailedger-dataset-proof/v2\n")
    r = run(main, env, "dataset", "verify", str(pf), "--candidate", str(cand), "--vkey", env[1])
    assert r.exit_code == 0, r.output
    assert "IS in dataset d" in r.output
    cand.write_text('{"i": 70}')
    r = run(main, env, "dataset", "verify", str(pf), "--candidate", str(cand), "--vkey", env[1])
    assert r.exit_code == 1 and "FAILED" in r.output
    r = run(main, env, "dataset", "prove", "d", str(cand), "-o", str(pf))
    assert r.exit_code == 0 and "absence" in r.output
    r = run(main, env, "dataset", "verify", str(pf), "--candidate", str(cand), "--vkey", env[1], "--json")
    assert json.loads(r.output)["result"] == "absent"


def test_bad_record_cli_error(main, env, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"i": 1}\nnot json\n')
    r = run(main, env, "dataset", "commit", str(data), "--name", "d", "--as", "alice")
    assert r.exit_code != 0
    assert isinstance(r.exception, BadInputError) and "bad.jsonl line 2" in r.exception.message


def test_dataset_shards_cli(main, env, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(30)))
    b.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(30, 60)))
    sec = tmp_path / "secret"
    for src, out in ((a, "sa"), (b, "sb")):
        r = run(main, env, "dataset", "hash-shard", str(src), "-o", str(tmp_path / out), "--partitions-log2", "2",
                "--secret-file", str(sec), "--json")
        assert r.exit_code == 0, r.output
    r = run(main, env, "dataset", "commit", "--from-shard", str(tmp_path / "sa"), "--from-shard",
            str(tmp_path / "sb"), "--secret-file", str(sec), "--name", "priv", "--as", "alice", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["records"] == 60 and json.loads(r.output)["leaf"] == "hmac-sha256"
    c = tmp_path / "c.json"
    c.write_text('{"i": 44}')
    r = run(main, env, "dataset", "prove", "priv", str(c), "-o", str(tmp_path / "p"), "--json")
    assert r.exit_code == 0 and json.loads(r.output)["result"] == "member", r.output


def test_generic_verify_dispatches_dataset_proofs(env, tmp_path):
    """`ailedger verify FILE --candidate C` (the log's generic verifier) checks our proof files."""
    pytest.importorskip("ailedger.tlog.verify")
    from ailedger.cli.main import main as real_main

    data = tmp_path / "d.jsonl"
    data.write_text('{"t": "a"}\n{"t": "b"}\n')
    r = CliRunner().invoke(real_main, ["dataset", "commit", str(data), "--name", "d", "--as", "alice"], env=env[0])
    assert r.exit_code == 0, r.output
    cand = tmp_path / "c.json"
    cand.write_text('{"t":"b"}')
    pf = tmp_path / "c.proof"
    assert CliRunner().invoke(real_main, ["dataset", "prove", "d", str(cand), "-o", str(pf)],
                              env=env[0]).exit_code == 0
    vk = tmp_path / "vkey"
    vk.write_text(env[1] + "\n")
    r = CliRunner().invoke(real_main, ["verify", str(pf), "--candidate", str(cand), "--vkey", str(vk), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["result"] == "member"
    cand.write_text('{"t":"zz"}')
    r = CliRunner().invoke(real_main, ["verify", str(pf), "--candidate", str(cand), "--vkey", str(vk)])
    assert r.exit_code == 1
