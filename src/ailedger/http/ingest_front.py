"""The ingest front: ``POST /v1/entries`` on a port of its own, parsed in C, appended in whole groups.

``ailedger serve --ingest-port PORT`` starts it beside the API, in the same process, on the same ledger.
Its C loop (``ailedger.tlog._front``, an epoll loop on its own thread, never holding the GIL) accepts
keep-alive connections, reads each request head and body, answers malformed, oversized, other-path and
other-method requests itself, and queues the bodies of whole ``POST /v1/entries`` requests.  One Python
thread here gathers a group piece by piece (``take_ready``: what is queued now, and whether every open
connection's request is in; at most its cohort's share of the open connections, ``cohorts``), checks the entries of each piece in one C call
(:meth:`~ailedger.tlog.ingest.Ingestor.prepare_bodies`), appends the group in one durable transaction
through the ledger's group committer (the policy checks and per-identity rate limits of the API run on
it), and answers each request (``reply``) with exactly what ``POST /v1/entries`` on the API answers:
201 with index and leaf hash, 200 ``duplicate`` with the index already given, a 4xx naming the problem
for a bad entry (only that request fails), 503 ``storage`` when the transaction failed (no success
answer unless the entry is durable).  While a group is being committed, the C loop keeps reading the
next one: the per-request work left in Python is the entry's own (parse, check, row, answer).

Limits: one request in flight per connection (pipelined requests wait for the answer before them),
``max_inflight`` connections (the next ones get 503), a body of at most one entry (413), the
configured head and body deadlines for a slow request (408), idle connections closed after 30 s.
Identity registrations need a credential (an operator token or a sponsor's request signature) that
this port does not take: they are refused here (401) unless the log has open registration; send them
to the API port.  A client that disconnects before its answer: its entry is in the log or was never
acknowledged (its group commits or fails as a whole; the answer is dropped).  See docs/api.md.
"""

from __future__ import annotations

import logging
import operator
import os
import socket
import threading
import time
from binascii import hexlify
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

from ailedger.encoding.canonical import parse_canonical, parse_json
from ailedger.encoding.httpsig import UnauthenticatedError
from ailedger.errors import AiledgerError, BadInputError, StorageError
from ailedger.http.errors import MalformedJSONError, error_status_headers, is_db_error
from ailedger.server.asgi import json_bytes
from ailedger.tlog.ingest import IDENTITY_REGISTER

if TYPE_CHECKING:
    from ailedger.http.app import Api
    from ailedger.tlog.log import AppendResult

__all__ = ["Checked", "IngestFront", "available"]

log = logging.getLogger("ailedger.http.ingest")

try:
    from ailedger.tlog import _front
except ImportError:  # pragma: no cover - built without a C compiler
    _front = None  # type: ignore[assignment]

_SPLIT = 4  # entries from which a piece's signatures are checked on two cores (half on the C helper thread)
_INTERNAL = json_bytes({"code": "internal", "message": "internal server error"})


def available() -> bool:
    """Is the compiled front (``ailedger.tlog._front``, Linux) in this install?"""
    return _front is not None


def _headers(h: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in h.items() if k.lower() != "connection").encode("latin-1")


def _error(token: int, exc: BaseException) -> tuple[Any, ...]:
    """The API's answer to ``exc`` (http/app.py ``_guard``): the error's status, JSON and headers; a driver
    error is a storage error (503), anything else an internal error (500)."""
    if not isinstance(exc, AiledgerError) and is_db_error(exc):
        log.warning("storage error on the ingest port: %s", exc)
        exc = StorageError(f"the store failed: {str(exc).strip()[:200]}")
    if isinstance(exc, AiledgerError):
        status, headers = error_status_headers(exc)
        return (token, status, json_bytes(exc.to_dict()), _headers(headers))
    log.error("internal error on the ingest port", exc_info=exc)
    return (token, 500, _INTERNAL)


_CREATED = b'{"index":%d,"leaf_hash":"%s","duplicate":false}'


