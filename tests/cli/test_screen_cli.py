"""`ailedger dataset screen`, `dataset commit --screen`, `remove-source`, `verify-removal` through the real
CLI entry point (click's runner on ailedger.cli.main)."""

import base64
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_digits


@pytest.fixture(scope="module")
def main():
    from ailedger.cli.main import main as m

    return m


@pytest.fixture
def env(tmp_path):
    from ailedger.tlog.ledger import Ledger

    lg = Ledger.init(tmp_path / "ledger", origin="test.example/ledger")
    lg.identities.create("alice")
    vkey = lg.vkey
    lg.close()
    return {"AILEDGER_LEDGER": str(tmp_path / "ledger")}, vkey


def run(main, env, *args):
    return CliRunner().invoke(main, list(args), env=env[0], catch_exceptions=False)


def ledger_size(env):
    from ailedger.tlog.ledger import Ledger

    with Ledger.open(env[0]["AILEDGER_LEDGER"]) as lg:
        return lg.size


@pytest.fixture(scope="module")
def poisoned_csv(tmp_path_factory):
    """450 digits in 5 sources; 35% of labels flipped in source v2 only."""
    X, y = load_digits(return_X_y=True)
    r = np.random.default_rng(7)
    idx = np.sort(r.choice(len(y), 450, replace=False))
    X, y = X[idx], y[idx].copy()
    src = r.permutation(np.arange(len(y)) % 5)
    bad = np.flatnonzero(src == 2)
    for i in r.choice(bad, int(0.35 * len(bad)), replace=False):
        y[i] = (y[i] + 1 + r.integers(9)) % 10
    p = tmp_path_factory.mktemp("data") / "digits.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"p{j}" for j in range(64)] + ["label", "source"])
        for i in range(len(y)):
            w.writerow([int(v) for v in X[i]] + [int(y[i]), f"v{src[i]}"])
    return p


def test_screen_json_schema(main, env, poisoned_csv, tmp_path):
    html = tmp_path / "r.html"
    r = run(main, env, "dataset", "screen", str(poisoned_csv), "--json", "--html", str(html), "--no-loo")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["verdict"] == "fail"
    assert all(set(f) >= {"record", "reasons", "score"} for f in rep["flagged"])
    assert {s["source"]: s["verdict"] for s in rep["sources"]}["v2"] == "remove"
    assert "<svg" in html.read_text() and html.read_text().count("data:image/png") == min(60, len(rep["flagged"]))
    r = run(main, env, "dataset", "screen", str(poisoned_csv), "--no-loo", "--fail-on", "fail")
    assert r.exit_code == 1 and "FAIL" in r.output and "remove v2" in r.output.replace("  ", " ")


def test_screen_loads_only_what_it_uses(env, tmp_path):
    """`dataset screen` (no --log) in a new process: neither the provenance package (the ledger side of
    screening) nor cleanlab's Datalab and Hugging Face datasets (cleanlab's package __init__) are imported."""
    import os
    import subprocess
    import sys

    rows = [[i % 7, (i * 3) % 5, i % 2, "s1" if i % 3 else "s2"] for i in range(60)]
    data = tmp_path / "small.csv"
    data.write_text("a,b,label,source\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    code = ("import json, sys\nfrom ailedger.cli.main import main\n"
            "try:\n    main(sys.argv[1:], prog_name='ailedger')\nexcept SystemExit as e:\n    code = e.code\n"
            "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}), file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code, "dataset", "screen", str(data), "--json", "--no-loo"],
                       env={**os.environ, **env[0]}, capture_output=True, text=True, check=False)
    out = json.loads(r.stderr.strip().splitlines()[-1])
    assert out["code"] == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["dataset"]["records"] == 60
    mods = out["modules"]
    assert "cleanlab.filter" in mods and "sklearn" in mods  # it did screen
    unwanted = [m for m in mods if m.startswith(("ailedger.provenance", "cleanlab.datalab")) or m == "datasets"]
    assert unwanted == []


