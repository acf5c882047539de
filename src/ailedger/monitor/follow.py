"""One poll of a followed log: checkpoint, consistency with the last one seen, new entries, matches.

The state kept between polls is the last checkpoint the monitor accepted and the compact range (the
right border of the Merkle tree, one hash per set bit of its size) of that tree.  A new checkpoint of
size N > n is accepted only when the leaf hashes of entries n..N-1, read from the level-0 tiles and
folded onto that compact range (``tlog.merkle.CompactRange``), give N's signed root: that single
check proves the new tree extends the old one AND binds every leaf hash read, so no hash from a tile
is used before it is checked (also those in tiles off the root's right edge, which a reader that only
checks the tiles on the root's path would take unchecked).  Each entry of the bundles must then hash
to its checked leaf hash before it is matched.

A smaller signed tree is a rollback, the same size with another root a split view; a larger one that
does not extend the old tree is a fork when the whole new tree, read from the tiles, does give its
signed root (the log signed two histories), and a bad mirror otherwise.  Forks are a
:class:`ForkError` holding both signed checkpoints as evidence."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.encoding.records import fast_verdicts, parse_entry
from ailedger.errors import AiledgerError, BadInputError, VerificationError
from ailedger.monitor.watch import Watch, match_entry, needles
from ailedger.tlog.checkpoint import Checkpoint, open_checkpoint
from ailedger.tlog.cosignature import verify_cosigned_checkpoint
from ailedger.tlog.merkle import CompactRange, leaf_hash, root_from_leaf_hashes
from ailedger.tlog.note import Verifier
from ailedger.tlog.tileclient import MAX_BUNDLE, MAX_CHECKPOINT, _base, _Fetcher, _hashes
from ailedger.tlog.tiles import TILE_WIDTH, split_entry_bundle, tile_path

__all__ = ["ForkError", "Monitor", "MonitorState"]

STATE_VERSION = 1


class ForkError(VerificationError):
    """The log signed two histories (rollback, split view or fork); ``details`` holds both checkpoints."""

    code = "log_fork"


@dataclass
class MonitorState:
    """What a restart resumes from: the last accepted checkpoint and its tree's compact range."""

    url: str
    origin: str
    size: int = 0
    root: bytes = root_from_leaf_hashes([])
    border: list[bytes] = field(default_factory=list)
    checkpoint: str = ""  # the signed note, as text (evidence if the log later forks)
    matches: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "url": self.url, "origin": self.origin, "size": self.size,
                "root": self.root.hex(), "border": [h.hex() for h in self.border],
                "checkpoint": self.checkpoint, "matches": self.matches}

    @staticmethod
    def load(path: Path) -> MonitorState | None:
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise BadInputError(f"cannot read the monitor state {path}: {e}", field="state") from None
        try:
            if d.get("v") != STATE_VERSION:
                raise ValueError(f"version {d.get('v')!r}")
            st = MonitorState(str(d["url"]), str(d["origin"]), int(d["size"]), bytes.fromhex(d["root"]),
                              [bytes.fromhex(h) for h in d["border"]], str(d["checkpoint"]), int(d["matches"]))
            if CompactRange(st.size, st.border).root() != st.root:
                raise ValueError("its compact range does not give its root")
        except (KeyError, TypeError, ValueError, AttributeError, AiledgerError) as e:
            raise BadInputError(f"the monitor state {path} is damaged ({e}); move it away to start over",
                                field="state") from None
        return st

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
            os.replace(tmp, path)
        except OSError as e:
            raise BadInputError(f"cannot write the monitor state {path}: {e.strerror}", field="state") from None


def _check_signatures(found: list[dict[str, Any]]) -> None:
    """``signature_ok`` of each matched ailedger entry: the signers' signatures checked at once in C where
    the build has it (``fast_verdicts``), else one by one."""
    todo = [m for m in found if "_leaf" in m]
    verdicts = fast_verdicts([m["_leaf"] for m in todo])
    for m, v in zip(todo, verdicts):
        data = m.pop("_leaf")
        if v == 1:
            m["signature_ok"] = True
            continue
        try:
            parse_entry(data).verify()
            m["signature_ok"] = True
        except AiledgerError:
            m["signature_ok"] = False


def _cp_dict(cp: Checkpoint, note: str) -> dict[str, Any]:
    return {"size": cp.size, "root": base64.b64encode(cp.root).decode(), "note": note}