def _appended(token: int, r: AppendResult) -> tuple[int, int, bytes]:
    """The answer to a request whose entry is in the log: 201 with its index and leaf hash (as the API's
    ``json_bytes`` of ``{"index", "leaf_hash", "duplicate"}``), 200 ``duplicate`` when it was there before."""
    if r.duplicate:
        return (token, 200, json_bytes({"index": r.index, "leaf_hash": r.leaf_hash.hex(), "duplicate": True}))
    return (token, 201, _CREATED % (r.index, r.leaf_hash.hex().encode()))


_INDEX, _LEAF, _DUP = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)  # AppendResult's


def _all_appended(tokens: list[int], results: list[AppendResult]) -> list[tuple[int, int, bytes]]:
    """:func:`_appended` of each request, made by C iterators when none is a duplicate (the common group: no
    Python frame per entry)."""
    if any(map(_DUP, results)):
        return list(map(_appended, tokens, results))
    bodies = map(_CREATED.__mod__, zip(map(_INDEX, results), map(hexlify, map(_LEAF, results))))
    return list(zip(tokens, repeat(201), bodies))


@dataclass
class Checked:
    """A group after its checks: the requests to append (token, prepared entry) and those already answered."""

    preps: list[tuple[int, Any]]  # appended request by request (registrations, non-canonical JSON)
    answers: list[tuple[Any, ...]]
    fast_tokens: list[int] = field(default_factory=list)  # the requests of `fast`, in its order
    fast: Any = None  # their entries, appended together as one batch (Ingestor.prepare_bodies)


