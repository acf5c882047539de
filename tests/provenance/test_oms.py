"""Interop with OpenSSF Model Signing: its own CLI (model-signing 1.1 from PyPI) run for real."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ailedger.errors import SignatureError
from ailedger.provenance import oms_sign, oms_verify

TOOL = Path(sys.executable).parent / "model_signing"
pytestmark = pytest.mark.skipif(not TOOL.exists(), reason="model-signing is not installed")


def _keys(tmp_path, curve):
    k = ec.generate_private_key(curve)
    priv = tmp_path / f"key-{curve.name}.pem"
    pub = tmp_path / f"pub-{curve.name}.pem"
    priv.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    pub.write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def _tool(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGSTORE", "OTEL"))}
    env["NO_PROXY"] = "*"
    return subprocess.run([str(TOOL), *args], check=False, capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.mark.parametrize("curve", [ec.SECP256R1(),
                                   pytest.param(ec.SECP384R1(), marks=pytest.mark.slow),
                                   pytest.param(ec.SECP521R1(), marks=pytest.mark.slow)])
def test_our_signature_verifies_with_model_signing(tmp_path, model_dir, curve):
    priv, pub = _keys(tmp_path, curve)
    sig = tmp_path / "model.sig"
    rep = oms_sign(str(model_dir), str(priv), str(sig))
    assert rep["resources"] == 4
    assert oms_verify(str(model_dir), str(sig), str(pub))["ok"]
    r = _tool("verify", "key", str(model_dir), "--signature", str(sig), "--public_key", str(pub))
    assert r.returncode == 0, r.stdout + r.stderr
    # tamper: their tool must now refuse
    (model_dir / "config.json").write_text("{}")
    r = _tool("verify", "key", str(model_dir), "--signature", str(sig), "--public_key", str(pub))
    assert r.returncode != 0


def test_shards_method_and_signature_inside_folder(tmp_path, model_dir):
    priv, pub = _keys(tmp_path, ec.SECP256R1())
    sig = model_dir / "model.sig"
    oms_sign(str(model_dir), str(priv), str(sig), method="shards", shard_size=5000)
    # model_signing 1.1's CLI always re-hashes by files; its Python API takes the method from the signature
    code = ("import model_signing, sys\n"
            "model_signing.verifying.Config().use_elliptic_key_verifier(public_key=sys.argv[3])"
            ".set_ignore_unsigned_files(False).verify(sys.argv[1], sys.argv[2])\n")
    r = subprocess.run([sys.executable, "-c", code, str(model_dir), str(sig), str(pub)], check=False,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert oms_verify(str(model_dir), str(sig), str(pub))["ok"]


def test_we_verify_their_signature(tmp_path, model_dir):
    priv, pub = _keys(tmp_path, ec.SECP256R1())
    sig = tmp_path / "theirs.sig"
    r = _tool("sign", "key", str(model_dir), "--signature", str(sig), "--private_key", str(priv))
    assert r.returncode == 0, r.stdout + r.stderr
    rep = oms_verify(str(model_dir), str(sig), str(pub))
    assert rep["ok"] and rep["serialization"]["method"] == "files" and rep["resources"] == 4
    # a changed file is named
    with open(model_dir / "sub" / "tokenizer.txt", "ab") as f:
        f.write(b"!")
    rep = oms_verify(str(model_dir), str(sig), str(pub))
    assert not rep["ok"] and rep["differences"][0]["path"] == "sub/tokenizer.txt"
    # another key: refused as a signature failure
    _, pub2 = _keys(tmp_path / "", ec.SECP384R1())
    with pytest.raises(SignatureError):
        oms_verify(str(model_dir), str(sig), str(pub2))


def test_cli_sign_and_verify(tmp_path, model_dir):
    import click
    from click.testing import CliRunner

    from ailedger.cli import model as model_cli

    @click.group()
    def main():
        pass

    model_cli.register(main)
    priv, pub = _keys(tmp_path, ec.SECP256R1())
    sig = tmp_path / "m.sig"
    r = CliRunner().invoke(main, ["model", "sign", str(model_dir), "--format", "oms", "--key", str(priv), "-o",
                                  str(sig), "--json"], env={"AILEDGER_LEDGER": ""})
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["model", "verify", str(model_dir), "--oms", str(sig), "--public-key", str(pub),
                                  "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ok"]
    (model_dir / "config.json").write_text("{}")
    r = CliRunner().invoke(main, ["model", "verify", str(model_dir), "--oms", str(sig), "--public-key", str(pub)])
    assert r.exit_code == 1 and "config.json" in r.output


def test_cli_default_form_verifies_with_the_model_signing_cli(tmp_path, model_dir):
    """`ailedger model sign --format oms` with no --method writes what model_signing 1.1's own CLI
    verifies (files); a shards signature is refused by that CLI (it re-hashes by files), which is
    why it is not the default and why the docs and the command's output say so."""
    import click
    from click.testing import CliRunner

    from ailedger.cli import model as model_cli

    @click.group()
    def main():
        pass

    model_cli.register(main)
    priv, pub = _keys(tmp_path, ec.SECP256R1())
    sig = tmp_path / "default.sig"
    r = CliRunner().invoke(main, ["model", "sign", str(model_dir), "--format", "oms", "--key", str(priv), "-o",
                                  str(sig), "--json"], env={"AILEDGER_LEDGER": ""})
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["method"] == "files"
    r = _tool("verify", "key", str(model_dir), "--signature", str(sig), "--public_key", str(pub))
    assert r.returncode == 0, r.stdout + r.stderr
    shards = tmp_path / "shards.sig"
    r = CliRunner().invoke(main, ["model", "sign", str(model_dir), "--format", "oms", "--key", str(priv), "-o",
                                  str(shards), "--method", "shards", "--shard-size", "5000"],
                           env={"AILEDGER_LEDGER": ""})
    assert r.exit_code == 0 and "model_signing 1.1 CLI" in r.output, r.output
    r = _tool("verify", "key", str(model_dir), "--signature", str(shards), "--public_key", str(pub))
    assert r.returncode != 0  # if this starts passing, model_signing's CLI learnt shards: update the docs
    assert oms_verify(str(model_dir), str(shards), str(pub))["ok"]


