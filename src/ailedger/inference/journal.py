"""The write-ahead journal of a durable inference trail.

A durable call returns once its record is in this journal and the journal is on disk (one
``write`` + one ``fdatasync`` per group of concurrent calls), not once its batch is in the signed
log: the trail's writer turns journalled records into signed batches exactly as in fast mode and
drops the journal's segments once their records are logged.  A trail that opens replays the
journals of trails that died (crash, SIGKILL, power loss): every record not yet in a logged batch
is logged once.

Layout: ``<ledger>/inference/journal/<stream>/`` (0700) holds ``meta.json`` (stream, model, model
index, operator DID), ``lock`` (an ``flock`` held by the live trail: a journal whose lock can be
taken belongs to a dead trail) and segments ``00000001.wal``, ``00000002.wal``, ... (0600), each
a run of frames:

    frame  = magic "AIJ1" | u32 segment number | u32 payload length | u32 record count
             | payload | SHA-256(header || payload)
    record = u8 len(rid) | i64 time (ns) | u32 len(data) | u8 len(ref) | u32 len(ct)
             | rid | data | ref | key id (8) and nonce (12), when ct | ct

``data`` is the record's canonical bytes (commitments only, as stored in ``records.db``); ``ct`` is
the AES-256-GCM ciphertext, under the data subject's key of the payload store (``payloads.py``),
of the call's salt, input and output (AAD ``ailedger-inference-journal/v1|<ref>|<rid>``); the key
id (``key_id``: 8 bytes of a SHA-256 of the key) tells a replay whether the subject's key is still
the one used (else the subject was erased since, and the payload with it): no
input or output is ever on disk in clear, and erasing the subject's key erases a journalled
record's payload too (its record, commitments only, is still logged).

Segments are zero-filled ahead of the frames (``PREALLOC_BYTES`` at a time), so a group's
``fdatasync`` writes into blocks the file already has.  One frame is written per group; a crash
can tear only the last one, whose calls had not returned. On open a frame that is short or whose hash fails ends the segment and is cut (the
file truncated there) unless a valid frame follows it, which is damage, not a torn write
(``TamperError``, nothing cut).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.errors import StorageError, TamperError
from ailedger.tlog.private import private_dir, write_private

__all__ = ["JOURNAL_AAD", "SEGMENT_BYTES", "Journal", "JournalRecord", "dead_journals", "encode_record", "key_id",
           "read_segment"]

MAGIC = b"AIJ1"
JOURNAL_AAD = b"ailedger-inference-journal/v1|"
SEGMENT_BYTES = 16 << 20  # a new segment once this many bytes are written (the old one goes once logged)
PREALLOC_BYTES = 256 << 10  # zeros written ahead of the frames at a time
_HDR = struct.Struct(">4sIII")
_REC = struct.Struct(">BqIBI")
_HASH = 32
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class JournalRecord:
    rid: str
    t_ns: int
    data: bytes  # the record's canonical bytes
    ref: str  # the data subject's reference (hex), "" without a stored payload
    key_id: bytes
    nonce: bytes
    ct: bytes  # AES-256-GCM of the payload item (rid, salt, input, output), b"" without one


def key_id(key: bytes) -> bytes:
    """8 bytes naming a subject key (a journal record's key), not enough to learn anything of it."""
    return hashlib.sha256(b"ailedger-inference-key-id|" + key).digest()[:8]


def encode_record(rid: str, t_ns: int, data: bytes, ref: str, kid: bytes, nonce: bytes, ct: bytes) -> bytes:
    r = rid.encode()
    rb = bytes.fromhex(ref) if ref else b""
    return b"".join((_REC.pack(len(r), t_ns, len(data), len(rb), len(ct)), r, data, rb,
                     kid + nonce if ct else b"", ct))


def _decode_records(payload: bytes, count: int, where: str) -> list[JournalRecord]:
    out: list[JournalRecord] = []
    pos, end = 0, len(payload)
    try:
        for _ in range(count):
            lr, t_ns, ld, lref, lct = _REC.unpack_from(payload, pos)
            pos += _REC.size
            rid = payload[pos : pos + lr].decode("ascii")
            pos += lr
            data = payload[pos : pos + ld]
            pos += ld
            ref = payload[pos : pos + lref].hex()
            pos += lref
            kid = payload[pos : pos + 8] if lct else b""
            nonce = payload[pos + 8 : pos + 20] if lct else b""
            pos += 20 if lct else 0
            ct = payload[pos : pos + lct]
            pos += lct
            if pos > end:
                raise ValueError("record runs past its frame")
            out.append(JournalRecord(rid, t_ns, data, ref, kid, nonce, ct))
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise TamperError(f"journal frame in {where} holds a damaged record: {exc}") from None
    if pos != end:
        raise TamperError(f"journal frame in {where} has {end - pos} bytes after its records")
    return out


def _frame_at(buf: bytes, off: int, segno: int) -> tuple[bytes, int, int] | None:
    """(payload, count, end) of a valid frame of segment ``segno`` at ``off``, or None."""
    if len(buf) - off < _HDR.size + _HASH:
        return None
    magic, seg, ln, count = _HDR.unpack_from(buf, off)
    end = off + _HDR.size + ln + _HASH
    if magic != MAGIC or seg != segno or end > len(buf):
        return None
    body = buf[off : end - _HASH]
    if hashlib.sha256(body).digest() != buf[end - _HASH : end]:
        return None
    return body[_HDR.size :], count, end


def _frames(buf: bytes, segno: int, where: str) -> tuple[list[JournalRecord], int]:
    off, recs = 0, []
    while off < len(buf):
        got = _frame_at(buf, off, segno)
        if got is None:
            break
        payload, count, end = got
        recs += _decode_records(payload, count, where)
        off = end
    return recs, off


def segment_end(path: Path, segno: int) -> int:
    """The byte offset just after the segment's last valid frame (what follows is zeros or a torn frame)."""
    return _frames(path.read_bytes(), segno, path.name)[1]


def read_segment(path: Path, segno: int, *, cut: bool = True) -> tuple[list[JournalRecord], int]:
    """The records of one segment and the bytes cut from its torn tail (the file is truncated after its
    last valid frame when ``cut``; the zeros a segment is preallocated with are not counted as cut).  A bad
    frame followed by a valid one raises TamperError."""
    buf = path.read_bytes()
    recs, off = _frames(buf, segno, path.name)
    torn = 0 if buf.count(b"\0", off) == len(buf) - off else len(buf) - off
    if off < len(buf):
        k = buf.find(MAGIC, off + 1)
        while k != -1:
            if _frame_at(buf, k, segno) is not None:
                raise TamperError(f"journal segment {path} is damaged at byte {off}: a valid frame follows at "
                                  f"byte {k}; refusing to cut it", found=off)
            k = buf.find(MAGIC, k + 1)
        if cut:
            fd = os.open(path, os.O_WRONLY | _CLOEXEC)
            try:
                os.ftruncate(fd, off)
                os.fsync(fd)
            finally:
                os.close(fd)
    return recs, torn


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segments(d: Path) -> list[tuple[int, Path]]:
    out = []
    for p in d.iterdir():
        if p.suffix == ".wal" and p.stem.isdigit():
            out.append((int(p.stem), p))
    return sorted(out)


def _try_lock(d: Path) -> int | None:
    """An fd holding the journal's exclusive lock, or None if a live trail holds it."""
    try:
        fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o600)
    except FileNotFoundError:  # removed by a trail that replayed it just now
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def _remove(d: Path, lock_fd: int) -> None:
    """Delete a journal whose records are all logged (segments first, the lock last)."""
    for _, p in _segments(d):
        p.unlink()
    with contextlib.suppress(FileNotFoundError):
        (d / "meta.json").unlink()
    with contextlib.suppress(FileNotFoundError):
        (d / "lock").unlink()
    os.close(lock_fd)
    with contextlib.suppress(OSError):
        d.rmdir()
    _fsync_dir(d.parent)


