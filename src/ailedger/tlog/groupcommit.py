"""Group commit: many small writers share one durable transaction.

A durable commit costs about the same for one entry as for a thousand (an fsync or a PostgreSQL
COMMIT, the compact-range read, a checkpoint signature), so a service whose clients log one
decision at a time would spend nearly all its time committing.  As in PostgreSQL's
``commit_delay``, MySQL's binary-log group commit and the batched sequencing of Trillian and
Tessera, the requests that arrive while a commit is under way, or within a short window after
the first of them, are committed together:

* :class:`GroupCommitter` is the mechanism, generic in what a group is: submitters on any thread
  (or asyncio task) hand it an item and get a :class:`concurrent.futures.Future`; one thread
  takes the queued items as a group and hands them to a ``commit`` function, which returns one
  result (or exception) per item.  A group closes when ``window`` seconds have passed since its
  first item arrived, when ``max_weight`` (entries) is reached, or at once when nobody else is
  expected (see :meth:`GroupCommitter.expecting`): a lone writer never waits for the window.
* :class:`LogCommitter` is the committer of a :class:`TransparencyLog`: each item is an
  :class:`AppendRequest` (the leaf rows of one request, all-or-nothing, and an optional policy
  ``check``); a group is one ``TransparencyLog.append`` (one durable transaction that also signs
  the checkpoint covering it), and each request gets its own results only once that transaction
  is durable.

Failure isolation: a request whose ``check`` raises fails alone; a store failure (disk full, lost
database) fails every request of the group, none of which was stored; anything else the append
refuses (e.g. a leaf-key collision) makes the group retry request by request, so only the
offending one fails.  A request is never withdrawn once its group started: a submitter that gives
up (a client disconnecting) either finds its entries in the log or was never told they were.

The HTTP write handlers (``services.ingest``), ``Ledger.append_*`` and the inference SDK's
batches all go through this module (the SDK's durable calls return once in its own journal,
``inference/journal.py``); see docs/ledger.md, "Group commit".
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ailedger.errors import AiledgerError, ConflictError, StorageError
from ailedger.tlog.log import AppendResult, TransparencyLog
from ailedger.tlog.stores.base import LeafRow

__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_WINDOW", "AppendRequest", "GroupCommitter", "GroupView", "LogCommitter"]

DEFAULT_WINDOW = 0.002  # seconds a group stays open for writers known to be on their way
DEFAULT_MAX_ENTRIES = 20000  # entries per group (one transaction)

T = TypeVar("T")
R = TypeVar("R")

# a submitter waiting for its result: a concurrent Future (threads) or (loop, asyncio future)
_Waiter = Any
_HASH = operator.itemgetter(1)  # LeafRow.hash


class GroupCommitter(Generic[T, R]):
    """Collect items from many threads and asyncio tasks into groups; commit each group on one thread.

    ``commit(items)`` returns a list with one result or exception per item (an exception it
    raises fails every item of the group).  ``weight(item)`` counts toward ``max_weight``.

    Items may be submitted ready (:meth:`submit`) or as a function that makes them
    (:meth:`submit_lazy`, :meth:`acall` with ``make=``): those are made (parsed, their signatures
    checked) by ``prepare_threads`` worker threads, several at a time, off the caller's thread
    and the event loop; libsodium releases the GIL, so the checks of one process use every core.
    Results for asyncio submitters are handed back one event-loop callback per group, not one
    thread hop per request."""

    def __init__(self, commit: Callable[[list[T]], Sequence[R | BaseException]], *,
                 window: float = DEFAULT_WINDOW, max_weight: int = DEFAULT_MAX_ENTRIES,
                 weight: Callable[[T], int] | None = None, name: str = "ailedger-group-commit",
                 prepare_threads: int | None = None, linger: bool = False) -> None:
        if not 0 <= window <= 1:
            raise ValueError("window must be between 0 and 1 second")
        if max_weight < 1:
            raise ValueError("max_weight must be at least 1")
        self._commit = commit
        self.window = window
        self.max_weight = max_weight
        self._weight = weight or (lambda _item: 1)
        self.name = name
        self.prepare_threads = max(1, prepare_threads or os.cpu_count() or 1)
        # linger: also wait (at most the window) until as many items are queued as there were
        # threads waiting in call() at once, for submitters that cannot announce themselves
        # (closed-loop callers, back as soon as they are answered), as PostgreSQL's commit_siblings does
        self.linger = linger
        # gather: when the last group had several items (writers are concurrent), an open group stays open
        # for `window` after its first item, as PostgreSQL's commit_delay with commit_siblings, for
        # submitters that cannot announce themselves (requests checked on an event loop, one at a time)
        self.gather = False
        self.stats = {"groups": 0, "items": 0, "weight": 0, "largest_group": 0, "failed_groups": 0}
        # called once per committed group with (items, weight, seconds, failed): metrics, never per entry
        self.on_group: Callable[[int, int, float, bool], None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # the commit queue
        self._raw_cond = threading.Condition(lock)  # the queue of items still to be made
        self._queue: deque[tuple[T, _Waiter, int, float]] = deque()
        self._raw: deque[tuple[Callable[[], T], _Waiter, float]] = deque()
        self._queued_weight = 0
        self._expected = 0  # items announced (expecting()) or being made: an open group waits for them
        self._urgent = False
        self._closed = False
        self._idle = False  # the committing thread waits for a first item
        self._gathering = False  # the committing thread holds an open group for the window (gather)
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._inside = 0  # threads inside call(), waiting for their group
        self._last_size = 0  # items in the last group (more than one: writers are concurrent, none commits alone)
        self._last_commit_s = 0.0  # how long the last group's commit took
        self._peak = 0  # the most of them at once since the last group was taken (linger's target)
        self._commit_lock = threading.Lock()  # held while a group is committed, by whichever thread
        self._owner: int | None = None  # the thread holding it

    # -- submitting -----------------------------------------------------------------
    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Announce an item that the caller is preparing itself (parsing, checking signatures).

        While announced items are on their way, an open group waits for them (at most
        ``window`` after its first item); with none announced it is committed at once."""
        self._check_fork()
        with self._cond:
            self._expected += 1
        try:
            yield
        finally:
            with self._cond:
                self._expected -= 1
                self._wake()

    def _enqueue(self, item: T, waiter: _Waiter, urgent: bool) -> None:
        w = self._weight(item)
        with self._cond:
            if self._closed:
                raise ConflictError(f"{self.name} is closed")
            self._queue.append((item, waiter, w, time.monotonic()))
            self._queued_weight += w
            self._urgent = self._urgent or urgent
            self._start()
            self._wake()

    def _enqueue_lazy(self, make: Callable[[], T], waiter: _Waiter) -> None:
        with self._cond:
            if self._closed:
                raise ConflictError(f"{self.name} is closed")
            self._raw.append((make, waiter, time.monotonic()))
            self._expected += 1
            if len(self._workers) < self.prepare_threads and len(self._workers) < len(self._raw):
                t = threading.Thread(target=self._prepare_run, name=f"{self.name}-prepare", daemon=True)
                self._workers.append(t)
                t.start()
            self._raw_cond.notify()

    def _wake(self) -> None:  # with the lock held
        # the committing thread needs waking only for a first item, or to close an open group
        # early (nobody else expected, the size cap, urgent): each needless wake is a thread switch
        if (self._idle or (self._expected == 0 and not self._gathering
                           and (not self.linger or len(self._queue) >= self._peak))
                or self._urgent or self._queued_weight >= self.max_weight):
            self._cond.notify()

    def _start(self) -> None:  # with the lock held
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def submit(self, item: T, *, urgent: bool = False) -> Future[R]:
        """Queue ``item``; the future holds its result once its group is committed.

        ``urgent`` closes the open group now (for an item that is itself a group, e.g. from
        another committer, which must not wait a second window)."""
        self._check_fork()
        fut: Future[R] = Future()
        self._enqueue(item, fut, urgent)
        return fut

    def submit_lazy(self, make: Callable[[], T]) -> Future[R]:
        """Queue an item that a worker thread makes first (``make()``; if it raises, only this
        submission fails with that error)."""
        self._check_fork()
        fut: Future[R] = Future()
        self._enqueue_lazy(make, fut)
        return fut

    def call(self, item: T, *, urgent: bool = False) -> R:
        """Submit and wait (from a thread). On the committer's own thread (a commit function that
        appends again) the item is committed at once as a group of its own."""
        if threading.get_ident() == self._owner:  # a commit function that appends again
            return self._inline(item)
        self._check_fork()
        # nothing queued, nobody expected and no group being committed: commit on this thread, saving
        # two thread switches (a lone writer); writers that come meanwhile queue for the next group
        with self._cond:
            idle = (not self._queue and not self._raw and self._expected == 0 and self._inside == 0
                    and self._last_size <= 1 and not self.linger and not self._closed)
            if idle and not self._commit_lock.acquire(blocking=False):
                idle = False
            if not idle:
                self._inside += 1
                self._peak = max(self._peak, self._inside)
        if idle:
            self._owner = threading.get_ident()
            try:
                return self._inline(item)
            finally:
                self._owner = None
                self._commit_lock.release()
        try:
            return self.submit(item, urgent=urgent).result()
        finally:
            with self._cond:
                self._inside -= 1

    def commit_now(self, items: list[T]) -> list[R | BaseException]:
        """Commit ``items`` as one group on the calling thread, now: for a caller that gathers its own groups
        (the ingest front, ``http.ingest_front``, takes every request its C loop queued at once). Serialised
        with the committing thread's groups; one result or exception per item (an exception of the commit
        function fails them all, as for a group of the queue)."""
        if not items:
            return []
        self._check_fork()
        with self._commit_lock:
            self._owner = threading.get_ident()
            t0 = time.monotonic()
            failed = False
            try:
                results: list[R | BaseException] = list(self._commit(items))
                if len(results) != len(items):
                    raise RuntimeError(f"commit returned {len(results)} results for {len(items)} items")
            except BaseException as exc:  # noqa: BLE001 - delivered to every item of the group
                results = [exc] * len(items)
                failed = True
            finally:
                self._owner = None
            took = time.monotonic() - t0
            st = self.stats
            st["groups"] += 1
            st["items"] += len(items)
            st["failed_groups"] += failed
            w = sum(map(self._weight, items))
            st["weight"] += w
            st["largest_group"] = max(st["largest_group"], w)
            hook = self.on_group
            if hook is not None:
                hook(len(items), w, took, failed)
        return results

    def _inline(self, item: T) -> R:
        t0 = time.monotonic()
        res = self._commit([item])[0]
        self._last_size = 1
        st = self.stats
        st["groups"] += 1
        st["items"] += 1
        w = self._weight(item)
        st["weight"] += w
        hook = self.on_group
        if hook is not None:
            hook(1, w, time.monotonic() - t0, isinstance(res, BaseException))
        if isinstance(res, BaseException):
            raise res
        return res

    async def acall(self, item: T | None = None, *, make: Callable[[], T] | None = None) -> R:
        """Submit and await (from asyncio), ready (``item``) or made on a worker thread (``make``).
        The event loop is never blocked."""
        self._check_fork()
        loop = asyncio.get_running_loop()
        afut: asyncio.Future[R] = loop.create_future()
        if make is not None:
            self._enqueue_lazy(make, (loop, afut))
        else:
            self._enqueue(item, (loop, afut), False)  # type: ignore[arg-type]
        return await afut

    def submit_to(self, item: T, afut: asyncio.Future[R]) -> None:
        """Queue ``item`` from its event loop's thread; its result (or error) is set on ``afut`` once its
        group is committed (one loop callback per group), as :meth:`acall` does."""
        self._check_fork()
        self._enqueue(item, (afut.get_loop(), afut), False)

    def close(self, timeout: float = 60.0) -> None:
        """Commit what is queued, then stop the threads. Later submissions raise ConflictError."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._raw_cond.notify_all()
            threads = [t for t in (self._thread, *self._workers) if t is not None]
        if self._pid == os.getpid():
            for t in threads:
                if t is not threading.current_thread():
                    t.join(timeout)

    def _check_fork(self) -> None:
        if self._pid != os.getpid():  # a forked child has the queues but not the threads
            self._reset()

    # -- making items ------------------------------------------------------------------------
    def _prepare_run(self) -> None:
        while True:
            with self._cond:
                while not self._raw:
                    if self._closed:
                        return
                    self._raw_cond.wait()
                # a share of what waits, so the other workers get some too
                n = min(64, max(1, -(-len(self._raw) // self.prepare_threads)))
                batch = [self._raw.popleft() for _ in range(n)]
            made: list[tuple[T, _Waiter, int, float]] = []
            failed: list[tuple[_Waiter, BaseException]] = []
            for make, waiter, t in batch:
                try:
                    item = make()
                    made.append((item, waiter, self._weight(item), t))
                except BaseException as exc:  # noqa: BLE001 - this submission's own failure, whatever it is
                    failed.append((waiter, exc))
            with self._cond:
                for it in made:
                    self._queue.append(it)
                    self._queued_weight += it[2]
                self._expected -= len(batch)
                if made:
                    self._start()
                self._wake()
            if failed:
                _deliver(failed)

    # -- the committing thread ------------------------------------------------------------
    def _take(self) -> list[tuple[T, _Waiter, int, float]] | None:
        with self._cond:
            while not self._queue:
                if self._closed and self._expected == 0 and not self._raw:
                    return None
                self._idle = True
                self._cond.wait(0.5 if self._closed else None)
                self._idle = False
            # a group waits at most `window` after its first item; lingering for closed-loop callers,
            # at most `window` from now and half of what the last commit took (the items that waited
            # out the last commit wait a little more, so that the callers it answered can join them)
            if self.linger:  # worth waiting only a fraction of what one commit costs
                deadline = time.monotonic() + min(self.window, self._last_commit_s / 2)
            else:
                deadline = self._queue[0][3] + self.window
            gather = self.gather and self._last_size > 1
            self._gathering = gather
            while ((gather or self._expected > 0 or (self.linger and len(self._queue) < self._peak))
                   and not self._urgent and not self._closed and self._queued_weight < self.max_weight):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._gathering = False
            group: list[tuple[T, _Waiter, int, float]] = []
            weight = 0
            while self._queue and (not group or weight + self._queue[0][2] <= self.max_weight):
                it = self._queue.popleft()
                group.append(it)
                weight += it[2]
            self._queued_weight -= weight
            if not self._queue:
                self._urgent = False
            self._peak = self._inside
            return group

    def _run(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            # a submission cancelled before its group started (its submitter gave up) is left out:
            # never stored, never acknowledged; once its group started it is no longer withdrawn
            live = [(item, waiter, w) for item, waiter, w, _ in group if _start_waiter(waiter)]
            if not live:
                continue
            with self._commit_lock:
                self._owner = threading.get_ident()
                t0 = time.monotonic()
                try:
                    results: Sequence[R | BaseException] = self._commit([item for item, _, _ in live])
                    if len(results) != len(live):
                        raise RuntimeError(f"commit returned {len(results)} results for {len(live)} items")
                except BaseException as exc:  # noqa: BLE001 - delivered to every submitter of the group
                    results = [exc] * len(live)
                    self.stats["failed_groups"] += 1
                    failed = True
                else:
                    failed = False
                finally:
                    self._owner = None
                    self._last_commit_s = time.monotonic() - t0
                self._last_size = len(live)
                st = self.stats
                st["groups"] += 1
                st["items"] += len(live)
                w = sum(x[2] for x in live)
                st["weight"] += w
                st["largest_group"] = max(st["largest_group"], w)
                hook = self.on_group
                if hook is not None:
                    hook(len(live), w, self._last_commit_s, failed)
            _deliver([(waiter, res) for (_, waiter, _), res in zip(live, results)])


def _start_waiter(waiter: _Waiter) -> bool:
    if isinstance(waiter, Future):
        return waiter.set_running_or_notify_cancel()
    return not waiter[1].cancelled()


def _deliver(pairs: Sequence[tuple[_Waiter, Any]]) -> None:
    """Hand results to their submitters: futures directly, asyncio ones one loop callback per loop."""
    by_loop: dict[Any, list[tuple[Any, Any]]] = {}
    for waiter, res in pairs:
        if isinstance(waiter, Future):
            with contextlib.suppress(InvalidStateError):  # cancelled while it was still being made
                if isinstance(res, BaseException):
                    waiter.set_exception(res)
                else:
                    waiter.set_result(res)
        else:
            by_loop.setdefault(waiter[0], []).append((waiter[1], res))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop was closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for afut, res in items:
        if afut.done():
            continue
        if isinstance(res, BaseException):
            afut.set_exception(res)
        else:
            afut.set_result(res)


# -- the log's committer ---------------------------------------------------------------------
@dataclass(frozen=True)
class AppendRequest:
    """The leaf rows of one request (appended all-or-nothing) and its policy check.

    ``check(view)`` runs on the committer thread just before the group's transaction, with the
    log's state as the group found it; raising fails this request only."""

    rows: Sequence[LeafRow]
    check: Callable[[GroupView], None] | None = None
    lookups: Sequence[str] = ()  # index terms the check will ask about (fetched once for the group)