class Monitor:
    """Follow the log at ``url`` signed by ``verifier``; call :meth:`poll` once per round."""

    def __init__(self, url: str, verifier: Verifier, watches: list[Watch], *, state_path: Path | None = None,
                 witness_keys: tuple[Verifier, ...] = (), witness_threshold: int | None = None,
                 timeout: float = 10.0, on_match: Callable[[dict[str, Any]], None] | None = None,
                 progress: Callable[[int], None] | None = None, metrics: Any = None,
                 origin: str | None = None) -> None:
        self.base = _base(url)
        self.verifier, self.watches = verifier, watches
        self.state_path, self.timeout = state_path, timeout
        self.witness_keys, self.witness_threshold = witness_keys, witness_threshold
        self.on_match, self.progress, self.metrics = on_match, progress, metrics
        self._needles = needles(watches)
        self.origin = origin if origin is not None else verifier.name  # C2SP: the key's name unless told
        loaded = MonitorState.load(state_path) if state_path is not None else None
        if loaded is not None and (loaded.origin != self.origin):
            raise BadInputError(f"the state {state_path} follows the log {loaded.origin!r}, not {self.origin!r}; "
                                "give another --state file", field="state")
        self.state = loaded or MonitorState(self.base, self.origin)
        self.bytes_fetched = 0
        self.last_success: float | None = None

    # -- one round ---------------------------------------------------------------------------------------
    def poll(self) -> dict[str, Any]:
        """Fetch the checkpoint, check it, read the new entries and report matches; returns a summary.

        Raises ForkError (rollback / split view / fork), VerificationError (a tile or checkpoint that is not
        the log's), NetworkError; the state is only saved after a round that succeeded (and after every
        match was delivered), so a failed round is retried from the same place."""
        t0 = time.perf_counter()
        fetch = _Fetcher(self.base, self.timeout, None)
        st = self.state
        note = fetch.get("checkpoint", MAX_CHECKPOINT)
        try:
            cp = open_checkpoint(note, self.verifier, self.origin)
        except BadInputError as e:
            raise VerificationError(f"the checkpoint at {self.base} is malformed or not this log's: {e.message}",
                                    url=self.base) from None
        if self.witness_keys:
            verify_cosigned_checkpoint(note, self.verifier, self.witness_keys, self.witness_threshold,
                                       origin=self.origin)
        note_s = note.decode("utf-8", "replace")
        old = st.size
        if cp.size < old:
            self._fork("rollback", f"the log at {self.base} signed a smaller tree ({cp.size}) than one it "
                       f"signed before ({old})", cp, note_s)
        if cp.size == old:
            if cp.root != st.root:
                self._fork("split_view", f"the log at {self.base} signed two different trees of size {old}",
                           cp, note_s)
            return self._done(fetch, cp, note_s, [], 0, t0)

        # new leaf hashes, bound to the signed root before any is used
        first_tile, last_tile = old // TILE_WIDTH, (cp.size - 1) // TILE_WIDTH
        new: list[bytes] = []
        for n in range(first_tile, last_tile + 1):
            width = min(TILE_WIDTH, cp.size - n * TILE_WIDTH)
            path = tile_path(0, n, width)
            hs = _hashes(fetch.get(path, 32 * TILE_WIDTH, size=32 * width), path, width)
            new += hs[max(0, old - n * TILE_WIDTH):]
        cr = CompactRange(old, st.border)
        cr.extend_keyed(new)
        if cr.root() != cp.root:
            self._not_extending(fetch, cp, note_s)

        # entries: each must hash to its checked leaf hash before it is looked at
        found: list[dict[str, Any]] = []
        for n in range(first_tile, last_tile + 1):
            width = min(TILE_WIDTH, cp.size - n * TILE_WIDTH)
            path = tile_path("entries", n, width)
            data = fetch.get(path, MAX_BUNDLE)
            try:
                entries = split_entry_bundle(data)
            except BadInputError as e:
                raise VerificationError(f"{path} at {self.base} is not an entry bundle: {e.message}",
                                        path=path) from None
            if len(entries) != width:
                raise VerificationError(f"{path} at {self.base} holds {len(entries)} entries, its tile {width}",
                                        path=path, expected=width, found=len(entries))
            start = max(0, old - n * TILE_WIDTH)
            for i in range(start, width):
                index = n * TILE_WIDTH + i
                lh = new[index - old]
                if leaf_hash(entries[i]) != lh:
                    raise VerificationError(f"{path} at {self.base}: entry {index} does not hash to the leaf hash "
                                            "its tile lists under the signed root", path=path, index=index)
                if self.watches:
                    found += self._match(index, entries[i], lh, cp)
            if self.progress:
                self.progress(width - start)
        _check_signatures(found)
        for m in found:  # delivered before the state moves: a failed delivery is retried next round
            if self.on_match:
                self.on_match(m)
        st.border = list(cr.hashes)
        return self._done(fetch, cp, note_s, found, cp.size - old, t0)

    def _match(self, index: int, data: bytes, lh: bytes, cp: Checkpoint) -> list[dict[str, Any]]:
        if self._needles is not None and not any(n in data for n in self._needles):
            if not any(w.kind == "leaf" for w in self.watches):
                return []  # names none of the watched values: cannot match, no need to parse it
            hits = match_entry(self.watches, None, lh)
            return [] if not hits else self._hit(index, None, data, lh, cp, hits)
        try:
            entry: Any = parse_entry(data, verify=False)  # the signature: only of matches (_check_signatures)
        except (AiledgerError, ValueError, TypeError, KeyError):
            entry = None  # not an ailedger entry: only leaf watches apply
        hits = match_entry(self.watches, entry, lh)
        if not hits:
            return []
        return self._hit(index, entry, data, lh, cp, hits)

    def _hit(self, index: int, entry: Any, data: bytes, lh: bytes, cp: Checkpoint,
             hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: dict[str, Any] = {"event": "match", "log": self.base, "origin": cp.origin, "index": index,
                               "leaf_hash": lh.hex(), "tree_size": cp.size,
                               "root": base64.b64encode(cp.root).decode(), "matched": hits}
        if entry is not None:
            out.update({"type": entry.type, "signer": entry.signer, "time": entry.time, "body": entry.body,
                        "_leaf": data})
        return [out]

    def _done(self, fetch: _Fetcher, cp: Checkpoint, note_s: str, found: list[dict[str, Any]], read: int,
              t0: float) -> dict[str, Any]:
        st = self.state
        previous = st.size
        st.size, st.root, st.checkpoint = cp.size, cp.root, note_s
        st.matches += len(found)
        if self.state_path is not None:
            st.save(self.state_path)
        self.bytes_fetched += fetch.bytes
        self.last_success = time.time()
        secs = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.round(read, len(found), fetch.bytes, cp.size, secs)
        return {"event": "checkpoint", "log": self.base, "origin": cp.origin, "size": cp.size,
                "root": base64.b64encode(cp.root).decode(), "previous_size": previous, "entries_read": read,
                "matches": len(found), "files_fetched": fetch.fetched, "bytes_fetched": fetch.bytes,
                "seconds": round(secs, 4)}

    # -- faults ------------------------------------------------------------------------------------------
    def _fork(self, kind: str, message: str, cp: Checkpoint, note_s: str) -> None:
        st = self.state
        raise ForkError(message + ": both checkpoints carry the log's signature (evidence attached)", kind=kind,
                        log=self.base, origin=cp.origin,
                        seen=_cp_dict(Checkpoint(st.origin, st.size, st.root), st.checkpoint),
                        new=_cp_dict(cp, note_s))

    def _not_extending(self, fetch: _Fetcher, cp: Checkpoint, note_s: str) -> None:
        """The new leaves do not fold onto the old tree into the signed root: a fork, or bad tiles."""
        leaves: list[bytes] = []
        try:
            for n in range((cp.size + TILE_WIDTH - 1) // TILE_WIDTH):
                width = min(TILE_WIDTH, cp.size - n * TILE_WIDTH)
                path = tile_path(0, n, width)
                leaves += _hashes(fetch.get(path, 32 * TILE_WIDTH, size=32 * width), path, width)
            whole_ok = root_from_leaf_hashes(leaves) == cp.root
        except AiledgerError:
            whole_ok = False
        if whole_ok and self.state.size:
            self._fork("fork", f"the log at {self.base} signed a tree of size {cp.size} that does not extend the "
                       f"tree of size {self.state.size} it signed before", cp, note_s)
        raise VerificationError(f"the hash tiles at {self.base} do not give the root of its signed checkpoint "
                                f"(size {cp.size}): a tile is forged or damaged; nothing from this round is used",
                                url=self.base, expected=base64.b64encode(cp.root).decode())
