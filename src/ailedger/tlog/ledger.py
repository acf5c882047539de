"""The Ledger: one directory holding a log, its signing key, identities and config.

This is the service every feature and every shell (CLI, HTTP API, web) calls.
It reads the clock (``time`` fields) and the file system; the pure rules live in
``ailedger.core`` and the log algorithm in ``ailedger.tlog.log``.
"""

from __future__ import annotations

import datetime as _dt
import json
import multiprocessing
import os
import re
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.canonical import parse_json
from ailedger.encoding.identity import did_from_public_key, public_key_from_did
from ailedger.encoding.records import (
    FAST_VERIFY,
    SignedEntry,
    build_entry,
    fast_parse_entries,
    fast_verdicts,
    parse_entry,
)
from ailedger.encoding.times import time_ms
from ailedger.errors import AiledgerError, BadInputError, ConflictError, NotFoundError
from ailedger.tlog import admission
from ailedger.tlog.admission import TIME_SKEW_SECONDS
from ailedger.tlog.groupcommit import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_WINDOW,
    AppendRequest,
    GroupView,
    LogCommitter,
)
from ailedger.tlog.identities import Identity, KeyStore, read_private_key, write_private_key
from ailedger.tlog.log import AppendResult, AuditReport, TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.note import Signer, Verifier, parse_vkey
from ailedger.tlog.private import PRIVATE_DIR_MODE, private_dir, write_private
from ailedger.tlog.stores import LeafRow, LogStore, open_store

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Ledger", "OperatorIdentity", "StaleEntryError", "entry_terms", "operator_identity", "system_clock",
           "utc_now", "verify_entry_batch"]

CONFIG = "config.json"
LOG_KEY = "log.key"
LOG_VKEY = "log.vkey"


def system_clock() -> float:
    """Seconds since the epoch: the clock every Ledger reads unless given another (tests give their own)."""
    return _time.time()


def _iso(t: float) -> str:
    now = _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def utc_now() -> str:
    return _iso(system_clock())


class StaleEntryError(BadInputError):
    """The entry's signed time is further than the stated skew from the writer's clock."""

    code = "stale_time"


class OperatorIdentity:
    """The log operator as a signer of ledger entries: the log's own Ed25519 key as a did:key.

    Entries are RFC 8785 JSON on one line and checkpoints are C2SP signed-note text of three or more lines
    starting with the origin, so one key signing both cannot be made to sign one as the other."""

    name = "operator"

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self.public_key = signer.public_key
        self.did = did_from_public_key(signer.public_key)  # the operator's did:key (authority.rules.operator_did)

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data)


def operator_identity(ledger: Ledger) -> OperatorIdentity:
    signer = ledger.log.signer
    if signer is None:
        raise BadInputError("this process does not hold the log key (opened read-only or without its passphrase); "
                            "only the log operator may sign this", field="ledger")
    return OperatorIdentity(signer)