class GroupView:
    """What the checks of one group share, read from the store once for the whole group:
    which of its leaves are already logged, and memoised index-term lookups. ``notes`` carries
    state from one request's check to the next ones of the same group (e.g. an identity
    registered by an earlier request of the group)."""

    def __init__(self, log: TransparencyLog, hashes: Sequence[bytes]) -> None:
        self.log = log
        self._hashes = hashes
        self._existing: dict[bytes, int] | None = None
        self._terms: dict[str, bool] = {}
        self.notes: dict[str, Any] = {}

    @property
    def existing(self) -> dict[bytes, int]:
        """Leaf hash -> first index, for the group's leaves already in the log (one query)."""
        if self._existing is None:
            hs = list(dict.fromkeys(self._hashes))
            self._existing = self.log.store.indices_of(hs) if hs else {}
        return self._existing

    def index_of(self, h: bytes) -> int | None:
        return self.existing.get(h)

    def prefetch(self, terms: Sequence[str]) -> None:
        """Look ``terms`` up in one query (the lookups every request of the group announced)."""
        want = [t for t in dict.fromkeys(terms) if t not in self._terms]
        if want:
            present = self.log.store.terms_present(want)
            self._terms.update((t, t in present) for t in want)

    def has_term(self, term: str) -> bool:
        hit = self._terms.get(term)
        if hit is None:
            hit = self._terms[term] = bool(self.log.store.find(term, -1, 1))
        return hit


