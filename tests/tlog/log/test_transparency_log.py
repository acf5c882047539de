import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.errors import BadInputError, NotFoundError
from ailedger.tlog.checkpoint import open_checkpoint
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion
from ailedger.tlog.note import Signer
from ailedger.tlog.proofbundle import verify_proof_bundle
from ailedger.tlog.stores import MemoryStore, SQLiteStore


@pytest.fixture(params=["sqlite", "memory"])
def log(request, tmp_path):
    store = SQLiteStore(tmp_path / "l.db", create=True) if request.param == "sqlite" else MemoryStore()
    yield TransparencyLog(store, "example.org/log", Signer("example.org/log", Ed25519PrivateKey.generate()))
    store.close()


def data(i):
    return f"record {i}".encode()


def test_append_batches_give_rfc6962_roots_and_proofs(log):
    all_data = [data(i) for i in range(300)]
    for a in range(0, 300, 37):
        log.append_data(all_data[a : a + 37])
    assert log.size == 300
    hashes = [leaf_hash(d) for d in all_data]
    for n in (1, 2, 7, 64, 255, 256, 300):
        assert log.root_at(n) == root_from_leaf_hashes(hashes[:n])
    for i in (0, 1, 100, 255, 299):
        verify_inclusion(i, 300, hashes[i], log.inclusion_proof(i, 300), log.root_at(300))
    for m in (1, 5, 128, 299):
        verify_consistency(m, 300, log.root_at(m), log.root_at(300), log.consistency_proof(m, 300))


def test_dedup_returns_first_index(log):
    r1 = log.append_data([data(1), data(2)])
    r2 = log.append_data([data(3), data(1), data(3)])
    assert [r.index for r in r1] == [0, 1]
    assert [(r.index, r.duplicate) for r in r2] == [(2, False), (0, True), (2, True)]
    assert log.size == 3


def test_checkpoint_and_bundle(log):
    log.append_data([data(i) for i in range(10)])
    note = log.checkpoint()
    cp = open_checkpoint(note, log.verifier)
    assert cp.size == 10
    bundle = log.prove(4)
    verify_proof_bundle(bundle, log.verifier, entry=data(4))
    with pytest.raises(NotFoundError):
        log.prove(10)
    with pytest.raises(BadInputError):
        log.inclusion_proof(1, 11)


def test_audit_clean_then_detects_tampering(tmp_path):
    store = SQLiteStore(tmp_path / "l.db", create=True)
    log = TransparencyLog(store, "example.org/log", Signer("example.org/log", Ed25519PrivateKey.generate()))
    log.append_data([data(i) for i in range(100)])
    log.checkpoint()
    assert log.audit().ok
    con = store._con
    con.execute("UPDATE leaves SET data = ? WHERE idx = 41", (b"record X",))
    rep = log.audit()
    assert not rep.ok
    p = rep.problems[0]
    assert p.kind == "leaf_hash" and p.index == 41 and p.expected == leaf_hash(b"record X").hex()
