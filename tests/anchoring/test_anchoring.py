"""Anchoring on the in-process EVM (web3 EthereumTesterProvider with py-evm)."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from ailedger.anchoring.service import (
    AnchorService,
    anchor_evidence,
    check_anchored,
    embed_evidence,
    evidence_from_bundle,
    log_id,
    require_anchored,
)
from ailedger.errors import BadInputError, NotFoundError, VerificationError
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import parse_note

ORIGIN = "test.example/anchored-log"


def grow(ledger, n, tag="e"):
    s = ledger.size
    ledger.log.append_data([f"{tag}-{s + i}".encode() for i in range(n)])


@pytest.fixture(scope="module")
def w3():
    return Web3(EthereumTesterProvider())


@pytest.fixture
def account(w3):
    acct = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": acct.address, "value": 10**18})
    return acct


@pytest.fixture
def ledger(tmp_path):
    lg = Ledger.init(tmp_path / "ledger", origin=ORIGIN)
    grow(lg, 10)
    yield lg
    lg.close()


@pytest.fixture
def service(ledger, w3, account):
    svc = AnchorService(ledger, w3, account)
    svc.deploy()
    yield svc
    svc.close()


def test_contract_grows_only_and_emits_events(service, w3, account, ledger):
    chain = service.chain
    lid = log_id(ORIGIN)
    r1 = bytes(range(32))
    for size, ok in ((5, True), (5, False), (4, False), (6, True)):
        nonce = chain.nonce("pending")
        txh, raw = chain.build_anchor(lid, size, r1, nonce, gas=200_000)
        w3.eth.send_raw_transaction(raw)
        assert w3.eth.wait_for_transaction_receipt(txh)["status"] == (1 if ok else 0)
    assert chain.latest(account.address, lid)[:2] == (6, r1)
    evs = chain.events(lid)
    assert [e["tree_size"] for e in evs] == [5, 6]
    # heads are per submitter: another account's anchors do not block or overwrite ours
    assert chain.latest(w3.eth.accounts[0], lid)[0] == 0


def test_anchor_now_and_check(service, ledger, w3):
    rec = service.anchor_now(timeout=30, poll=0)
    assert rec.tree_size == 10 and rec.status == "confirmed" and rec.block_number > 0
    assert 30_000 < rec.gas_used < 80_000
    note = ledger.checkpoint()
    res = check_anchored(note, w3, service.chain.address, log_vkey=ledger.vkey)
    assert res["anchored"] and res["how"] == "direct" and res["tx_hash"] == rec.tx_hash
    assert res["block_number"] == rec.block_number and res["block_time"] == rec.block_time
    # nothing new to anchor: the same size is not queued again
    assert service.enqueue() is None


def test_later_anchor_covers_earlier_checkpoint_by_consistency(service, ledger, w3):
    early = ledger.checkpoint()
    grow(ledger, 7)
    service.anchor_now(timeout=30, poll=0)
    addr = service.chain.address
    res = check_anchored(early, w3, addr)
    assert not res["anchored"] and "consistency" in res["reason"]
    res = check_anchored(early, w3, addr, consistency_proof=ledger.log.consistency_proof)
    assert res["anchored"] and res["how"] == "consistency" and res["anchored_size"] == 17
    # the same through the sidecar evidence, as a third party would get it with a proof bundle
    ev = anchor_evidence(ledger, early)
    assert list(ev["consistency"]) == ["17"]
    res = check_anchored(early, w3, addr, evidence=ev)
    assert res["anchored"] and res["tx_hash"] == ev["tx_hash"]
    # embedded in a proof bundle's extra line (for a proof made against the early checkpoint)
    from ailedger.tlog.proofbundle import ProofBundle, parse_proof_bundle

    bundle = ProofBundle(2, tuple(ledger.log.inclusion_proof(2, 10)), early).to_bytes()
    emb = embed_evidence(bundle, anchor_evidence(ledger, bundle))
    assert parse_proof_bundle(emb).checkpoint == early
    assert evidence_from_bundle(emb) == ev and evidence_from_bundle(bundle) is None
    res = check_anchored(early, w3, addr, evidence=evidence_from_bundle(emb))
    assert res["anchored"] and res["how"] == "consistency"


def test_fork_shows_as_conflict(service, ledger, w3, tmp_path):
    import shutil

    shutil.copytree(ledger.path, tmp_path / "fork")
    fork = Ledger.open(tmp_path / "fork")
    (fork.path / "anchors.db").unlink()
    grow(ledger, 3, "honest")
    grow(fork, 3, "evil")
    service.anchor_now(timeout=30, poll=0)
    res = check_anchored(fork.checkpoint(), w3, service.chain.address)
    assert not res["anchored"] and "fork" in res["reason"] and res["conflict"][0]["tree_size"] == 13
    # the forked tree's earlier sizes are not provable against the honest anchor either
    res = check_anchored(parse_note(fork.checkpoint()).text, w3, service.chain.address,
                         consistency_proof=fork.log.consistency_proof)
    assert not res["anchored"]
    fork.close()


def test_queue_supersedes_older_checkpoints_and_survives_restart(ledger, w3, account, service):
    addr = service.chain.address
    service.enqueue()
    grow(ledger, 5)
    service.enqueue()
    service.close()
    svc2 = AnchorService(ledger, w3, account)  # contract address comes from anchors.db
    svc2.step()
    svc2.step()
    rows = svc2.queue.rows()
    assert [(r["tree_size"], r["status"]) for r in rows] == [(10, "superseded"), (15, "confirmed")]
    assert svc2.chain.address == addr
    assert [e["tree_size"] for e in svc2.chain.events(log_id(ORIGIN))] == [15]
    svc2.close()


def test_evidence_needs_a_confirmed_anchor(ledger):
    with pytest.raises(NotFoundError):
        anchor_evidence(ledger, ledger.checkpoint())


def test_require_anchored_gate_and_bad_inputs(service, ledger, w3, tmp_path):
    note = ledger.checkpoint()
    with pytest.raises(VerificationError):
        require_anchored(note, w3, service.chain.address)
    service.anchor_now(timeout=30, poll=0)
    assert require_anchored(note, w3, service.chain.address)["anchored"]
    with pytest.raises(BadInputError):
        check_anchored(note, w3, "0x1234")
    with pytest.raises(BadInputError):
        check_anchored(note, "ftp://x", service.chain.address)
    empty = Ledger.init(tmp_path / "empty", origin="test.example/empty")
    svc = AnchorService(empty, w3, service.account, service.chain.address)
    with pytest.raises(BadInputError):
        svc.anchor_now(timeout=1)
    svc.close()
    empty.close()


def test_gas_per_anchor_is_flat(service, ledger, w3):
    gas = []
    for n in (1, 100, 1000):
        grow(ledger, n)
        gas.append(service.anchor_now(timeout=30, poll=0).gas_used)
    assert max(gas[1:]) - min(gas[1:]) < 200  # the same gas whatever the number of records covered
    assert gas[1] < 45_000


def _anchor_directly(service, w3, size, root):
    c = service.chain
    txh, raw = c.build_anchor(log_id(ORIGIN), size, root, c.nonce("pending"), gas=200_000)
    w3.eth.send_raw_transaction(raw)
    assert w3.eth.wait_for_transaction_receipt(txh)["status"] == 1


def test_chain_head_from_our_key_is_checked_against_the_log(service, ledger, w3):
    # someone with our key anchored a root this log never had: flagged, not silently "superseded"
    _anchor_directly(service, w3, 10, b"\x01" * 32)
    service.enqueue()
    service.step()
    (row,) = service.queue.rows()
    assert row["status"] == "failed" and row["last_error"].startswith("CONFLICT: the chain holds a different root")


def test_larger_matching_head_supersedes(service, ledger, w3):
    note10 = ledger.checkpoint()
    grow(ledger, 5)
    _anchor_directly(service, w3, 15, ledger.log.root_at(15))  # e.g. sent by a previous install
    service.enqueue(note10)
    service.step()
    (row,) = service.queue.rows()
    assert row["status"] == "superseded"
    res = check_anchored(note10, w3, service.chain.address, consistency_proof=ledger.log.consistency_proof)
    assert res["anchored"] and res["anchored_size"] == 15
