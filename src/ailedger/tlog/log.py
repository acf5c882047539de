"""TransparencyLog: append -> sequence -> integrate -> sign checkpoint; proofs; audit.

The integration algorithm runs inside the store's write transaction: it reads
the compact range at the current size, extends it with the new leaf hashes,
and hands the store the leaves and every newly completed subtree node.  The
store only reads and writes.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple

from ailedger.errors import BadInputError, DuplicateLeafError, NotFoundError, StaleSizeError, StorageError
from ailedger.tlog.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_text, sign_checkpoint
from ailedger.tlog.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_plan,
    inclusion_plan,
    leaf_hash,
    rehash_plan,
)
from ailedger.tlog.note import Signer, Verifier, parse_note
from ailedger.tlog.proofbundle import ProofBundle
from ailedger.tlog.stores.base import LeafRow, LogStore, ReadView

__all__ = ["AppendResult", "AuditProblem", "AuditReport", "TransparencyLog"]


class AppendResult(NamedTuple):
    index: int  # type: ignore[assignment]  # the field hides tuple.index, on purpose
    leaf_hash: bytes
    duplicate: bool


@dataclass(frozen=True)
class AuditProblem:
    kind: str
    index: int | None
    message: str
    expected: str | None = None
    found: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class AuditReport:
    size: int = 0
    leaves_checked: int = 0
    nodes_checked: int = 0
    checkpoints_checked: int = 0
    signatures_checked: int = 0
    root: str = ""
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "problems"}
        d["ok"] = self.ok
        d["problems"] = [p.to_dict() for p in self.problems]
        return d


_HASH = operator.itemgetter(1)  # LeafRow.hash
_RESULT = functools.partial(tuple.__new__, AppendResult)  # AppendResult((index, leaf_hash, duplicate))
_STALE_SKIP = 8  # appends that read the size first after another writer's append made an assumed one wrong


def _border(view: ReadView, size: int) -> CompactRange:
    ids = CompactRange.border_nodes(size)
    got = view.node_hashes(ids)
    missing = [i for i in ids if i not in got]
    if missing:
        raise StorageError(f"store is missing tree node {missing[0]} needed at size {size}")
    return CompactRange(size, [got[i] for i in ids])


class TransparencyLog:
    """A log over a :class:`LogStore`. ``signer`` is needed only to sign checkpoints."""

    def __init__(self, store: LogStore, origin: str, signer: Signer | None = None,
                 verifier: Verifier | None = None) -> None:
        self.store = store
        self.origin = origin
        self.signer = signer
        self.verifier = verifier if verifier is not None else (signer.verifier if signer else None)
        # the compact range at the size of this object's last committed append: the next append starts
        # from it when the store is still at that size (an append-only log: the same size is the same
        # tree), saving the border read (a leaf and a stripe query) that is a fixed cost of every group.
        # Set only once a transaction has committed; any other size (another writer) reads the border.
        self._last_range: CompactRange | None = None
        # a store with ``writer_at`` (PostgreSQL) can begin the next append on the size of that range without
        # asking (one round trip fewer); after another writer made that wrong (StaleSizeError, a round trip
        # wasted) it is not tried for the next _STALE_SKIP appends, so two servers taking turns on one log
        # lose little. Only a hint: every store checks the size under its lock.
        self._writer_at = getattr(store, "writer_at", None)
        self._skip = 0

    # -- write path ---------------------------------------------------------
    def append(self, rows: Sequence[LeafRow], *, sign: bool | None = None,
               lookup: bool = False) -> list[AppendResult]:
        """Append a batch atomically; an entry already in the log returns its first index.

        With a signing key (``sign`` defaults to having one), the checkpoint at the new size is
        signed and stored *in the same transaction*: leaves and the checkpoint covering them are
        durable together, so no crash can leave the checkpoint behind what this append stored.
        An append that adds nothing new still signs one if the latest checkpoint is behind the
        store (a crash in an older version, or a writer without the key).

        The fast path assumes no duplicates and lets the store's uniqueness check catch one; only
        then is the batch redone with an explicit lookup (``lookup=True`` starts there, for a
        caller that already knows some entries are logged)."""
        if not rows:
            return []
        sign = self.signer is not None if sign is None else sign
        if not lookup:
            try:
                hashes = list(map(_HASH, rows))
                try:
                    return self._append_new(rows, hashes, sign)
                except StaleSizeError:  # another writer appended since: nothing written, redone reading the size
                    self._skip = _STALE_SKIP
                    self._last_range = None
                    return self._append_new(rows, hashes, sign)
            except DuplicateLeafError:
                pass
        return self._append_dedup(rows, sign)

    def _append_new(self, rows: Sequence[LeafRow], hashes: list[bytes], sign: bool) -> list[AppendResult]:
        """``append``'s fast path: every entry new (DuplicateLeafError from the store when not)."""
        last = self._last_range
        if last is not None and self._writer_at is not None and not self._skip:
            txn = self._writer_at(last.size, len(rows))
        else:
            self._skip = max(0, self._skip - 1)
            txn = self.store.writer()
        with txn as w:
            size = w.size()
            cr = self._range_at(w, size)
            levels = cr.extend_levels(hashes)  # the new interior nodes per level: no object per node
            w.add_leaves(size, rows)
            w.add_node_levels(levels)
            if sign:
                self._put_checkpoint(w, size + len(rows), cr.root())
        self._last_range = cr  # committed: the tree at size + len(rows)
        # the results made by C iterators (tuple.__new__: no named tuple __new__ frame per entry)
        return list(map(_RESULT, zip(range(size, size + len(rows)), hashes, repeat(False))))

    def _append_dedup(self, rows: Sequence[LeafRow], sign: bool) -> list[AppendResult]:
        results: list[AppendResult] = []
        with self.store.writer() as w:
            existing = w.indices_of([r.hash for r in rows])
            size = w.size()
            cr = self._range_at(w, size)
            new_rows: list[LeafRow] = []
            pending: dict[bytes, int] = {}
            nodes: list[tuple[int, int, bytes]] = []
            for r in rows:
                idx = existing.get(r.hash)
                if idx is None:
                    idx = pending.get(r.hash)
                if idx is not None:
                    results.append(AppendResult(idx, r.hash, True))
                    continue
                idx = size + len(new_rows)
                pending[r.hash] = idx
                new_rows.append(r)
                cr.append(r.hash, nodes)
                results.append(AppendResult(idx, r.hash, False))
            if new_rows:
                w.add_leaves(size, new_rows)
                w.add_nodes(nodes)
            if sign and (new_rows or self._checkpoint_size() < size):
                self._put_checkpoint(w, size + len(new_rows), cr.root() if size + len(new_rows) else EMPTY_ROOT)
        self._last_range = cr  # committed: the tree at size + len(new_rows)
        return results

    def _range_at(self, w: ReadView, size: int) -> CompactRange:
        """The compact range at ``size`` (the size the open write transaction found): the one this object
        last committed when it is at that size, else read from the store. A copy: the caller extends it,
        and a transaction that fails must not leave the cached range moved on."""
        last = self._last_range
        if last is not None and last.size == size:
            return last.copy()
        return _border(w, size)

    def _put_checkpoint(self, w: Any, size: int, root: bytes) -> None:
        assert self.signer is not None
        w.put_checkpoint(size, sign_checkpoint(Checkpoint(self.origin, size, root), self.signer))

    def _checkpoint_size(self) -> int:
        """Tree size of the latest stored checkpoint (-1 when there is none)."""
        note = self.store.latest_checkpoint()
        return -1 if note is None else parse_checkpoint_text(parse_note(note).text).size

    def sign_if_behind(self) -> bytes | None:
        """Sign a checkpoint at the store's size when the latest one is behind it (or missing).

        Servers call this at start-up: a crash between an append's commit and its checkpoint in
        an older version, or entries appended by a process without the log key, would otherwise
        leave ``/checkpoint`` (and every proof against it) behind the log until the next new entry.
        Returns the new note, or None when nothing needed signing (or there is no key)."""
        if self.signer is None:
            return None
        if self._checkpoint_size() >= self.store.size():
            return None
        return self.checkpoint()

    def append_data(self, datas: Sequence[bytes], terms: Sequence[Sequence[str]] | None = None) -> list[AppendResult]:
        rows = [LeafRow(d, leaf_hash(d), tuple(terms[i]) if terms else ()) for i, d in enumerate(datas)]
        return self.append(rows)

    def checkpoint(self) -> bytes:
        """The signed checkpoint at the current size, signing a new one if the log grew."""
        if self.signer is None:
            latest = self.store.latest_checkpoint()
            if latest is None:
                raise NotFoundError("the log has no checkpoint yet and no signing key is loaded")
            return latest
        with self.store.writer() as w:
            size = w.size()
            root = _border(w, size).root() if size else EMPTY_ROOT
            cp = Checkpoint(self.origin, size, root)
            note = sign_checkpoint(cp, self.signer)
            w.put_checkpoint(size, note)
        return note

    # -- read path ----------------------------------------------------------
    @property
    def size(self) -> int:
        return self.store.size()

    def root_at(self, size: int) -> bytes:
        if size == 0:
            return EMPTY_ROOT
        if size > self.store.size():
            raise BadInputError(f"tree size {size} is beyond the log's size {self.store.size()}")
        return _border(self.store, size).root()

    def _fetch(self, plan_ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        got = self.store.node_hashes(plan_ids)
        missing = [i for i in plan_ids if i not in got]
        if missing:
            raise StorageError(f"store is missing tree node {missing[0]}")
        return got

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        cur = self.store.size()
        if size > cur:
            raise BadInputError(f"tree size {size} is beyond the log's size {cur}")
        plan = inclusion_plan(index, size)
        return rehash_plan(plan, self._fetch(plan.node_ids))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        cur = self.store.size()
        if new_size > cur:
            raise BadInputError(f"tree size {new_size} is beyond the log's size {cur}")
        plan = consistency_plan(old_size, new_size)
        return rehash_plan(plan, self._fetch(plan.node_ids))

    def latest_checkpoint(self) -> tuple[bytes, Checkpoint] | None:
        note = self.store.latest_checkpoint()
        if note is None:
            return None
        return note, parse_checkpoint_text(parse_note(note).text)

    def prove(self, index: int, extra: bytes | None = None) -> bytes:
        """A C2SP tlog-proof for entry ``index`` against the newest checkpoint covering it."""
        size = self.store.size()
        if not 0 <= index < size:
            raise NotFoundError(f"no entry {index}: the log has {size} entries", field="index")
        latest = self.latest_checkpoint()
        if latest is None or latest[1].size <= index:
            self.checkpoint()
            latest = self.latest_checkpoint()
            assert latest is not None
        note, cp = latest
        proof = self.inclusion_proof(index, cp.size)
        return ProofBundle(index, tuple(proof), note, extra).to_bytes()

    def entry(self, index: int) -> bytes:
        got = self.store.leaves(index, index + 1)
        if not got:
            raise NotFoundError(f"no entry {index}: the log has {self.store.size()} entries", field="index")
        return bytes(got[0])

    # -- audit --------------------------------------------------------------
    def audit(self, *, check_signatures: Callable[[Iterator[tuple[int, bytes]]], Iterator[tuple[int, str]]]
              | None = None, progress: Callable[[int], None] | None = None,
              max_problems: int = 1000) -> AuditReport:
        """Recompute every leaf hash, every stored node and every checkpoint root.

        ``check_signatures`` (optional) receives (index, leaf bytes) pairs and yields
        (index, message) for each entry whose signature fails."""
        rep = AuditReport()
        store = self.store
        n_rows = store.index_row_count()
        size = store.size()
        rep.size = size
        cps = store.checkpoints()
        cp_sizes = {s for s, _ in cps}
        roots_at: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in cp_sizes else {}
        levels: list[list[bytes]] = [[]]
        cr = CompactRange()
        nodes: list[tuple[int, int, bytes]] = []

        def problem(p: AuditProblem) -> None:
            if len(rep.problems) < max_problems:
                rep.problems.append(p)

        if n_rows != size:
            problem(AuditProblem("missing_entries", None, f"log claims {size} entries but holds {n_rows} rows",
                                 expected=str(size), found=str(n_rows)))
        sig_feed: list[tuple[int, bytes]] = []
        sig_results: list[Iterator[tuple[int, str]]] = []
        expect = 0
        for idx, stored_hash, data in store.iter_leaves(0, size):
            if idx != expect:
                problem(AuditProblem("gap", expect, f"entries {expect}..{idx - 1} are missing",
                                     expected=str(expect), found=str(idx)))
                expect = idx
            h = leaf_hash(bytes(data))
            if h != bytes(stored_hash):
                problem(AuditProblem("leaf_hash", idx, f"entry {idx}: stored leaf hash does not match its data",
                                     expected=h.hex(), found=bytes(stored_hash).hex()))
            nodes.clear()
            cr.append(h, nodes)
            for lv, ix, nh in nodes:
                if lv > 0:
                    while len(levels) <= lv:
                        levels.append([])
                    levels[lv].append(nh)
            expect = idx + 1
            if expect in cp_sizes:
                roots_at[expect] = cr.root()
            if check_signatures is not None:
                sig_feed.append((idx, bytes(data)))
                if len(sig_feed) >= 20000:
                    sig_results.append(check_signatures(iter(sig_feed)))
                    sig_feed = []
            rep.leaves_checked += 1
            if progress is not None and rep.leaves_checked % 10000 == 0:
                progress(10000)
        if check_signatures is not None and sig_feed:
            sig_results.append(check_signatures(iter(sig_feed)))
        rep.root = cr.root().hex()
        # stored interior nodes against recomputed ones
        seen_per_level = [0] * len(levels)
        for lv, ix, nh in store.iter_nodes():
            if lv >= len(levels) or ix >= len(levels[lv]):
                problem(AuditProblem("extra_node", None, f"stored node ({lv}, {ix}) is not part of the tree"))
                continue
            seen_per_level[lv] += 1
            rep.nodes_checked += 1
            if levels[lv][ix] != bytes(nh):
                problem(AuditProblem("node_hash", ix << lv,
                                     f"tree node level {lv} index {ix} (entries {ix << lv}..{((ix + 1) << lv) - 1})"
                                     " does not match the entries under it",
                                     expected=levels[lv][ix].hex(), found=bytes(nh).hex()))
        for lv in range(1, len(levels)):
            if seen_per_level[lv] != len(levels[lv]):
                problem(AuditProblem("missing_node", None,
                                     f"{len(levels[lv]) - seen_per_level[lv]} tree nodes at level {lv} are missing",
                                     expected=str(len(levels[lv])), found=str(seen_per_level[lv])))
        # checkpoints
        for s, note in cps:
            rep.checkpoints_checked += 1
            try:
                if self.verifier is not None:
                    cp = open_checkpoint(note, self.verifier, self.origin)
                else:
                    cp = parse_checkpoint_text(parse_note(note).text)
            except Exception as exc:  # noqa: BLE001 - every failure is a finding here
                problem(AuditProblem("checkpoint", s, f"checkpoint at size {s} does not verify: {exc}"))
                continue
            if cp.size != s:
                problem(AuditProblem("checkpoint", s, f"checkpoint stored under size {s} says size {cp.size}",
                                     expected=str(s), found=str(cp.size)))
                continue
            want = roots_at.get(s)
            if want is None:
                problem(AuditProblem("checkpoint", s, f"checkpoint at size {s} is beyond the log's {size} entries"))
            elif want != cp.root:
                problem(AuditProblem("checkpoint", s, f"checkpoint at size {s} signs a root the entries do not give",
                                     expected=want.hex(), found=cp.root.hex()))
        for it in sig_results:
            for idx, msg in it:
                problem(AuditProblem("signature", idx, f"entry {idx}: {msg}"))
        if check_signatures is not None:
            rep.signatures_checked = rep.leaves_checked
        return rep