_RECORD_TYPES = frozenset({"dataset.commit", "dataset.screening", "model.register"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
# the body fields entry_terms reads besides "subjects" (a body with none of them takes its short path)
_OTHER_TERM_KEYS = frozenset({"name", "manifest", "root", "sha256", "cid"})


def _record_terms(type_: str, b: dict[str, Any]) -> list[str]:
    """The lookup terms of the artifact records, read from the signed body (so an entry POSTed to the API or
    appended by `ailedger append` is found exactly as one the service wrote): ``dataset:`` / ``dataset-root:``
    of a ``dataset.commit`` or ``dataset.screening``; ``model:``, ``manifest:``, ``trained-on:`` (each lineage
    dataset) and ``base:`` (the lineage base model) of a ``model.register``; ``blob:`` (its CID, and the new
    one a ``blob.supersede`` names) of every ``blob.*`` record and ``attach:KIND:INDEX`` of a ``blob.attach``."""
    if type_ not in _RECORD_TYPES and not type_.startswith("blob."):
        return []  # most entries: nothing to add (and no closures to make)
    out: list[str] = []

    def word(prefix: str, v: Any) -> None:
        if isinstance(v, str) and 0 < len(v) < 300:
            out.append(prefix + v)

    def field(d: Any, k: str) -> Any:
        return d.get(k) if isinstance(d, dict) else None

    if type_ == "dataset.commit":
        word("dataset:", b.get("name"))
        word("dataset-root:", b.get("root"))
    elif type_ == "dataset.screening":
        word("dataset:", b.get("dataset"))
        word("dataset-root:", b.get("dataset_root"))
    elif type_ == "model.register":
        word("model:", b.get("name"))
        word("manifest:", field(b.get("manifest"), "root"))
        lin = b.get("lineage")
        ds = field(lin, "datasets")
        for d in ds if isinstance(ds, list) else ():
            word("trained-on:", field(d, "name"))
        word("base:", field(field(lin, "base_model"), "name"))
    elif type_.startswith("blob."):  # services.blobs: every record of a blob under its CID
        word("blob:", b.get("cid"))
        if type_ == "blob.supersede":
            word("blob:", b.get("superseded_by"))
        rec = b.get("record")
        art = b.get("artifact")
        if type_ == "blob.attach" and isinstance(art, str) and len(art) < 40 and type(rec) is int and rec >= 0:
            word(f"attach:{art}:", str(rec))
    return out


def entry_terms(e: SignedEntry, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Index terms of an entry: its type, its signer, any ``subjects`` the body names, and what a reader looks
    it up by whatever path wrote it (the explorer's search): ``name:`` its body's name, ``hash:`` each root or
    digest it commits to (``root``, ``manifest.root``, ``sha256``: 64 lower-case hex), ``cid:`` its content id,
    and the artifact records' own terms (:func:`_record_terms`).  Every write path calls this, so the terms
    depend on the entry's signed bytes only.  Terms only find candidates: readers check the signed body."""
    t = e.type
    terms = ["type:" + t, "signer:" + e.signer]
    b = e.body
    if b.keys().isdisjoint(_OTHER_TERM_KEYS) and t not in _RECORD_TYPES and not t.startswith("blob."):
        # the common entry (an event, a decision, a receipt): its type, its signer and its subjects only
        subj = b.get("subjects")
        if isinstance(subj, list):
            append = terms.append
            for s in subj:  # a loop, not a generator: this runs for every entry written
                if isinstance(s, str) and len(s) < 300:
                    append("subject:" + s)
        if extra:
            terms.extend(extra)
            return tuple(dict.fromkeys(terms))
        # three terms have three different prefixes: no duplicate to drop
        return tuple(terms) if len(terms) <= 3 else tuple(dict.fromkeys(terms))
    return _all_terms(t, terms, b, extra)


def _all_terms(t: str, terms: list[str], b: dict[str, Any], extra: Iterable[str]) -> tuple[str, ...]:
    """entry_terms of any entry (its short path gives the same for the entries it takes)."""
    subj = b.get("subjects")
    if isinstance(subj, list):
        append = terms.append
        for s in subj:  # a loop, not a generator: this runs for every entry written
            if isinstance(s, str) and len(s) < 300:
                append("subject:" + s)
    name = b.get("name")
    if isinstance(name, str) and 0 < len(name) < 300:
        terms.append(f"name:{name}")
    man = b.get("manifest")
    for h in (b.get("root"), b.get("sha256"), man.get("root") if isinstance(man, dict) else None):
        if isinstance(h, str) and len(h) == 64 and _HEX64.fullmatch(h):
            terms.append(f"hash:{h}")
    cid = b.get("cid")
    if isinstance(cid, str) and 0 < len(cid) < 300:
        terms.append(f"cid:{cid}")
    if t in _RECORD_TYPES or t.startswith("blob."):
        terms.extend(_record_terms(t, b))
    if extra:
        terms.extend(extra)
    return tuple(dict.fromkeys(terms))


class _Seen:
    """What the admission checks read of an entry checked in a worker process."""

    __slots__ = ("body", "signer", "time", "type")

    def __init__(self, type: str, body: dict[str, Any], signer: str, time: str) -> None:
        self.type, self.body, self.signer, self.time = type, body, signer, time


def verify_entry_batch(datas: Sequence[bytes]) -> list[tuple[bool, Any]]:
    """Parse and verify entries (a worker thread's or process's task); (True, (leaf, hash, terms, seen)) or
    (False, message). The C checker (records.fast_parse_entries) takes the well-formed ones with the GIL
    released; the others, and every refusal's message, come from parse_entry."""
    _guarded = admission.policy().guarded
    datas = [d if type(d) is bytes else bytes(d) for d in datas]
    fast = fast_parse_entries(datas)
    out: list[tuple[bool, Any]] = []
    for d, e in zip(datas, fast):
        try:
            if e is None:
                e = parse_entry(d, verify=True)
            # the caller holds the input: send the leaf back only when it is not the input itself
            seen = _Seen(e.type, e.body if _guarded(e.type) else {}, e.signer, e.time)
            out.append((True, (None if e.leaf_bytes == d else e.leaf_bytes, leaf_hash(e.leaf_bytes),
                               entry_terms(e), seen)))
        except AiledgerError as exc:
            out.append((False, exc.message))
    return out


def _check_sigs_chunk(items: Sequence[tuple[int, bytes]]) -> list[tuple[int, str]]:
    """(index, message) of the entries whose signature (or shape) fails; the C checker first."""
    verdicts = fast_verdicts([d if type(d) is bytes else bytes(d) for _, d in items])
    bad = []
    for (idx, data), v in zip(items, verdicts):
        if v == 1:
            continue
        try:
            parse_entry(data, verify=True)
        except AiledgerError as exc:
            bad.append((idx, exc.message))
    return bad


def resolve_ledger_dir(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        env = os.environ.get("AILEDGER_LEDGER")
        if not env:
            raise NotFoundError("no ledger given: pass --ledger DIR or set AILEDGER_LEDGER")
        path = env
    return Path(path)


def _refuse_used_store(config: dict[str, Any], path: Path) -> None:
    """Create the store of a new ledger, refusing one that already holds a log (entries or checkpoints):
    another ledger's log, signed by another key, would fail every audit under the new key."""
    st = open_store(config, path, create=True)
    try:
        n, cp = st.size(), st.latest_checkpoint()
    finally:
        st.close()
    if n == 0 and cp is None:
        return
    held = f"{n} entries" if n else "a checkpoint"
    if config.get("store") == "postgres":
        schema = config.get("schema") or "ailedger"
        raise ConflictError(f"PostgreSQL schema {schema!r} already holds a ledger's log ({held}); one schema "
                            f"per ledger: pass --schema <NEW_NAME>, or open the existing ledger's folder",
                            field="schema")
    raise ConflictError(f"{path} already holds a log ({held}) but no ledger config; move it away or "
                        f"init into a new folder", field="path")


class Ledger:
    def __init__(self, path: Path, config: dict[str, Any], store: LogStore, signer: Signer | None,
                 verifier: Verifier) -> None:
        self.path = path
        self.config = config
        self.store = store
        self.origin: str = config["origin"]
        self.log = TransparencyLog(store, self.origin, signer, verifier)
        self.verifier = verifier
        self.identities = KeyStore(path / "identities")
        self._pool: Any = None
        self._threads: Any = None
        self.clock: Callable[[], float] = system_clock  # seconds since the epoch; tests set their own
        self.time_skew: float = float(TIME_SKEW_SECONDS)
        self._committer: LogCommitter | None = None
        self._committer_lock = threading.Lock()
        self.commit_window = DEFAULT_WINDOW
        self.commit_max_entries = DEFAULT_MAX_ENTRIES

    def operator_identity(self) -> OperatorIdentity:
        """The log operator as a signer of entries (the log key; BadInputError when this process lacks it)."""
        return operator_identity(self)

    # -- lifecycle ------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str], origin: str, *, store: dict[str, Any] | None = None,
             passphrase: str | None = None, founders: Sequence[str] | None = None) -> Ledger:
        """Create a ledger.  ``founders`` (did:keys): the keys besides the operator's own that may found the
        DAO, stated in the log by a ``log.genesis`` entry at index 0 signed with the log key.  Without it no
        genesis is written and only the operator may found the DAO (or name founders later, once)."""
        p = Path(path)
        if not origin or any(c.isspace() for c in origin) or "+" in origin:
            raise BadInputError("origin must be one word like example.org/ai-ledger (no spaces or '+')",
                                field="origin")
        if (p / CONFIG).exists():
            raise ConflictError(f"{p} already holds a ledger", field="path")
        if p.exists() and not p.is_dir():
            raise BadInputError(f"{p} exists and is not a directory", field="path")
        if p.is_dir() and not any(p.iterdir()):
            os.chmod(p, PRIVATE_DIR_MODE)  # an empty folder made for it: private before any secret is written
        private_dir(p)  # 0700 when created here; a non-empty existing folder is left as is (`ailedger doctor`)
        config: dict[str, Any] = {"format": "ailedger/v1", "origin": origin, **(store or {"store": "sqlite"})}
        _refuse_used_store(config, p)  # before the key: a log signed by another key is never taken over
        key = Ed25519PrivateKey.generate()
        write_private_key(p / LOG_KEY, key, passphrase)
        signer = Signer(origin, key)
        (p / LOG_VKEY).write_text(signer.vkey + "\n")
        tmp = p / (CONFIG + ".tmp")
        write_private(tmp, json.dumps(config, indent=1) + "\n", durable=True)  # 0600: a DSN may hold a password
        os.replace(tmp, p / CONFIG)  # the config appears last: a half-made ledger is never "open-able"
        led = cls.open(p, passphrase=passphrase)
        if founders:
            for d in founders:
                public_key_from_did(d)
            admission.policy().write_genesis(led, list(founders))
        return led

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, passphrase: str | None = None,
             read_only: bool = False) -> Ledger:
        p = resolve_ledger_dir(path)
        cfg_path = p / CONFIG
        if not cfg_path.exists():
            raise NotFoundError(f"no ledger at {p} (create one with: ailedger init {p} --origin NAME)",
                                field="ledger")
        config = parse_json(cfg_path.read_bytes(), what=str(cfg_path))
        verifier = parse_vkey((p / LOG_VKEY).read_text())
        signer = None
        if not read_only and (p / LOG_KEY).exists():
            key = read_private_key(p / LOG_KEY, passphrase or os.environ.get("AILEDGER_LOG_PASSPHRASE"))
            signer = Signer(config["origin"], key)
        store = open_store(config, p)
        return cls(p, config, store, signer, verifier)

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
            self._committer = None
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- facts ----------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.log.size

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    # -- time ---------------------------------------------------------------------
    def now(self) -> str:
        """The ledger's clock as an entry time (RFC 3339 UTC, milliseconds)."""
        return _iso(self.clock())

    def check_time(self, entry_time: str, *, late_ok: bool = False) -> None:
        """Refuse an entry dated further than ``time_skew`` (600 s) from this writer's clock: governance time
        is the signed entry time, so a future-dated entry would move the governance clock for everyone.
        ``late_ok`` admits an older time (never a future one): re-logging a batch this ledger signed before
        a crash."""
        try:
            t = time_ms(entry_time) / 1000.0
        except BadInputError:
            raise BadInputError(f"entry time {entry_time!r} is not a valid date", field="time") from None
        now = self.clock()
        if t - now > self.time_skew or (not late_ok and now - t > self.time_skew):
            raise StaleEntryError(f"entry time {entry_time} is more than {self.time_skew:g} s from this writer's "
                                  f"clock ({_iso(now)}); entries are dated when they are signed", field="time",
                                  expected=_iso(now), found=entry_time)

    def admit(self, entries: Sequence[Any], *, governance_checked: bool = False,
              late_ok: bool = False) -> list[AiledgerError | None]:
        """The checks every write path makes before appending (nothing is changed): time within the skew and
        the signer's authority (the installed admission policy, ``authority.service.admit``).  One result per
        entry: None or the error."""
        authority_admit = admission.policy().admit
        out: list[AiledgerError | None] = []
        for e in entries:
            try:
                self.check_time(e.time, late_ok=late_ok)
                out.append(None)
            except AiledgerError as exc:
                out.append(exc)
        ok = [i for i, x in enumerate(out) if x is None]
        if ok:
            res = authority_admit(self, [entries[i] for i in ok], governance_checked=governance_checked)
            for i, r in zip(ok, res):
                out[i] = r
        return out

    # -- writing ----------------------------------------------------------------
    def make_entry(self, record_type: str, body: dict[str, Any], signer: Identity, *, v: int = 1,
                   time: str | None = None) -> SignedEntry:
        return build_entry(record_type, body, signer.did, time or self.now(), signer.sign, v=v)

    def append_record(self, record_type: str, body: dict[str, Any], signer: Identity, *,
                      terms: Iterable[str] = (), v: int = 1, time: str | None = None) -> AppendResult:
        e = self.make_entry(record_type, body, signer, v=v, time=time)
        return self.append_entry(e, terms=terms)

    # -- group commit --------------------------------------------------------------------
    @property
    def committer(self) -> LogCommitter:
        """This process's group committer for the log: every append of this Ledger (and of the
        HTTP API and the inference SDK on it) goes through it, so concurrent writers share one
        durable transaction per group (see ailedger.tlog.groupcommit)."""
        c = self._committer
        if c is None:
            with self._committer_lock:
                c = self._committer
                if c is None:
                    c = self._committer = LogCommitter(self.log, window=self.commit_window,
                                                       max_entries=self.commit_max_entries)
        return c

    def set_group_commit(self, *, window: float | None = None, max_entries: int | None = None) -> None:
        """Tune group commit: ``window`` seconds a group waits for writers known to be on their way
        (latency a busy writer may pay for throughput), ``max_entries`` per transaction."""
        if window is not None:
            if not 0 <= window <= 1:
                raise BadInputError("the group-commit window must be between 0 and 1 second", field="window")
            self.commit_window = window
        if max_entries is not None:
            if max_entries < 1:
                raise BadInputError("group-commit max_entries must be at least 1", field="max_entries")
            self.commit_max_entries = max_entries
        c = self._committer
        if c is not None:
            c.window, c.max_weight = self.commit_window, self.commit_max_entries

    def append_entry(self, entry: SignedEntry, *, terms: Iterable[str] = (), governance_checked: bool = False,
                     late_ok: bool = False) -> AppendResult:
        """Append one already-signed entry, in the next group: its signature, its time (within the skew) and
        its signer's authority (docs/authority.md) are checked first, and its signer must not be revoked
        (checked inside the group); a refusal stores nothing."""
        entry.verify()
        h = leaf_hash(entry.leaf_bytes)
        for err in self.admit([entry], governance_checked=governance_checked, late_ok=late_ok):
            if err is not None and not self.store.indices_of([h]):  # a copy already logged is a duplicate
                raise err
        row = LeafRow(entry.leaf_bytes, h, entry_terms(entry, terms))
        return self.committer.call(AppendRequest([row], self._signer_allowed(entry.signer),
                                                 (f"revoked:{entry.signer}",)))[0]

    def _signer_allowed(self, signer: str) -> Any:
        def check(view: GroupView) -> None:
            if view.has_term(f"revoked:{signer}") or signer in view.notes.get("revoked", ()):
                raise BadInputError(f"identity {signer} was revoked in this ledger", field="signer")
        return check

    def check_signer_allowed(self, entry: SignedEntry) -> None:
        """Refuse entries by identities revoked in this ledger (identity.revoke records)."""
        for _ in self.store.find(f"revoked:{entry.signer}", -1, 1):
            raise BadInputError(f"identity {entry.signer} was revoked in this ledger", field="signer")

    def append_entries(self, datas: Sequence[bytes], *, parallel: bool = True, batch: int = 2000,
                       commit_every: int = 20000,
                       on_batch: Callable[[int], None] | None = None) -> list[AppendResult | str]:
        """Check and append many serialized entries; each result is an AppendResult or an error message.

        Signatures are checked on every core (a process pool); a bad entry is reported and skipped,
        the good ones are appended in durable batches (through the group committer, one batch
        committing while the next is checked)."""
        results: list[AppendResult | str] = []
        chunks = [datas[i : i + batch] for i in range(0, len(datas), batch)]
        if parallel and len(datas) >= 2 * batch and (os.cpu_count() or 1) > 1:
            # the C checker releases the GIL: threads (no pickling of entries and results) when it is built
            checked: Iterable[list[tuple[bool, Any]]] = (
                self._get_threads().map(verify_entry_batch, chunks) if FAST_VERIFY
                else self._get_pool().imap(verify_entry_batch, chunks))
        else:
            checked = map(verify_entry_batch, chunks)
        rows: list[LeafRow] = []
        where: list[int] = []
        inflight: list[tuple[list[int], Any]] = []
        committer = self.committer

        def settle(keep: int) -> None:
            while len(inflight) > keep:
                w, fut = inflight.pop(0)
                for pos, r in zip(w, fut.result()):
                    results[pos] = r

        def flush() -> None:
            nonlocal rows, where
            inflight.append((where, committer.submit(AppendRequest(rows), urgent=True)))
            rows, where = [], []
            settle(1)

        _guarded = admission.policy().guarded
        pos = 0
        for res in checked:
            good = [(pos + k, val) for k, (ok, val) in enumerate(res) if ok]
            if (rows or inflight) and any(_guarded(v[3].type) for _, v in good):
                if rows:
                    flush()
                settle(0)  # the authority of what follows may depend on what is pending: it must be in the log
            verdicts = self.admit([v[3] for _, v in good])
            refused = {p: err for (p, _), err in zip(good, verdicts) if err is not None}
            if refused:  # an entry already in the log is a duplicate, not a refusal
                hashes = {p: v[1] for p, v in good if p in refused}
                present = self.store.indices_of(list(hashes.values()))
                refused = {p: err for p, err in refused.items() if hashes[p] not in present}
            for ok, val in res:
                data = datas[pos]
                if ok and pos not in refused:
                    where.append(len(results))
                    results.append("")
                    leaf, h, terms, _seen = val
                    rows.append(LeafRow(bytes(data) if leaf is None else leaf, h, terms))
                elif ok:
                    results.append(refused[pos].message)
                else:
                    results.append(str(val))
                pos += 1
            # fewer, larger durable commits: the checking pool keeps working meanwhile
            if len(rows) >= commit_every:
                flush()
            if on_batch:
                on_batch(len(res))
        if rows:
            flush()
        settle(0)
        return results

    def _get_threads(self) -> Any:
        if self._threads is None:
            from concurrent.futures import ThreadPoolExecutor

            self._threads = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="ailedger-verify")
        return self._threads

    def _get_pool(self) -> Any:
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            self._pool = ctx.Pool(os.cpu_count() or 2)
        return self._pool

    def checkpoint(self) -> bytes:
        return self.log.checkpoint()

    def prove(self, index: int, extra: bytes | None = None) -> bytes:
        return self.log.prove(index, extra)

    # -- reading ------------------------------------------------------------------
    def entry_bytes(self, index: int) -> bytes:
        return self.log.entry(index)

    def entry(self, index: int) -> SignedEntry:
        return parse_entry(self.log.entry(index), verify=False)

    def find(self, type: str | None = None, signer: str | None = None, term: str | None = None,
             limit: int | None = None) -> Iterator[tuple[int, SignedEntry]]:
        """Entries matching all the given filters, in log order."""
        terms = [t for t in (f"type:{type}" if type else None, f"signer:{signer}" if signer else None,
                             term) if t]
        if not terms:
            raise BadInputError("find needs a type, a signer or a term")
        first, rest = terms[0], terms[1:]
        after, n = -1, 0
        while True:
            idxs = self.store.find(first, after, 1000)
            if not idxs:
                return
            for idx in idxs:
                if all(self.store.find(t, idx - 1, 1) == [idx] for t in rest):
                    yield idx, self.entry(idx)
                    n += 1
                    if limit is not None and n >= limit:
                        return
            after = idxs[-1]

    # -- identities as records ------------------------------------------------------
    def new_identity(self, name: str, passphrase: str | None = None) -> tuple[Identity, AppendResult]:
        ident = self.identities.create(name, passphrase)
        res = self.append_record("identity.register", {"name": name, "did": ident.did,
                                                       "subjects": [ident.did]}, ident)
        return ident, res

    def rotate_identity(self, name: str, passphrase: str | None = None) -> tuple[Identity, AppendResult]:
        old = self.identities.load(name, passphrase)
        new = self.identities.replace(name, passphrase)
        body = {"name": name, "old": old.did, "new": new.did, "subjects": [old.did, new.did]}
        res = self.append_record("identity.rotate", body, old)
        self.append_record("identity.register", {"name": name, "did": new.did, "subjects": [new.did],
                                                 "rotated_from": old.did}, new)
        return new, res

    def revoke_identity(self, name: str, passphrase: str | None = None, reason: str = "") -> AppendResult:
        ident = self.identities.load(name, passphrase)
        body = {"name": name, "did": ident.did, "reason": reason, "subjects": [ident.did]}
        e = self.make_entry("identity.revoke", body, ident)
        e.verify()
        row = LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e, [f"revoked:{ident.did}"]))
        did = ident.did

        def note_revoked(view: GroupView) -> None:  # later requests of the same group by this key are refused
            view.notes.setdefault("revoked", set()).add(did)

        return self.committer.append([row], note_revoked)[0]

    def did_for(self, name_or_did: str) -> str:
        if name_or_did.startswith("did:key:"):
            public_key_from_did(name_or_did)
            return name_or_did
        did = self.identities.did_of(name_or_did)
        if did is None:
            raise NotFoundError(f"no identity named {name_or_did!r}", field="identity")
        return did

    # -- audit --------------------------------------------------------------------------
    def audit(self, *, signatures: bool = False, progress: Callable[[int], None] | None = None) -> AuditReport:
        check = None
        if signatures:
            big = self.size >= 20000
            multi = big and (os.cpu_count() or 1) > 1
            # the C checker releases the GIL: threads use every core without a process pool's pickling
            threads = self._get_threads() if multi and FAST_VERIFY else None
            pool = self._get_pool() if multi and threads is None else None

            def check(items: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, str]]:
                lst = list(items)
                step = 2000
                parts = [lst[i : i + step] for i in range(0, len(lst), step)]
                if threads is not None:
                    futs = [threads.submit(_check_sigs_chunk, p) for p in parts]
                    return (x for f in futs for x in f.result())
                if pool is None:
                    res = [_check_sigs_chunk(p) for p in parts]
                    return (x for r in res for x in r)
                async_res = pool.map_async(_check_sigs_chunk, parts)
                return _lazy(async_res)

        return self.log.audit(check_signatures=check, progress=progress)


def _lazy(async_res: Any) -> Iterator[tuple[int, str]]:
    for r in async_res.get():
        yield from r
