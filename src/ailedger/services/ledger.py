"""The Ledger: one directory holding a log, its signing key, identities and config.

This is the service every feature and every shell (CLI, HTTP API, web) calls.
It reads the clock (``time`` fields) and the file system; the pure rules live in
``ailedger.core`` and the log algorithm in ``ailedger.log``.
"""

from __future__ import annotations

import datetime as _dt
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.core.canonical import parse_json
from ailedger.core.errors import AiledgerError, BadInputError, ConflictError, NotFoundError
from ailedger.core.identity import public_key_from_did
from ailedger.core.merkle import leaf_hash
from ailedger.core.note import Signer, Verifier, parse_vkey
from ailedger.core.records import SignedEntry, build_entry, parse_entry
from ailedger.log import AppendResult, AuditReport, TransparencyLog
from ailedger.log.groupcommit import DEFAULT_MAX_ENTRIES, DEFAULT_WINDOW, AppendRequest, GroupView, LogCommitter
from ailedger.services.identities import Identity, KeyStore, read_private_key, write_private_key
from ailedger.storage import LeafRow, LogStore, open_store

__all__ = ["Ledger", "utc_now", "entry_terms", "verify_entry_batch"]

CONFIG = "config.json"
LOG_KEY = "log.key"
LOG_VKEY = "log.vkey"


def utc_now() -> str:
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def entry_terms(e: SignedEntry, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Index terms of an entry: its type, its signer and any ``subjects`` the body names."""
    terms = [f"type:{e.type}", f"signer:{e.signer}"]
    subj = e.body.get("subjects")
    if isinstance(subj, list):
        terms.extend(f"subject:{s}" for s in subj if isinstance(s, str) and len(s) < 300)
    terms.extend(extra)
    return tuple(dict.fromkeys(terms))


def verify_entry_batch(datas: Sequence[bytes]) -> list[tuple[bool, Any]]:
    """Worker function: parse and verify entries; (True, (leaf, hash, terms)) or (False, message)."""
    out: list[tuple[bool, Any]] = []
    for d in datas:
        try:
            e = parse_entry(d, verify=True)
            # the caller holds the input: send the leaf back only when it is not the input itself
            out.append((True, (None if e.leaf_bytes == d else e.leaf_bytes, leaf_hash(e.leaf_bytes),
                               entry_terms(e))))
        except AiledgerError as exc:
            out.append((False, exc.message))
    return out


def _check_sigs_chunk(items: Sequence[tuple[int, bytes]]) -> list[tuple[int, str]]:
    bad = []
    for idx, data in items:
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
        self._committer: LogCommitter | None = None
        self._committer_lock = threading.Lock()
        self.commit_window = DEFAULT_WINDOW
        self.commit_max_entries = DEFAULT_MAX_ENTRIES

    # -- lifecycle ------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str], origin: str, *, store: dict[str, Any] | None = None,
             passphrase: str | None = None) -> "Ledger":
        p = Path(path)
        if not origin or any(c.isspace() for c in origin) or "+" in origin:
            raise BadInputError("origin must be one word like example.org/ai-ledger (no spaces or '+')",
                                field="origin")
        if (p / CONFIG).exists():
            raise ConflictError(f"{p} already holds a ledger", field="path")
        if p.exists() and not p.is_dir():
            raise BadInputError(f"{p} exists and is not a directory", field="path")
        p.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {"format": "ailedger/v1", "origin": origin, **(store or {"store": "sqlite"})}
        key = Ed25519PrivateKey.generate()
        write_private_key(p / LOG_KEY, key, passphrase)
        signer = Signer(origin, key)
        (p / LOG_VKEY).write_text(signer.vkey + "\n")
        open_store(config, p, create=True).close()
        tmp = p / (CONFIG + ".tmp")
        tmp.write_text(json.dumps(config, indent=1) + "\n")
        os.replace(tmp, p / CONFIG)  # the config appears last: a half-made ledger is never "open-able"
        return cls.open(p)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, passphrase: str | None = None,
             read_only: bool = False) -> "Ledger":
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
        self.store.close()

    def __enter__(self) -> "Ledger":
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

    # -- writing ----------------------------------------------------------------
    def make_entry(self, record_type: str, body: dict[str, Any], signer: Identity, *, v: int = 1,
                   time: str | None = None) -> SignedEntry:
        return build_entry(record_type, body, signer.did, time or utc_now(), signer.sign, v=v)

    def append_record(self, record_type: str, body: dict[str, Any], signer: Identity, *,
                      terms: Iterable[str] = (), v: int = 1, time: str | None = None) -> AppendResult:
        e = self.make_entry(record_type, body, signer, v=v, time=time)
        return self.append_entry(e, terms=terms)

    # -- group commit --------------------------------------------------------------------
    @property
    def committer(self) -> LogCommitter:
        """This process's group committer for the log: every append of this Ledger (and of the
        HTTP API and the inference SDK on it) goes through it, so concurrent writers share one
        durable transaction per group (see ailedger.log.groupcommit)."""
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

    def append_entry(self, entry: SignedEntry, *, terms: Iterable[str] = ()) -> AppendResult:
        """Append one already-signed entry (its signature is checked first), in the next group."""
        entry.verify()
        row = LeafRow(entry.leaf_bytes, leaf_hash(entry.leaf_bytes), entry_terms(entry, terms))
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
            checked: Iterable[list[tuple[bool, Any]]] = self._get_pool().imap(verify_entry_batch, chunks)
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

        pos = 0
        for res in checked:
            for ok, val in res:
                data = datas[pos]
                pos += 1
                if ok:
                    where.append(len(results))
                    results.append("")
                    leaf, h, terms = val
                    rows.append(LeafRow(bytes(data) if leaf is None else leaf, h, terms))
                else:
                    results.append(str(val))
            # fewer, larger durable commits: the checking pool keeps working meanwhile
            if len(rows) >= commit_every:
                flush()
            if on_batch:
                on_batch(len(res))
        if rows:
            flush()
        settle(0)
        return results

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
            pool = self._get_pool() if big and (os.cpu_count() or 1) > 1 else None

            def check(items: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, str]]:
                lst = list(items)
                step = 2000
                parts = [lst[i : i + step] for i in range(0, len(lst), step)]
                if pool is None:
                    res = [_check_sigs_chunk(p) for p in parts]
                    return (x for r in res for x in r)
                async_res = pool.map_async(_check_sigs_chunk, parts)
                return _lazy(async_res)

        return self.log.audit(check_signatures=check, progress=progress)


def _lazy(async_res: Any) -> Iterator[tuple[int, str]]:
    for r in async_res.get():
        yield from r