def _is_storage_failure(exc: BaseException) -> bool:
    return isinstance(exc, (StorageError, OSError, sqlite3.Error, MemoryError)) or \
        type(exc).__module__.startswith("psycopg")


def commit_append_group(log: TransparencyLog, reqs: list[AppendRequest], sign: bool | None = None
                        ) -> list[list[AppendResult] | BaseException]:
    """Check each request of a group, then append all that passed in one durable transaction (with the
    checkpoint covering it unless ``sign`` is False: ``TransparencyLog.append``)."""
    view = GroupView(log, [h for q in reqs for h in map(_HASH, q.rows)])
    lookups = [t for q in reqs for t in q.lookups]
    if lookups:
        view.prefetch(lookups)
    out: list[list[AppendResult] | BaseException | None] = [None] * len(reqs)
    ok: list[int] = []
    for i, q in enumerate(reqs):
        if q.check is not None:
            try:
                q.check(view)
            except Exception as exc:  # noqa: BLE001 - this request's own failure
                out[i] = exc
                continue
        ok.append(i)
    rows = reqs[0].rows if len(ok) == len(reqs) == 1 else [r for i in ok for r in reqs[i].rows]
    if rows:
        try:
            results = log.append(rows, lookup=bool(view._existing), sign=sign)
        except Exception as exc:
            if _is_storage_failure(exc) or not isinstance(exc, AiledgerError) or len(ok) == 1:
                raise  # the whole group fails: none of it was stored
            # something in one request made the store refuse the transaction: commit them one by
            # one, so only that request fails
            for i in ok:
                try:
                    out[i] = log.append(reqs[i].rows, lookup=True, sign=sign)
                except Exception as one:
                    if _is_storage_failure(one):
                        raise
                    out[i] = one
            return out  # type: ignore[return-value]
        pos = 0
        for i in ok:
            n = len(reqs[i].rows)
            out[i] = results[pos : pos + n]
            pos += n
    else:
        for i in ok:
            out[i] = []
    return out  # type: ignore[return-value]


