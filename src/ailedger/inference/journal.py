"""The write-ahead journal of a durable inference trail.

A durable call returns once its record is in this journal and the journal is on disk, not once its
batch is in the signed log: the trail's writer turns journalled records into signed batches exactly as
in fast mode and drops the journal's segments once their records are logged.  A trail that opens
replays the journals of trails that died (crash, SIGKILL, power loss): every record not yet in a logged
batch is logged once.

Layout: ``<ledger>/inference/journal/<stream>/`` (0700) holds ``meta.json`` (stream, model, model
index, operator DID), ``lock`` (an ``flock`` held by the live trail: a journal whose lock can be
taken belongs to a dead trail) and segments ``00000001.wal``, ``00000002.wal``, ... (0600).

Segments written now (format 2) are runs of 4 KiB blocks:

    block 0 = segment head: magic "AIS2" | u32 version (2) | u32 segment number | u32 block size
              | u32 window | SHA-256(those 20 bytes), zeros to the block's end
    frame   = magic "AIJ2" | u32 segment number | u32 sequence (1, 2, ... in the segment)
              | u32 payload length | u32 record count | payload | SHA-256(header || payload),
              zeros to the next block boundary (every frame starts on a block)
    record  = u8 len(rid) | i64 time (ns) | u32 len(data) | u8 len(ref) | u32 len(ct)
              | rid | data | ref | key id (8) and nonce (12), when ct | ct

Segments of format 1 (written before; still read) are frames back to back with no head:
``"AIJ1" | u32 segment number | u32 payload length | u32 record count | payload | SHA-256``.

``data`` is the record's canonical bytes (commitments only, as stored in ``records.db``); ``ct`` is
the AES-256-GCM ciphertext, under the data subject's key of the payload store (``payloads.py``),
of the call's salt, input and output (AAD ``ailedger-inference-journal/v1|<ref>|<rid>``); the key
id (``key_id``: 8 bytes of a SHA-256 of the key) tells a replay whether the subject's key is still
the one used (else the subject was erased since, and the payload with it): no
input or output is ever on disk in clear, and erasing the subject's key erases a journalled
record's payload too (its record, commitments only, is still logged).

Group commit: concurrent calls share one frame (one ``pwrite`` with ``O_DIRECT | O_DSYNC``: the write
returns once the frame is on the device, no separate ``fdatasync``).  Up to ``window`` frames (the
segment head says how many) are written at once, each at its own reserved offset, since the disk
completes concurrent durable writes faster than one after the other; a call returns only once its
frame *and every earlier frame* is on disk, so what was acknowledged is always a prefix of the journal.
Segments are zero-filled ahead of the frames, so a frame's write goes into blocks the file already has
(no change of size to commit).

A crash can therefore leave, after the last frame of the unbroken run, at most ``window`` frames that
were being written: a hole (a frame short, torn, or never written) possibly followed by valid frames
whose sequence is within ``window`` of the run's last.  None of their calls had returned: on open they
are cut (the file truncated after the run).  A valid frame anywhere else after a hole (out of sequence,
or beyond the window) is damage, not a torn write: ``TamperError``, nothing cut.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import hashlib
import json
import mmap
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

MAGIC = b"AIJ1"  # frames of format 1 (read only)
MAGIC2 = b"AIJ2"  # frames of format 2
SEG_MAGIC = b"AIS2"  # the head block of a segment of format 2
FORMAT = 2
BLOCK = 4096  # format 2: every frame starts on a block; one block of head per segment
MAX_WINDOW = 64  # frames in flight at most (the segment head says how many its writer allowed)
JOURNAL_AAD = b"ailedger-inference-journal/v1|"
SEGMENT_BYTES = 16 << 20  # a new segment once this many bytes are written (the old one goes once logged)
PREALLOC_BYTES = 1 << 20  # zeros written ahead of the frames at a time
_HDR = struct.Struct(">4sIII")
_HDR2 = struct.Struct(">4sIIII")  # magic, segment, sequence, payload length, record count
_SEGHDR = struct.Struct(">4sIIII")  # magic, version, segment, block size, window
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
    """(payload, count, end) of a valid frame (format 1) of segment ``segno`` at ``off``, or None."""
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


def _frame2_at(buf: bytes, off: int, segno: int) -> tuple[bytes, int, int, int] | None:
    """(payload, count, sequence, end) of a valid frame (format 2) of segment ``segno`` at ``off``, or None."""
    if len(buf) - off < _HDR2.size + _HASH or buf[off : off + 4] != MAGIC2:
        return None
    _, seg, seq, ln, count = _HDR2.unpack_from(buf, off)
    end = off + _HDR2.size + ln + _HASH
    if seg != segno or end > len(buf):
        return None
    body = buf[off : end - _HASH]
    if hashlib.sha256(body).digest() != buf[end - _HASH : end]:
        return None
    return body[_HDR2.size :], count, seq, end


def _seg_head(segno: int, window: int) -> bytes:
    h = _SEGHDR.pack(SEG_MAGIC, FORMAT, segno, BLOCK, window)
    return h + hashlib.sha256(h).digest()


def _read_head(buf: bytes, segno: int) -> int | None:
    """The window of a valid segment head (format 2) for segment ``segno``, or None."""
    n = _SEGHDR.size
    if len(buf) < BLOCK or buf[:4] != SEG_MAGIC or hashlib.sha256(buf[:n]).digest() != buf[n : n + _HASH]:
        return None
    _, version, seg, block, window = _SEGHDR.unpack_from(buf, 0)
    if version != FORMAT or seg != segno or block != BLOCK or not 1 <= window <= MAX_WINDOW:
        return None
    return int(window)


def _align(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


def _frames(buf: bytes, segno: int, where: str) -> tuple[list[JournalRecord], int]:
    """The records of the unbroken run of valid frames at the start of a segment, and where the run ends."""
    if _read_head(buf, segno) is not None:
        return _frames2(buf, segno, where)[:2]
    off, recs = 0, []
    while off < len(buf):
        got = _frame_at(buf, off, segno)
        if got is None:
            break
        payload, count, end = got
        recs += _decode_records(payload, count, where)
        off = end
    return recs, off


def _frames2(buf: bytes, segno: int, where: str) -> tuple[list[JournalRecord], int, int]:
    off, seq, recs = BLOCK, 0, []
    while off < len(buf):
        got = _frame2_at(buf, off, segno)
        if got is None:
            break
        payload, count, fseq, end = got
        if fseq != seq + 1:
            raise TamperError(f"journal segment {where} is damaged at byte {off}: frame {fseq} where frame "
                              f"{seq + 1} belongs", found=off)
        recs += _decode_records(payload, count, where)
        seq, off = fseq, _align(end)
    return recs, off, seq


def segment_end(path: Path, segno: int) -> int:
    """The byte offset just after the segment's unbroken run of valid frames (format 2: rounded up to a
    block; what follows is zeros, a torn frame, or frames that were in flight with it)."""
    return _frames(path.read_bytes(), segno, path.name)[1]


def read_segment(path: Path, segno: int, *, cut: bool = True) -> tuple[list[JournalRecord], int]:
    """The records of one segment and the bytes cut from its torn tail (the file is truncated after its
    unbroken run of valid frames when ``cut``; the zeros a segment is preallocated with are not counted as
    cut).  A valid frame after a hole that cannot be a frame in flight at a crash raises TamperError."""
    buf = path.read_bytes()
    window = _read_head(buf, segno)
    if window is not None:
        recs, off, seq = _frames2(buf, segno, path.name)
        for k in range(off, len(buf) - _HDR2.size, BLOCK):  # frames after the hole: only the ones in flight
            got = _frame2_at(buf, k, segno)
            if got is not None and not seq + 1 < got[2] <= seq + window:
                raise TamperError(f"journal segment {path} is damaged at byte {off}: a valid frame ({got[2]}, "
                                  f"after frame {seq}, window {window}) follows at byte {k}; refusing to cut it",
                                  found=off)
    else:
        recs, off = _frames(buf, segno, path.name)
        if off < len(buf):
            k = buf.find(MAGIC, off + 1)
            while k != -1:
                if _frame_at(buf, k, segno) is not None:
                    raise TamperError(f"journal segment {path} is damaged at byte {off}: a valid frame follows at "
                                      f"byte {k}; refusing to cut it", found=off)
                k = buf.find(MAGIC, k + 1)
            for k in range(BLOCK, len(buf) - _HDR2.size, BLOCK):  # a format-2 segment whose head is damaged
                if _frame2_at(buf, k, segno) is not None:
                    raise TamperError(f"journal segment {path} has a damaged head and a valid frame at byte {k}; "
                                      "refusing to cut it", found=0)
    torn = 0 if buf.count(b"\0", off) == len(buf) - off else len(buf) - off
    if off < len(buf) and cut:
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
_ZEROS = memoryview(bytes(BLOCK))  # a frame's padding (at most a block)
DEFAULT_WINDOW = 1  # frames written at once (see Journal)


class _Waiter:
    """One thread's wait for its group: a lock held until another thread releases it, and why."""

    __slots__ = ("lock", "nxt", "state")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.state = _WAIT
        self.nxt: _Waiter | None = None  # the next thread of the same group, woken by this one