def test_sign_with_a_ledger_cache_signs_the_bytes_on_disk(tmp_path, model_dir):
    """`model sign` takes whole-file digests from the ledger's hash cache; a file changed in place
    with its mtime put back must be re-read (the cache is keyed on ctime), or the signature would
    cover bytes that are no longer there."""
    import shutil
    import subprocess as sp
    import time

    import click
    from click.testing import CliRunner

    from ailedger.cli import model as model_cli
    from ailedger.tlog.ledger import Ledger

    Ledger.init(tmp_path / "ledger", origin="test.example/ledger").close()

    @click.group()
    def main():
        pass

    model_cli.register(main)
    priv, pub = _keys(tmp_path, ec.SECP256R1())
    time.sleep(0.1)  # past the "racy" window, so the first signing fills the cache
    env = {"AILEDGER_LEDGER": str(tmp_path / "ledger")}
    r = CliRunner().invoke(main, ["model", "sign", str(model_dir), "--format", "oms", "--key", str(priv), "-o",
                                  str(tmp_path / "one.sig")], env=env)
    assert r.exit_code == 0, r.output
    p = model_dir / "sub" / "tokenizer.txt"
    shutil.copy2(p, tmp_path / "ref")
    with open(p, "r+b") as f:
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 1]))
    sp.run(["touch", "-r", str(tmp_path / "ref"), str(p)], check=True)
    r = CliRunner().invoke(main, ["model", "sign", str(model_dir), "--format", "oms", "--key", str(priv), "-o",
                                  str(tmp_path / "two.sig")], env=env)
    assert r.exit_code == 0, r.output
    rep = oms_verify(str(model_dir), str(tmp_path / "two.sig"), str(pub))
    assert rep["ok"], rep["differences"]
