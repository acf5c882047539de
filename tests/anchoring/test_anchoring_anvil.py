"""Anchoring failure handling on a real anvil node: unreachable RPC, dropped and reverted
transactions, a stolen nonce and a chain reorganisation. Anchors are never lost nor sent twice."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from eth_account import Account

from ailedger.anchoring.service import AnchorService, check_anchored, connect, log_id
from ailedger.errors import NetworkError
from ailedger.tlog.ledger import Ledger
from tests.devchain import ANVIL_KEYS, AnvilNode, find_anvil

pytestmark = pytest.mark.anvil

ORIGIN = "test.example/anvil-log"

try:
    find_anvil()
    HAVE_ANVIL = True
except Exception:  # noqa: BLE001
    HAVE_ANVIL = False


@pytest.fixture
def anvil():
    if not HAVE_ANVIL:
        pytest.skip("anvil binary missing: run `npm ci --prefix tools/anvil`")
    with AnvilNode() as node:
        yield node


class Proxy:
    """A loopback TCP forwarder that can be switched off, to cut the RPC connection for real."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.up = True
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if not self.up:
                c.close()
                continue
            u = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def set_up(self, up: bool) -> None:
        self.up = up
        if not up:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.conns = []

    def close(self) -> None:
        self.set_up(False)
        self.sock.close()


@pytest.fixture
def ledger(tmp_path):
    lg = Ledger.init(tmp_path / "ledger", origin=ORIGIN)
    lg.log.append_data([f"r{i}".encode() for i in range(8)])
    yield lg
    lg.close()


def make_service(ledger, url, **kw):
    return AnchorService(ledger, connect(url, timeout=3), Account.from_key(ANVIL_KEYS[1]), **kw)


def wait_mined(svc, timeout=15.0):
    """Wait until every pending transaction of a 'sent' anchor has a receipt. Anvil's automine mines
    a transaction in a task of its own after it answers the send, so on a loaded machine the receipt
    can lag the answer; the service rightly waits for it, and so must a test that expects it."""
    deadline = time.monotonic() + timeout
    pending = [t["tx_hash"] for r in svc.queue.rows("status = 'sent'")
               for t in svc.queue.txs(r["id"]) if t["state"] == "pending"]
    assert pending, "no transaction is waiting to be mined"
    while not all(svc.chain.receipt(h) is not None for h in pending):
        assert time.monotonic() < deadline, f"not mined within {timeout} s: {pending}"
        time.sleep(0.05)


def anchored_sizes(svc):
    return [e["tree_size"] for e in svc.chain.events(log_id(ORIGIN))]


def test_rpc_unreachable_then_resume_after_restart(anvil, ledger):
    proxy = Proxy(anvil.port)
    try:
        svc = make_service(ledger, proxy.url)
        svc.deploy()
        anvil.rpc("evm_setAutomine", [False])
        svc.enqueue()
        svc.step()  # signed, written ahead, broadcast; not mined yet
        assert [r["status"] for r in svc.queue.rows()] == ["sent"]
        proxy.set_up(False)
        with pytest.raises(NetworkError):
            svc.step()
        with pytest.raises(NetworkError):
            svc.anchor_now(timeout=0.5, poll=0.1)
        assert [r["status"] for r in svc.queue.rows()] == ["sent"]  # nothing lost, nothing re-sent
        svc.close()
        anvil.rpc("evm_mine")
        proxy.set_up(True)
        svc2 = make_service(ledger, proxy.url)  # a restarted service resumes from anchors.db
        svc2.step()
        rows = svc2.queue.rows()
        assert [r["status"] for r in rows] == ["confirmed"]
        assert anchored_sizes(svc2) == [8]
        assert len(svc2.queue.txs(rows[0]["id"])) == 1
        svc2.close()
    finally:
        proxy.close()


def test_dropped_transaction_is_rebroadcast_not_duplicated(anvil, ledger):
    svc = make_service(ledger, anvil.url)
    svc.deploy()
    anvil.rpc("evm_setAutomine", [False])
    svc.enqueue()
    svc.step()
    (row,) = svc.queue.rows()
    txh = row["tx_hash"]
    anvil.rpc("anvil_dropTransaction", [txh])
    assert not svc.chain.knows_tx(txh)
    svc.step()  # not mined, nonce unused, unknown to the node -> the same signed bytes again
    assert svc.chain.knows_tx(txh)
    anvil.rpc("evm_mine")
    svc.step()
    (row,) = svc.queue.rows()
    assert row["status"] == "confirmed" and row["tx_hash"] == txh
    assert [t["tx_hash"] for t in svc.queue.txs(row["id"])] == [txh]
    assert anchored_sizes(svc) == [8]
    svc.close()


