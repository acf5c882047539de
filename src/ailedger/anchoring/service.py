"""Anchoring checkpoints on Ethereum (the ``CheckpointAnchor`` contract in ``contracts/``).

What goes on chain: per (submitter, log id = SHA-256(origin)), the latest tree size and root; the
contract refuses a size that does not grow and emits ``Anchored(logId, submitter, treeSize, root,
timestamp)`` per anchor.  One anchor costs the same gas whatever the number of records it covers.

The anchoring service is a persisted queue in ``<ledger>/anchors.db`` (its own SQLite file; the
log's tables are never touched):

* ``anchors``: one row per checkpoint to anchor, ``queued -> sent -> mined -> confirmed`` (or
  ``superseded`` when a newer checkpoint, whose anchor covers it by consistency, went instead);
* ``txs``: every signed transaction, written *before* it is broadcast (write-ahead), with its
  nonce and raw bytes.

One transaction is in flight at a time.  Each :meth:`AnchorService.step` looks at the chain and
moves rows along, so a restart simply resumes:

* RPC unreachable -> :class:`NetworkError`; nothing changes, the next step retries;
* transaction dropped from the mempool (nonce not used) -> the *same* signed bytes are
  re-broadcast (same nonce, same hash: it can never be mined twice);
* transaction reverted, or its nonce consumed by another transaction -> the checkpoint is
  queued again with a fresh nonce (unless the chain already holds an anchor at least as large);
* chain reorganisation: a mined anchor counts only after ``confirmations`` blocks; if its receipt
  disappears or moves, it goes back to ``sent`` and is re-broadcast or re-tracked.

Verifiers: :func:`check_anchored` checks, against an RPC endpoint, that a checkpoint (or a later
one, with a consistency proof) is anchored, and reports the block and its time.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import parse_json
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    NetworkError,
    NotFoundError,
    ProofError,
    VerificationError,
)
from ailedger.tlog.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_text, parse_u64
from ailedger.tlog.merkle import verify_consistency
from ailedger.tlog.note import parse_note, parse_vkey
from ailedger.tlog.proofbundle import ProofBundle, parse_proof_bundle

__all__ = [
    "ARTIFACT_ENV",
    "AnchorChain",
    "AnchorQueue",
    "AnchorReceipt",
    "AnchorService",
    "anchor_evidence",
    "check_anchored",
    "connect",
    "embed_evidence",
    "evidence_from_bundle",
    "load_artifact",
    "load_key",
    "log_id",
    "require_anchored",
    "sidecar_path",
]

ARTIFACT_ENV = "AILEDGER_ANCHOR_ARTIFACT"
ARTIFACT = Path(__file__).resolve().with_name("contracts") / "CheckpointAnchor.json"  # package data
DB_FILE = "anchors.db"
DEFAULT_CONFIRMATIONS = 1
MAX_REBROADCASTS = 3
IN_FLIGHT_POLL = 0.2
GWEI = 10**9


# ----------------------------------------------------------------------------- contract & chain


def load_artifact() -> dict[str, Any]:
    """The compiled CheckpointAnchor artifact: $AILEDGER_ANCHOR_ARTIFACT if set, else the one shipped in the
    package (``ailedger/anchoring/contracts/``, written by scripts/compile-contracts.sh)."""
    env = os.environ.get(ARTIFACT_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(ARTIFACT)
    for c in candidates:
        if c.is_file():
            data: dict[str, Any] = json.loads(c.read_text())
            return data
    raise NotFoundError(f"contract artifact not found (looked at {', '.join(map(str, candidates))}); "
                        f"set {ARTIFACT_ENV}", field="artifact")


def log_id(origin: str) -> bytes:
    """The contract's log id: SHA-256 of the checkpoint origin line (without its newline)."""
    return hashlib.sha256(origin.encode()).digest()


def _web3_errors() -> tuple[type[BaseException], ...]:
    import requests

    return (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)


def connect(rpc: Any, timeout: float = 10.0) -> Any:
    """A Web3 for an RPC URL (http/https), or pass a Web3 / provider object through."""
    from web3 import Web3

    if isinstance(rpc, Web3):
        return rpc
    if isinstance(rpc, str):
        if not rpc.startswith(("http://", "https://")):
            raise BadInputError("RPC URL must be http:// or https://", field="rpc", found=rpc)
        return Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": timeout}))
    return Web3(rpc)


def load_key(key: str) -> Any:
    """An Ethereum account from a hex private key, a file holding one, or ``env:VAR``."""
    from eth_account import Account

    if key.startswith("env:"):
        val = os.environ.get(key[4:])
        if not val:
            raise BadInputError(f"environment variable {key[4:]} is not set", field="key")
        key = val
    elif os.path.isfile(key):
        key = Path(key).read_text().strip()
    try:
        return Account.from_key(key.strip())
    except Exception:  # noqa: BLE001 - eth_account raises assorted ValueErrors/binascii errors
        raise BadInputError("key must be a 32-byte hex private key, a file holding one, or env:VAR",
                            field="key") from None


