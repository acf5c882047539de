"""Write policy of a public ledger service: what the HTTP API checks before anything is stored.

Every submitted entry is checked, in this order, and a batch is all-or-nothing (if any entry
fails, nothing of the batch is stored and every failure is reported):

1. schema and size (``ailedger.encoding.records.parse_entry``: fields, types, 65535-byte limit);
2. the signer's Ed25519 signature over the RFC 8785 bytes;
3. replay: an entry already in the log (same canonical bytes, hence same leaf hash) is *not*
   appended again; the answer is its first index with ``duplicate: true`` (the log's dedup);
4. freshness (new entries only): ``time`` must lie within ``time_window`` seconds of the
   server's clock (default 600 s either way), so an old signed entry cannot be introduced late;
5. identity policy (new entries only): the signer must have registered itself in this log with a
   self-signed ``identity.register`` entry (body ``{"name", "did"}`` with ``did == signer``), which
   may come earlier in the same batch, and must not be revoked: a self-signed ``identity.revoke``
   (body ``did == signer``, as ``Ledger.revoke_identity`` writes) bars every later entry by that key;
6. authority (new entries only): the signer may sign this type with effect (docs/authority.md), judged by
   the installed admission policy (``ailedger.tlog.admission``: ``authority.service.admit``), the same rules every fold applies; otherwise 403 ``not_authorised``
   (a batch whose only failures are of this kind is refused with 403 too).

Per-identity rate limits are a token bucket per signer (entries/second, burst): kept per process by
default, in a memory-mapped table shared by one host's processes (:class:`SharedBuckets`), or in the
store where every server sees them (PostgreSQL: ``stores.postgres.PostgresBuckets``, one budget per
identity for any number of servers on any number of hosts). All three follow :class:`Buckets`.

Steps 1-2 run per request (:meth:`Ingestor.prepare`, on the group committer's worker threads for the
HTTP API); steps 3-5 and the rate limit run for a whole group of requests just before the group's one
durable transaction (:meth:`Ingestor._policy`, see ``ailedger.tlog.groupcommit``), and a request that
fails them fails alone.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import hashlib
import operator
import os
import struct
import threading
import time as _time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ailedger.encoding.canonical import canonical_value_bytes, parse_canonical
from ailedger.encoding.fasthash import leaf_hashes
from ailedger.encoding.records import (
    FAST_VERIFY,
    SignedEntry,
    fast_check_leaves,
    fast_parse_entries,
    fast_parse_leaves,
    fast_parse_rows,
    parse_entry,
    split_batch,
)
from ailedger.errors import AiledgerError, BadInputError, NotAuthorisedError, StorageError
from ailedger.tlog import admission
from ailedger.tlog.groupcommit import AppendRequest, GroupView
from ailedger.tlog.ledger import Ledger, entry_terms
from ailedger.tlog.log import AppendResult
from ailedger.tlog.stores import LeafRow

__all__ = [
    "IDENTITY_REGISTER",
    "BatchRejectedError",
    "Buckets",
    "IngestPolicy",
    "Ingestor",
    "RateLimitedError",
    "RevokedIdentityError",
    "StaleEntryError",
    "UnknownIdentityError",
]

IDENTITY_REGISTER = "identity.register"
IDENTITY_REVOKE = "identity.revoke"
_IDENTITY_TYPES = frozenset({IDENTITY_REGISTER, IDENTITY_REVOKE})


class StaleEntryError(BadInputError):
    """The entry's time is too far from the server's clock."""

    code = "stale_time"


class UnknownIdentityError(BadInputError):
    """The signer never registered in this log."""

    code = "unknown_identity"


class RevokedIdentityError(BadInputError):
    code = "revoked_identity"


class BatchRejectedError(BadInputError):
    """At least one entry of a batch failed; nothing of the batch was stored."""

    code = "batch_rejected"


class RateLimitedError(AiledgerError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **details: Any) -> None:
        super().__init__(message, retry_after=round(retry_after, 3), **details)
        self.retry_after = retry_after


@dataclass
class IngestPolicy:
    time_window: float = 600.0  # seconds either side of the server clock
    require_registered: bool = True
    rate: float = 20000.0  # entries per second per identity (shared by the servers that share the buckets)
    burst: float = 100000.0
    max_batch: int = 10000


def _parse_time(s: str) -> float:
    # format already checked by parse_entry: YYYY-MM-DDTHH:MM:SS[.fff]Z
    base, _, frac = s[:-1].partition(".")
    try:
        t = _seconds(base)
    except ValueError as exc:
        raise BadInputError(f"entry time {s!r} is not a valid date", field="time") from exc
    return t + (float("0." + frac) if frac else 0.0)


@functools.lru_cache(maxsize=4096)
def _seconds(base: str) -> float:
    """UTC seconds of YYYY-MM-DDTHH:MM:SS (cached: the entries of one second share it); ValueError if no date."""
    return _dt.datetime.fromisoformat(base).replace(tzinfo=_dt.timezone.utc).timestamp()


class Buckets(Protocol):
    """Token buckets kept outside the process (shared by several servers)."""

    def charge(self, counts: dict[str, int], rate: float, burst: float, now: float) -> float:
        """Take ``counts`` tokens per signer, all or none: 0.0, or the seconds to wait (``inf``: over the burst)."""
        ...

    def close(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    at: float


class SharedBuckets:
    """Token buckets shared by every server process on one host: a small memory-mapped table (one
    slot per signer: 8 bytes of SHA-256(did), tokens, last update; open addressing) updated under an
    exclusive ``fcntl`` lock, so ``--workers N`` enforce one limit per identity, not N.

    The table holds 2^16 slots; a full probe run evicts its least recently used slot (a bucket idle
    for burst/rate seconds is full anyway, so nothing is lost then)."""

    SLOTS = 1 << 16
    PROBE = 16
    _REC = struct.Struct("<8sdd")

    def __init__(self, path: Path) -> None:
        import mmap

        path.parent.mkdir(parents=True, exist_ok=True)
        size = self.SLOTS * self._REC.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self._mm = mmap.mmap(self._fd, size)

    def charge(self, counts: dict[str, int], rate: float, burst: float, now: float) -> float:
        """Take ``counts`` tokens per signer, all or none. Returns 0.0, or the seconds to wait
        (``inf`` when a count exceeds the burst)."""
        import fcntl

        rec, mm = self._REC, self._mm
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            slots: list[tuple[int, bytes, float]] = []
            wait = 0.0
            for did, n in counts.items():
                tag = hashlib.sha256(did.encode()).digest()[:8]
                home = int.from_bytes(tag[:4], "little") % self.SLOTS
                chosen, tokens, oldest = -1, burst, None
                for j in range(self.PROBE):
                    i = (home + j) % self.SLOTS
                    t, tok, at = rec.unpack_from(mm, i * rec.size)
                    if t == tag:
                        chosen, tokens = i, min(burst, tok + max(0.0, now - at) * rate)
                        break
                    if t == b"\0" * 8:
                        chosen = i
                        break
                    if oldest is None or at < oldest[1]:
                        oldest = (i, at)
                if chosen < 0 and oldest is not None:
                    chosen = oldest[0]  # evict the least recently used slot of the run
                if n > tokens:
                    wait = max(wait, (n - tokens) / rate if n <= burst else float("inf"))
                slots.append((chosen, tag, tokens - n))
                rec.pack_into(mm, chosen * rec.size, tag, tokens, now)
            if not wait:
                for i, tag, left in slots:
                    rec.pack_into(mm, i * rec.size, tag, left, now)
            return wait
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._mm.close()
        os.close(self._fd)


@dataclass
class Ingestor:
    ledger: Ledger
    policy: IngestPolicy = field(default_factory=IngestPolicy)
    clock: Any = _time.time
    shared_buckets: Buckets | None = None  # None: buckets in this process only

    def __post_init__(self) -> None:
        self._known: set[str] = set()
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        admission.policy().load()  # now, before serving: no request pays for loading the rules

    # -- identity policy ----------------------------------------------------------
    def is_registered(self, did: str) -> bool:
        if did in self._known:
            return True
        store = self.ledger.store
        hit = bool(store.find(f"identity:{did}", -1, 1))
        if not hit:  # registered through the CLI (Ledger.new_identity): subjects=[did]
            for idx in store.find(f"subject:{did}", -1, 200):
                e = self.ledger.entry(idx)
                if e.type == IDENTITY_REGISTER and e.signer == did:
                    hit = True
                    break
        if hit:
            self._known.add(did)
        return hit

    def is_revoked(self, did: str) -> bool:
        return bool(self.ledger.store.find(f"revoked:{did}", -1, 1))

    # -- rate limit ----------------------------------------------------------------
    def charge(self, counts: dict[str, int]) -> None:
        p = self.policy
        now = self.clock()
        with self._lock:
            if self.shared_buckets is not None:
                wait = self.shared_buckets.charge(counts, p.rate, p.burst, now)
                self._raise_if_over(wait)
                return
            wait = 0.0
            for did, n in counts.items():
                b = self._buckets.get(did)
                if b is None:
                    b = self._buckets[did] = _Bucket(p.burst, now)
                b.tokens = min(p.burst, b.tokens + (now - b.at) * p.rate)
                b.at = now
                if n > b.tokens:
                    wait = max(wait, (n - b.tokens) / p.rate if n <= p.burst else float("inf"))
            self._raise_if_over(wait)
            for did, n in counts.items():
                self._buckets[did].tokens -= n

    def _raise_if_over(self, wait: float) -> None:
        p = self.policy
        if wait == float("inf"):
            raise BadInputError(f"batch larger than the per-identity burst of {int(p.burst)} entries",
                                field="entries")
        if wait:
            raise RateLimitedError(f"rate limit of {p.rate:g} entries/s per identity exceeded",
                                   retry_after=max(wait, 0.001))

    # -- the write path -----------------------------------------------------------------
    def submit(self, objs: Sequence[Any], *, registration: bool = False, batch: bool = False,
               canonical: bool = False) -> list[AppendResult]:
        """Check and append entries (JSON values). All-or-nothing; see the module docstring.
        ``canonical``: the entries come from a ``canonical.parse_canonical`` document (their bytes
        are taken as they are, without a second canonicalisation).

        One entry (``batch=False``) fails with its own error; a batch fails with BatchRejectedError.
        The append goes through the ledger's group committer: concurrent submissions share one
        durable transaction, and this returns once the group holding them is durable."""
        c = self.ledger.committer
        with c.expecting():
            prep = self.prepare(objs, registration=registration, batch=batch, canonical=canonical)
            fut = c.submit(AppendRequest(prep.rows, self._policy(prep), _lookups(prep)))
        return self._done(prep, fut.result())

    async def submit_async(self, objs: Sequence[Any], *, registration: bool = False,
                           batch: bool = False, canonical: bool = False) -> list[AppendResult]:
        """:meth:`submit` for an asyncio server: parsing and signature checks run on the group
        committer's worker threads (libsodium releases the GIL, so they use every core; a big
        batch is split across threads), the event loop only awaits the group's commit."""
        n = len(objs) if isinstance(objs, (list, tuple)) else 0
        got = await self._submit_prepared(
            n, lambda: self.prepare(objs, registration=registration, batch=batch, canonical=canonical),
            lambda a, b: self._prepare_part(objs[a:b], a, registration, canonical=canonical),
            check=lambda: self._check_count(objs))
        assert got is not None  # _prepare_part always decides
        return got

    async def submit_body_async(self, body: bytes) -> list[AppendResult] | None:
        """:meth:`submit_async` of a batch request's body ``{"entries": [...]}`` written as canonical JSON (what
        ailedger's clients send), without a Python value per entry: the body is split into its entries' bytes
        in C (:func:`records.split_batch`), and each part of it checked by one C pass on a worker thread (shape,
        signature, leaf hash, index terms and the SignedEntry the policy reads, no dict per entry:
        :func:`records.fast_parse_leaves`). Returns None, having submitted nothing, whenever that path does not
        decide the request alone: a body of any other shape, an entry the C checker does not take (verdict 2,
        found before any signature is checked), a body naming ``identity.register`` (a registration is
        checked further, and may need a credential), no entries or more than ``max_batch``. The caller then
        parses the body and calls submit_async, whose answer -- results, or error -- this path's equals."""
        if not FAST_VERIFY or b"identity.register" in body:
            return None
        leaves = split_batch(body)
        if leaves is None or not 0 < len(leaves) <= self.policy.max_batch:
            return None

        def whole() -> _Prepared:
            part = _leaves_part(leaves, 0)
            if part is None:
                raise _NotTaken
            return self._merge([part], len(leaves))

        try:
            return await self._submit_prepared(len(leaves), whole, lambda a, b: _leaves_part(leaves[a:b], a))
        except _NotTaken:
            return None

    async def _submit_prepared(self, n: int, whole: Callable[[], _Prepared],
                               part: Callable[[int, int], _Part | None],
                               check: Callable[[], None] | None = None) -> list[AppendResult] | None:
        """The asyncio road both submit_async and submit_body_async take: fewer than two chunks of ``n`` entries
        are prepared by ``whole()`` on the group committer's worker thread; more are prepared in parts
        ``part(a, b)`` (entries a..b) on the executor's threads, merged, and submitted as one request. None when
        a part is None (nothing submitted). Returns once the group holding the request is durable."""
        c = self.ledger.committer
        if n < 2 * _PREPARE_CHUNK:
            made: list[_Prepared] = []

            def make() -> AppendRequest:
                prep = whole()
                made.append(prep)
                return AppendRequest(prep.rows, self._policy(prep), _lookups(prep))

            results = await c.acall(make=make)
            return self._done(made[0], results)
        loop = asyncio.get_running_loop()
        with c.expecting():
            if check is not None:
                check()
            step = -(-n // _PREPARE_THREADS)
            pieces = await asyncio.gather(*[loop.run_in_executor(None, part, a, min(a + step, n))
                                            for a in range(0, n, step)])
            if None in pieces:
                return None
            prep = self._merge(pieces, n)  # type: ignore[arg-type]  # no None
            fut = c.submit(AppendRequest(prep.rows, self._policy(prep), _lookups(prep)))
        return self._done(prep, await asyncio.wrap_future(fut))

    def _done(self, prep: _Prepared, results: list[AppendResult]) -> list[AppendResult]:
        for e in prep.parsed if IDENTITY_REGISTER in set(map(_TYPE, prep.parsed)) else ():
            if e.type == IDENTITY_REGISTER:
                self._known.add(e.signer)
        if prep.charged_all and any(map(_DUPLICATE, results)):
            # the request was charged for every entry before its leaves were looked up: give back what the
            # entries already logged took (only new entries are charged)
            back: dict[str, int] = {}
            for e, r in zip(prep.parsed, results):
                if r.duplicate:
                    back[e.signer] = back.get(e.signer, 0) - 1
            self.charge(back)  # a negative charge never waits: it adds tokens (capped at the burst on refill)
        return results

    def request(self, prep: _Prepared) -> AppendRequest:
        """The group committer's request for entries made by :meth:`prepare` (their policy check runs
        on the committer, as for :meth:`submit`); pass the committer's results to :meth:`done`."""
        return AppendRequest(prep.rows, self._policy(prep), _lookups(prep))

    done = _done

    def prepare_singles(self, leaves: Sequence[bytes], objs: Sequence[dict[str, Any]]
                        ) -> list[_Prepared | AiledgerError]:
        """:meth:`prepare` of many single-entry requests at once, each a canonical entry (its bytes and its
        parsed value, from ``canonical.parse_canonical``): the signatures are checked in one C call (the
        GIL released once), and each request gets the result, or the error, that :meth:`prepare` of its
        entry alone gives."""
        fast = fast_parse_entries(list(leaves), list(objs)) if FAST_VERIFY else [None] * len(objs)
        out: list[_Prepared | AiledgerError] = []
        for e, obj in zip(fast, objs):
            try:
                if e is None or e.type == IDENTITY_REGISTER:  # refused, or more to check: the one-entry path
                    out.append(self.prepare([obj], canonical=True))
                else:
                    out.append(self._merge([([e], [], None)], 1, single=True))
            except AiledgerError as exc:
                out.append(exc)
        return out

    def prepare_group(self, leaves: Sequence[bytes], objs: Sequence[dict[str, Any]]
                      ) -> tuple[_Prepared | None, list[int], list[tuple[int, _Prepared | AiledgerError]]]:
        """:meth:`prepare_singles` for a front that appends a group's single-entry requests together: the
        entries that pass the C check (and are not identity registrations) as one batch ``(merged, their
        positions)``, the others one by one ``(position, prepared or error)``, as :meth:`prepare` of each
        alone gives. The merged batch is one request to the group committer, checked once as a batch is;
        when it is refused, :meth:`split` gives each entry's own one-entry request."""
        made = fast_parse_rows(list(leaves), list(objs)) if FAST_VERIFY else None
        if made is not None:  # with the leaf hashes and index terms, in the same C pass
            fast = made[0]
        else:
            fast = fast_parse_entries(list(leaves), list(objs)) if FAST_VERIFY else [None] * len(objs)
        good: list[SignedEntry] = []
        where: list[int] = []
        rest: list[tuple[int, _Prepared | AiledgerError]] = []
        for i, (e, obj) in enumerate(zip(fast, objs)):
            if e is not None and e.type != IDENTITY_REGISTER:
                good.append(e)
                where.append(i)
                continue
            try:
                rest.append((i, self.prepare([obj], canonical=True)))
            except AiledgerError as exc:
                rest.append((i, exc))
        rows = ([made[1][i] for i in where], [made[2][i] for i in where]) if made is not None else None
        return (self._merge([(good, [], rows)], len(good)) if good else None), where, rest

    def prepare_bodies(self, bodies: Sequence[bytes], *, split: bool = False
                       ) -> tuple[_Prepared | None, list[int], list[int]]:
        """:meth:`prepare_group` of single-entry request bodies as they arrived, bytes only (no parsed value): the
        bodies the C checker takes -- each its own canonical form, of exactly the shape parse_entry accepts, its
        signature valid, not an identity registration -- as one batch ``(merged, their positions)``, checked in
        one C pass (GIL released) without a Python dict per entry (:func:`records.fast_check_leaves`); and the
        positions of the others, for the caller's general path one by one (parse the body, :meth:`prepare`): a
        bad signature, a body that is not the canonical JSON of an entry, a registration. The merged batch is
        the one prepare_group makes of the same entries (the same rows; each entry's body read when asked).
        ``split``: half the signatures checked on a second core meanwhile (:func:`records.fast_check_leaves`)."""
        n = len(bodies)
        made = fast_check_leaves(bodies, split=split) if FAST_VERIFY and n else None
        if made is None:
            return None, [], list(range(n))
        verdicts, hashes, terms, entries = made
        if verdicts.count(1) == n and IDENTITY_REGISTER not in set(map(_TYPE, entries)):  # the common piece
            return self._merge([(entries, [], (hashes, terms))], n), list(range(n)), []  # type: ignore[list-item]
        where: list[int] = []
        rest: list[int] = []
        for i, (v, e) in enumerate(zip(verdicts, entries)):
            (where if v == 1 and e is not None and e.type != IDENTITY_REGISTER else rest).append(i)
        if not where:
            return None, where, rest
        good = [entries[i] for i in where]
        rows = ([hashes[i] for i in where], [terms[i] for i in where])
        return self._merge([(good, [], rows)], len(good)), where, rest  # type: ignore[list-item]  # no None

    def merge_singles(self, preps: Sequence[_Prepared]) -> _Prepared:
        """Several prepared requests as one batch (all-or-nothing; see :meth:`prepare_group`)."""
        return _Prepared([e for p in preps for e in p.parsed], [h for p in preps for h in p.hashes],
                         [r for p in preps for r in p.rows], False, sum(p.n for p in preps))

    @staticmethod
    def split(prep: _Prepared) -> list[_Prepared]:
        """Each entry of ``prep`` as the one-entry request :meth:`prepare` of it alone makes."""
        return [_Prepared([e], [h], [r], True, 1) for e, h, r in zip(prep.parsed, prep.hashes, prep.rows)]

    def _check_count(self, objs: Sequence[Any]) -> None:
        if not objs:
            raise BadInputError("no entries given", field="entries")
        if len(objs) > self.policy.max_batch:
            raise BadInputError(f"{len(objs)} entries in one batch; the limit is {self.policy.max_batch}",
                                field="entries")

    def prepare(self, objs: Sequence[Any], *, registration: bool = False, batch: bool = False,
                canonical: bool = False) -> _Prepared:
        """Steps 1-2 of the module docstring (schema, size, signature): no store access, any thread."""
        self._check_count(objs)
        single = not batch and len(objs) == 1
        part = self._prepare_part(objs, 0, registration, single=single, canonical=canonical)
        return self._merge([part], len(objs), single=single)

    def _prepare_part(self, objs: Sequence[Any], offset: int, registration: bool, *, single: bool = False,
                      canonical: bool = False) -> _Part:
        parsed: list[SignedEntry] = []
        errors: list[tuple[int, AiledgerError]] = []
        fast: list[SignedEntry | None] | None = None
        if canonical and FAST_VERIFY and objs and set(map(type, objs)) == _DICT_ONLY:
            # values of a parse_canonical document: their canonical bytes need no walk, and the C checker
            # takes the well-formed ones whole (shape + signature, GIL released); the rest take _parse.
            # (map over C callables: this runs for every entry written)
            leaves = list(map(canonical_value_bytes, objs))
            # one C pass: the checks, and the leaf hashes and index terms the append needs (fast_parse_rows)
            made = fast_parse_rows(leaves, objs)
            fast = made[0] if made is not None else fast_parse_entries(leaves, objs)
            if not registration and set(map(type, fast)) == _ENTRY_ONLY and IDENTITY_REGISTER not in set(map(_TYPE, fast)):
                # every entry checked, nothing more to ask
                return fast, errors, (made[1], made[2]) if made is not None else None  # type: ignore[return-value]
        for i, obj in enumerate(objs):
            try:
                e = fast[i] if fast is not None else None
                if e is None:
                    e = _parse(obj, canonical)
                if registration or e.type == IDENTITY_REGISTER:
                    _check_registration(e)
                parsed.append(e)
            except AiledgerError as exc:
                if single:
                    raise
                errors.append((offset + i, exc))
            except RecursionError:
                if single:
                    raise BadInputError("entry is nested too deeply") from None
                errors.append((offset + i, BadInputError("entry is nested too deeply")))
        return parsed, errors, None

    def _merge(self, pieces: Sequence[_Part], n: int, *, single: bool = False) -> _Prepared:
        parsed = pieces[0][0] if len(pieces) == 1 else [e for p, _, _ in pieces for e in p]
        errors = [x for _, errs, _ in pieces for x in errs]
        if errors:
            _reject(errors, n)
        leaves = list(map(_LEAF_BYTES, parsed))
        made = [p[2] for p in pieces if p[2] is not None]
        c_terms: list[tuple[str, ...] | None] | None = None
        if len(made) != len(pieces):
            hashes = leaf_hashes(leaves)  # one C call for the batch
        elif len(made) == 1:  # the C checker made the leaf hashes and (most) index terms with its checks
            hashes, c_terms = made[0]
        else:
            hashes = [h for m in made for h in m[0]]
            c_terms = [t for m in made for t in m[1]]
        if _IDENTITY_TYPES.isdisjoint(map(_TYPE, parsed)):
            # most batches: no identity entry, so no extra term; the rows made by C iterators (a LeafRow is a
            # tuple: tuple.__new__ skips the named tuple's Python-level __new__)
            if c_terms is None:
                terms: Iterable[tuple[str, ...]] = map(entry_terms, parsed)
            elif None in c_terms:  # entries whose terms C leaves to Python (record types, a hash or name...)
                terms = [t if t is not None else entry_terms(e) for t, e in zip(c_terms, parsed)]
            else:
                terms = c_terms  # type: ignore[assignment]  # no None
            fast: list[LeafRow] = list(map(_LEAF_ROW, zip(leaves, hashes, terms)))
            return _Prepared(parsed, hashes, fast, single, n)
        rows: list[LeafRow] = []
        append = rows.append
        for e, h in zip(parsed, hashes):
            if e.type not in _IDENTITY_TYPES:  # most entries: no extra term (one set lookup)
                append(LeafRow(e.leaf_bytes, h, entry_terms(e)))
                continue
            extra: tuple[str, ...] = ()
            if e.type == IDENTITY_REGISTER:
                extra = (f"identity:{e.signer}",)
            elif e.type == IDENTITY_REVOKE and e.body.get("did") == e.signer:
                extra = (f"revoked:{e.signer}",)  # as Ledger.revoke_identity: a self-revocation takes effect
            append(LeafRow(e.leaf_bytes, h, entry_terms(e, extra)))
        return _Prepared(parsed, hashes, rows, single, n)

    def _policy(self, prep: _Prepared) -> Callable[[GroupView], None]:
        """Steps 3-5 and the rate limit, run by the group committer just before the group's
        transaction, against the log as the group finds it (shared lookups, one query per group).
        Identities registered or revoked by earlier requests of the same group count."""

        def check(view: GroupView) -> None:
            p = self.policy
            now = self.clock()
            group_registered: set[str] = view.notes.setdefault("registered", set())
            group_revoked: set[str] = view.notes.setdefault("revoked", set())
            new_signers: dict[str, int] = {}
            registered_here: set[str] = set()
            revoked_here: set[str] = set()
            errors: list[tuple[int, AiledgerError]] = []
            times: dict[str, float] = {}  # the entries of a batch often share their time string
            # a request of fresh entries by registered identities (every batch a client sends once) passes
            # whole: its checks are asked per distinct time and signer, and its leaves are not looked up
            # first (the append's own uniqueness check finds a re-sent one: then the log looks them up)
            fast = _distinct_checks(self, prep.parsed, view, now, group_registered, group_revoked)
            existing = {} if fast is not None else view.existing
            for i, (e, h) in enumerate(zip(prep.parsed, prep.hashes) if fast is None else ()):
                if existing and h in existing:
                    continue
                try:
                    t = times.get(e.time)
                    if t is None:
                        t = times[e.time] = _parse_time(e.time)
                    if abs(t - now) > p.time_window:
                        raise StaleEntryError(
                            f"entry time {e.time} is more than {p.time_window:g} s from the server's clock",
                            field="time")
                    if e.type == IDENTITY_REGISTER:
                        registered_here.add(e.signer)
                    elif (p.require_registered and e.signer not in registered_here
                          and e.signer not in group_registered and not self.is_registered(e.signer)):
                        raise UnknownIdentityError(
                            f"signer {e.signer} has not registered in this log (POST /v1/identities first)",
                            field="signer")
                    if e.signer in revoked_here:
                        raise RevokedIdentityError(f"identity {e.signer} revoked itself earlier in this batch",
                                                   field="signer")
                    if e.signer not in new_signers and (e.signer in group_revoked
                                                        or view.has_term(f"revoked:{e.signer}")):
                        raise RevokedIdentityError(f"identity {e.signer} was revoked in this log", field="signer")
                    new_signers[e.signer] = new_signers.get(e.signer, 0) + 1
                    if e.type == IDENTITY_REVOKE and e.body.get("did") == e.signer:
                        revoked_here.add(e.signer)
                except AiledgerError as exc:
                    if prep.single or isinstance(exc, StorageError):  # the store failing is not the entry's fault
                        raise
                    errors.append((i, exc))
            if fast is not None:
                new_signers = fast
                prep.charged_all = True
            if errors:
                _reject(errors, prep.n)
            # 6. authority: one rule set (services.authority), the one every fold applies; judged after the
            # authority-bearing entries earlier requests of this group will append (they are not in the log yet)
            fresh = [i for i, h in enumerate(prep.hashes) if h not in existing] if existing else \
                range(len(prep.hashes))
            if fresh:
                pol = admission.policy()
                kinds = set(map(_TYPE, prep.parsed)) if not existing else {prep.parsed[i].type for i in fresh}
                guarded = {t: pol.guarded(t) for t in kinds}
                pending: list[SignedEntry] = view.notes.setdefault("guarded", [])
                if any(guarded.values()):  # else every verdict is None (admit judges guarded types only)
                    verdicts = pol.admit(self.ledger, pending + [prep.parsed[i] for i in fresh])[len(pending):]
                    for i, err in zip(fresh, verdicts):
                        if err is not None:
                            if prep.single:
                                raise err
                            errors.append((i, err))
                    if errors:
                        _reject(errors, prep.n)
                    pending.extend(prep.parsed[i] for i in fresh if guarded[prep.parsed[i].type])
            if new_signers:
                self.charge(new_signers)
            group_registered |= registered_here  # this request will be in the group's transaction
            group_revoked |= revoked_here

        return check


def _distinct_checks(ing: Ingestor, parsed: Sequence[SignedEntry], view: GroupView, now: float,
                     group_registered: set[str], group_revoked: set[str]) -> dict[str, int] | None:
    """The per-entry checks of a request without identity entries or guarded types, asked once per distinct
    time and signer (a batch's entries share a few): the count of entries per signer when every entry
    passes, or None when some may fail (the per-entry loop then says which, skipping entries already
    logged). Entries already logged pass too (a re-sent batch), and are charged to the rate limit."""
    types = set(map(_TYPE, parsed))  # map over attrgetter: C loops (this runs for every entry written)
    if IDENTITY_REGISTER in types or IDENTITY_REVOKE in types:
        return None
    guarded = admission.policy().guarded
    if any(guarded(t) for t in types):  # the authority rules judge these against what is logged
        return None
    p = ing.policy
    for t in set(map(_TIME, parsed)):
        try:
            if abs(_parse_time(t) - now) > p.time_window:
                return None
        except BadInputError:
            return None
    counts: dict[str, int] = Counter(map(_SIGNER, parsed))
    for did in counts:
        if p.require_registered and did not in group_registered and not ing.is_registered(did):
            return None
        if did in group_revoked or view.has_term(f"revoked:{did}"):
            return None
    return counts


_TYPE = operator.attrgetter("type")
_TIME = operator.attrgetter("time")
_SIGNER = operator.attrgetter("signer")
_LEAF_BYTES = operator.attrgetter("leaf_bytes")
_DUPLICATE = operator.itemgetter(2)  # AppendResult.duplicate
_LEAF_ROW = functools.partial(tuple.__new__, LeafRow)  # LeafRow((data, hash, terms)) without its Python __new__
_DICT_ONLY = {dict}
_ENTRY_ONLY = {SignedEntry}  # every entry passed the C checker (a None: one it did not take)

_PREPARE_CHUNK = 256  # entries; a batch of at least twice this is checked by several threads at once
_PREPARE_THREADS = max(1, min(8, os.cpu_count() or 1))


# a part of a request, prepared: its entries, its errors (position, error), and when the C checker took it
# whole, the leaf hashes and index terms it made (None per entry whose terms Python makes)
_Part = tuple[list[SignedEntry], list[tuple[int, AiledgerError]],
              "tuple[list[bytes], list[tuple[str, ...] | None]] | None"]


@dataclass
class _Prepared:
    parsed: list[SignedEntry]
    hashes: list[bytes]
    rows: list[LeafRow]
    single: bool
    n: int
    charged_all: bool = False  # charged for every entry, re-sent ones included (refunded by _done)


def _lookups(prep: _Prepared) -> tuple[str, ...]:
    """The index terms the policy check of these entries asks about (fetched once per group)."""
    return tuple(f"revoked:{s}" for s in dict.fromkeys(map(_SIGNER, prep.parsed)))


class _NotTaken(Exception):
    """A batch body the C pass does not take whole (Ingestor.submit_body_async: the general path decides)."""


def _leaves_part(leaves: Sequence[bytes], offset: int) -> _Part | None:
    """:meth:`Ingestor._prepare_part` of entries given as their canonical bytes (a part of a batch body split by
    ``records.split_batch``), when the C checker takes every one of them (else None): the same entries, errors
    and rows as ``_prepare_part`` of their parsed values gives (an entry whose signature does not verify gets
    the error parse_entry raises for it)."""
    made = fast_parse_leaves(leaves)
    if made is None:
        return None
    verdicts, hashes, terms, entries = made
    if 0 not in verdicts:
        return entries, [], (hashes, terms)  # type: ignore[return-value]  # every entry taken: no None
    parsed: list[SignedEntry] = []
    errors: list[tuple[int, AiledgerError]] = []
    for i, e in enumerate(entries):
        try:
            parsed.append(e if e is not None else _parse(parse_canonical(leaves[i]), canonical=True))
        except AiledgerError as exc:
            errors.append((offset + i, exc))
        except RecursionError:
            errors.append((offset + i, BadInputError("entry is nested too deeply")))
    return parsed, errors, None


def _reject(errors: list[tuple[int, AiledgerError]], n: int) -> None:
    out: list[dict[str, Any]] = []
    for k, (i, exc) in enumerate(errors):
        out.append({"entry": i, **exc.to_dict()} if k < 100 else {"entry": i, "code": exc.code})
    if all(isinstance(exc, NotAuthorisedError) for _, exc in errors):  # 403 not_authorised (docs/authority.md)
        raise NotAuthorisedError(f"{len(errors)} of {n} entries were signed by a key that may not sign them with "
                                 "effect; nothing was stored", errors=out[:100], rejected=len(errors))
    raise BatchRejectedError(f"{len(errors)} of {n} entries were rejected; nothing was stored",
                             errors=out[:100], rejected=len(errors))


def _parse(obj: Any, canonical: bool = False) -> SignedEntry:
    """parse_entry, with the JSON types of the fields checked first (so any malformed value is bad input).
    ``canonical``: ``obj`` comes from a ``parse_canonical`` document, its canonical bytes need no walk."""
    if not isinstance(obj, dict):
        raise BadInputError("entry must be a JSON object")
    for k in ("type", "signer", "time", "sig"):
        if k in obj and not isinstance(obj[k], str):
            raise BadInputError(f"entry field {k} must be a string", field=k)
    try:
        return parse_entry(obj, verify=True, leaf=canonical_value_bytes(obj) if canonical else None)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise BadInputError(f"entry is malformed: {exc}") from None


def _check_registration(e: SignedEntry) -> None:
    if e.type != IDENTITY_REGISTER:
        raise BadInputError(f"an identity registration must be an {IDENTITY_REGISTER} entry", field="type",
                            found=e.type)
    if e.body.get("did") != e.signer:
        raise BadInputError("identity.register must be self-signed: body.did must equal signer", field="body.did")
    name = e.body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise BadInputError("identity.register body.name must be a string of 1..200 characters", field="body.name")
