"""FHE inference (TenSEAL CKKS) on registered digits models: agreement, the record, every bad input."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from ailedger.errors import BadInputError, VerificationError
from ailedger.private import FheServer, decrypt, encrypt, registered_model
from ailedger.private.fhe import MAGIC, MAX_ENVELOPE_BYTES, PARAMS, infer_logged


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
def test_encrypted_class_is_the_plaintext_class(ledger, workdir, keys, digits_test, kind):
    Xte, _ = digits_test
    reg = registered_model(ledger, f"digits-{kind}", workdir / kind)
    server = FheServer(reg.model, keys.public)
    rng = np.random.default_rng(7)
    picks = rng.choice(len(Xte), 3, replace=False)
    plain = reg.model.logits(Xte[picks])
    for row, want in zip(picks, plain):
        got = decrypt(keys, server.evaluate(encrypt(keys, Xte[row])))
        assert got["class"] == int(want.argmax())
        assert np.abs(np.array(got["logits"]) - want).max() < 0.5


def _trail(ledger, name):
    from ailedger.inference import InferenceTrail

    return InferenceTrail(ledger, name, mode="durable", caller="fhe-test")


def test_record_names_the_model_and_commits_to_the_ciphertexts(ledger, workdir, keys, digits_test):
    from ailedger.inference import list_records

    Xte, _ = digits_test
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    query = encrypt(keys, Xte[0])
    with _trail(ledger, reg.name) as trail:
        res = infer_logged(trail, FheServer(reg.model, keys.public), query)
    recs = list_records(ledger, "digits-logreg", None, None, proofs=False)
    assert len(recs) == 1
    r = recs[0]["record"]
    assert r["model"] == "digits-logreg" and r["model_index"] == reg.index
    assert r["meta"]["in_sha256"] == hashlib.sha256(query).hexdigest() == res["in_sha256"]
    assert r["meta"]["out_sha256"] == hashlib.sha256(res["answer"]).hexdigest()
    assert r["meta"]["key"] == keys.id and r["meta"]["params"] == PARAMS
    assert decrypt(keys, res["answer"])["class"] == int(reg.model.predict(Xte[:1])[0])


def _forge(header: dict, ct: bytes) -> bytes:
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    return MAGIC + struct.pack(">I", len(h)) + h + ct


def _ct_of(envelope: bytes) -> bytes:
    (n,) = struct.unpack(">I", envelope[len(MAGIC):len(MAGIC) + 4])
    return envelope[len(MAGIC) + 4 + n:]


def _bad_queries(keys, other_keys, x):
    import tenseal as ts

    good = encrypt(keys, x)
    small = ts.context(ts.SCHEME_TYPE.CKKS, 4096, coeff_mod_bit_sizes=[40, 20, 40])
    small.global_scale = 2 ** 20
    small_ct = ts.ckks_vector(small, [*x.tolist(), 1.0]).serialize()
    hdr = {"v": 1, "kind": "query", "params": PARAMS, "key": keys.id, "size": 65}
    return {
        "other key": (encrypt(other_keys, x), "under another key"),
        "other params (header)": (_forge({**hdr, "params": "ckks-n4096-q40.20.40-s20"}, small_ct),
                                  "under other CKKS parameters"),
        "other params (ciphertext)": (_forge(hdr, small_ct), "does not fit this key's CKKS parameters"),
        "not an envelope": (b"hello" * 100, "not an ailedger FHE envelope"),
        "truncated": (good[: len(good) // 2], "malformed ciphertext"),
        "garbage ciphertext": (_forge(hdr, b"\x00" * 5000), "malformed ciphertext"),
        "bad header": (MAGIC + struct.pack(">I", 3) + b"{x}" + b"\x00" * 10, "header is not JSON"),
        "oversized": (good + b"\x00" * MAX_ENVELOPE_BYTES, "over the 1048576-byte limit"),
        "an answer sent as query": (_forge({**hdr, "kind": "answer"}, _ct_of(good)), "kind 'query'"),
    }


def test_bad_ciphertexts_are_refused_and_nothing_is_logged(ledger, workdir, keys, other_keys, digits_test):
    Xte, _ = digits_test
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    server = FheServer(reg.model, keys.public)
    from ailedger.inference import list_records

    with _trail(ledger, reg.name) as trail:  # (opening a trail registers its operator identity)
        size = ledger.size
        for what, (data, msg) in _bad_queries(keys, other_keys, Xte[1]).items():
            with pytest.raises(BadInputError) as ei:
                infer_logged(trail, server, data)
            assert msg in str(ei.value), what
    assert ledger.size == size  # nothing logged for any of them
    assert list_records(ledger, "digits-logreg", None, None, proofs=False) == []


def test_a_ciphertext_under_another_key_with_a_forged_key_id_fails_at_decryption(ledger, workdir, keys, other_keys,
                                                                                  digits_test):
    Xte, _ = digits_test
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    other = encrypt(other_keys, Xte[2])
    forged = _forge({"v": 1, "kind": "query", "params": PARAMS, "key": keys.id, "size": 65}, _ct_of(other))
    answer = FheServer(reg.model, keys.public).evaluate(forged)  # the server cannot tell: CKKS hides the key
    with pytest.raises(VerificationError, match="does not decrypt to logits under this key"):
        decrypt(keys, answer)


def test_the_server_refuses_a_secret_context_and_a_wrong_input(ledger, workdir, keys):
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    with pytest.raises(BadInputError, match="holding the secret key"):
        FheServer(reg.model, keys.secret)
    with pytest.raises(BadInputError, match="64 numbers"):
        encrypt(keys, [0.5] * 10)
    with pytest.raises(BadInputError, match=r"in \[0, 1\]"):
        encrypt(keys, [16.0] * 64)


def test_a_folder_that_is_not_the_registered_model_is_refused(ledger, workdir):
    from ailedger.errors import NotFoundError
    from ailedger.private.digits import save_model, train

    save_model(train("logreg", seed=1, epochs=1), workdir / "logreg")  # same name, same files
    (workdir / "logreg" / "weights.npz").write_bytes((workdir / "mlp" / "weights.npz").read_bytes())
    with pytest.raises(VerificationError, match="is not the registered model digits-logreg"):
        registered_model(ledger, "digits-logreg", workdir / "logreg")
    with pytest.raises(NotFoundError):
        registered_model(ledger, "no-such-model", workdir / "mlp")


def test_a_batch_of_digits_in_column_ciphertexts(ledger, workdir, keys, digits_test):
    from ailedger.private.fhe import decrypt_batch, encrypt_batch

    Xte, _ = digits_test
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    server = FheServer(reg.model, keys.public)
    X = Xte[100:160]
    q = encrypt_batch(keys, X)
    with _trail(ledger, reg.name) as trail:
        res = infer_logged(trail, server, q)
    logits = decrypt_batch(keys, res["answer"])
    assert logits.shape == (60, 10)
    assert (logits.argmax(axis=1) == reg.model.predict(X)).all()
    # malformed batches: a single query's envelope where a batch is expected, a cut batch, one column missing
    hdr = {"v": 1, "kind": "batch-query", "params": PARAMS, "key": keys.id, "size": 60}
    body = _ct_of(q)
    for data, msg in [(_forge(hdr, body[:-100]), "batch cut short"),
                      (_forge(hdr, struct.pack(">I", 63) + body[4:]), "holds 63 ciphertexts; expected 64"),
                      (_forge({**hdr, "size": 0}, body), "batch size out of range"),
                      (_forge({**hdr, "size": 59}, body), "do not all hold 59 digits")]:
        with pytest.raises(BadInputError, match=msg):
            server.evaluate_batch(data)
    with pytest.raises(BadInputError, match="1 to 4096 digits"):
        encrypt_batch(keys, [])