def test_reverted_transaction_is_queued_again_with_a_new_nonce(anvil, ledger):
    svc = make_service(ledger, anvil.url, gas_limit=30_000)  # enough to be mined, too little to run
    svc.deploy()
    svc.enqueue()
    svc.step()  # sent; automine mines it, and it runs out of gas
    (row,) = svc.queue.rows()
    assert row["status"] == "sent"
    wait_mined(svc)
    svc.gas_limit = None
    svc.step()  # sees the failed receipt, queues the anchor again, signs a new tx (next nonce)
    (row,) = svc.queue.rows()
    assert row["attempts"] == 1 and "reverted" in row["last_error"]
    svc.step()
    (row,) = svc.queue.rows()
    txs = svc.queue.txs(row["id"])
    assert row["status"] == "confirmed" and [t["state"] for t in txs] == ["reverted", "mined"]
    assert txs[1]["nonce"] == txs[0]["nonce"] + 1
    assert anchored_sizes(svc) == [8]
    svc.close()


def test_nonce_taken_by_another_transaction(anvil, ledger):
    svc = make_service(ledger, anvil.url)
    svc.deploy()
    anvil.rpc("evm_setAutomine", [False])
    svc.enqueue()
    svc.step()
    (row,) = svc.queue.rows()
    anvil.rpc("anvil_dropTransaction", [row["tx_hash"]])
    # the same account spends that nonce elsewhere (e.g. another tool using the key)
    acct = svc.account
    w3 = svc.w3
    tx = {"to": acct.address, "value": 1, "nonce": svc.queue.txs(row["id"])[0]["nonce"], "gas": 21000,
          "chainId": w3.eth.chain_id, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    anvil.rpc("evm_mine")
    svc.step()  # nonce used, no receipt of ours -> queued again, then a fresh transaction
    anvil.rpc("evm_mine")
    svc.step()
    (row,) = svc.queue.rows()
    assert row["status"] == "confirmed" and row["attempts"] == 1
    assert [t["state"] for t in svc.queue.txs(row["id"])] == ["replaced", "mined"]
    assert anchored_sizes(svc) == [8]
    svc.close()


def test_reorganisation_before_confirmation(anvil, ledger):
    svc = make_service(ledger, anvil.url, confirmations=3)
    svc.deploy()
    snap = anvil.rpc("evm_snapshot")
    svc.enqueue()
    svc.step()  # sent; automine mines it
    wait_mined(svc)
    svc.step()  # seen mined, but 1 confirmation of 3
    (row,) = svc.queue.rows()
    assert row["status"] == "mined"
    mined_block = row["block_number"]
    anvil.rpc("evm_revert", [snap])  # the block holding the anchor is gone
    anvil.rpc("evm_mine")
    assert anchored_sizes(svc) == []
    svc.step()  # receipt gone -> back to 'sent'; the tx is re-broadcast and (automine) mined again
    wait_mined(svc)
    svc.step()
    (row,) = svc.queue.rows()
    assert row["status"] == "mined" and row["block_number"] != mined_block
    for _ in range(3):
        anvil.rpc("evm_mine")
    svc.step()
    (row,) = svc.queue.rows()
    assert row["status"] == "confirmed"
    assert anchored_sizes(svc) == [8]
    res = check_anchored(ledger.checkpoint(), anvil.url, svc.chain.address, log_vkey=ledger.vkey,
                         confirmations=3)
    assert res["anchored"] and res["block_number"] == row["block_number"] and res["confirmations"] >= 3
    svc.close()


def test_serve_anchors_every_m_entries(anvil, ledger):
    svc = make_service(ledger, anvil.url)
    svc.deploy()
    stop = threading.Event()
    t = threading.Thread(target=svc.serve, kwargs={"entries": 5, "poll": 0.05, "stop": stop}, daemon=True)
    t.start()
    import time

    deadline = time.monotonic() + 20
    while not svc.queue.receipts() and time.monotonic() < deadline:
        time.sleep(0.05)
    ledger.log.append_data([f"more{i}".encode() for i in range(3)])  # 3 < 5: no anchor yet
    time.sleep(0.5)
    assert [r.tree_size for r in svc.queue.receipts()] == [8]
    ledger.log.append_data([f"more{i}".encode() for i in range(3, 6)])  # now 6 new entries
    while len(svc.queue.receipts()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(5)
    assert [r.tree_size for r in svc.queue.receipts()] == [8, 14]
    svc.close()


def test_two_services_on_one_ledger_send_one_transaction(anvil, ledger):
    a = make_service(ledger, anvil.url)
    a.deploy()
    b = make_service(ledger, anvil.url)  # e.g. a second `ailedger anchor --every` started by mistake
    anvil.rpc("evm_setAutomine", [False])
    a.enqueue()
    barrier = threading.Barrier(2)
    errors = []

    def go(svc):
        barrier.wait()
        try:
            svc.step()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    ts = [threading.Thread(target=go, args=(s,)) for s in (a, b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert errors == []  # the queue lock serialises them: the second sees the first's tx in flight
    rows = a.queue.rows()
    assert len(rows) == 1 and len(a.queue.txs(rows[0]["id"])) == 1
    assert int(anvil.rpc("eth_getTransactionCount", [a.account.address, "pending"]), 16) == 2  # deploy + anchor
    anvil.rpc("evm_mine")
    b.step()
    assert [r["status"] for r in b.queue.rows()] == ["confirmed"]
    a.close()
    b.close()