class DeadJournal:
    """The journal of a trail that is gone, locked for replay."""

    def __init__(self, d: Path, lock_fd: int) -> None:
        self.dir = d
        self._fd = lock_fd
        try:
            self.meta: dict[str, Any] = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            self.meta = {}
        self.cut_bytes = 0

    def records(self) -> list[JournalRecord]:
        out: list[JournalRecord] = []
        for segno, p in _segments(self.dir):
            recs, cut = read_segment(p, segno)
            out += recs
            self.cut_bytes += cut
        return out

    def remove(self) -> None:
        _remove(self.dir, self._fd)

    def release(self) -> None:
        os.close(self._fd)


def dead_journals(root: Path) -> Iterator[DeadJournal]:
    """The journals under ``root`` whose trail is gone (their lock can be taken), each locked."""
    if not root.is_dir():
        return
    for d in sorted(root.iterdir()):
        if not d.is_dir():
            continue
        fd = _try_lock(d)
        if fd is None:
            continue
        try:
            if d.name.startswith(".") or (not (d / "meta.json").exists() and not _segments(d)):
                _remove(d, fd)  # its trail died while making it, or it was emptied by a replay just now
                continue
        except FileNotFoundError:  # removed under us by another trail's replay
            os.close(fd)
            continue
        yield DeadJournal(d, fd)


