"""RFC 9421 request signatures by did:keys (ailedger.encoding.httpsig): round trip, interop with an
independent implementation (the `http-message-signatures` package), every tampering refused, and
any header bytes give UnauthenticatedError, never another exception."""

from __future__ import annotations

import datetime as dt
import hashlib

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.encoding.httpsig import UnauthenticatedError, content_digest, sign_request, verify_request
from ailedger.tlog.identities import Identity

NOW = 1_800_000_000
BODY = b'{"type":"identity.register"}'


def ident(name="k"):
    return Identity(name, Ed25519PrivateKey.generate())


def signed(who, method="POST", path="/v1/identities", query="", body=BODY, created=NOW):
    h = sign_request(method, path, query, hashlib.sha256(body).digest(), who.did, who.sign, created)
    return {k.lower(): v for k, v in h.items()}


def test_round_trip_binds_signer_and_body():
    a = ident()
    got = verify_request("POST", "/v1/identities", "", signed(a), now=NOW)
    assert got.keyid == a.did and got.body_sha256 == hashlib.sha256(BODY).digest() and got.created == NOW


@pytest.mark.parametrize("change", ["method", "path", "query", "digest", "keyid", "created", "sig", "other_key",
                                    "covered", "alg"])
def test_every_tampering_is_refused(change):
    a, b = ident("a"), ident("b")
    h = signed(a, query="x=1")
    method, path, query = "POST", "/v1/identities", "x=1"
    if change == "method":
        method = "PUT"
    elif change == "path":
        path = "/v1/entries"
    elif change == "query":
        query = "x=2"
    elif change == "digest":
        h["content-digest"] = content_digest(hashlib.sha256(b"another body").digest())
    elif change == "keyid":
        h["signature-input"] = h["signature-input"].replace(a.did, b.did)
    elif change == "created":
        h["signature-input"] = h["signature-input"].replace(f"created={NOW}", f"created={NOW + 1}")
    elif change == "sig":
        h["signature"] = "sig1=:" + "A" * 86 + "==:"
    elif change == "other_key":  # b signs but claims to be a
        hb = signed(b, query="x=1")
        h["signature"] = hb["signature"]
    elif change == "covered":  # drop content-digest from what is covered
        h["signature-input"] = h["signature-input"].replace(' "content-digest"', "")
    elif change == "alg":
        h["signature-input"] = h["signature-input"].replace('alg="ed25519"', 'alg="rsa-pss-sha512"')
    with pytest.raises(UnauthenticatedError):
        verify_request(method, path, query, h, now=NOW)


def test_created_outside_the_window_is_refused_and_inside_accepted():
    a = ident()
    verify_request("POST", "/v1/identities", "", signed(a, created=NOW - 299), now=NOW, window=300)
    for created in (NOW - 301, NOW + 301):
        with pytest.raises(UnauthenticatedError, match="from the server clock"):
            verify_request("POST", "/v1/identities", "", signed(a, created=created), now=NOW, window=300)


def test_missing_headers_are_named():
    a = ident()
    h = signed(a)
    for k in ("signature", "signature-input", "content-digest"):
        hh = {x: v for x, v in h.items() if x != k}
        with pytest.raises(UnauthenticatedError) as ei:
            verify_request("POST", "/v1/identities", "", hh, now=NOW)
        assert ei.value.details["field"] in (k, "signature")


def _resolver(who):
    from http_message_signatures import HTTPSignatureKeyResolver

    class R(HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id):
            return who.private_key

        def resolve_public_key(self, key_id):
            return who.private_key.public_key()

    return R()


def test_interop_with_an_independent_rfc9421_implementation():
    hms = pytest.importorskip("http_message_signatures")
    a = ident()
    covered = ("@method", "@path", "@query", "content-digest")
    # theirs -> ours
    req = httpx.Request("POST", "http://127.0.0.1:8080/v1/identities?x=1", content=BODY)
    hms.HTTPMessageSigner(signature_algorithm=hms.algorithms.ED25519, key_resolver=_resolver(a)).sign(
        req, key_id=a.did, covered_component_ids=covered, body=BODY, label="sig1",
        created=dt.datetime.fromtimestamp(NOW, dt.timezone.utc))
    got = verify_request("POST", "/v1/identities", "x=1", {k.lower(): v for k, v in req.headers.items()}, now=NOW)
    assert got.keyid == a.did
    # ours -> theirs
    from ailedger.server.auth import signed_headers

    req2 = httpx.Request("POST", "http://127.0.0.1:8080/v1/identities?x=1", content=BODY,
                         headers=signed_headers("POST", "/v1/identities?x=1", hashlib.sha256(BODY).digest(), a))
    res = hms.HTTPMessageVerifier(signature_algorithm=hms.algorithms.ED25519, key_resolver=_resolver(a)).verify(
        req2, require_components=covered, body=BODY, max_age=dt.timedelta(days=365 * 100))
    assert res and res[0].parameters["keyid"] == a.did


_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=300)


@settings(max_examples=400, deadline=None)
@given(sig_in=_HEADER_TEXT, sig=_HEADER_TEXT, digest=st.one_of(st.none(), _HEADER_TEXT))
def test_any_header_text_is_refused_cleanly(sig_in, sig, digest):
    h = {"signature-input": sig_in, "signature": sig}
    if digest is not None:
        h["content-digest"] = digest
    with pytest.raises(UnauthenticatedError):
        verify_request("POST", "/v1/identities", "", h, now=NOW)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutations_of_a_valid_signature_input_are_refused_cleanly(data):
    a = ident()
    h = signed(a)
    s = h["signature-input"]
    i = data.draw(st.integers(0, len(s) - 1))
    ch = data.draw(st.characters(min_codepoint=0x20, max_codepoint=0x7E))
    mutated = s[:i] + ch + s[i + 1:]
    h["signature-input"] = mutated
    if mutated == s:
        verify_request("POST", "/v1/identities", "", h, now=NOW)
    else:
        with pytest.raises(UnauthenticatedError):
            verify_request("POST", "/v1/identities", "", h, now=NOW)
