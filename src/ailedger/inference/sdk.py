"""The inference audit SDK: wrap a prediction function, get a receipt per call.

Hot path (the caller's thread): take a receipt id (stream prefix + counter), read the clock,
put a tuple on an in-memory queue.  Everything else happens on one writer thread per trail:
salts (16 bytes each from one bulk ``os.urandom`` read per batch), canonical payload bytes,
commitments ``SHA-256(salt || JCS(payload))``, the record bytes, the batch Merkle root, the
AES-256-GCM payload ciphertexts, one Ed25519 signature per batch (an ``inference.batch`` entry
by the operator identity) and one durable append to the log.

Modes:

* ``durable``: a call returns once its record (commitments) and its payload (encrypted under the
  data subject's key) are in the trail's write-ahead journal on disk (``inference/journal.py``: one
  ``O_DIRECT | O_DSYNC`` write per group of concurrent calls, ``journal_inflight`` groups at once); the
  writer logs journalled calls in signed batches as in fast mode, and the next trail to open replays a
  dead trail's journal.  Receipts
  resolve once the batch is logged (``Receipt.proof()`` waits for it).
* ``fast``: a call returns at once; the writer commits every ``flush_interval`` seconds (or
  sooner when ``max_batch`` records wait).  A crash loses at most the calls of the last
  ``flush_interval`` plus the batch being written, never more than ``max_pending`` records.

``snapshot=True`` computes the canonical payload bytes in the caller's thread (use it when
inputs or outputs are mutated after the call returns); by default they are taken from the
objects when the writer gets to them (within ``flush_interval``).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import getpass
import hashlib
import itertools
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ailedger.authority.service import model_registration, model_status
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    NotFoundError,
    StorageError,
    TamperError,
)
from ailedger.inference.codec import (
    BATCH_TYPE,
    canonical_payload,
    check_plain_name,
    record_bytes,
)
from ailedger.inference.journal import (
    JOURNAL_AAD,
    MAX_WINDOW,
    Journal,
    JournalRecord,
    dead_journals,
    encode_record,
    key_id,
)
from ailedger.inference.payloads import PayloadStore, inference_dir, unpack_items
from ailedger.inference.receipts import receipt_proof
from ailedger.inference.recovery import recover_pending
from ailedger.inference.store import RecordStore
from ailedger.tlog.merkle import EMPTY_ROOT

__all__ = [
    "DEFAULT_OPERATOR",
    "MODES",
    "InferenceTrail",
    "ModelRevokedError",
    "Receipt",
    "is_model_revoked",
    "recover_pending",
    "resolve_model",
]

DEFAULT_OPERATOR = "inference"
_JREC = struct.Struct(">BqIBI").pack  # journal.encode_record's head
_u32 = struct.Struct(">I").pack
_NONE_LEN = _u32(0xFFFFFFFF)  # payloads.pack_items: no input / output
MODES = ("fast", "durable")
_NOTHING = object()


class ModelRevokedError(ConflictError):
    """The model was revoked (or suspended) in the ledger; calls to it are refused."""

    code = "model_revoked"


def is_model_revoked(ledger: Any, name: str) -> str | None:
    """Why calls to model ``name`` are refused (it is revoked or suspended), or None.

    One rule set for every reader: ``services.authority.model_status`` (the model's owner may revoke and
    reinstate its own model; the DAO revokes by an executed proposal and its guardians suspend k-of-n;
    anyone else's ``model.revoke`` / ``model.reinstate`` has no effect).  See docs/authority.md."""
    st = model_status(ledger, name)
    return None if st.usable else st.ruling_text()


def resolve_model(ledger: Any, name: str) -> tuple[str, int, str]:
    """(name, entry index, manifest root) of the model's effective registration (its owner's latest
    version: ``services.authority.model_registration``); NotFoundError if none."""
    check_plain_name(name, "model")

    idx, e = model_registration(ledger, name)
    root = e.body.get("manifest", {}).get("root", "") if isinstance(e.body.get("manifest"), dict) else ""
    return str(e.body.get("name", name)), idx, root


def _load_or_create_operator(ledger: Any, name: str, passphrase: str | None) -> Any:
    try:
        return ledger.identities.load(name, passphrase)
    except NotFoundError:
        try:
            ident, _ = ledger.new_identity(name, passphrase)
            return ident
        except ConflictError:
            return ledger.identities.load(name, passphrase)
    except AiledgerError:
        raise


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 tree head of leaf hashes, level by level (an unpaired last node moves up as is,
    which gives the same root as the recursive split at the largest power of two)."""
    if not leaves:
        return EMPTY_ROOT
    sha = hashlib.sha256
    level = leaves
    while len(level) > 1:
        nxt = [sha(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2])]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class _Frozen(bytes):
    """Payload bytes already canonicalised in the caller's thread (snapshot mode)."""


class Receipt:
    """A handle on one call's record: ``id`` now, the inclusion proof once written."""

    __slots__ = ("_trail", "id")

    def __init__(self, rid: str, trail: InferenceTrail) -> None:
        self.id = rid
        self._trail = trail

    def __repr__(self) -> str:
        return f"Receipt({self.id!r})"

    def __str__(self) -> str:
        return self.id

    def proof(self, timeout: float = 30.0) -> dict[str, Any]:
        """The receipt proof (record, batch position, batch path, tlog-proof); waits for the write."""
        self._trail.flush(timeout)
        return receipt_proof(self._trail.ledger, self.id)


def _time_formatter() -> Callable[[int], str]:
    cache: dict[int, str] = {}

    def fmt(t_ns: int) -> str:
        sec, ns = divmod(t_ns, 1_000_000_000)
        head = cache.get(sec)
        if head is None:
            if len(cache) > 4:
                cache.clear()
            head = cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{head}.{ns // 1000:06d}Z"

    return fmt


class InferenceTrail:
    """Audit trail of one registered model's calls, written to a ledger in signed batches."""

    def __init__(self, ledger: Any, model: str, *, mode: str = "fast", operator: str = DEFAULT_OPERATOR,
                 passphrase: str | None = None, caller: str | None = None, flush_interval: float = 0.05,
                 max_batch: int = 4096, max_pending: int = 200_000, store_payloads: bool = True,
                 snapshot: bool = False, revocation_check: float = 1.0, commit_window: float = 0.0,
                 journal_inflight: int | None = None) -> None:
        if mode not in MODES:
            raise BadInputError(f"mode must be one of {', '.join(MODES)}", field="mode", found=mode)
        if not 0 < flush_interval <= 60:
            raise BadInputError("flush_interval must be in (0, 60] seconds", field="flush_interval")
        if not 1 <= max_batch <= 1_000_000 or max_pending < max_batch:
            raise BadInputError("need 1 <= max_batch <= max_pending", field="max_batch")
        if not 0 <= commit_window <= 1:
            raise BadInputError("commit_window must be in [0, 1] seconds", field="commit_window")
        if journal_inflight is not None and not 1 <= journal_inflight <= MAX_WINDOW:
            raise BadInputError(f"journal_inflight must be in [1, {MAX_WINDOW}] frames", field="journal_inflight",
                                found=journal_inflight)
        self.ledger = ledger
        self.mode = mode
        self.model, self.model_index, self.model_root = resolve_model(ledger, model)
        reason = is_model_revoked(ledger, self.model)
        if reason is not None:
            raise ModelRevokedError(f"model {self.model} is revoked: {reason}", field="model")
        self._revoked: str | None = None
        self.operator = _load_or_create_operator(ledger, operator, passphrase)
        if ledger.store.find(f"revoked:{self.operator.did}", -1, 1):
            raise BadInputError(f"operator identity {operator!r} is revoked in this ledger; use another operator",
                                field="operator")
        self.caller = check_plain_name(caller or f"local:{getpass.getuser()}", "caller")
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.store_payloads = store_payloads
        self.snapshot = snapshot
        self.revocation_check = revocation_check
        durable = mode == "durable"
        d = inference_dir(ledger.path)
        self.records = RecordStore(d, durable=durable)
        self.payloads = PayloadStore(ledger.path, durable=durable)
        recover_pending(ledger, self.records)
        self._refs: dict[str, str] = {}
        self._fmt_time = _time_formatter()
        self._seq = 0
        self.stats = {"batches": 0, "records": 0, "write_seconds": 0.0}
        self._replay_journals()
        self.stream = os.urandom(6).hex()
        self._prefix = self.stream + "-"
        self._counter = itertools.count(1)
        self._q: collections.deque[tuple[Any, ...]] = collections.deque()
        self._wake = threading.Event()
        self._drained = threading.Event()
        self._idle = threading.Condition()
        self._submitted = 0
        self._written = 0
        self._stop = False
        self._error: BaseException | None = None
        self._local = threading.local()
        self._last_rev_check = time.monotonic()
        self._last_size = ledger.size
        self._dropped = 0  # calls that got a receipt id but never reached the writer (their journal write failed)
        self._drop_lock = threading.Lock()
        # durable mode: a call returns once its record is in the journal on disk (group commit of the
        # journal writes); the writer then logs journalled records in signed batches as in fast mode
        self._journal: Journal | None = None
        if durable:
            self._journal = Journal(inference_dir(ledger.path) / "journal", self.stream,
                                    {"v": 1, "stream": self.stream, "model": self.model,
                                     "model_index": self.model_index, "operator": self.operator.did},
                                    self._journalled, window=commit_window, inflight=journal_inflight)
        self._thread = threading.Thread(target=self._run, name=f"ailedger-inference-{self.stream}", daemon=True)
        self._thread.start()
        # a normal interpreter exit writes what is queued (fast mode), even without close()
        ref = weakref.ref(self)

        def _at_exit() -> None:
            t = ref()
            if t is not None:
                t._close_quietly()
        self._atexit = _at_exit
        atexit.register(self._atexit)

    # -- hot path -----------------------------------------------------------------
    def _submit(self, inp: Any, out: Any, subject: str | None, caller: str | None, meta: Any,
                status: str) -> str:
        rid = self._prefix + str(next(self._counter))
        if self.snapshot:
            inp = inp if inp is _NOTHING else _Frozen(canonical_payload(inp))
            out = out if out is _NOTHING else _Frozen(canonical_payload(out))
        if self._journal is not None:
            try:
                self._journal_call(rid, time.time_ns(), inp, out, subject, caller, meta, status)
            except BaseException as exc:  # whatever failed, this call's record is not written
                with self._drop_lock:
                    self._dropped += 1
                if isinstance(exc, BadInputError):
                    raise
                if self._journal.error is not None:  # fail closed: later calls are refused before the model runs
                    self._error = self._error or self._journal.error
                raise StorageError(f"the inference record of this call was not written: {exc}") from exc
            if len(self._q) >= self.max_pending:
                self._backpressure()
        else:
            self._q.append((rid, time.time_ns(), inp, out, subject, caller, meta, status, None))
            if len(self._q) >= self.max_pending:
                self._backpressure()
        self._local.receipt = rid
        return rid

    def _journal_call(self, rid: str, t_ns: int, inp: Any, out: Any, subject: str | None, caller: str | None,
                      meta: Any, status: str) -> None:
        """Durable mode, in the caller's thread: the record (commitments), the payload encrypted under the
        subject's key, one journal record (``journal.encode_record``, built inline: this is the hot path);
        returns once the journal holding it is on disk."""
        tl = self._local
        rnd = getattr(tl, "rnd", b"")
        pos = getattr(tl, "pos", 0)
        if pos + 28 > len(rnd):  # 28 random bytes per call (salt, nonce), read 256 calls at a time
            rnd = tl.rnd = os.urandom(28 * 256)
            pos = 0
        tl.pos = pos + 28
        salt = rnd[pos : pos + 16]
        sha = hashlib.sha256
        if inp is _NOTHING:
            ib = c_in = None
        else:
            ib = bytes(inp) if type(inp) is _Frozen else canonical_payload(inp)
            c_in = sha(salt + ib).hexdigest()
        if out is _NOTHING:
            ob = c_out = None
        else:
            ob = bytes(out) if type(out) is _Frozen else canonical_payload(out)
            c_out = sha(salt + ob).hexdigest()
        who = caller or self.caller
        data = record_bytes(rid, self.model, self.model_index, who, self._fmt_time(t_ns), c_in, c_out, status,
                            None if not meta else canonical_payload(meta))
        r = rid.encode()
        if self.store_payloads:
            subj = subject or who
            ref = self._refs.get(subj) or self._subject_ref(subj)
            key, aes, kid = self.payloads.cipher(ref)
            nonce = rnd[pos + 16 : pos + 28]
            # pack_items([(rid, salt, ib, ob)])
            pt = b"".join((bytes((len(r),)), r, salt, _NONE_LEN if ib is None else _u32(len(ib)), ib or b"",
                           _NONE_LEN if ob is None else _u32(len(ob)), ob or b""))
            ct = aes.encrypt(nonce, pt, JOURNAL_AAD + ref.encode() + b"|" + r)
            rec = b"".join((_JREC(len(r), t_ns, len(data), 32, len(ct)), r, data, bytes.fromhex(ref), kid, nonce, ct))
        else:
            ref, key = "", b""
            rec = encode_record(rid, t_ns, data, "", b"", b"", b"")
        assert self._journal is not None
        self._journal.commit(rec, (rid, t_ns, data, ref, key, salt, ib, ob))

    def _journalled(self, items: list[tuple[Any, ...]], segno: int) -> None:
        """A journal group is on disk (called in journal order): queue its records for the writer."""
        q = self._q
        q.extend([it + (segno,) for it in items])
        if len(q) >= self.max_batch:
            self._wake.set()

    def _backpressure(self) -> None:
        if self._error is not None:
            raise StorageError(f"the inference writer failed: {self._error}")
        self._wake.set()
        # block (GIL released, no polling) until the writer has drained to half; a polling loop
        # would hand the GIL back and forth and stall the writer on a busy machine
        low = self.max_pending // 2
        while len(self._q) >= low and self._thread.is_alive() and self._error is None:
            self._drained.clear()
            if len(self._q) < low:
                break
            self._drained.wait(0.5)

    def _check(self) -> None:
        if self._revoked is not None:
            raise ModelRevokedError(f"model {self.model} is revoked: {self._revoked}", field="model")
        if self._stop:
            raise ConflictError("this inference trail is closed")
        if self._error is not None:
            raise StorageError(f"the inference audit trail failed ({self.stats.get('failed_records', 0)} records "
                               f"not logged): {self._error}; calls are refused until it is reopened")

    @property
    def last_receipt(self) -> Receipt | None:
        rid = getattr(self._local, "receipt", None)
        return None if rid is None else Receipt(rid, self)

    def receipt(self, rid: str) -> Receipt:
        return Receipt(rid, self)

    def record(self, input: Any, output: Any = _NOTHING, *, subject: str | None = None, caller: str | None = None,
               meta: dict[str, Any] | None = None, status: str = "ok") -> Receipt:
        """Log one call that already happened (the gateway uses this)."""
        self._check()
        return Receipt(self._submit(input, output, subject, caller, meta, status), self)

    def wrap(self, fn: Callable[..., Any] | None = None, *, subject: str | Callable[..., str] | None = None,
             meta: Callable[[Any], dict[str, Any]] | None = None, caller: str | None = None) -> Any:
        """Decorator: every call of ``fn`` yields a record; ``trail.last_receipt`` gives its receipt.

        ``subject`` names the data subject (or computes it from the call's arguments); the
        default is the caller.  ``meta(result)`` gives decision metadata that goes on the ledger
        in clear (put no personal data in it)."""
        def deco(f: Callable[..., Any]) -> Callable[..., Any]:
            submit, check = self._submit, self._check
            subj_fn = subject if callable(subject) else None
            subj = None if callable(subject) else subject

            @functools.wraps(f)
            def inner(*args: Any, **kwargs: Any) -> Any:
                if self._revoked is not None or self._stop or self._error is not None:
                    check()
                inp = args[0] if len(args) == 1 and not kwargs else {"args": list(args), "kwargs": kwargs}
                s = subj_fn(*args, **kwargs) if subj_fn is not None else subj
                try:
                    result = f(*args, **kwargs)
                except Exception as exc:
                    submit(inp, _NOTHING, s, caller, {"error": type(exc).__name__}, "error")
                    raise
                submit(inp, result, s, caller, meta(result) if meta is not None else None, "ok")
                return result

            inner.__wrapped_trail__ = self  # type: ignore[attr-defined]
            return inner

        return deco(fn) if fn is not None else deco

    audited = wrap

    def call(self, input: Any, *, subject: str | None = None, caller: str | None = None) -> _Call:
        """Context manager: ``with trail.call(x) as c: c.output = model(x)``; then ``c.receipt``."""
        self._check()
        return _Call(self, input, subject, caller)

    # -- writer ---------------------------------------------------------------------
    def _run(self) -> None:
        q = self._q
        while True:
            if len(q) < self.max_batch and not self._stop:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
            self._maybe_check_revocation()
            if not q:
                with self._idle:
                    self._idle.notify_all()
                if self._stop:
                    return
                continue
            while q:
                self._maybe_check_revocation()
                n = min(len(q), self.max_batch)
                items = [q.popleft() for _ in range(n)]
                try:
                    bid, index = self._write(items) if self._journal is None else self._write_journalled(items)
                except BaseException as exc:
                    self._group_failed(exc, n)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                if self._journal is not None:  # before the calls count as written: flush() returns after it
                    with contextlib.suppress(OSError):  # a segment left behind is replayed as already logged
                        self._journal.release(items[-1][-1])
                self._group_written(n)
                with contextlib.suppress(Exception):  # bookkeeping: the index is found again from the leaf hash
                    self.records.set_log_index(bid, index)
                if self._journal is not None and len(q) < self.max_batch and not self._stop:
                    break  # journalled records are durable already: the rest waits for the next flush_interval
            with self._idle:
                self._idle.notify_all()

    def _group_written(self, n: int) -> None:
        self._written += n
        self._drained.set()

    def _group_failed(self, exc: BaseException, n: int) -> None:
        """A group's write failed: fail closed (from now on calls are refused before the model runs)."""
        self._error = exc
        self.stats["failed_records"] = self.stats.get("failed_records", 0) + n
        self._group_written(n)

    def _maybe_check_revocation(self) -> None:
        now = time.monotonic()
        if now - self._last_rev_check < self.revocation_check:
            return
        self._last_rev_check = now
        try:
            size = self.ledger.size
            if size != self._last_size:
                self._last_size = size
                self._revoked = is_model_revoked(self.ledger, self.model)
        except AiledgerError:
            pass

    def _subject_ref(self, subject: str) -> str:
        ref = self._refs.get(subject)
        if ref is None:
            if len(self._refs) > 100_000:
                self._refs.clear()
            ref = self._refs[subject] = self.payloads.subject_ref(subject)
        return ref

    def _write(self, items: list[tuple[Any, ...]]) -> tuple[int, int]:
        t0 = time.perf_counter()
        n = len(items)
        salts = os.urandom(16 * n)
        model, model_index, default_caller = self.model, self.model_index, self.caller
        fmt = self._fmt_time
        rids: list[str] = []
        times: list[int] = []
        datas: list[bytes] = []
        leaves: list[bytes] = []
        groups: dict[str, list[tuple[str, bytes, bytes | None, bytes | None]]] = {}
        store = self.store_payloads
        sha = hashlib.sha256
        canon = canonical_payload
        refs = self._refs
        for k, (rid, t_ns, inp, out, subject, caller, meta, status, _w) in enumerate(items):
            salt = salts[16 * k : 16 * k + 16]
            if inp is _NOTHING:
                ib = c_in = None
            else:
                ib = bytes(inp) if type(inp) is _Frozen else canon(inp)
                c_in = sha(salt + ib).hexdigest()
            if out is _NOTHING:
                ob = c_out = None
            else:
                ob = bytes(out) if type(out) is _Frozen else canon(out)
                c_out = sha(salt + ob).hexdigest()
            who = caller or default_caller
            data = record_bytes(rid, model, model_index, who, fmt(t_ns), c_in, c_out, status,
                                None if not meta else canon(meta))
            rids.append(rid)
            times.append(t_ns // 1000)
            datas.append(data)
            leaves.append(sha(b"\x00" + data).digest())
            if store:
                subj = subject or who
                ref = refs.get(subj) or self._subject_ref(subj)
                g = groups.get(ref)
                if g is None:
                    g = groups[ref] = []
                g.append((rid, salt, ib, ob))
        if groups:
            self.payloads.put(groups)
        self._seq += 1
        bid, index = self._log_batch(self.stream, self._seq, model, model_index, rids, times, datas, leaves,
                                     items[0][1], items[-1][1])
        self.stats["write_seconds"] += time.perf_counter() - t0
        return bid, index

    def _write_journalled(self, items: list[tuple[Any, ...]]) -> tuple[int, int]:
        """Durable mode's writer: journalled records (made in the callers' threads) into one signed batch."""
        t0 = time.perf_counter()
        sha = hashlib.sha256
        rids = [it[0] for it in items]
        times = [it[1] // 1000 for it in items]
        datas = [it[2] for it in items]
        leaves = [sha(b"\x00" + d).digest() for d in datas]
        if self.store_payloads:
            dropped = self.payloads.put_journalled([(it[3], it[4], it[0], it[5], it[6], it[7]) for it in items])
            if dropped:
                self.stats["payloads_erased_before_logged"] = self.stats.get("payloads_erased_before_logged", 0) + dropped
        self._seq += 1
        bid, index = self._log_batch(self.stream, self._seq, self.model, self.model_index, rids, times, datas,
                                     leaves, items[0][1], items[-1][1])
        self.stats["write_seconds"] += time.perf_counter() - t0
        return bid, index

    def _log_batch(self, stream: str, seq: int, model: str, model_index: int, rids: list[str], times: list[int],
                   datas: list[bytes], leaves: list[bytes], t_first_ns: int, t_last_ns: int) -> tuple[int, int]:
        """Sign the batch entry, store the batch's records, append the entry to the log."""
        fmt = self._fmt_time
        root = merkle_root(leaves)
        body = {"v": 1, "stream": stream, "seq": seq, "count": len(rids), "root": root.hex(),
                "models": [{"name": model, "index": model_index}],
                "first": rids[0], "last": rids[-1], "from": fmt(t_first_ns), "to": fmt(t_last_ns)}
        entry = self.ledger.make_entry(BATCH_TYPE, body, self.operator)
        bid = self.records.add_batch(stream, seq, root, entry.leaf_bytes, model, rids, times, datas)
        res = self.ledger.append_entry(entry, terms=[f"inference-model:{model}", f"inference-stream:{stream}"])
        self.stats["batches"] += 1
        self.stats["records"] += len(rids)
        return bid, res.index

    def _replay_journals(self) -> None:
        """Log the records of dead trails' journals (a crash) that are in no stored batch yet, once each."""
        root = inference_dir(self.ledger.path) / "journal"
        for dj in dead_journals(root):
            try:
                meta = dj.meta
                if meta.get("operator") != self.operator.did or not isinstance(meta.get("stream"), str):
                    dj.release()  # another operator's: replayed by a trail of that operator
                    continue
                stream, model, model_index = meta["stream"], str(meta["model"]), int(meta["model_index"])
                recs = dj.records()
                done = self.records.stream_rids(stream)
                todo = [r for r in recs if r.rid not in done]
                with_payload = self.payloads.stream_rids(stream)
                for k in range(0, len(todo), self.max_batch):
                    chunk = todo[k : k + self.max_batch]
                    self._replay_payloads([r for r in chunk if r.ct and r.rid not in with_payload])
                    datas = [r.data for r in chunk]
                    self._log_batch(stream, self.records.max_seq(stream) + 1, model, model_index,
                                    [r.rid for r in chunk], [r.t_ns // 1000 for r in chunk], datas,
                                    [hashlib.sha256(b"\x00" + d).digest() for d in datas],
                                    chunk[0].t_ns, chunk[-1].t_ns)
                self.stats["replayed_records"] = self.stats.get("replayed_records", 0) + len(todo)
                self.stats["journal_bytes_cut"] = self.stats.get("journal_bytes_cut", 0) + dj.cut_bytes
            except BaseException as exc:
                dj.release()
                if isinstance(exc, AiledgerError):
                    raise StorageError(f"cannot replay the inference journal {dj.dir}: {exc}") from exc
                raise
            dj.remove()

    def _replay_payloads(self, recs: list[JournalRecord]) -> None:
        """Store the payloads of journalled records whose subject key still exists (else: erased)."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        items = []
        for r in recs:
            key = self.payloads.key_of(r.ref)
            if key is None or key_id(key) != r.key_id:
                continue  # erased while the record waited in the journal (a later call may have made a new key)
            try:
                pt = AESGCM(key).decrypt(r.nonce, r.ct, JOURNAL_AAD + r.ref.encode() + b"|" + r.rid.encode())
            except InvalidTag:
                raise TamperError(f"journalled payload of receipt {r.rid} fails authentication") from None
            for it in unpack_items(pt):
                items.append((r.ref, key, it.rid, it.salt, it.input, it.output))
        if items:
            self.payloads.put_journalled(items)

    # -- lifecycle -------------------------------------------------------------------
    def flush(self, timeout: float = 60.0) -> None:
        """Block until every call made so far is written (or raise)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._q or self._busy():
                if self._error is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StorageError(f"inference records not written within {timeout} s")
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        if self._error is not None:
            raise StorageError(f"the inference writer failed: {self._error}")

    def _busy(self) -> bool:
        return self._written + self._dropped < self._issued()

    def _issued(self) -> int:
        # itertools.count has no read; the repr holds the next value
        return int(repr(self._counter)[6:-1]) - 1

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        if self._stop:
            return
        atexit.unregister(self._atexit)
        try:
            self.flush()
        finally:
            self._stop = True
            self._wake.set()
            self._thread.join(timeout=60)
            if self._journal is not None:
                # removed only when every journalled record is logged; else a later trail replays it
                logged = self._error is None and not self._q and not self._thread.is_alive()
                self._journal.close(remove=logged)
            self.records.close()
            self.payloads.close()

    def __enter__(self) -> InferenceTrail:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Call:
    def __init__(self, trail: InferenceTrail, input: Any, subject: str | None, caller: str | None) -> None:
        self._trail = trail
        self.input = input
        self.subject = subject
        self.caller = caller
        self.output: Any = _NOTHING
        self.meta: dict[str, Any] | None = None
        self.receipt: Receipt | None = None

    def __enter__(self) -> _Call:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        et, ev = exc[0], exc[1]
        if et is not None:
            if isinstance(ev, Exception):
                rid = self._trail._submit(self.input, _NOTHING, self.subject, self.caller,
                                          {"error": type(ev).__name__}, "error")
                self.receipt = Receipt(rid, self._trail)
            return
        if self.output is _NOTHING:
            raise BadInputError("set .output inside the `with trail.call(...)` block", field="output")
        rid = self._trail._submit(self.input, self.output, self.subject, self.caller, self.meta, "ok")
        self.receipt = Receipt(rid, self._trail)
