"""`verify` with a witness policy and an anchor check (the paths `ailedger verify` takes)."""

import pytest

from ailedger.errors import VerificationError
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import parse_vkey
from ailedger.tlog.verify import verify_file


@pytest.fixture
def ledger(tmp_path):
    lg = Ledger.init(tmp_path / "ledger", origin="test.example/policy-log")
    lg.log.append_data([f"e{i}".encode() for i in range(9)])
    yield lg
    lg.close()


def test_witness_policy(tmp_path, ledger):
    from ailedger.tlog.proofbundle import ProofBundle, parse_proof_bundle
    from ailedger.tlog.witness import Witness, collect_cosignatures
    from ailedger.tlog.witness_http import make_server

    ws = []
    for i in range(3):
        w = Witness.init(tmp_path / f"w{i}", name=f"witness.test/w{i}")
        w.add_log(ledger.vkey)
        srv = make_server(w)
        srv.start_background()
        ws.append((w, srv))
    try:
        urls = [srv.url for _, srv in ws[:2]]  # only two of the three cosign
        note = collect_cosignatures(ledger, urls, witness_vkeys=[w.vkey for w, _ in ws])
        b = parse_proof_bundle(ledger.prove(4))
        data = ProofBundle(4, b.proof, note).to_bytes()
        vkeys = [parse_vkey(w.vkey) for w, _ in ws]
        res = verify_file(data, ledger.verifier, entry=b"e4", witness_vkeys=vkeys, witness_threshold=2)
        assert len(res["witnesses"]["cosigned_by"]) == 2 and "2 of 3" in res["summary"]
        with pytest.raises(VerificationError):
            verify_file(data, ledger.verifier, entry=b"e4", witness_vkeys=vkeys, witness_threshold=3)
    finally:
        for w, srv in ws:
            srv.shutdown()
            srv.server_close()
            w.close()


def test_anchor_check(ledger):
    web3 = pytest.importorskip("web3")
    from eth_account import Account

    from ailedger.anchoring.service import AnchorService

    w3 = web3.Web3(web3.EthereumTesterProvider())
    acct = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": acct.address, "value": 10**18})
    svc = AnchorService(ledger, w3, acct)
    svc.deploy()
    try:
        data = ledger.prove(3)
        with pytest.raises(VerificationError):
            verify_file(data, ledger.verifier, entry=b"e3", rpc=w3, contract=svc.chain.address)
        svc.anchor_now()
        res = verify_file(data, ledger.verifier, entry=b"e3", rpc=w3, contract=svc.chain.address)
        assert res["anchor"]["anchored"] and "anchored on chain (block_number" in res["summary"]
    finally:
        svc.close()