def test_screen_bad_input_exit_2(main, env, tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    r = CliRunner().invoke(main, ["dataset", "screen", str(p)], env=env[0])
    assert r.exit_code == 2
    assert "error: cannot screen this: no label column" in r.output
    r = CliRunner().invoke(main, ["dataset", "screen", str(p), "--label-column", "b", "--json"], env=env[0])
    assert r.exit_code == 0  # b is a valid binary label


def test_commit_screen_refuses_then_warn_policy_logs(main, env, poisoned_csv):
    r = CliRunner().invoke(main, ["dataset", "commit", str(poisoned_csv), "--name", "digits", "--as", "alice",
                                  "--screen"], env=env[0])
    assert r.exit_code == 2
    assert "refuses to commit" in r.output and "nothing was logged" in r.output
    assert ledger_size(env) == 0
    r = run(main, env, "dataset", "commit", str(poisoned_csv), "--name", "digits", "--as", "alice", "--screen",
            "--screen-policy", "warn")
    assert r.exit_code == 0, r.output
    assert "warning: screening" in r.output and "logged as entry #1" in r.output
    from ailedger.tlog.ledger import Ledger

    with Ledger.open(env[0]["AILEDGER_LEDGER"]) as lg:
        e = lg.entry(1)
        assert e.type == "dataset.screening"
        assert e.body["dataset_index"] == 0 and e.body["dataset_root"] == lg.entry(0).body["root"]
        assert e.body["verdict"] == "fail" and e.body["decision"] == "warn"
        assert {s["source"]: s["verdict"] for s in e.body["sources"]}["v2"] == "remove"
        stored = (lg.path / "screening" / f"{e.body['report_sha256']}.json").read_bytes()
        import hashlib

        assert hashlib.sha256(stored).hexdigest() == e.body["report_sha256"]
    proof = Path(env[0]["AILEDGER_LEDGER"]).parent / "s.proof"
    r = run(main, env, "dataset", "screening-proof", "digits", "-o", str(proof))
    assert r.exit_code == 0, r.output
    html = proof.with_suffix(".html")
    r = run(main, env, "dataset", "verify-screening", str(proof), "--vkey", env[1], "--json", "--html", str(html))
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["verdict"] == "fail" and rep["dataset_index"] == 0 and "<svg" in html.read_text()
    # a report changed after logging is caught
    head, body = proof.read_bytes().split(b"\n", 1)
    doc = json.loads(body)
    rj = json.loads(base64.b64decode(doc["report"]))
    rj["verdict"] = "pass"
    doc["report"] = base64.b64encode(json.dumps(rj).encode()).decode()
    proof.write_bytes(head + b"\n" + json.dumps(doc).encode())
    r = CliRunner().invoke(main, ["dataset", "verify-screening", str(proof), "--vkey", env[1]], env=env[0])
    assert r.exit_code == 1 and "not the one the screening record commits to" in r.output


def test_screen_log_standalone(main, env, poisoned_csv):
    r = run(main, env, "dataset", "screen", str(poisoned_csv), "--no-loo", "--log", "--as", "alice",
            "--dataset", "digits", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["logged"]["index"] == 0
    r = CliRunner().invoke(main, ["dataset", "screen", str(poisoned_csv), "--log"], env=env[0])
    assert r.exit_code == 2 and "--log needs --as" in r.output


def test_remove_source_and_verify(main, env, poisoned_csv, tmp_path):
    r = run(main, env, "dataset", "commit", str(poisoned_csv), "--name", "digits", "--as", "alice")
    assert r.exit_code == 0, r.output
    out = tmp_path / "clean.csv"
    proof = tmp_path / "rm.proof"
    r = run(main, env, "dataset", "remove-source", "digits", str(poisoned_csv), "--source-column", "source",
            "--source", "v2", "--name", "digits-clean", "--as", "alice", "--output-data", str(out), "-o", str(proof),
            "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["removed_rows"] == 90 and info["removed_keys"] == 90
    assert info["old_records"] - info["new_records"] == 90 and info["old_root"] != info["new_root"]
    assert len(out.read_text().splitlines()) == 1 + 360
    r = run(main, env, "dataset", "verify-removal", str(proof), "--vkey", env[1], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["removed_keys"] == 90
    # tamper: drop one deletion step -> keys no longer match the logged digest
    head, body = proof.read_bytes().split(b"\n", 1)
    doc = json.loads(body)
    doc["steps"] = doc["steps"][1:]
    bad = tmp_path / "bad.proof"
    bad.write_bytes(head + b"\n" + json.dumps(doc).encode())
    r = CliRunner().invoke(main, ["dataset", "verify-removal", str(bad), "--vkey", env[1]], env=env[0])
    assert r.exit_code == 1 and "FAILED" in r.output
    # tamper: swap two steps' proofs -> a membership proof does not hold
    doc = json.loads(body)
    doc["steps"][0]["proof"], doc["steps"][1]["proof"] = doc["steps"][1]["proof"], doc["steps"][0]["proof"]
    bad.write_bytes(head + b"\n" + json.dumps(doc).encode())
    r = CliRunner().invoke(main, ["dataset", "verify-removal", str(bad), "--vkey", env[1]], env=env[0])
    assert r.exit_code == 1 and "FAILED" in r.output
    # tamper: a forged removal entry (signature no longer valid)
    doc = json.loads(body)
    eb = bytearray(base64.b64decode(doc["removal"]["entry"]))
    eb[eb.index(b'"removed_rows":90') + len('"removed_rows":')] = ord("8")
    doc["removal"]["entry"] = base64.b64encode(bytes(eb)).decode()
    bad.write_bytes(head + b"\n" + json.dumps(doc).encode())
    r = CliRunner().invoke(main, ["dataset", "verify-removal", str(bad), "--vkey", env[1]], env=env[0])
    assert r.exit_code in (1, 2) and ("FAILED" in r.output or "error" in r.output)


def test_remove_source_unknown_source(main, env, poisoned_csv, tmp_path):
    run(main, env, "dataset", "commit", str(poisoned_csv), "--name", "digits", "--as", "alice")
    r = CliRunner().invoke(main, ["dataset", "remove-source", "digits", str(poisoned_csv), "--source-column",
                                  "source", "--source", "nope", "--name", "x", "--as", "alice", "--output-data",
                                  str(tmp_path / "o.csv"), "-o", str(tmp_path / "p")], env=env[0])
    assert r.exit_code == 2 and "not in the data" in r.output
    assert ledger_size(env) == 1


def test_remove_source_swap_is_caught(main, env, poisoned_csv, tmp_path):
    """A curator who drops v2 but also swaps one kept record for a new one cannot prove the removal."""
    from ailedger.errors import ProofError
    from ailedger.screening import removal, remove_sources
    from ailedger.tlog.ledger import Ledger

    run(main, env, "dataset", "commit", str(poisoned_csv), "--name", "digits", "--as", "alice")
    real = removal._write_filtered

    def cheat(kind, rows, keep, header, dest):
        real(kind, rows, keep, header, dest)
        lines = dest.read_text().splitlines()
        lines[1] = lines[1].replace(",v", ",w", 1)  # change one kept record
        dest.write_text("\n".join(lines) + "\n")

    removal._write_filtered = cheat
    try:
        with Ledger.open(env[0]["AILEDGER_LEDGER"]) as lg:
            ident = lg.identities.load("alice")
            with pytest.raises(ProofError, match="not the old set minus"):
                remove_sources(lg, ident, "digits", str(poisoned_csv), source_column="source", sources=["v2"],
                               new_name="d2", output_data=str(tmp_path / "o.csv"))
            assert lg.size == 1  # nothing was logged
    finally:
        removal._write_filtered = real


def test_remove_path_multi_source_commit(main, env, tmp_path):
    """A dataset committed from three PATHs (a JSONL, a CSV, a folder); one PATH is cut; a record that
    the cut PATH shares with a kept one stays."""
    a = tmp_path / "a.jsonl"
    a.write_text("".join(json.dumps({"t": f"alpha {i}", "label": i % 2}) + "\n" for i in range(30)))
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps({"t": f"beta {i}", "label": i % 2}) + "\n" for i in range(20))
                 + json.dumps({"t": "alpha 3", "label": 1}) + "\n")  # same record as a.jsonl line 3
    c = tmp_path / "imgs"
    c.mkdir()
    for i in range(5):
        (c / f"{i}.bin").write_bytes(bytes([i]) * 100)
    r = run(main, env, "dataset", "commit", str(a), str(b), str(c), "--name", "mix", "--as", "alice")
    assert r.exit_code == 0, r.output
    proof = tmp_path / "p.proof"
    r = run(main, env, "dataset", "remove-path", "mix", str(a), str(b), str(c), "--drop", str(b), "--name",
            "mix2", "--as", "alice", "-o", str(proof), "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["removed_keys"] == 20 and info["rows_still_present_as_duplicates"] == 1
    assert info["old_records"] == 55 and info["new_records"] == 35
    r = run(main, env, "dataset", "verify-removal", str(proof), "--vkey", env[1], "--json")
    assert r.exit_code == 0 and json.loads(r.output)["removed_sources"] == ["b.jsonl"]
    # wrong PATH list (not the committed data): refused, nothing logged
    r = CliRunner().invoke(main, ["dataset", "remove-path", "mix", str(a), str(c), "--drop", str(c), "--name", "x",
                                  "--as", "alice", "-o", str(tmp_path / "q")], env=env[0])
    assert r.exit_code == 2 and "not the data committed" in r.output