class _Group:
    """One frame: its records, where it goes, who waits for it."""

    __slots__ = ("done", "err", "fd", "gno", "items", "leader", "off", "recs", "segno", "seq", "size", "waiters")

    def __init__(self, gno: int, recs: list[bytes], items: list[Any], waiters: list[_Waiter], leader: _Waiter) -> None:
        self.gno = gno
        self.recs = recs
        self.items = items
        self.waiters = waiters
        self.leader = leader
        self.done = False
        self.err: BaseException | None = None
        self.segno = self.seq = self.off = self.size = 0
        self.fd = -1


def _open_segment_fd(path: Path, no_direct: bool = False) -> tuple[int, bool]:
    """A new segment file opened for durable writes: ``O_DIRECT | O_DSYNC`` (a write returns once on the
    device), or ``O_DSYNC`` alone where O_DIRECT is refused."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | os.O_DSYNC
    direct = 0 if no_direct else getattr(os, "O_DIRECT", 0)
    if direct:
        try:
            return os.open(path, flags | direct, 0o600), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return os.open(path, flags, 0o600), False


class Journal:
    """The live journal of one trail: group commit of records into frames written ``O_DIRECT | O_DSYNC``.

    ``commit(record_bytes, item)`` returns once the record is on disk; concurrent callers share a
    frame: a caller that finds fewer than ``inflight`` frames in flight writes every record queued so far
    (its own and those of the callers waiting), at the next free offset; the others wait, each on its own
    lock (no condition variable that wakes everyone), released with what happened.  A frame's callers
    return once it and every earlier frame are on disk.  ``on_durable(items, segno)`` is called for each
    frame once that holds, in journal order (the trail's writer queue).

    ``inflight`` = 1 (the default) writes one frame at a time (the next group is what queued meanwhile, as
    LevelDB's writer queue); more lets the next groups go to disk while one is being written, which helps when
    the disk is the limit; here (a fast virtio disk, 2 cores) it was not, and 2 cost ~15% more CPU per call
    in smaller frames for the same calls/s (bench/RESULTS.md)."""

    def __init__(self, root: Path, stream: str, meta: dict[str, Any],
                 on_durable: Callable[[list[Any], int], None], *, window: float = 0.0,
                 inflight: int | None = None) -> None:
        inflight = DEFAULT_WINDOW if inflight is None else inflight
        if not 1 <= inflight <= MAX_WINDOW:
            raise ValueError(f"inflight must be in [1, {MAX_WINDOW}]")
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
        self.inflight = inflight
        self._mu = threading.Lock()
        self._tls = threading.local()  # each thread's _Waiter and aligned write buffer
        self._pending: list[bytes] = []
        self._items: list[Any] = []
        self._waiters: list[_Waiter] = []  # threads whose records are in _pending, blocked
        self._forming = False  # a leader has been chosen for the records queued (it takes them soon)
        self._groups: collections.deque[_Group] = collections.deque()  # reserved, not yet released, in order
        self._gno = 0
        self._callers = 1.0
        self._inflight_recs = 0
        self._fail_from: int | None = None  # groups from this one on fail (a write failed)
        self._drain = threading.Condition(self._mu)  # _groups became empty (a segment may rotate)
        self._draining = 0
        self._nwriting = 0
        self._busy_since = 0.0
        # linger (window > 0): a leader waits (at most `window`) until as many records are queued as there were
        # threads in commit() when the last group ended, so closed-loop callers share one group instead of two
        # alternating half groups (as PostgreSQL's commit_delay with commit_siblings): fewer writes, but the
        # disk then waits for the callers and the callers for the disk (bench/RESULTS.md), hence the default 0
        self.window = window
        self._arrive = threading.Condition(self._mu)
        self._lingering = False
        self._peak = 1
        self._last_write_s = 0.0
        self.error: BaseException | None = None  # once set, every commit fails (fail closed)
        self._closed = False
        self.segno = 0
        self._fd = -1
        self._direct = False
        self._no_direct = False
        self._seq = 0
        self._off = 0
        self._alloc = 0
        self._zeros: mmap.mmap | None = None
        self.stats: dict[str, Any] = {"groups": 0, "records": 0, "bytes": 0, "segments": 1, "write_seconds": 0.0,
                                      "busy_seconds": 0.0, "format": FORMAT, "inflight": inflight}
        self._new_segment()
        _fsync_dir(root)

    def _new_segment(self) -> None:
        """Start the next segment (no frame in flight): its head block, zeros ahead, its name durable."""
        self.segno += 1
        path = self.dir / f"{self.segno:08d}.wal"
        fd, self._direct = _open_segment_fd(path, self._no_direct)
        old, self._fd, self._seq, self._off, self._alloc = self._fd, fd, 0, BLOCK, 0
        try:
            self._grow(BLOCK, _seg_head(self.segno, self.inflight))
        except OSError as exc:
            if not self._direct or exc.errno != errno.EINVAL:
                raise
            # O_DIRECT accepted at open but not these writes (a device with larger blocks): without it
            os.close(fd)
            path.unlink()
            self._no_direct = True
            self._fd, self._alloc = -1, 0
            fd, self._direct = _open_segment_fd(path, True)
            self._fd = fd
            self._grow(BLOCK, _seg_head(self.segno, self.inflight))
        self.stats["direct"] = self._direct
        _fsync_dir(self.dir)  # the new file's name is durable before any frame in it is relied on
        if old >= 0:
            os.close(old)

    def _grow(self, need: int, head: bytes = b"") -> None:
        """Zero-fill the segment ahead of the frames (written O_DSYNC: durable, size included): a frame's
        write then goes into blocks the file already has, with no change of size to commit (ext4: no journal
        commit of the inode), which measured ~20% more groups per second here than appending."""
        n = _align(max(PREALLOC_BYTES, need))
        if self._zeros is None or len(self._zeros) < n:
            self._zeros = mmap.mmap(-1, n)  # page-aligned, zeros: what O_DIRECT needs
        buf = self._zeros
        if head:
            buf[: len(head)] = head
        try:
            view, off = memoryview(buf)[:n], self._alloc
            while view:
                k = os.pwrite(self._fd, view, off)
                view, off = view[k:], off + k
        finally:
            if head:
                buf[: len(head)] = bytes(len(head))
        self._alloc += n

    def commit(self, rec: bytes, item: Any) -> None:
        """Put one record in the journal; return once it is on disk (raise StorageError if not)."""
        w = self._tls.__dict__.get("w")
        if w is None:
            w = self._tls.w = _Waiter()
        mu = self._mu
        g: _Group | None = None
        with mu:
            if self.error is not None:
                raise StorageError(f"the inference journal failed: {self.error}")
            if self._closed:
                raise StorageError("the inference journal is closed")
            pending = self._pending
            pending.append(rec)
            self._items.append(item)
            if self._lingering and len(pending) >= self._peak:
                self._arrive.notify()
            # callers in the journal now (queued or in a frame in flight), smoothed: a new frame starts beside one
            # in flight only with its share of them, so closed-loop callers keep `inflight` full frames going
            # instead of a frame of one each time a caller comes back
            self._callers += (len(pending) + self._inflight_recs - self._callers) * 0.125
            groups = self._groups
            if self._forming or len(groups) >= self.inflight or (groups and len(pending) < self._share()):
                w.state = _WAIT
                self._waiters.append(w)
                lead = False
            else:
                lead = True
                if self.window > 0:
                    self._forming = True  # lingers below, then takes what queued
                else:
                    g = self._take(w)
        if not lead:
            w.lock.acquire()  # released by another thread (GIL released while blocked)
            nxt = w.nxt
            if nxt is not None:  # wake the next caller of this group (one at a time: they run one at a time anyway)
                w.nxt = None
                nxt.lock.release()
            if w.state == _DONE:
                return
            if w.state == _FAIL:
                raise StorageError(f"the inference journal could not be written: {self.error}")
        if g is None:  # a leader chosen while waiting, or lingering: take every record queued so far
            with mu:
                if self.window > 0 and len(self._pending) < self._peak:
                    self._lingering = True
                    # never longer than the last write took: waiting longer than a write costs more than it saves
                    self._arrive.wait_for(lambda: len(self._pending) >= self._peak,
                                          timeout=min(self.window, self._last_write_s))
                    self._lingering = False
                if self.error is not None:  # failed since this leader was chosen: its record failed with the rest
                    raise StorageError(f"the inference journal could not be written: {self.error}")
                g = self._take(w)
        t0 = time.perf_counter()
        if g.err is None:
            try:
                self._write(g)
            except BaseException as exc:  # noqa: BLE001 - every waiter of this group gets it
                g.err = exc
        t1 = time.perf_counter()
        with mu:
            if g.off:
                self._nwriting -= 1
                if not self._nwriting:
                    self.stats["busy_seconds"] += t1 - self._busy_since
                self._last_write_s = t1 - t0
                self.stats["write_seconds"] += t1 - t0
            g.done = True
            mine = self._settle(g)
        if mine is None:  # an earlier frame is still being written: wait until it is settled
            w.lock.acquire()
            mine = w.state
        if mine != _DONE:
            raise StorageError(f"the inference journal could not be written: {g.err or self.error}") from g.err

    def _take(self, w: _Waiter) -> _Group:
        """(under the mutex) The leader ``w`` takes every record queued (its own and its waiters') as a frame."""
        self._gno += 1
        g = _Group(self._gno, self._pending, self._items, self._waiters, w)
        self._pending, self._items, self._waiters = [], [], []
        try:
            self._reserve(g)
        except BaseException as exc:  # noqa: BLE001 - a new segment could not be made
            g.err = exc
        self._forming = False
        if g.err is None:
            if not self._nwriting:
                self._busy_since = time.perf_counter()
            self._nwriting += 1
        return g

    def _share(self) -> int:
        return max(1, int(self._callers / self.inflight + 0.5))

    def _reserve(self, g: _Group) -> None:
        """(under the mutex) The group's segment, sequence and offset; a new segment when this one is full."""
        g.size = size = _align(_HDR2.size + sum(map(len, g.recs)) + _HASH)
        if self._seq and self._off + size > SEGMENT_BYTES:
            self._draining += 1
            try:
                while self._groups:  # the frames in flight are settled first (they are in this segment)
                    self._drain.wait()
            finally:
                self._draining -= 1
            if self.error is not None:
                raise StorageError(f"the inference journal failed: {self.error}")
            self._new_segment()
            self.stats["segments"] += 1
        if self._off + size > self._alloc:
            self._grow(self._off + size - self._alloc)
        self._seq += 1
        g.segno, g.seq, g.off, g.fd = self.segno, self._seq, self._off, self._fd
        self._off += size
        self._groups.append(g)
        self._inflight_recs += len(g.recs)
        self.stats["bytes"] += size

    def _write(self, g: _Group) -> None:
        payload = b"".join(g.recs)
        head = _HDR2.pack(MAGIC2, g.segno, g.seq, len(payload), len(g.recs))
        h = hashlib.sha256(head)
        h.update(payload)
        n = len(head) + len(payload) + _HASH
        size = g.size
        if self._direct:
            buf = self._tls.__dict__.get("buf")
            if buf is None or len(buf) < size:
                buf = self._tls.buf = mmap.mmap(-1, max(size, 16 * BLOCK))  # page-aligned, as O_DIRECT needs
            k = len(head)
            buf[:k] = head
            buf[k : n - _HASH] = payload
            buf[n - _HASH : n] = h.digest()
            buf[n:size] = _ZEROS[: size - n]
            view: memoryview = memoryview(buf)[:size]
        else:
            view = memoryview(b"".join((head, payload, h.digest(), _ZEROS[: size - n])))
        off = g.off
        while True:
            k = os.pwrite(g.fd, view, off)
            if k == len(view):
                return
            view, off = view[k:], off + k

    def _settle(self, g: _Group) -> int | None:
        """(under the mutex) Release, in journal order, the groups whose frame and every earlier one are on
        disk (or failed); the state of ``g``'s leader, or None when an earlier frame is still in flight."""
        mine: int | None = None
        if g.err is not None:
            if self.error is None:
                self.error = g.err
            if self._fail_from is None or g.gno < self._fail_from:
                self._fail_from = g.gno
        if not g.off:  # never reserved (no new segment): not in the queue
            self._release(g, _FAIL, g)
            mine = _FAIL
        groups = self._groups
        while groups and groups[0].done:
            h = groups.popleft()
            self._inflight_recs -= len(h.recs)
            state = _DONE if h.err is None and (self._fail_from is None or h.gno < self._fail_from) else _FAIL
            if state == _DONE:
                self.stats["groups"] += 1
                self.stats["records"] += len(h.recs)
                try:
                    self._on_durable(h.items, h.segno)
                except BaseException as exc:  # noqa: BLE001
                    h.err = exc
                    self.error = self.error or exc
                    self._fail_from = h.gno if self._fail_from is None else min(self._fail_from, h.gno)
                    state = _FAIL
            self._release(h, state, g)
            if h is g:
                mine = state
        if not groups and self._draining:
            self._drain.notify_all()
        self._peak = len(g.recs) + len(self._waiters)
        if self.error is not None:  # fail closed: nobody waiting for a group gets through
            for x in self._waiters:
                x.state = _FAIL
                x.lock.release()
            self._waiters, self._pending, self._items = [], [], []
        elif (self._waiters and not self._forming and len(groups) < self.inflight
              and (not groups or len(self._waiters) >= self._share())):
            nxt = self._waiters.pop(0)  # calls that came meanwhile: one of them leads the next group
            nxt.state = _LEAD
            self._forming = True
            nxt.lock.release()
        return mine

    @staticmethod
    def _release(h: _Group, state: int, me: _Group) -> None:
        ws = h.waiters
        if ws:
            for k, x in enumerate(ws):
                x.state = state
                x.nxt = ws[k + 1] if k + 1 < len(ws) else None
            ws[0].lock.release()
        if h is not me:  # its leader waits for the earlier frames
            h.leader.state = state
            h.leader.lock.release()

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
            self._closed = True  # nobody writes any more
        if self._fd >= 0:
            with contextlib.suppress(OSError):  # already failed (a lost disk)
                os.close(self._fd)
            self._fd = -1
        if remove:
            _remove(self.dir, self._lock_fd)
        else:
            os.close(self._lock_fd)