class AnchorChain:
    """The contract on one chain, used by one account (or read-only when ``account`` is None)."""

    def __init__(self, w3: Any, address: str | None, account: Any = None) -> None:
        self.w3 = w3
        self.account = account
        art = load_artifact()
        self.abi = art["abi"]
        self.bytecode = art["bytecode"]
        try:
            self.address = w3.to_checksum_address(address) if address else None
        except ValueError:
            raise BadInputError(f"{address!r} is not an Ethereum address", field="contract") from None
        self.contract = w3.eth.contract(address=self.address, abi=self.abi) if self.address else None
        self._chain_id: int | None = None

    def _rpc(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return fn()
        except _web3_errors() as exc:
            raise NetworkError(f"RPC unreachable while {what}: {type(exc).__name__}") from None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._rpc(lambda: self.w3.eth.chain_id, "reading the chain id"))
        return self._chain_id

    def block_number(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.block_number, "reading the block number"))

    def block(self, ident: Any) -> Any:
        return self._rpc(lambda: self.w3.eth.get_block(ident), "reading a block")

    def nonce(self, which: str = "latest") -> int:
        return int(self._rpc(lambda: self.w3.eth.get_transaction_count(self.account.address, which),
                             "reading the account nonce"))

    def latest(self, submitter: str, lid: bytes) -> tuple[int, bytes, int]:
        contract = self.contract
        assert contract is not None
        size, root, at = self._rpc(
            lambda: contract.functions.latest(self.w3.to_checksum_address(submitter), lid).call(),
            "reading the anchored head")
        return int(size), bytes(root), int(at)

    def receipt(self, tx_hash: str) -> Any | None:
        from web3.exceptions import TransactionNotFound

        try:
            return self._rpc(lambda: self.w3.eth.get_transaction_receipt(tx_hash), "reading a receipt")
        except TransactionNotFound:
            return None

    def knows_tx(self, tx_hash: str) -> bool:
        from web3.exceptions import TransactionNotFound

        try:
            self._rpc(lambda: self.w3.eth.get_transaction(tx_hash), "looking up a transaction")
            return True
        except TransactionNotFound:
            return False

    def send_raw(self, raw: bytes) -> None:
        self._rpc(lambda: self.w3.eth.send_raw_transaction(raw), "broadcasting a transaction")

    def fees(self) -> dict[str, int]:
        blk = self.block("latest")
        base = int(blk.get("baseFeePerGas") or 0)
        try:
            tip = int(self._rpc(lambda: self.w3.eth.max_priority_fee, "reading the priority fee"))
        except NetworkError:
            raise
        except Exception:  # noqa: BLE001 - node without eth_maxPriorityFeePerGas
            tip = GWEI
        tip = max(tip, 1)
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def deploy(self) -> tuple[str, Any]:
        """Deploy the contract from ``account``; return (address, receipt)."""
        c = self.w3.eth.contract(abi=self.abi, bytecode=self.bytecode)
        tx = c.constructor().build_transaction({
            "from": self.account.address, "nonce": self.nonce("pending"), "chainId": self.chain_id, **self.fees()})
        tx["gas"] = int(self._rpc(lambda: self.w3.eth.estimate_gas(tx), "estimating gas") * 1.2)
        signed = self.account.sign_transaction(tx)
        h = self._rpc(lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction), "deploying")
        rcpt = self._rpc(lambda: self.w3.eth.wait_for_transaction_receipt(h, timeout=120), "deploying")
        if rcpt["status"] != 1:
            raise AiledgerError("contract deployment reverted", tx_hash=h.hex())
        addr = rcpt["contractAddress"]
        self.address = addr
        self.contract = self.w3.eth.contract(address=addr, abi=self.abi)
        return addr, rcpt

    def build_anchor(self, lid: bytes, size: int, root: bytes, nonce: int, gas: int | None = None) -> tuple[str, bytes]:
        """Sign (not send) an anchor transaction; return (tx hash hex, raw bytes)."""
        assert self.contract is not None and self.account is not None
        fn = self.contract.functions.anchor(lid, size, root)
        tx = fn.build_transaction({"from": self.account.address, "nonce": nonce, "chainId": self.chain_id,
                                   "gas": 1, **self.fees()})
        if gas is None:
            est = self._rpc(lambda: self.w3.eth.estimate_gas({k: tx[k] for k in ("from", "to", "data")}),
                            "estimating gas")
            gas = int(est * 1.25) + 5000
        tx["gas"] = gas
        signed = self.account.sign_transaction(tx)
        return "0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction)

    def events(self, lid: bytes, submitter: str | None = None, from_block: int = 0) -> list[dict[str, Any]]:
        """All Anchored events of log ``lid`` (optionally by one submitter), oldest first."""
        assert self.contract is not None
        ev = self.contract.events.Anchored()
        topic0 = "0x" + bytes(self.w3.keccak(text="Anchored(bytes32,address,uint64,bytes32,uint64)")).hex()
        topics: list[Any] = [topic0, "0x" + lid.hex()]
        if submitter:
            topics.append("0x" + bytes(12).hex() + submitter.lower().removeprefix("0x"))
        logs = self._rpc(lambda: self.w3.eth.get_logs({"address": self.address, "fromBlock": from_block,
                                                       "toBlock": "latest", "topics": topics}), "reading events")
        return [_event_dict(ev.process_log(lg)) for lg in logs]

    def events_in_receipt(self, rcpt: Any) -> list[dict[str, Any]]:
        assert self.contract is not None
        out = []
        for lg in rcpt["logs"]:
            if self.address and lg["address"].lower() == self.address.lower():
                try:
                    out.append(_event_dict(self.contract.events.Anchored().process_log(lg)))
                except Exception:  # noqa: BLE001, S112 - other events (none today) are skipped
                    continue
        return out