class IngestFront:
    """The front of one :class:`~ailedger.http.app.Api` on ``host:port`` (``start``/``stop``; one per process)."""

    def __init__(self, api: Api, host: str = "127.0.0.1", port: int = 0, *, window: float | None = None,
                 max_group: int | None = None, max_conns: int | None = None, idle: float = 30.0,
                 reuse_port: bool = False, checkpoint_every: float | None = None,
                 cohorts: int | None = None) -> None:
        if _front is None:
            raise RuntimeError("the ingest front is not built in this install (a C compiler builds "
                               "ailedger.tlog._front on Linux: pip install -e . again)")
        cfg = api.cfg
        self.api = api
        self.window = cfg.commit_window if window is None else window
        self.max_group = max_group or cfg.commit_max_entries
        # closed-loop writers split into `cohorts` groups of at most 1/cohorts of the open connections each: while
        # one cohort's group is committed (one core), the next cohort's requests come back and are checked (the
        # other core); with 1 a group waits for every open connection and the cores take turns (docs/api.md)
        n = cfg.ingest_cohorts if cohorts is None else cohorts
        if not 1 <= n <= 64:
            raise ValueError("cohorts must be between 1 and 64")
        self.cohorts = n
        # the checkpoint covering a group is signed in its transaction at most every `checkpoint_every` seconds
        # (0: every group); a group in between is covered by the next one due, or, when none follows, by a
        # checkpoint signed on its own once the committing stage has been idle that long (_commit_run)
        every = cfg.ingest_checkpoint_every if checkpoint_every is None else checkpoint_every
        if not 0 <= every <= 10:
            raise ValueError("checkpoint_every must be between 0 and 10 seconds")
        self.checkpoint_every = every
        self._signed_at = -1e9  # time.monotonic() of the last group whose transaction signed a checkpoint
        self._unsigned = False  # a group was committed since without one: a checkpoint is due within the bound
        self._max_conns = max_conns or cfg.max_inflight
        self._request_ms = int((cfg.head_timeout + cfg.body_timeout) * 1000)
        self._idle_ms = int(idle * 1000)
        self.open_registration = cfg.open_registration
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # several worker processes, one front each: the kernel spreads the connections
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            self.sock.bind((host, port))
            self.sock.listen(4096)
        except OSError:
            self.sock.close()
            raise
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/v1/entries"
        self.stats = {"groups": 0, "requests": 0, "largest_group": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._committer: threading.Thread | None = None
        self._cv = threading.Condition()
        self._handoff: list[Checked] | None = None  # checked groups waiting for the committing stage
        self._closing = False
        self._busy = False  # the committing stage holds a group (handed off, not yet answered)
        self._split = (os.cpu_count() or 1) > 1  # check a large piece on two cores (records.fast_check_leaves)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> IngestFront:
        from ailedger.encoding.records import MAX_ENTRY_BYTES

        assert _front is not None
        _front.start(self.sock.fileno(), max_body=MAX_ENTRY_BYTES * 2 + 1024, idle_ms=self._idle_ms,
                     request_ms=self._request_ms, max_conns=self._max_conns)
        self._closing = False
        self._committer = threading.Thread(target=self._commit_run, name="ailedger-ingest-commit", daemon=True)
        self._committer.start()
        self._thread = threading.Thread(target=self._run, name="ailedger-ingest-check", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop taking requests, answer the group under way, close every connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
            if self._committer is not None:
                self._committer.join(60)
                self._committer = None
            assert _front is not None
            _front.stop()
        self.sock.close()

    def __enter__(self) -> IngestFront:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def c_stats(self) -> dict[str, Any]:
        assert _front is not None
        return dict(_front.stats())

    # -- the group loop -------------------------------------------------------------------------
    def _run(self) -> None:
        """The checking stage: take what the C loop queued, check it (parse, signatures: the GIL released in C),
        and hand it to the committing stage. While that stage is busy with the group before, keep taking and
        checking what arrives, up to the group's cap (:meth:`_cap`: its cohort's share of the open connections),
        then wait to be told the committing stage is free. Once it is free, gather the rest of the group: the
        requests of the open connections (the writers it just answered coming back) up to the cap, at most the
        window from the first, each piece checked as it arrives (the signatures of the first writers back are
        checked while the last are on their way; a piece of _SPLIT or more on both cores, half on the C module's
        helper thread). With cohorts, one cohort's group is committed while the next cohort's is gathered and
        checked; with one cohort a group holds every writer and the stages take turns (docs/api.md)."""
        assert _front is not None
        take, take_ready = _front.take, _front.take_ready
        pending: list[Checked] = []
        held = 0  # requests taken into pending (at most the group's cap)
        clock = time.monotonic
        while not self._stop.is_set():
            cap = self._cap()
            with self._cv:
                busy = self._busy
                if busy and held >= cap:  # this group is full: wait (woken) until the committing stage is free
                    self._cv.wait(0.05)
                    continue
            if busy:  # gather what arrives meanwhile (on this core: the other one commits)
                group = take(0.001, 0.0, cap - held)
                held += len(group)
                self._piece(pending, group, False)
                continue
            if not pending:  # idle: waiting for a first request
                group = take(0.2, 0.0, cap)
                if not group:
                    continue
                held = len(group)
                self._piece(pending, group, self._split)
            deadline = clock() + self.window
            while held < cap and not self._stop.is_set():  # the rest, piece by piece, at most the window
                left = deadline - clock()
                group, all_in = take_ready(max(left, 0.0), cap - held)
                held += len(group)
                self._piece(pending, group, self._split)
                if all_in or left <= 0.0:
                    break
            if not pending:  # every request taken already answered (its check failed)
                held = 0
                continue
            with self._cv:
                self._handoff = pending
                self._busy = True
                pending = []
                held = 0
                self._cv.notify_all()
        with self._cv:
            self._closing = True
            self._cv.notify_all()

    def _cap(self) -> int:
        """The most requests the next group holds: ``max_group``, and with cohorts a share of the open connections
        (rounded up: 50 writers in 2 cohorts make groups of 25)."""
        if self.cohorts <= 1:
            return self.max_group
        assert _front is not None
        return min(self.max_group, max(1, -(-_front.connections() // self.cohorts)))

    def _piece(self, pending: list[Checked], group: list[tuple[int, bytes]], split: bool) -> None:
        """Check a piece of a group onto ``pending`` (``split``: a piece of _SPLIT or more on both cores)."""
        if not group:
            return
        self.stats["requests"] += len(group)
        try:
            pending.append(self.check(group, split=split))
        except BaseException as exc:  # noqa: BLE001 - never leave a request unanswered, never stop
            self._fail(group, exc)

    @staticmethod
    def _fail(group: list[tuple[int, bytes]], exc: BaseException) -> None:
        assert _front is not None
        _front.reply([_error(token, exc) for token, _ in group])

    def _commit_run(self) -> None:
        """The committing stage: one durable transaction per hand-off, then the answers. Idle for
        ``checkpoint_every`` after a group committed without its checkpoint (or stopping): one signed alone."""
        assert _front is not None
        while True:
            with self._cv:
                while self._handoff is None and not self._closing:
                    if not self._unsigned:
                        self._cv.wait()
                    elif not self._cv.wait(self.checkpoint_every) and self._handoff is None:
                        break
                batch, self._handoff = self._handoff, None
                closing = self._closing
            if batch is None:
                if self._unsigned:
                    self.sign_behind()
                if closing:
                    return
                continue
            answers: list[tuple[Any, ...]] = []
            try:
                answers = self.commit(batch)
            except BaseException as exc:  # noqa: BLE001 - never leave a request unanswered
                answers = [_error(token, exc) for c in batch for token, _ in c.preps] + \
                    [_error(token, exc) for c in batch for token in c.fast_tokens] + \
                    [a for c in batch for a in c.answers]
            _front.reply(answers)
            with self._cv:
                self._busy = False
                self._cv.notify_all()  # the checking stage may be waiting with a full group

    def sign_behind(self) -> None:
        """Sign the checkpoint at the store's size if the latest is behind it (the groups committed since the last
        signed one); a failure is logged and tried again at the next idle wake-up."""
        try:
            self.api.ledger.log.sign_if_behind()
        except Exception:  # the store failing: the next wake-up tries again
            log.warning("could not sign the checkpoint on the ingest port", exc_info=True)
            return
        self._unsigned = False
        self._signed_at = time.monotonic()
        self.api._cp = None

    def answer(self, group: list[tuple[int, bytes]]) -> list[tuple[Any, ...]]:
        """Check, append and answer one group of (token, body) at once: one answer tuple per request."""
        return self.commit([self.check(group)])

    def check(self, group: list[tuple[int, bytes]], *, split: bool = False) -> Checked:
        """Check the entries of a group: the bodies the C checker takes whole (canonical entries whose signature
        verifies, not registrations) in one C call, without a Python value per entry
        (:meth:`~ailedger.tlog.ingest.Ingestor.prepare_bodies`), appended together; every other body on its own
        (parsed, then prepared or refused as the API does), so a bad entry fails only its own request."""
        out = Checked([], [])
        if not group:
            return out
        tokens = [g[0] for g in group]
        bodies = [g[1] for g in group]
        out.fast, where, rest = self._prepare(bodies, split)
        out.fast_tokens = tokens if len(where) == len(tokens) else [tokens[i] for i in where]
        for i in rest:
            self._one(out, tokens[i], bodies[i])
        return out

    def _one(self, out: Checked, token: int, body: bytes) -> None:
        """A body the C checker did not take (or a build without it): parsed (canonical JSON as it is, any other
        strictly, as the API's read_json), prepared as a request of its own, or refused with its own answer."""
        try:
            obj = parse_canonical(body) if body else None
            canonical = obj is not None
            if not canonical:
                obj = self._parse_strict(body)
            if isinstance(obj, dict) and obj.get("type") == IDENTITY_REGISTER and not self.open_registration:
                raise UnauthenticatedError(
                    "an identity registration needs a credential, which the ingest port does not take: send "
                    "it to the API (POST /v1/identities with Authorization: Bearer <token> or a request "
                    "signature; docs/api.md)", field="authorization")
            out.preps.append((token, self.api.ingest.prepare([obj], canonical=canonical)))
        except Exception as exc:  # noqa: BLE001 - this request's own answer
            out.answers.append(_error(token, exc))

    def _prepare(self, bodies: list[bytes], split: bool = False) -> tuple[Any, list[int], list[int]]:
        """``Ingestor.prepare_bodies`` of a group's bodies; ``split``: a piece of _SPLIT or more with half its
        signatures checked on the second core meanwhile, by the C module's helper thread (no second Python
        thread: no GIL hand-off, no future per piece)."""
        return self.api.ingest.prepare_bodies(bodies, split=split and len(bodies) >= _SPLIT)

    def commit(self, batch: list[Checked]) -> list[tuple[Any, ...]]:
        """Append the checked entries of ``batch`` in one durable transaction; every request's answer."""
        api = self.api
        ingest = api.ingest
        answers = [a for c in batch for a in c.answers]
        preps = [p for c in batch for p in c.preps]
        parts = [c.fast for c in batch if c.fast is not None]
        tokens = [t for c in batch if c.fast is not None for t in c.fast_tokens]
        committer = api.ledger.committer
        reqs = [ingest.request(p) for _, p in preps]
        merged = None
        if parts:  # the group's canonical single entries: one request, checked once (as a pre-batched batch is)
            merged = parts[0] if len(parts) == 1 else ingest.merge_singles(parts)
            reqs.append(ingest.request(merged))
        # the checkpoint in this group's transaction when one is due (docs/api.md: at most every checkpoint_every)
        now = time.monotonic()
        sign = now - self._signed_at >= self.checkpoint_every
        results = committer.commit_now(reqs, sign=sign) if reqs else []
        if reqs:
            api._cp = None  # the API's cached checkpoint is behind now
            if any(type(r) is list and r for r in results):  # something was appended
                if sign:
                    self._signed_at = now
                    self._unsigned = False
                else:
                    self._unsigned = True
        pairs: list[tuple[int, Any, Any]] = [(t, p, r) for (t, p), r in zip(preps, results)]
        if merged is not None:
            res = results[-1]
            if isinstance(res, AiledgerError) and not isinstance(res, StorageError):
                # some entry of the group was refused (stale time, unknown or revoked signer, rate limit...): nothing
                # of the batch was stored; each request again on its own, so that only the offending ones fail
                alone = ingest.split(merged)
                again = committer.commit_now([ingest.request(p) for p in alone], sign=False)
                self._unsigned = True  # (signed at the next group due, or when idle)
                pairs += zip(tokens, alone, again)
            elif isinstance(res, BaseException):  # the store failed: every request of the group fails with it
                answers.extend(_error(t, res) for t in tokens)
            else:
                try:
                    each = ingest.done(merged, res)
                except Exception as exc:  # noqa: BLE001 - e.g. the rate-limit refund failing
                    answers.extend(_error(t, exc) for t in tokens)
                else:
                    answers.extend(_all_appended(tokens, each))
        done = ingest.done
        for token, prep, res in pairs:
            if isinstance(res, BaseException):
                answers.append(_error(token, res))
                continue
            try:
                r = done(prep, res)[0]
            except Exception as exc:  # noqa: BLE001 - e.g. the rate-limit refund failing
                answers.append(_error(token, exc))
                continue
            answers.append(_appended(token, r))
        st = self.stats
        st["groups"] += 1
        st["largest_group"] = max(st["largest_group"], len(answers))
        return answers

    @staticmethod
    def _parse_strict(body: bytes) -> Any:
        """As the API's read_json: the body as JSON, or a 400 naming what is wrong."""
        if not body:
            raise MalformedJSONError("request body is empty; send a JSON document")
        try:
            return parse_json(body, what="request body")
        except BadInputError as exc:
            raise MalformedJSONError(exc.message) from None
        except RecursionError:
            raise MalformedJSONError("request body is nested too deeply") from None