_WAIT, _DONE, _LEAD, _FAIL = range(4)


class _Waiter:
    """One thread's wait for its group: a lock held until the leader releases it, and why."""

    __slots__ = ("lock", "state")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.state = _WAIT


class Journal:
    """The live journal of one trail: group commit of records, one write + fdatasync per group.

    ``commit(record_bytes, item)`` returns once the record is on disk; concurrent callers share a
    group: the first caller finding no write under way writes every record queued so far (its own
    and the others'), the others wait on a condition variable and return when their group is on
    disk (a leader/follower scheme as in LevelDB's writer queue; each waiting thread blocks on its
    own lock, released by the leader with what happened: no condition variable that wakes everyone).  ``on_durable(items, segno)`` is
    called for each group once it is on disk, in journal order (the trail's writer queue)."""

    def __init__(self, root: Path, stream: str, meta: dict[str, Any],
                 on_durable: Callable[[list[Any], int], None], *, window: float = 0.0) -> None:
        # made under a hidden name, locked, then renamed: a trail replaying dead journals never sees it unlocked
        tmp = private_dir(root) / f".{stream}.new"
        tmp.mkdir(mode=0o700)
        lock_fd = _try_lock(tmp)
        if lock_fd is None:
            raise StorageError(f"journal {tmp} is locked by another trail")
        self._lock_fd: int = lock_fd
        write_private(tmp / "meta.json", json.dumps(meta, sort_keys=True), durable=True)
        self.dir = root / stream
        os.rename(tmp, self.dir)
        self._on_durable = on_durable
        self._mu = threading.Lock()
        self._tls = threading.local()  # each thread's _Waiter
        self._pending: list[bytes] = []
        self._items: list[Any] = []
        self._waiters: list[_Waiter] = []  # threads whose records are in _pending, blocked
        self._writing = False  # a leader is writing (or has been chosen)
        # linger (window > 0): a leader waits (at most `window`) until as many records are queued as there were
        # threads in commit() when the last group ended, so closed-loop callers share one group instead of two
        # alternating half groups (as PostgreSQL's commit_delay with commit_siblings): fewer fdatasyncs, but the
        # disk then waits for the callers and the callers for the disk; without it one group's fdatasync overlaps
        # the next group's calls, which measured faster here (bench/RESULTS.md), hence the default 0
        self.window = window
        self._arrive = threading.Condition(self._mu)
        self._lingering = False
        self._peak = 1
        self._last_write_s = 0.0
        self.error: BaseException | None = None  # once set, every commit fails (fail closed)
        self.segno = 0
        self._fd = -1
        self._off = 0
        self._new_segment()
        _fsync_dir(root)
        self.stats: dict[str, Any] = {"groups": 0, "records": 0, "bytes": 0, "segments": 1, "write_seconds": 0.0}

    def _new_segment(self) -> None:
        self.segno += 1
        fd = os.open(self.dir / f"{self.segno:08d}.wal", os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o600)
        old, self._fd, self._off, self._alloc = self._fd, fd, 0, 0
        self._grow(0)
        _fsync_dir(self.dir)  # the new file's name is durable before any frame in it is relied on
        if old >= 0:
            os.close(old)

    def _grow(self, need: int) -> None:
        """Zero-fill (and fdatasync) the segment ahead of the frames: a frame's fdatasync then writes data
        into blocks the file already has, with no change of size to commit (ext4: no journal commit of
        the inode), which measured ~20% more groups per second here than appending."""
        n = max(PREALLOC_BYTES, need)
        os.pwrite(self._fd, bytes(n), self._alloc)
        os.fdatasync(self._fd)
        self._alloc += n

    def commit(self, rec: bytes, item: Any) -> None:
        """Put one record in the journal; return once it is on disk (raise StorageError if not)."""
        w = self._tls.__dict__.get("w")
        if w is None:
            w = self._tls.w = _Waiter()
        mu = self._mu
        with mu:
            if self.error is not None:
                raise StorageError(f"the inference journal failed: {self.error}")
            self._pending.append(rec)
            self._items.append(item)
            if self._lingering and len(self._pending) >= self._peak:
                self._arrive.notify()
            if self._writing:  # a group is being written: wait to be told (done, failed, or lead the next)
                w.state = _WAIT
                self._waiters.append(w)
                lead = False
            else:
                self._writing = True
                lead = True
        if not lead:
            w.lock.acquire()  # released by the leader of our group (GIL released while blocked)
            if w.state == _DONE:
                return
            if w.state == _FAIL:
                raise StorageError(f"the inference journal could not be written: {self.error}")
        # the leader: write every record queued so far (its own and those of the threads waiting)
        with mu:
            if self.window > 0 and len(self._pending) < self._peak:
                self._lingering = True
                # never longer than the last write took: waiting longer than a write costs more than it saves
                self._arrive.wait_for(lambda: len(self._pending) >= self._peak,
                                      timeout=min(self.window, self._last_write_s))
                self._lingering = False
            recs, items, waiters = self._pending, self._items, self._waiters
            self._pending, self._items, self._waiters = [], [], []
        if not lead:
            waiters.remove(w)  # a chosen leader was waiting in the queue it now writes
        err: BaseException | None = None
        segno = self.segno
        t0 = time.perf_counter()
        try:
            segno = self._write(recs)
            self._last_write_s = time.perf_counter() - t0
            self.stats["write_seconds"] += self._last_write_s
        except BaseException as exc:  # noqa: BLE001 - every waiter of this group gets it
            err = exc
        with mu:
            if err is None:
                self.stats["groups"] += 1
                self.stats["records"] += len(recs)
                try:
                    self._on_durable(items, segno)
                except BaseException as exc:  # noqa: BLE001
                    err = exc
            self._peak = len(recs) + len(self._waiters)
            state = _DONE
            if err is not None:
                self.error = err
                state = _FAIL
            for x in waiters:
                x.state = state
                x.lock.release()
            if self._waiters and err is None:  # calls that came during the write: one of them leads the next group
                nxt = self._waiters[0]
                nxt.state = _LEAD
                nxt.lock.release()
            else:
                for x in self._waiters:
                    x.state = _FAIL
                    x.lock.release()
                self._waiters = []
                self._writing = False
        if err is not None:
            raise StorageError(f"the inference journal could not be written: {err}") from err

    def _write(self, recs: list[bytes]) -> int:
        payload = b"".join(recs)
        if self._off and self._off + len(payload) > SEGMENT_BYTES:
            self._new_segment()
            self.stats["segments"] += 1
        head = _HDR.pack(MAGIC, self.segno, len(payload), len(recs))
        frame = b"".join((head, payload, hashlib.sha256(head + payload).digest()))
        if self._off + len(frame) > self._alloc:
            self._grow(self._off + len(frame) - self._alloc)
        view, off = memoryview(frame), self._off
        while view:
            n = os.pwrite(self._fd, view, off)
            view, off = view[n:], off + n
        os.fdatasync(self._fd)
        self._off += len(frame)
        self.stats["bytes"] += len(frame)
        return self.segno

    def release(self, segno: int) -> None:
        """Every record of segments before ``segno`` is logged: delete those segments."""
        for s, p in _segments(self.dir):
            if s >= segno or s >= self.segno:
                break
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def close(self, *, remove: bool) -> None:
        """Close the journal; ``remove`` deletes it (only when every record in it is logged)."""
        with self._mu:
            self._writing = True  # nobody writes any more
        if self._fd >= 0:
            with contextlib.suppress(OSError):  # already failed (a lost disk)
                os.close(self._fd)
            self._fd = -1
        if remove:
            _remove(self.dir, self._lock_fd)
        else:
            os.close(self._lock_fd)
