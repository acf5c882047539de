"""The CLI verbs a user relies on, run as real subprocesses, with their bad-input paths."""

import base64
import json
import os
import subprocess
import sys

import pytest


def run(args, cwd, env_extra=None, ok=True):
    env = dict(os.environ)
    env.pop("AILEDGER_LEDGER", None)
    env.update(env_extra or {})
    p = subprocess.run([sys.executable, "-m", "ailedger", *args], cwd=cwd, env=env, check=False,
                       capture_output=True, text=True)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def ledger(tmp_path):
    run(["init", "ledger", "--origin", "example.org/ai-ledger"], tmp_path)
    env = {"AILEDGER_LEDGER": str(tmp_path / "ledger")}
    run(["identity", "new", "alice"], tmp_path, env)
    run(["identity", "new", "bob"], tmp_path, env)
    for i in range(5):
        (tmp_path / f"r{i}.json").write_text(json.dumps({"type": "dataset.note", "body": {"n": i}}))
        run(["append", "--as", "alice", f"r{i}.json"], tmp_path, env)
    return tmp_path, env


def test_tour(ledger):
    cwd, env = ledger
    out = json.loads(run(["append", "--as", "bob", "r1.json", "--json"], cwd, env).stdout)
    assert out["index"] == 7 and len(out["leaf_hash"]) == 64
    cp1 = run(["checkpoint", "-o", "cp1"], cwd, env).stdout
    assert cp1.startswith("example.org/ai-ledger\n8\n")
    run(["append", "--as", "alice", "r2.json"], cwd, env)
    run(["checkpoint", "-o", "cp2"], cwd, env)
    run(["prove", "3", "-o", "e3.tlog-proof"], cwd, env)
    run(["entry", "3", "-o", "e3.bin"], cwd, env)
    vk = run(["vkey"], cwd, env).stdout.strip()
    (cwd / "log.vkey").write_text(vk + "\n")
    # offline: no ledger in the environment
    v = run(["verify", "e3.tlog-proof", "--vkey", "log.vkey", "--entry", "e3.bin", "--json"], cwd)
    res = json.loads(v.stdout)
    assert res["ok"] and res["index"] == 3 and res["type"] == "dataset.note" and res["signature"] == "valid"
    c = run(["consistency", "--old", "cp1", "--new", "cp2"], cwd, env)
    assert "extends" in c.stdout
    lines = run(["consistency", "3", "9"], cwd, env).stdout.split()
    assert all(len(base64.b64decode(x)) == 32 for x in lines) and lines
    a = json.loads(run(["audit", "--json"], cwd, env).stdout)
    assert a["ok"] and a["leaves_checked"] == 9
    run(["tiles", "export", "site"], cwd, env)
    assert (cwd / "site" / "checkpoint").read_bytes().startswith(b"example.org/ai-ledger\n9\n")
    assert (cwd / "site" / "tile" / "0" / "000.p" / "9").stat().st_size == 9 * 32
    f = json.loads(run(["find", "--type", "dataset.note", "--signer", "bob", "--json"], cwd, env).stdout)
    assert [e["index"] for e in f["entries"]] == [7]


def _size(cwd, env):
    return int(run(["checkpoint"], cwd, env).stdout.split("\n")[1])


