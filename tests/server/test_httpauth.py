"""Write credentials (ailedger.server.auth): operator token files and the WriteAuth decision."""

from __future__ import annotations

import hashlib
import os

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.cli.main import main
from ailedger.encoding.httpsig import ForbiddenError, UnauthenticatedError
from ailedger.errors import BadInputError, NotFoundError
from ailedger.server.auth import KeyList, TokenFile, WriteAuth, signed_headers
from ailedger.tlog.identities import Identity


def lower(h):
    return {k.lower(): v for k, v in h.items()}


def test_token_file_is_private_holds_hashes_and_revokes(tmp_path):
    tf = TokenFile(tmp_path / "tokens")
    t1 = tf.issue("ci")
    t2 = tf.issue("ops")
    assert os.stat(tmp_path / "tokens").st_mode & 0o777 == 0o600
    text = (tmp_path / "tokens").read_text()
    assert t1 not in text and hashlib.sha256(t1.encode()).hexdigest() in text
    assert tf.check(t1) == "ci" and tf.check(t2) == "ops"
    assert tf.check(t1[:-1] + ("A" if t1[-1] != "A" else "B")) is None and tf.check("") is None
    assert tf.revoke("ci") == 1
    assert tf.check(t1) is None and tf.check(t2) == "ops"  # re-read on change, no restart
    with pytest.raises(NotFoundError):
        tf.revoke("ci")
    with pytest.raises(BadInputError):
        tf.issue("bad name with spaces")


def test_a_token_file_others_can_read_is_refused(tmp_path):
    tf = TokenFile(tmp_path / "tokens")
    tok = tf.issue("ci")
    os.chmod(tmp_path / "tokens", 0o644)
    with pytest.raises(BadInputError, match="chmod 600"):
        tf.check_file()
    assert tf.check(tok) is None  # fail closed while it is public
    with pytest.raises(BadInputError, match="chmod 600"):
        tf.issue("more")
    os.chmod(tmp_path / "tokens", 0o600)
    assert tf.check(tok) == "ci"


def test_write_auth_decisions(tmp_path):
    tf = TokenFile(tmp_path / "tokens")
    tok = tf.issue("ci")
    good, stranger = Identity("g", Ed25519PrivateKey.generate()), Identity("s", Ed25519PrivateKey.generate())
    auth = WriteAuth(tokens=tf, admit=KeyList([good.did]))
    body = hashlib.sha256(b"x").digest()
    assert auth.check("PUT", "/p", "", {"authorization": f"Bearer {tok}"}).who == "ci"
    cred = auth.check("PUT", "/p", "", lower(signed_headers("PUT", "/p", body, good)))
    assert cred.who == good.did and cred.body_sha256 == body
    cred.check_body(body)
    with pytest.raises(UnauthenticatedError):
        cred.check_body(hashlib.sha256(b"y").digest())
    for headers in ({}, {"authorization": "Bearer ailw_nope"}, {"authorization": "Basic dXNlcjpwdw=="},
                    lower(signed_headers("PUT", "/other", body, good))):
        with pytest.raises(UnauthenticatedError):
            auth.check("PUT", "/p", "", headers)
    with pytest.raises(ForbiddenError):
        auth.check("PUT", "/p", "", lower(signed_headers("PUT", "/p", body, stranger)))
    with pytest.raises(UnauthenticatedError):  # a server without a token file takes no tokens
        WriteAuth(admit=KeyList([good.did])).check("PUT", "/p", "", {"authorization": f"Bearer {tok}"})


def test_key_list_file_is_reread(tmp_path):
    a = Identity("a", Ed25519PrivateKey.generate())
    f = tmp_path / "allow"
    f.write_text("# writers\n")
    kl = KeyList([], f)
    assert not kl(a.did)
    f.write_text(f"# writers\n{a.did}  # alice\n")
    assert kl(a.did)
    with pytest.raises(BadInputError):
        KeyList(["did:key:zNotAKey"])


def test_write_token_cli(tmp_path):
    f = tmp_path / "t"
    r = CliRunner().invoke(main, ["write-token", "new", "ci", "--file", str(f), "--json"])
    assert r.exit_code == 0, r.output
    import json

    tok = json.loads(r.output)["token"]
    assert TokenFile(f).check(tok) == "ci"
    r = CliRunner().invoke(main, ["write-token", "list", "--file", str(f), "--json"])
    assert [t["name"] for t in json.loads(r.output)["tokens"]] == ["ci"] and tok not in r.output
    r = CliRunner().invoke(main, ["write-token", "revoke", "nobody", "--file", str(f)])
    assert r.exit_code == 2 and "no write token named" in r.output
    assert CliRunner().invoke(main, ["write-token", "revoke", "ci", "--file", str(f)]).exit_code == 0
    assert TokenFile(f).check(tok) is None


def test_write_token_new_prints_only_the_token_on_stdout(tmp_path):
    """`TOKEN=$(ailedger write-token new NAME --file F)` (docs/storage.md) captures the token and nothing else;
    the note about where it is kept goes to stderr."""
    f = tmp_path / "t"
    r = CliRunner().invoke(main, ["write-token", "new", "uploader", "--file", str(f)])
    assert r.exit_code == 0, r.output
    tok = r.stdout.strip()
    assert "\n" not in tok and TokenFile(f).check(tok) == "uploader"
    assert "not shown again" in r.stderr and tok not in r.stderr