class LogCommitter(GroupCommitter[AppendRequest, list[AppendResult]]):
    """The group committer of one log (one per process and log; ``Ledger.committer``)."""

    def __init__(self, log: TransparencyLog, *, window: float = DEFAULT_WINDOW,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._sign = threading.local()  # commit_now(..., sign=False) on this thread: the group signs no checkpoint
        super().__init__(lambda reqs: commit_append_group(log, reqs, getattr(self._sign, "value", None)),
                         window=window, max_weight=max_entries, weight=lambda q: max(1, len(q.rows)),
                         name="ailedger-log-commit")
        self.log = log

    def commit_now(self, items: list[AppendRequest], *, sign: bool | None = None
                   ) -> list[list[AppendResult] | BaseException]:
        """:meth:`GroupCommitter.commit_now`; ``sign=False``: the group's transaction signs no checkpoint (a caller
        that signs one covering it within a bound of its own: the ingest front, docs/api.md)."""
        if sign is None:
            return super().commit_now(items)
        self._sign.value = sign
        try:
            return super().commit_now(items)
        finally:
            self._sign.value = None

    def append(self, rows: Sequence[LeafRow], check: Callable[[GroupView], None] | None = None, *,
               urgent: bool = False) -> list[AppendResult]:
        """Append ``rows`` (all-or-nothing) in the next group; returns once that group is durable."""
        return self.call(AppendRequest(rows, check), urgent=urgent)
