"""Signed notes, checkpoints and proof bundles against public golden values and bad input."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.errors import BadInputError, ProofError, SignatureError
from ailedger.tlog.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_text, sign_checkpoint
from ailedger.tlog.merkle import CompactRange, inclusion_plan, leaf_hash, rehash_plan, root_from_leaf_hashes
from ailedger.tlog.note import Signer, make_vkey, parse_note, parse_vkey, sign_note, verify_note
from ailedger.tlog.proofbundle import ProofBundle, parse_proof_bundle, verify_proof_bundle

# golang.org/x/mod/sumdb/note documentation example (public test vector)
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
# transparency-dev/formats test key whose base64 contains '+'
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"


def go_signer():
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    return Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))


def test_go_note_vector_signs_byte_identically():
    s = go_signer()
    assert s.vkey == GO_VKEY
    assert sign_note(GO_TEXT, [s]) == GO_NOTE.encode()


def test_go_note_vector_verifies_and_tamper_fails():
    v = parse_vkey(GO_VKEY)
    assert verify_note(GO_NOTE.encode(), v).text == GO_TEXT
    with pytest.raises(SignatureError):
        verify_note(GO_NOTE.replace("answer", "Answer").encode(), v)
    other = Signer("PeterNeumann", Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError):
        verify_note(GO_NOTE.encode(), other.verifier)


def test_vkey_with_plus_in_base64_parses():
    v = parse_vkey(PLUS_VKEY)
    assert v.name == "TEST" and v.key_id.hex() == "7997405c"


@pytest.mark.parametrize("bad", ["", "a+b", "x+zz+AQ==", GO_VKEY.replace("c74f20a3", "c74f20a4"),
                                 GO_VKEY[:-4] + "AAAA"])
def test_bad_vkeys_rejected(bad):
    with pytest.raises(BadInputError):
        parse_vkey(bad)


@pytest.mark.parametrize("bad", [b"no signature\n", b"text\n\nnot a sig line\n", b"text\n\n\xe2\x80\x94 n !!!\n",
                                 b"\xff\xfe\n\n"])
def test_bad_notes_rejected(bad):
    with pytest.raises(BadInputError):
        parse_note(bad)


def test_checkpoint_roundtrip_and_origin_check():
    s = Signer("example.org/log", Ed25519PrivateKey.generate())
    root = root_from_leaf_hashes([leaf_hash(b"a"), leaf_hash(b"b")])
    note = sign_checkpoint(Checkpoint("example.org/log", 2, root), s)
    lines = note.decode().split("\n")
    assert lines[:3] == ["example.org/log", "2", base64.b64encode(root).decode()] and lines[3] == ""
    cp = open_checkpoint(note, s.verifier)
    assert cp.size == 2 and cp.root == root
    s2 = Signer("example.org/other", Ed25519PrivateKey.generate())
    note2 = sign_checkpoint(Checkpoint("example.org/log", 2, root), s2)
    with pytest.raises(BadInputError):
        open_checkpoint(note2, s2.verifier)  # origin must match the key name


@pytest.mark.parametrize("text", ["o\n01\n" + "A" * 43 + "=\n", "o\n1\nnotbase64\n", "o\n1\n", "\n1\nAAAA\n",
                                  "o\n-1\n" + base64.b64encode(b"\0" * 32).decode() + "\n"])
def test_bad_checkpoint_text(text):
    with pytest.raises(BadInputError):
        parse_checkpoint_text(text)


def _bundle(n=5, i=3):
    s = Signer("example.org/log", Ed25519PrivateKey.generate())
    leaves = [f"entry {k}".encode() for k in range(n)]
    nodes = []
    cr = CompactRange()
    cr.extend([leaf_hash(x) for x in leaves], nodes)
    table = {(a, b): h for a, b, h in nodes}
    proof = rehash_plan(inclusion_plan(i, n), table)
    note = sign_checkpoint(Checkpoint("example.org/log", n, cr.root()), s)
    return s, leaves, ProofBundle(i, tuple(proof), note, extra=b"hello").to_bytes()


def test_proof_bundle_roundtrip_and_format():
    s, leaves, data = _bundle()
    text = data.decode()
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra aGVsbG8=\nindex 3\n")
    b = parse_proof_bundle(data)
    assert b.index == 3 and b.extra == b"hello"
    verify_proof_bundle(data, s.verifier, entry=leaves[3])
    with pytest.raises(ProofError):
        verify_proof_bundle(data, s.verifier, entry=leaves[2])


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
    lambda t: t.replace("index 3", "index 03"),
    lambda t: t.replace("index 3", "index x"),
    lambda t: t.replace("\n\n", "\n", 1),
])
def test_malformed_bundles_rejected(mangle):
    s, leaves, data = _bundle()
    with pytest.raises(BadInputError):
        verify_proof_bundle(mangle(data.decode()).encode(), s.verifier, entry=leaves[3])


def test_bundle_with_wrong_index_or_key_fails():
    s, leaves, data = _bundle()
    with pytest.raises(ProofError):
        verify_proof_bundle(data.decode().replace("index 3", "index 2").encode(), s.verifier, entry=leaves[3])
    other = Signer("example.org/log", Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError):
        verify_proof_bundle(data, other.verifier, entry=leaves[3])


def test_make_vkey_rejects_bad_names():
    with pytest.raises(BadInputError):
        make_vkey("has space", b"\0" * 32)


def test_signer_signs_as_openssl_does():
    """Signer signs through libsodium; Ed25519 is deterministic, so each signature is OpenSSL's byte for byte."""
    import os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ailedger.tlog.note import Signer

    for n in (0, 1, 100, 5000):
        key = Ed25519PrivateKey.generate()
        msg = os.urandom(n)
        assert Signer("example.org/log", key).sign(msg) == key.sign(msg)
