"""No unauthenticated write over HTTP: every write endpoint refuses an unsigned and a wrongly signed
request with 401/403 and stores nothing; identity registration needs an operator token or a
signature by a registered identity unless the operator opened registration."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from ailedger.server.auth import TokenFile, signed_headers
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key, Server


def size(s):
    return httpx.get(s.url + "/healthz").json()["size"]


def post_json(s, path, obj, headers=None):
    body = json.dumps(obj).encode()
    return httpx.post(s.url + path, content=body, headers={"content-type": "application/json", **(headers or {})})


def sig(path, obj, who):
    return signed_headers("POST", path, hashlib.sha256(json.dumps(obj).encode()).digest(), who)


class _Ident:
    """A tests.http.helpers.Key as an httpauth signer (did + sign)."""

    def __init__(self, key):
        self.did = key.did
        self.sign = key.key.sign


@pytest.fixture(scope="module")
def closed(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth") / "ledger"
    Ledger.init(d, origin="test.example/write-auth").close()
    token = TokenFile(d / "write-tokens").issue("onboarding")
    s = Server(d, open_registration=False)
    sponsor = Key("sponsor")
    r = post_json(s, "/v1/identities", sponsor.registration(), {"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    s.sponsor = _Ident(sponsor)
    yield s, token
    s.stop()


WRITES = ["/v1/identities", "/v1/entries", "/v1/entries/batch"]


def _wrap(path, entry):
    return {"entries": [entry]} if path.endswith("batch") else entry


@pytest.mark.parametrize("path", WRITES)
def test_a_registration_without_a_valid_credential_is_refused_everywhere(closed, path):
    s, _token = closed
    newcomer, stranger = Key("newcomer"), Key("stranger")
    obj = _wrap(path, newcomer.registration())
    n = size(s)
    refused = {
        "unsigned": ({}, 401),
        "a token nobody issued": ({"Authorization": "Bearer ailw_" + "A" * 43}, 401),
        "signed by an unregistered key": (sig(path, obj, _Ident(stranger)), 403),
        # a registered sponsor's signature, but not over this request
        "signed over another body": (sig(path, _wrap(path, stranger.registration()), s.sponsor), 401),
        "signed for another path": (sig("/v1/elsewhere", obj, s.sponsor), 401),
    }
    for what, (headers, want) in refused.items():
        r = post_json(s, path, obj, headers)
        assert r.status_code == want, (what, r.text)
        assert r.json()["code"] in ("unauthenticated", "forbidden"), (what, r.text)
        assert want != 401 or "Bearer" in r.headers["www-authenticate"]
        assert size(s) == n, what
    # the entry signer cannot use the entry later: it is not registered
    r = post_json(s, "/v1/entries", newcomer.entry("x.y", {}))
    assert r.status_code == 403 and r.json()["code"] == "unknown_identity"
    assert size(s) == n


def test_a_token_or_a_registered_sponsor_admits_a_registration(closed):
    s, token = closed
    alice, bob, carol = Key("alice"), Key("bob"), Key("carol")
    r = post_json(s, "/v1/identities", alice.registration(), {"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    # alice, now registered, vouches for bob by signing his registration request
    reg = bob.registration()
    r = post_json(s, "/v1/identities", reg, sig("/v1/identities", reg, _Ident(alice)))
    assert r.status_code == 201, r.text
    batch = {"entries": [carol.registration(), carol.entry("x.y", {"hello": 1})]}
    r = post_json(s, "/v1/entries/batch", batch, sig("/v1/entries/batch", batch, _Ident(bob)))
    assert r.status_code == 201 and r.json()["appended"] == 2, r.text
    # registered identities write their own signed entries with no other credential
    assert post_json(s, "/v1/entries", alice.entry("x.y", {"n": 1})).status_code == 201


def test_entries_that_are_unsigned_or_wrongly_signed_are_refused(closed):
    s, token = closed
    dave = Key("dave")
    assert post_json(s, "/v1/identities", dave.registration(), {"Authorization": f"Bearer {token}"}).status_code == 201
    n = size(s)
    e = dave.entry("x.y", {"a": 1})
    forged = dict(e, body={"a": 2})  # dave's name, a signature over something else
    impostor = Key("impostor").entry("x.y", {"a": 1})
    impostor = dict(impostor, signer=dave.did)  # claims to be dave, signed by another key
    for path in ("/v1/entries", "/v1/entries/batch"):
        for bad in (forged, impostor):
            r = post_json(s, path, _wrap(path, bad))
            assert r.status_code == 403, r.text
            code = r.json()["code"] if path == "/v1/entries" else r.json()["errors"][0]["code"]
            assert code == "bad_signature", r.text
        r = post_json(s, path, _wrap(path, Key("nobody").entry("x.y", {})))  # a key never registered
        assert r.status_code == 403, r.text
    assert size(s) == n


def test_open_registration_is_the_operators_choice(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/open").close()
    s = Server(d, open_registration=True)
    try:
        assert post_json(s, "/v1/identities", Key("anyone").registration()).status_code == 201
        assert httpx.get(s.url + "/v1/log").json()["policy"]["open_registration"] is True
    finally:
        s.stop()


def test_a_public_token_file_stops_the_server_from_starting(tmp_path):
    import os
    import subprocess
    import sys

    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/public-tokens").close()
    TokenFile(d / "write-tokens").issue("x")
    os.chmod(d / "write-tokens", 0o644)
    r = subprocess.run([sys.executable, "-c", "from ailedger.cli.main import main; main()", "serve", "--ledger",
                        str(d), "--port", "1"], check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "chmod 600" in r.stderr