def _hex(x: Any) -> str:
    if isinstance(x, str):
        return x if x.startswith("0x") else "0x" + x
    return "0x" + bytes(x).hex()


def _event_dict(e: Any) -> dict[str, Any]:
    a = e["args"]
    return {
        "log_id": _hex(a["logId"]),
        "submitter": a["submitter"],
        "tree_size": int(a["treeSize"]),
        "root": bytes(a["root"]),
        "timestamp": int(a["timestamp"]),
        "tx_hash": _hex(e["transactionHash"]),
        "block_number": int(e["blockNumber"]),
        "block_hash": _hex(e["blockHash"]),
    }


def _iso(ts: int) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- the persisted queue


@dataclass(frozen=True)
class AnchorReceipt:
    """Where and when a checkpoint was anchored."""

    chain_id: int
    contract: str
    submitter: str
    origin: str
    tree_size: int
    root: bytes
    tx_hash: str
    block_number: int
    block_hash: str
    block_time: int
    gas_used: int
    status: str
    checkpoint: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id, "contract": self.contract, "submitter": self.submitter,
            "origin": self.origin, "log_id": "0x" + log_id(self.origin).hex(), "tree_size": self.tree_size,
            "root": base64.b64encode(self.root).decode(), "tx_hash": self.tx_hash,
            "block_number": self.block_number, "block_hash": self.block_hash, "block_time": self.block_time,
            "block_time_iso": _iso(self.block_time) if self.block_time else None, "gas_used": self.gas_used,
            "status": self.status, "checkpoint": self.checkpoint.decode(),
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS anchors (
  id INTEGER PRIMARY KEY, chain_id INTEGER NOT NULL, contract TEXT NOT NULL, submitter TEXT NOT NULL,
  origin TEXT NOT NULL, tree_size INTEGER NOT NULL, root BLOB NOT NULL, checkpoint BLOB NOT NULL,
  status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL,
  last_error TEXT, tx_hash TEXT, block_number INTEGER, block_hash TEXT, block_time INTEGER, gas_used INTEGER,
  confirmed_at REAL, superseded_by INTEGER);
