"""C2SP tlog-cosignature/v1 (Ed25519) and witness policy checks."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ailedger.errors import BadInputError, SignatureError, VerificationError
from ailedger.tlog.checkpoint import Checkpoint, sign_checkpoint
from ailedger.tlog.cosignature import (
    WitnessPolicy,
    add_cosignatures,
    cosign,
    cosignature_message,
    evaluate_cosigned_checkpoint,
    verify_cosignature,
    verify_cosigned_checkpoint,
)
from ailedger.tlog.note import ALG_COSIGNATURE_V1, Signer, format_note, parse_note

ORIGIN = "example.org/test-log"


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(bytes([seed])).digest())


LOG = Signer(ORIGIN, _key(1))
W = [Signer(f"witness.example/w{i}", _key(10 + i), alg=ALG_COSIGNATURE_V1) for i in range(3)]
CP = Checkpoint(ORIGIN, 20852163, base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="))


def _signed() -> bytes:
    return sign_checkpoint(CP, LOG)


def test_message_layout_matches_spec():
    msg = cosignature_message(CP.text(), 1679315147)
    assert msg == (b"cosignature/v1\ntime 1679315147\nexample.org/test-log\n20852163\n"
                   b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")


def test_cosignature_bytes_are_timestamp_then_ed25519_signature():
    sig = cosign(CP.text(), W[0], 1679315147)
    # key id: SHA-256(name || "\n" || 0x04 || pubkey)[:4]
    assert sig.key_id == hashlib.sha256(W[0].name.encode() + b"\n\x04" + W[0].public_key).digest()[:4]
    assert len(sig.sig) == 72
    assert struct.unpack(">Q", sig.sig[:8])[0] == 1679315147
    # independent check with the raw Ed25519 primitive
    Ed25519PublicKey.from_public_bytes(W[0].public_key).verify(sig.sig[8:], cosignature_message(CP.text(), 1679315147))
    assert verify_cosignature(CP.text(), sig, W[0].verifier) == 1679315147


def test_tampered_or_wrong_key_or_future_cosignature_fails():
    sig = cosign(CP.text(), W[0], 1000)
    other = Checkpoint(ORIGIN, CP.size + 1, CP.root)
    with pytest.raises(SignatureError):
        verify_cosignature(other.text(), sig, W[0].verifier)
    with pytest.raises(SignatureError):
        verify_cosignature(CP.text(), sig, W[1].verifier)
    bad_ts = type(sig)(sig.name, sig.key_id, struct.pack(">Q", 1001) + sig.sig[8:])
    with pytest.raises(SignatureError):
        verify_cosignature(CP.text(), bad_ts, W[0].verifier)
    with pytest.raises(SignatureError, match="future"):
        verify_cosignature(CP.text(), sig, W[0].verifier, now=999)


def test_log_signer_cannot_cosign():
    with pytest.raises(BadInputError):
        cosign(CP.text(), LOG, 1)


def test_policy_two_of_three():
    note = _signed()
    note = add_cosignatures(note, [cosign(CP.text(), W[0], 5), cosign(CP.text(), W[2], 6)])
    vkeys = [w.vkey for w in W]
    res = verify_cosigned_checkpoint(note, LOG.vkey, vkeys, 2)
    assert res.ok and [n for n, _ in res.cosigners] == [W[0].name, W[2].name]
    assert res.to_dict()["cosigned_by"][1] == {"witness": W[2].name, "timestamp": 6}
    with pytest.raises(VerificationError) as ei:
        verify_cosigned_checkpoint(note, LOG.vkey, vkeys, 3)
    assert ei.value.expected == 3 and ei.value.found == 2
    # default threshold is all of them
    with pytest.raises(VerificationError):
        verify_cosigned_checkpoint(note, LOG.vkey, vkeys)


def test_cosignature_response_lines_append_and_dedupe():
    note = _signed()
    line = cosign(CP.text(), W[1], 7).line().encode()
    once = add_cosignatures(note, line)
    assert add_cosignatures(once, line) == once
    assert len(parse_note(once).signatures) == 2


def test_unknown_signatures_ignored_and_forged_witness_does_not_count():
    note = _signed()
    stranger = Signer("stranger.example", _key(99), alg=ALG_COSIGNATURE_V1)
    forged = cosign(CP.text(), stranger, 5)
    # a line claiming to be W[0] but signed with another key
    fake = type(forged)(W[0].name, W[0].key_id, forged.sig)
    note = add_cosignatures(note, [forged, fake, cosign(CP.text(), W[1], 5)])
    res = evaluate_cosigned_checkpoint(note, WitnessPolicy.from_vkeys(LOG.vkey, [w.vkey for w in W], 2))
    assert not res.ok and [n for n, _ in res.cosigners] == [W[1].name]
    assert any(n == W[0].name and "does not verify" in r for n, r in res.failures)


def test_bad_log_signature_fails_even_with_all_cosignatures():
    note = _signed()
    p = parse_note(note)
    evil = Signer(ORIGIN, _key(2))  # same name, other key: different key id, so it's an unknown key
    text2 = CP.text()
    forged = format_note(text2, [type(p.signatures[0])(LOG.name, LOG.key_id, evil.sign(text2.encode()))])
    forged = add_cosignatures(forged, [cosign(text2, w, 1) for w in W])
    with pytest.raises(SignatureError):
        verify_cosigned_checkpoint(forged, LOG.vkey, [w.vkey for w in W], 1)


def test_policy_input_errors():
    with pytest.raises(BadInputError):
        WitnessPolicy.from_vkeys(LOG.vkey, [LOG.vkey], 1)  # a 0x01 key is not a witness key
    with pytest.raises(BadInputError):
        WitnessPolicy.from_vkeys(LOG.vkey, [W[0].vkey, W[0].vkey], 1)
    with pytest.raises(BadInputError):
        WitnessPolicy.from_vkeys(LOG.vkey, [W[0].vkey], 2)
    with pytest.raises(BadInputError):
        WitnessPolicy.from_vkeys(W[0].vkey, [], 0)
