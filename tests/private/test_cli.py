"""`ailedger private ...` end to end: exit codes 0 / 1 (failed verification) / 2 (bad input)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ailedger.cli.main import main


def run(*args, code=0):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == code, (r.exit_code, r.output)
    return r


def test_fhe_round_trip_and_bad_ciphertexts(workdir, digits_test, other_keys, tmp_path):
    Xte, _ = digits_test
    led = workdir / "ledger"
    (tmp_path / "x.json").write_text(json.dumps(Xte[4].tolist()))
    run("private", "fhe-keygen", tmp_path / "keys", "--json")
    run("private", "fhe-encrypt", tmp_path / "x.json", "--keys", tmp_path / "keys", "-o", tmp_path / "q.ct")
    infer = ["private", "fhe-infer", "--model", "digits-logreg", "--model-dir", workdir / "logreg",
             "--public-key", tmp_path / "keys" / "public.ctx", "--ledger", led]
    r = run(*infer, tmp_path / "q.ct", "-o", tmp_path / "a.ct", "--json")
    doc = json.loads(r.output)
    assert doc["model"] == "digits-logreg" and doc["receipt"]
    r = run("private", "fhe-decrypt", tmp_path / "a.ct", "--keys", tmp_path / "keys", "--json")
    from ailedger.private.digits import load_model

    assert json.loads(r.output)["class"] == int(load_model(workdir / "logreg").predict(Xte[4:5])[0])
    # malformed query: exit 2, named
    (tmp_path / "bad.ct").write_bytes(b"not a ciphertext")
    r = run(*infer, tmp_path / "bad.ct", "-o", tmp_path / "b.ct", code=2)
    assert "malformed ciphertext" in r.output
    # an answer for another key pair: refused, named (2)
    from ailedger.private.fhe import save_keys

    save_keys(other_keys, tmp_path / "keys2")
    r = run("private", "fhe-decrypt", tmp_path / "a.ct", "--keys", tmp_path / "keys2", code=2)
    assert "under another key" in r.output
    # a query under other keys carrying this key's id: the server cannot tell; decryption fails (exit 1)
    import struct

    from ailedger.private.fhe import MAGIC, encrypt, load_keys

    other = encrypt(other_keys, Xte[4])
    (n,) = struct.unpack(">I", other[len(MAGIC):len(MAGIC) + 4])
    hdr = json.loads(other[len(MAGIC) + 4:len(MAGIC) + 4 + n])
    hdr["key"] = load_keys(tmp_path / "keys", secret=False).id
    h = json.dumps(hdr, separators=(",", ":"), sort_keys=True).encode()
    (tmp_path / "forged.ct").write_bytes(MAGIC + struct.pack(">I", len(h)) + h + other[len(MAGIC) + 4 + n:])
    run(*infer, tmp_path / "forged.ct", "-o", tmp_path / "f.ct")
    r = run("private", "fhe-decrypt", tmp_path / "f.ct", "--keys", tmp_path / "keys", code=1)
    assert "does not decrypt to logits under this key" in r.output
    # input not 64 values
    (tmp_path / "short.json").write_text("[0.5, 0.5]")
    r = run("private", "fhe-encrypt", tmp_path / "short.json", "--keys", tmp_path / "keys", "-o", tmp_path / "s",
            code=2)
    assert "64 numbers" in r.output


def test_mpc_run_and_audit(workdir, digits_test, tmp_path):
    Xte, _ = digits_test
    led = workdir / "ledger"
    (tmp_path / "x.json").write_text(json.dumps(Xte[6].tolist()))
    r = run("private", "mpc-run", tmp_path / "x.json", "--model", "digits-logreg", "--model-dir", workdir / "logreg",
            "--owner", "owner", "--client", "client", "--helper", "helper", "--base-port", 18350,
            "--ledger", led, "--json")
    doc = json.loads(r.output)
    assert len(doc["indices"]) == 3
    run("private", "mpc-audit", doc["run"], "--model", "digits-logreg", "--model-dir", workdir / "logreg",
        "--ledger", led)
    r = run("private", "mpc-audit", doc["run"], "--model", "digits-mlp", "--model-dir", workdir / "mlp",
            "--ledger", led, code=1)
    assert "names model manifest" in r.output