def test_bad_inputs_one_line_error_nonzero_nothing_written(ledger):
    cwd, env = ledger
    run(["prove", "2", "-o", "p.tlog-proof"], cwd, env)
    run(["entry", "2", "-o", "e2.bin"], cwd, env)
    run(["entry", "3", "-o", "e3.bin"], cwd, env)
    before = _size(cwd, env)
    cases = []
    # malformed proof
    (cwd / "bad.tlog-proof").write_text("c2sp.org/tlog-proof@v1\nindex two\n\nx\n")
    cases.append((["verify", "bad.tlog-proof", "--entry", "e2.bin"], "index"))
    # wrong key
    other = run(["init", "other", "--origin", "example.org/ai-ledger"], cwd).stdout.split("verifier key ")[1].split()[0]
    cases.append((["verify", "p.tlog-proof", "--vkey", other, "--entry", "e2.bin"], "signature"))
    # the wrong entry for the proof
    cases.append((["verify", "p.tlog-proof", "--entry", "e3.bin"], "different root"))
    # missing ledger
    cases.append((["--help"], None))
    # an entry signed by someone else: alice's entry with bob's did swapped in
    e = json.loads((cwd / "e2.bin").read_text())
    bob_did = run(["identity", "list", "--json"], cwd, env).stdout
    bob_did = next(i["did"] for i in json.loads(bob_did)["identities"] if i["name"] == "bob")
    e["signer"] = bob_did
    (cwd / "forged.json").write_text(json.dumps(e))
    cases.append((["append", "forged.json"], "signature"))
    (cwd / "broken.json").write_text("{\"type\": ")
    cases.append((["append", "--as", "alice", "broken.json"], "does not parse"))
    cases.append((["append", "--as", "nobody", "r1.json"], "no identity"))
    cases.append((["prove", "999"], "no entry 999"))
    cases.append((["consistency", "--old", "nofile", "--new", "nofile"], "does not exist"))
    for args, needle in cases:
        if needle is None:
            continue
        p = run(args, cwd, env, ok=False)
        assert p.returncode != 0, args
        err = p.stderr.strip()
        assert err.count("\n") == 0 and err.startswith("error: "), (args, err)
        assert needle in err, (args, err)
    p = run(["audit"], cwd, {"AILEDGER_LEDGER": str(cwd / "missing")}, ok=False)
    assert p.returncode == 2 and "no ledger at" in p.stderr
    p = run(["audit"], cwd, ok=False)
    assert p.returncode == 2 and "--ledger" in p.stderr
    assert _size(cwd, env) == before


def test_json_errors_are_json(ledger):
    cwd, env = ledger
    p = run(["prove", "999", "--json"], cwd, env, ok=False)
    assert json.loads(p.stdout)["error"]["code"] == "not_found"


def test_audit_exit_code_on_tamper(ledger):
    import sqlite3
    cwd, env = ledger
    con = sqlite3.connect(cwd / "ledger" / "ledger.db")
    con.execute("UPDATE leaves SET data = CAST(replace(CAST(data AS TEXT), '\"n\":2', '\"n\":7') AS BLOB) WHERE idx=4")
    con.commit()
    p = run(["audit"], cwd, env, ok=False)
    assert p.returncode == 1 and "index 4" in p.stdout


def test_init_postgres_store_when_available(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database test) is not reachable: {exc}")
    dsn = "postgresql://postgres@127.0.0.1:5432/test"
    for name in ("a", "b"):
        run(["init", name, "--origin", f"example.org/{name}", "--store", "postgres", "--dsn", dsn], tmp_path)
    run(["identity", "new", "x"], tmp_path, {"AILEDGER_LEDGER": str(tmp_path / "a")})
    run(["identity", "new", "y"], tmp_path, {"AILEDGER_LEDGER": str(tmp_path / "a")})
    run(["identity", "new", "z"], tmp_path, {"AILEDGER_LEDGER": str(tmp_path / "b")})
    sizes = [int(run(["checkpoint"], tmp_path, {"AILEDGER_LEDGER": str(tmp_path / n)}).stdout.split("\n")[1])
             for n in ("a", "b")]
    assert sizes == [2, 1]  # separate schemas: two ledgers in one database do not mix
    p = run(["init", "c", "--origin", "example.org/c", "--store", "postgres"], tmp_path, ok=False)
    assert p.returncode == 2 and "--dsn" in p.stderr


def test_checkpoint_and_proof_print_exact_bytes(ledger):
    cwd, env = ledger
    run(["checkpoint", "-o", "cp"], cwd, env)
    out = subprocess.run([sys.executable, "-m", "ailedger", "checkpoint"], cwd=cwd, env={**os.environ, **env},
                         check=False, capture_output=True).stdout
    assert out == (cwd / "cp").read_bytes() and out.endswith(b"\n")
    run(["prove", "2", "-o", "p"], cwd, env)
    out = subprocess.run([sys.executable, "-m", "ailedger", "prove", "2"], cwd=cwd, env={**os.environ, **env},
                         check=False, capture_output=True).stdout
    assert out == (cwd / "p").read_bytes()
