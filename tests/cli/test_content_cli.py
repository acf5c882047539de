import io
import json

import numpy as np
import pytest
from clirun import run  # tests/cli/clirun.py (pytest puts this folder on sys.path)
from PIL import Image
from skimage import data

from ailedger.tlog.ledger import Ledger


def _setup(tmp_path):
    led = Ledger.init(tmp_path / "ledger", origin="cli.example/content")
    ident, _ = led.new_identity("alice")
    led.close()
    return str(tmp_path / "ledger"), ident.did


@pytest.mark.slow  # several CLI subprocesses (each imports every command module)
def test_register_verify_roundtrip(tmp_path):
    L, did = _setup(tmp_path)
    src = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(src)
    out = tmp_path / "coffee.pub.png"
    p = run("content", "register", str(src), "--as", "alice", "--generator", "m1", "-o", str(out),
            "--ledger", L, "--json")
    reg = json.loads(p.stdout)
    assert reg["record"]["watermark"]["selfcheck"] and out.exists()
    # a metadata-free JPEG re-encode at half size of the published copy
    b = io.BytesIO()
    Image.open(out).convert("RGB").resize((300, 200)).save(b, "JPEG", quality=75)
    q = tmp_path / "seen.jpg"
    q.write_bytes(b.getvalue())
    v = json.loads(run("content", "verify", str(q), "--ledger", L, "--json").stdout)
    assert v["verdict"] == "watermark match" and v["matches"][0]["registered_by"]["did"] == did
    assert v["matches"][0]["generator"]["model"] == "m1"
    txt = run("content", "verify", str(q), "--ledger", L).stdout
    assert "Found: watermark match." in txt and "registered by alice" in txt
    # unrelated: exit 1, and the JSON names no identity
    other = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).save(other)
    p = run("content", "verify", str(other), "--ledger", L, "--json", check=False)
    assert p.returncode == 1 and "did:key" not in p.stdout and json.loads(p.stdout)["verdict"] == "no match"


def test_bad_input_errors(tmp_path):
    L, _ = _setup(tmp_path)
    bad = tmp_path / "broken.jpg"
    b = io.BytesIO()
    Image.fromarray(data.coffee()).save(b, "JPEG")
    bad.write_bytes(b.getvalue()[:3000])
    p = run("content", "verify", str(bad), "--ledger", L, check=False)
    assert p.returncode == 2 and "error:" in p.stderr and "truncated or corrupt" in p.stderr
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 100).save(tiny)
    p = run("content", "register", str(tiny), "--as", "alice", "-o", str(tmp_path / "t2.png"), "--ledger", L,
            check=False)
    assert p.returncode == 2 and "too small" in p.stderr
    p = run("content", "register", str(tiny), "--as", "nobody", "--ledger", L, check=False)
    assert p.returncode == 2


def test_c2pa_test_cert_then_sign_and_verify_trusted(tmp_path):
    """`content c2pa-test-cert` makes a chain that `c2pa-sign` signs with and `verify --trust-anchors` trusts."""
    L, did = _setup(tmp_path)
    made = json.loads(run("content", "c2pa-test-cert", "-o", str(tmp_path / "c2pa"), "--json").stdout)
    assert made["throw_away"] and (tmp_path / "c2pa" / "key.pem").stat().st_mode & 0o777 == 0o600
    src = tmp_path / "c.jpg"
    Image.fromarray(data.coffee()).save(src, quality=90)
    before = src.read_bytes()
    entry = json.loads(run("content", "register", str(src), "--as", "alice", "--ledger", L, "--json").stdout)["entry"]
    out = json.loads(run("content", "c2pa-sign", str(src), "--entry", str(entry), "--cert", made["chain"],
                         "--key", made["key"], "--ledger", L, "--json").stdout)
    assert out["sidecar"] == str(tmp_path / "c.c2pa") and src.read_bytes() == before
    v = json.loads(run("content", "verify", str(src), "--trust-anchors", made["ca"], "--ledger", L,
                       "--json").stdout)
    assert v["c2pa"]["state"] == "Trusted" and v["c2pa"]["ailedger_record"]["index"] == entry
    assert v["matches"][0]["registered_by"]["did"] == did
    # another chain's CA does not make it trusted
    other = json.loads(run("content", "c2pa-test-cert", "-o", str(tmp_path / "other"), "--json").stdout)
    v2 = json.loads(run("content", "verify", str(src), "--trust-anchors", other["ca"], "--ledger", L,
                        "--json").stdout)
    assert v2["c2pa"]["state"] != "Trusted"


def test_c2pa_test_cert_refuses_to_overwrite_and_bad_days(tmp_path):
    run("content", "c2pa-test-cert", "-o", str(tmp_path / "c"))
    key = (tmp_path / "c" / "key.pem").read_bytes()
    p = run("content", "c2pa-test-cert", "-o", str(tmp_path / "c"), check=False)
    assert p.returncode == 2 and "already exist" in p.stderr and (tmp_path / "c" / "key.pem").read_bytes() == key
    p = run("content", "c2pa-test-cert", "-o", str(tmp_path / "d"), "--days", "0", check=False)
    assert p.returncode == 2 and "--days" in p.stderr and not (tmp_path / "d").exists()