CREATE INDEX IF NOT EXISTS anchors_status ON anchors (status);
CREATE TABLE IF NOT EXISTS txs (
  tx_hash TEXT PRIMARY KEY, anchor_id INTEGER NOT NULL, chain_id INTEGER NOT NULL, sender TEXT NOT NULL,
  nonce INTEGER NOT NULL, raw BLOB NOT NULL, state TEXT NOT NULL, sent_at REAL NOT NULL, note TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLS = ("id, chain_id, contract, submitter, origin, tree_size, root, checkpoint, status, attempts, created_at, "
         "updated_at, last_error, tx_hash, block_number, block_hash, block_time, gas_used, confirmed_at")


class AnchorQueue:
    """The persisted anchor queue of one ledger (``<ledger>/anchors.db``)."""

    def __init__(self, ledger_path: str | os.PathLike[str]) -> None:
        self.path = Path(ledger_path) / DB_FILE
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        self.lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def rows(self, where: str = "1", args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(f"SELECT {_COLS} FROM anchors WHERE {where} ORDER BY id", tuple(args))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def txs(self, anchor_id: int) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT tx_hash, nonce, raw, state, sent_at, note FROM txs WHERE anchor_id = ?"
                              " ORDER BY sent_at", (anchor_id,))
        return [dict(zip(("tx_hash", "nonce", "raw", "state", "sent_at", "note"), r)) for r in cur.fetchall()]

    def update(self, anchor_id: int, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE anchors SET {sets} WHERE id = ?", (*fields.values(), anchor_id))

    def receipts(self, chain_id: int | None = None, contract: str | None = None,
                 statuses: Sequence[str] = ("confirmed",)) -> list[AnchorReceipt]:
        where = "status IN ({})".format(",".join("?" * len(statuses)))
        args: list[Any] = list(statuses)
        if chain_id is not None:
            where += " AND chain_id = ?"
            args.append(chain_id)
        if contract is not None:
            where += " AND lower(contract) = lower(?)"
            args.append(contract)
        return [_receipt(r) for r in self.rows(where, args)]


def anchored_head(ledger_path: str | os.PathLike[str]) -> tuple[int, float] | None:
    """(tree size, confirmed_at) of the largest confirmed anchor of the ledger, read-only (metrics); None when
    nothing was anchored (or there is no queue)."""
    p = Path(ledger_path) / DB_FILE
    if not p.exists():
        return None
    db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT tree_size, confirmed_at FROM anchors WHERE status = 'confirmed' "
                         "ORDER BY tree_size DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return (int(row[0]), float(row[1] or 0.0)) if row else None


def _receipt(r: dict[str, Any]) -> AnchorReceipt:
    return AnchorReceipt(r["chain_id"], r["contract"], r["submitter"], r["origin"], r["tree_size"], bytes(r["root"]),
                         r["tx_hash"] or "", r["block_number"] or 0, r["block_hash"] or "", r["block_time"] or 0,
                         r["gas_used"] or 0, r["status"], bytes(r["checkpoint"]))


# ----------------------------------------------------------------------------- the service


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock across processes: two services on one ledger never work the queue at once
    (which could send two transactions for one anchor)."""
    import fcntl

    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class AnchorService:
    """Anchors a ledger's checkpoints through one account; see the module docstring."""

    def __init__(self, ledger: Any, w3: Any, account: Any, contract: str | None = None, *,
                 confirmations: int = DEFAULT_CONFIRMATIONS, gas_limit: int | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        if confirmations < 1:
            raise BadInputError("confirmations must be at least 1", field="confirmations")
        self.ledger = ledger
        self.queue = AnchorQueue(ledger.path)
        self.w3 = w3
        self.account = account
        self.confirmations = confirmations
        self.gas_limit = gas_limit
        self.log = log or (lambda _m: None)
        self.chain = AnchorChain(w3, None, account)
        self._contract_arg = contract

    def close(self) -> None:
        self.queue.close()

    # -- setup
    def contract_address(self) -> str:
        if self.chain.address:
            return self.chain.address
        addr = self._contract_arg or self.queue.get_meta(f"contract:{self.chain.chain_id}")
        if not addr:
            raise NotFoundError("no anchor contract for this chain: pass --contract ADDR or run "
                                "`ailedger anchor deploy` first", field="contract")
        self.chain = AnchorChain(self.w3, addr, self.account)
        return self.chain.address  # type: ignore[return-value]

    def deploy(self) -> str:
        addr, _ = self.chain.deploy()
        self.queue.set_meta(f"contract:{self.chain.chain_id}", addr)
        self._contract_arg = addr
        return addr

    # -- queueing
    def enqueue(self, note: bytes | None = None) -> dict[str, Any] | None:
        """Queue a checkpoint (default: the ledger's current one). Returns the row, or None if an
        anchor of at least that size is already queued or done."""
        addr = self.contract_address()
        note = note if note is not None else self.ledger.checkpoint()
        cp = open_checkpoint(note, self.ledger.verifier) if hasattr(self.ledger, "verifier") else \
            parse_checkpoint_text(parse_note(note).text)
        if cp.size == 0:
            return None
        with self.queue.lock:
            have = self.queue.db.execute(
                "SELECT max(tree_size) FROM anchors WHERE chain_id = ? AND lower(contract) = lower(?)"
                " AND status != 'failed'", (self.chain.chain_id, addr)).fetchone()[0]
            if have is not None and have >= cp.size:
                return None
            now = time.time()
            cur = self.queue.db.execute(
                "INSERT INTO anchors (chain_id, contract, submitter, origin, tree_size, root, checkpoint, status,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (self.chain.chain_id, addr, self.account.address, cp.origin, cp.size, cp.root, note, now, now))
            return self.queue.rows("id = ?", (cur.lastrowid,))[0]

    def pending(self) -> list[dict[str, Any]]:
        return self.queue.rows("status IN ('queued', 'sent', 'mined') AND chain_id = ?", (self.chain.chain_id,))

    # -- the state machine
    def step(self) -> None:
        """Look at the chain once and move every unfinished anchor along. Raises NetworkError if the
        RPC endpoint is unreachable (nothing is changed then)."""
        self.contract_address()
        with self.queue.lock, _file_lock(self.queue.path.with_suffix(".lock")):
            head = self.chain.block_number()
            for a in self.queue.rows("status = 'mined' AND chain_id = ?", (self.chain.chain_id,)):
                self._track_mined(a, head)
            for a in self.queue.rows("status = 'sent' AND chain_id = ?", (self.chain.chain_id,)):
                self._track_sent(a)
            if not self.queue.rows("status = 'sent' AND chain_id = ?", (self.chain.chain_id,)):
                self._send_next()

    def _track_mined(self, a: dict[str, Any], head: int) -> None:
        rcpt = self.chain.receipt(a["tx_hash"])
        if rcpt is None or rcpt["status"] != 1:
            self.log(f"anchor of size {a['tree_size']}: receipt gone (chain reorganisation); tracking again")
            self.queue.db.execute("UPDATE txs SET state = 'pending' WHERE tx_hash = ?", (a["tx_hash"],))
            self.queue.update(a["id"], status="sent", block_number=None, block_hash=None, block_time=None,
                              last_error="reorganised out of block {}".format(a["block_number"]))
            return
        bn, bh = int(rcpt["blockNumber"]), _hex(rcpt["blockHash"])
        if bn != a["block_number"] or bh != a["block_hash"]:
            blk = self.chain.block(bn)
            self.queue.update(a["id"], block_number=bn, block_hash=bh, block_time=int(blk["timestamp"]),
                              last_error=f"re-mined in block {bn} after a reorganisation")
        if head - bn + 1 >= self.confirmations:
            self.queue.update(a["id"], status="confirmed", confirmed_at=time.time())
            self.log(f"anchor of size {a['tree_size']} confirmed in block {bn} ({a['tx_hash']})")

    def _track_sent(self, a: dict[str, Any]) -> None:
        txs = [t for t in self.queue.txs(a["id"]) if t["state"] == "pending"]
        for t in txs:
            rcpt = self.chain.receipt(t["tx_hash"])
            if rcpt is None:
                continue
            bn = int(rcpt["blockNumber"])
            if rcpt["status"] == 1:
                blk = self.chain.block(bn)
                self.queue.db.execute("UPDATE txs SET state = 'mined' WHERE tx_hash = ?", (t["tx_hash"],))
                self.queue.update(a["id"], status="mined", tx_hash=t["tx_hash"], block_number=bn,
                                  block_hash=_hex(rcpt["blockHash"]), block_time=int(blk["timestamp"]),
                                  gas_used=int(rcpt["gasUsed"]))
                self._track_mined(self.queue.rows("id = ?", (a["id"],))[0], self.chain.block_number())
                return
            self.queue.db.execute("UPDATE txs SET state = 'reverted' WHERE tx_hash = ?", (t["tx_hash"],))
            size, _, _ = self.chain.latest(a["submitter"], log_id(a["origin"]))
            if size >= a["tree_size"]:
                self.queue.update(a["id"], status="superseded", last_error=f"reverted in block {bn}: "
                                  f"the chain already holds an anchor of size {size}")
            else:
                self.queue.update(a["id"], status="queued", attempts=a["attempts"] + 1,
                                  last_error=f"transaction {t['tx_hash']} reverted in block {bn}; queued again")
            self.log(f"anchor of size {a['tree_size']}: transaction reverted in block {bn}")
            return
        if not txs:  # sent but no pending tx (should not happen): queue again
            self.queue.update(a["id"], status="queued", last_error="no pending transaction")
            return
        t = txs[-1]
        mined_nonce = self.chain.nonce("latest")
        if mined_nonce > t["nonce"] and any(self.chain.receipt(x["tx_hash"]) is not None for x in txs):
            return  # mined between the two reads: the next step records it
        if mined_nonce > t["nonce"]:
            # the nonce is used, and none of our transactions has a receipt: another transaction
            # from this account took it. Ours can never be mined now, so a fresh one is safe.
            for x in txs:
                self.queue.db.execute("UPDATE txs SET state = 'replaced' WHERE tx_hash = ?", (x["tx_hash"],))
            self.queue.update(a["id"], status="queued", attempts=a["attempts"] + 1,
                              last_error=f"nonce {t['nonce']} was used by another transaction; queued again")
            self.log(f"anchor of size {a['tree_size']}: nonce {t['nonce']} taken by another transaction")
            return
        if not self.chain.knows_tx(t["tx_hash"]):
            tries = int(t["note"] or 0)
            if tries >= MAX_REBROADCASTS:
                # the node keeps discarding it (e.g. fees or gas no longer acceptable): sign a new one.
                # Its nonce will be this same unused nonce, so at most one of the two can ever be mined.
                self.queue.db.execute("UPDATE txs SET state = 'abandoned' WHERE tx_hash = ?", (t["tx_hash"],))
                self.queue.update(a["id"], status="queued", attempts=a["attempts"] + 1,
                                  last_error=f"transaction {t['tx_hash']} discarded {tries} times; re-signed")
                return
            self.log(f"anchor of size {a['tree_size']}: transaction {t['tx_hash']} dropped; re-broadcasting it")
            self.queue.db.execute("UPDATE txs SET note = ? WHERE tx_hash = ?", (str(tries + 1), t["tx_hash"]))
            self._broadcast(a, t["tx_hash"], bytes(t["raw"]))

    def _send_next(self) -> None:
        queued = self.queue.rows("status = 'queued' AND chain_id = ? AND lower(contract) = lower(?)",
                                 (self.chain.chain_id, self.chain.address))
        if not queued:
            return
        newest = max(queued, key=lambda r: r["tree_size"])
        for r in queued:
            if r["id"] != newest["id"]:
                self.queue.update(r["id"], status="superseded", superseded_by=newest["id"])
        lid = log_id(newest["origin"])
        size, root, _ = self.chain.latest(self.account.address, lid)
        if size >= newest["tree_size"]:
            if size == newest["tree_size"] and root == bytes(newest["root"]):
                ev = [e for e in self.chain.events(lid, self.account.address) if e["tree_size"] == size]
                if ev:
                    blk = self.chain.block(ev[-1]["block_number"])
                    rcpt = self.chain.receipt(ev[-1]["tx_hash"])
                    self.queue.update(newest["id"], status="mined", tx_hash=ev[-1]["tx_hash"],
                                      block_number=ev[-1]["block_number"], block_hash=ev[-1]["block_hash"],
                                      block_time=int(blk["timestamp"]),
                                      gas_used=int(rcpt["gasUsed"]) if rcpt else 0,
                                      last_error="found already anchored on chain")
                    return
            problem = self._conflict_with_log(size, root)
            if problem:
                self.log(f"CONFLICT: {problem}")
                self.queue.update(newest["id"], status="failed", last_error=f"CONFLICT: {problem}")
                return
            self.queue.update(newest["id"], status="superseded",
                              last_error=f"the chain already holds an anchor of size {size}")
            return
        nonce = self.chain.nonce("pending")
        txh, raw = self.chain.build_anchor(lid, newest["tree_size"], bytes(newest["root"]), nonce, self.gas_limit)
        # write-ahead: the signed transaction is on disk before it can reach the network
        self.queue.db.execute("BEGIN IMMEDIATE")
        self.queue.db.execute(
            "INSERT INTO txs (tx_hash, anchor_id, chain_id, sender, nonce, raw, state, sent_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            (txh, newest["id"], self.chain.chain_id, self.account.address, nonce, raw, time.time()))
        self.queue.db.execute("UPDATE anchors SET status = 'sent', tx_hash = ?, updated_at = ? WHERE id = ?",
                              (txh, time.time(), newest["id"]))
        self.queue.db.execute("COMMIT")
        self.log(f"anchoring size {newest['tree_size']} with nonce {nonce}: {txh}")
        self._broadcast(newest, txh, raw)

    def _conflict_with_log(self, size: int, root: bytes) -> str:
        """Why an on-chain head (sent with our key) does not match our log, or "" if it does."""
        try:
            mine = self.ledger.log.root_at(size)
        except AiledgerError:
            return f"the chain holds an anchor of size {size} from this key, beyond this log's size {self.ledger.size}"
        except AttributeError:  # a ledger-like object without a log: cannot check
            return ""
        if mine != root:
            return (f"the chain holds a different root for size {size} from this key "
                    f"({base64.b64encode(root).decode()} vs the log's {base64.b64encode(mine).decode()})")
        return ""

    def _broadcast(self, a: dict[str, Any], txh: str, raw: bytes) -> None:
        try:
            self.chain.send_raw(raw)
        except NetworkError:
            raise
        except Exception as exc:  # noqa: BLE001 - the node refused it (e.g. already known, nonce too low)
            msg = str(exc)
            if "already known" in msg.lower() or "known transaction" in msg.lower():
                return
            self.log(f"broadcast of {txh} refused: {msg[:200]}")
            self.queue.update(a["id"], last_error=f"broadcast refused: {msg[:300]}")

    # -- driving it
    def anchor_now(self, timeout: float = 120.0, poll: float = 0.5) -> AnchorReceipt:
        """Queue the current checkpoint and step until it (or a newer one) is confirmed."""
        if self.ledger.size == 0:
            raise BadInputError("nothing to anchor: the log is empty")
        row = self.enqueue()
        target = row["tree_size"] if row else self.ledger.size
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.step()
            except NetworkError as exc:
                if time.monotonic() > deadline:
                    raise
                self.log(f"{exc.message}; retrying")
            done = self.queue.rows("status = 'confirmed' AND chain_id = ? AND tree_size >= ? ",
                                   (self.chain.chain_id, target))
            if done:
                return _receipt(done[0])
            if time.monotonic() > deadline:
                raise NetworkError(f"anchor of size {target} not confirmed within {timeout:.0f} s; it stays queued "
                                   "and the next run resumes it")
            time.sleep(poll)

    def serve(self, every: float | None = None, entries: int | None = None, *, poll: float = 1.0,
              stop: threading.Event | None = None, max_seconds: float | None = None) -> None:
        """Anchor every ``every`` seconds (if the log grew) and/or every ``entries`` new entries."""
        if not every and not entries:
            raise BadInputError("give --every SECONDS and/or --entries COUNT", field="every")
        stop = stop or threading.Event()
        started = time.monotonic()
        last_time = 0.0
        backoff = poll
        while not stop.is_set():
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                return
            try:
                self.contract_address()
                size = self.ledger.size
                last = self.queue.db.execute(
                    "SELECT max(tree_size) FROM anchors WHERE status != 'failed'").fetchone()[0] or 0
                now = time.monotonic()
                due = size > last and ((every is not None and now - last_time >= every)
                                       or (entries is not None and size - last >= entries))
                if due:
                    self.enqueue()
                    last_time = now
                self.step()
                backoff = poll
            except NetworkError as exc:
                self.log(f"{exc.message}; retrying in {backoff:.1f} s")
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            # while a transaction is in flight, look again sooner (a block may already hold it)
            in_flight = self.queue.db.execute(
                "SELECT count(*) FROM anchors WHERE status IN ('sent', 'mined')").fetchone()[0]
            stop.wait(min(poll, IN_FLIGHT_POLL) if in_flight else poll)


# ----------------------------------------------------------------------------- verification


def _parse_cp(checkpoint: bytes | str, log_vkey: str | None) -> Checkpoint:
    data = checkpoint.encode() if isinstance(checkpoint, str) else checkpoint
    if log_vkey:
        return open_checkpoint(data, parse_vkey(log_vkey))
    if b"\n\n" in data:
        return parse_checkpoint_text(parse_note(data).text)
    try:
        return parse_checkpoint_text(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInputError("checkpoint is not UTF-8 text", field="checkpoint") from None


def parse_evidence(evidence: Any) -> tuple[str | None, dict[int, list[bytes]]]:
    """The parts of anchor evidence (a sidecar file or a bundle's extra line: input from whoever
    handed over the proof) that the check uses: the transaction hash and the consistency proofs by
    anchored size. Anything malformed is a BadInputError, before any RPC call."""
    if evidence is None:
        return None, {}
    if not isinstance(evidence, dict):
        raise BadInputError("anchor evidence must be a JSON object", field="evidence")
    tx = evidence.get("tx_hash")
    if tx is not None and not (isinstance(tx, str) and len(tx) == 66 and tx.startswith("0x")
                               and all(c in "0123456789abcdefABCDEF" for c in tx[2:])):
        raise BadInputError("anchor evidence tx_hash must be 0x and 64 hex digits", field="evidence")
    cons = evidence.get("consistency") or {}
    if not isinstance(cons, dict):
        raise BadInputError("anchor evidence consistency must map sizes to proofs", field="evidence")
    proofs: dict[int, list[bytes]] = {}
    for k, v in cons.items():
        size = parse_u64(k, "anchor evidence size", "evidence")
        if not isinstance(v, list) or len(v) > 128 or not all(isinstance(h, str) for h in v):
            raise BadInputError(f"anchor evidence proof for size {size} must be a list of base64 hashes",
                                field="evidence")
        try:
            hashes = [base64.b64decode(h, validate=True) for h in v]
        except ValueError:
            raise BadInputError(f"anchor evidence proof for size {size} is not base64", field="evidence") from None
        if any(len(h) != 32 for h in hashes):
            raise BadInputError(f"anchor evidence proof for size {size} holds a hash that is not 32 bytes",
                                field="evidence")
        proofs[size] = hashes
    return tx, proofs


def check_anchored(checkpoint_text: bytes | str, rpc_url: Any, contract_address: str, *,
                   log_vkey: str | None = None, evidence: dict[str, Any] | None = None,
                   consistency_proof: Callable[[int, int], Sequence[bytes]] | None = None,
                   submitter: str | None = None, confirmations: int = 1,
                   from_block: int = 0) -> dict[str, Any]:
    """Is this checkpoint anchored on chain, directly or through a later anchored checkpoint?

    ``checkpoint_text`` is the signed checkpoint note (or its bare body).  With ``log_vkey`` the
    log's signature is checked first.  An anchor of a *larger* tree counts when a consistency
    proof links the two: from ``evidence`` (a sidecar from :func:`anchor_evidence`, holding
    ``consistency`` proofs keyed by anchored size) or from ``consistency_proof(old, new)`` (e.g.
    ``ledger.log.consistency_proof`` when verifying next to the log).  ``evidence["tx_hash"]``
    lets the check read one receipt instead of scanning event logs from ``from_block``.

    Returns a dict with ``anchored`` (bool), ``how`` ("direct" or "consistency"), chain id,
    contract, submitter, tx hash, block number, block hash, block time (unix and ISO),
    confirmations, anchored and checkpoint sizes; or ``anchored: False`` with a ``reason``.  An
    anchor of the *same* size with a *different* root is reported as ``conflict`` (a fork).
    Raises NetworkError if the endpoint is unreachable, SignatureError for a bad log signature.
    """
    cp = _parse_cp(checkpoint_text, log_vkey)
    tx_hash, proofs = parse_evidence(evidence)
    w3 = connect(rpc_url)
    chain = AnchorChain(w3, contract_address)
    lid = log_id(cp.origin)
    events: list[dict[str, Any]] = []
    if tx_hash:
        rcpt = chain.receipt(tx_hash)
        if rcpt is not None and rcpt["status"] == 1:
            events = [e for e in chain.events_in_receipt(rcpt) if e["log_id"] == "0x" + lid.hex()]
    if not events:
        events = chain.events(lid, submitter, from_block)
    if submitter:
        events = [e for e in events if e["submitter"].lower() == submitter.lower()]
    head = chain.block_number()
    base = {"chain_id": chain.chain_id, "contract": chain.address, "origin": cp.origin, "log_id": "0x" + lid.hex(),
            "checkpoint_size": cp.size, "checkpoint_root": base64.b64encode(cp.root).decode()}
    conflicts = [e for e in events if e["tree_size"] == cp.size and e["root"] != cp.root]
    found: tuple[dict[str, Any], str] | None = None
    for e in events:
        if e["tree_size"] == cp.size and e["root"] == cp.root:
            found = (e, "direct")
            break
    if found is None:
        for e in sorted((e for e in events if e["tree_size"] > cp.size), key=lambda e: e["tree_size"]):
            proof = proofs.get(e["tree_size"])
            if proof is None and consistency_proof is not None:
                try:
                    proof = list(consistency_proof(cp.size, e["tree_size"]))
                except AiledgerError:
                    proof = None
            if proof is None:
                continue
            try:
                verify_consistency(cp.size, e["tree_size"], cp.root, e["root"], proof)
            except ProofError as exc:
                conflicts.append({**e, "reason": exc.message})
                continue
            found = (e, "consistency")
            break
    if found is None:
        reason = "no anchor of this checkpoint"
        if any(e["tree_size"] > cp.size for e in events):
            reason = "anchors of larger trees exist but no consistency proof links this checkpoint to them"
        out = {**base, "anchored": False, "reason": reason, "anchors_seen": len(events)}
        if conflicts:
            out["conflict"] = [{"tree_size": c["tree_size"], "root": base64.b64encode(c["root"]).decode(),
                                "tx_hash": c["tx_hash"], "block_number": c["block_number"]} for c in conflicts]
            out["reason"] = "the chain holds a different root for this log (fork evidence)"
        return out
    e, how = found
    blk = chain.block(e["block_number"])
    canonical = _hex(blk["hash"]) == e["block_hash"]
    conf = head - e["block_number"] + 1
    out = {**base, "anchored": canonical and conf >= confirmations, "how": how, "submitter": e["submitter"],
           "anchored_size": e["tree_size"], "anchored_root": base64.b64encode(e["root"]).decode(),
           "tx_hash": e["tx_hash"], "block_number": e["block_number"], "block_hash": e["block_hash"],
           "block_time": int(blk["timestamp"]), "block_time_iso": _iso(int(blk["timestamp"])),
           "confirmations": conf}
    if not canonical:
        out["reason"] = "the anchoring block is no longer canonical"
    elif conf < confirmations:
        out["reason"] = f"only {conf} confirmations, {confirmations} required"
    if conflicts:
        out["conflict"] = [{"tree_size": c["tree_size"], "tx_hash": c["tx_hash"]} for c in conflicts]
    return out


def require_anchored(checkpoint_text: bytes | str, rpc_url: Any, contract_address: str,
                     **kw: Any) -> dict[str, Any]:
    """:func:`check_anchored` as a gate: the result dict, or VerificationError saying why not."""
    res = check_anchored(checkpoint_text, rpc_url, contract_address, **kw)
    if not res["anchored"]:
        raise VerificationError(f"checkpoint is not anchored: {res['reason']}", expected="an anchor on chain",
                                found=res["reason"])
    return res


def anchor_evidence(ledger: Any, bundle_or_checkpoint: bytes) -> dict[str, Any]:
    """Sidecar evidence for a proof bundle (or a checkpoint): the receipt of the first confirmed
    anchor covering its checkpoint, and if that anchor is of a larger tree, the consistency proof
    from the bundle's checkpoint to it.  Written next to a proof as ``<proof>.anchor.json``."""
    data = bundle_or_checkpoint
    if data.startswith(b"c2sp.org/tlog-proof@v1\n"):
        data = parse_proof_bundle(data).checkpoint
    cp = parse_checkpoint_text(parse_note(data).text)
    q = AnchorQueue(ledger.path)
    try:
        rows = q.rows("status = 'confirmed' AND origin = ? AND tree_size >= ?", (cp.origin, cp.size))
    finally:
        q.close()
    if not rows:
        raise NotFoundError(f"no confirmed anchor covers tree size {cp.size} yet", field="anchor")
    r = min(rows, key=lambda x: (x["tree_size"], x["id"]))
    rec = _receipt(r).to_dict()
    rec["format"] = EVIDENCE_FORMAT
    rec["consistency"] = {}
    if r["tree_size"] > cp.size:
        proof = ledger.log.consistency_proof(cp.size, r["tree_size"])
        rec["consistency"][str(r["tree_size"])] = [base64.b64encode(h).decode() for h in proof]
    elif bytes(r["root"]) != cp.root:
        raise VerificationError("the anchored root of this size differs from the checkpoint's",
                                expected=base64.b64encode(cp.root).decode(),
                                found=base64.b64encode(bytes(r["root"])).decode())
    return rec


def sidecar_path(proof_path: str | os.PathLike[str]) -> Path:
    return Path(str(proof_path) + ".anchor.json")


EVIDENCE_FORMAT = "ailedger-anchor-evidence/v1"


def embed_evidence(bundle_bytes: bytes, evidence: dict[str, Any]) -> bytes:
    """The proof bundle with the anchor evidence as its tlog-proof ``extra`` data (JSON). The
    extra line is unauthenticated by design, and nothing in the evidence is trusted: it only says
    where to look on chain and carries a consistency proof that is re-checked."""
    b = parse_proof_bundle(bundle_bytes)
    if b.extra is not None and evidence_from_bundle(bundle_bytes) is None:
        raise BadInputError("the proof bundle's extra line already carries other data; use the sidecar file",
                            field="extra")
    data = json.dumps(evidence, sort_keys=True, separators=(",", ":")).encode()
    return ProofBundle(b.index, b.proof, b.checkpoint, data).to_bytes()


def evidence_from_bundle(bundle_bytes: bytes) -> dict[str, Any] | None:
    """Anchor evidence carried in a proof bundle's ``extra`` line, if that is what it holds."""
    b = parse_proof_bundle(bundle_bytes)
    if not b.extra:
        return None
    try:
        obj = parse_json(b.extra, what="proof bundle extra line")
    except BadInputError:  # not JSON (or nested absurdly deep): not evidence
        return None
    return obj if isinstance(obj, dict) and obj.get("format") == EVIDENCE_FORMAT else None
