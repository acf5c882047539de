"""Fast, parallel, cached hashing of model directories into :class:`Manifest` objects.

Big files (64 MiB and up) are mapped once, under a kernel read lease, and their chunks hashed
straight from the page cache; smaller files (and any file no lease can be had for) are read with
``os.preadv`` into a per-thread reused buffer.  hashlib releases the GIL for large buffers, so a
thread per core keeps every core busy on SHA-256 (one big file is spread across cores too, chunk
by chunk).  A file is re-stat'ed after
its last chunk: if size, mtime, inode or ctime moved while it was read, hashing fails naming it.

The cache (SQLite, under the ledger directory) maps (path, size, mtime_ns, ctime_ns, inode, device,
chunk size) to the file's chunk digests, so re-registering a model where one file changed reads only
that file.  It is a speed-up for *producing* a manifest of a tree the user owns (``model register``,
``model sign``), never evidence that a tree is unchanged: ``model verify`` re-reads every byte unless
``--trust-cache`` is given.  ctime is in the key because no unprivileged user can set it back
(``touch -r`` restores mtime, not ctime); files owned by someone else are never taken from the
cache, and a file whose timestamps are too close to the moment it was hashed is not stored (a
second write within the same timestamp tick would be invisible: the "racy clean" case git knows).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import signal
import sqlite3
import stat as statmod
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError
from ailedger.provenance.manifest import (
    DEFAULT_CHUNK_SIZE,
    Chunk,
    FileEntry,
    Manifest,
    Tensor,
    parse_safetensors_header,
    plan_chunks,
)

__all__ = [
    "DEFAULT_IGNORED",
    "HashCache",
    "HashStats",
    "ScannedFile",
    "cached_entry",
    "cpu_workers",
    "hash_files_whole",
    "hash_model_dir",
    "scan_dir",
]

# the same names OpenSSF model_signing leaves out by default
DEFAULT_IGNORED = frozenset({".git", ".gitattributes", ".github", ".gitignore"})


def cpu_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ScannedFile:
    rel: str  # POSIX path relative to the model root
    path: str  # absolute path (through any symlink)
    st: os.stat_result
    seen_ns: int = 0  # wall clock just before the stat (0: unknown, so never cached)
    real: str = ""  # the file's real path (through every symlink): what the cache keys on, when known


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def scan_dir(root: str | os.PathLike[str], *, follow_external_symlinks: bool = False,
             ignore: Iterable[str] = ()) -> list[ScannedFile]:
    """List the regular files of a model directory, sorted by relative path.

    Symlinks are followed only while they stay inside the folder, unless
    ``follow_external_symlinks``; loops, special files and dangling links are errors."""
    rootp = Path(root)
    if not rootp.exists():
        raise BadInputError(f"{root} does not exist", field="path")
    if not rootp.is_dir():
        raise BadInputError(f"{root} is not a directory", field="path")
    root_real = os.path.realpath(rootp)
    ignored = set(DEFAULT_IGNORED) | {str(i).strip("/") for i in ignore}
    out: list[ScannedFile] = []
    seen_dirs = {root_real}

    def err(e: OSError) -> None:
        raise BadInputError(f"cannot read {e.filename}: {e.strerror}", field="path")

    for dirpath, dirnames, filenames in os.walk(rootp, followlinks=True, onerror=err):
        reldir = os.path.relpath(dirpath, rootp)
        reldir = "" if reldir == "." else Path(reldir).as_posix() + "/"
        keep = []
        for d in sorted(dirnames):
            rel = reldir + d
            if d in ignored or rel in ignored:
                continue
            full = os.path.join(dirpath, d)
            real = os.path.realpath(full)
            if os.path.islink(full) and not _inside(real, root_real) and not follow_external_symlinks:
                raise BadInputError(f"{rel} is a symlink leaving the model folder (to {real}); "
                                    "refused unless --follow-symlinks", field="path")
            if real in seen_dirs:
                raise BadInputError(f"{rel} is a symlink loop (to {real})", field="path")
            seen_dirs.add(real)
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            rel = reldir + f
            if f in ignored or rel in ignored:
                continue
            full = os.path.join(dirpath, f)
            if os.path.islink(full):
                real = os.path.realpath(full)
                if not os.path.exists(real):
                    raise BadInputError(f"cannot read {rel}: dangling symlink to {real}", field="path")
                if not _inside(real, root_real) and not follow_external_symlinks:
                    raise BadInputError(f"{rel} is a symlink leaving the model folder (to {real}); "
                                        "refused unless --follow-symlinks", field="path")
            try:
                seen = time.time_ns()
                st = os.stat(full)
            except OSError as e:
                raise BadInputError(f"cannot read {rel}: {e.strerror}", field="path") from e
            if not statmod.S_ISREG(st.st_mode):
                raise BadInputError(f"{rel} is not a regular file (a pipe, socket or device?)", field="path")
            if not os.access(full, os.R_OK):
                raise BadInputError(f"cannot read {rel}: permission denied", field="path")
            out.append(ScannedFile(rel, os.path.abspath(full), st, seen, os.path.realpath(full)))
    if not out:
        raise BadInputError(f"{root} contains no files to hash", field="path")
    out.sort(key=lambda s: s.rel)
    return out


# a file whose newest timestamp is this close to the moment it was stat'ed may still be written within
# the same timestamp tick (kernel timestamps come from a clock that ticks every 1-10 ms): not cached
RACY_NS = 50_000_000
RACY_NS_WHOLE_SECONDS = 2_000_000_000  # file systems that keep whole seconds (ext3, FAT: 2 s)


def _cacheable(f: ScannedFile) -> bool:
    """May ``f``'s digests be stored in or taken from the cache?  Only a file this user owns, whose
    timestamps are old enough that a later write must give it a new ctime."""
    st = f.st
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return False
    newest = max(st.st_mtime_ns, st.st_ctime_ns)
    whole = st.st_mtime_ns % 1_000_000_000 == 0 and st.st_ctime_ns % 1_000_000_000 == 0
    return f.seen_ns - newest > (RACY_NS_WHOLE_SECONDS if whole else RACY_NS)


class HashCache:
    """(path, size, mtime_ns, ctime_ns, inode, device, chunk size) -> file entry; SQLite, one file.

    The path is the file's real path (symlinks resolved), so a new version of a model whose unchanged
    files are symlinks to the same blobs (the Hugging Face cache's snapshots) finds them.  A speed-up for producing a manifest of the user's own files (register, sign), never evidence
    for a verifier: ``model verify`` opens it only with ``--trust-cache``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("DROP TABLE IF EXISTS files")  # v1: keyed without ctime, so `touch -r` fooled it
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files_v2 (path TEXT, chunk_size INTEGER, size INTEGER, mtime_ns INTEGER, "
            "ctime_ns INTEGER, ino INTEGER, dev INTEGER, entry TEXT, sha256 TEXT, PRIMARY KEY (path, chunk_size))")
        self._db.commit()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(f: ScannedFile, chunk_size: int) -> tuple[Any, ...]:
        st = f.st
        return (f.real or f.path, chunk_size, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def get(self, f: ScannedFile, chunk_size: int) -> tuple[dict[str, Any] | None, str | None]:
        if not _cacheable(f):
            return None, None
        row = self._db.execute(
            "SELECT entry, sha256 FROM files_v2 WHERE path=? AND chunk_size=? AND size=? AND mtime_ns=? AND "
            "ctime_ns=? AND ino=? AND dev=?", self._key(f, chunk_size)).fetchone()
        if row is None:
            return None, None
        try:
            entry = json.loads(row[0]) if row[0] else None
        except ValueError:  # a damaged row is a miss
            entry = None
        return (entry if isinstance(entry, dict) else None), row[1]

    def put(self, f: ScannedFile, chunk_size: int, entry: dict[str, Any] | None, sha256: str | None = None) -> None:
        if not _cacheable(f):
            return
        old_entry, old_sha = self.get(f, chunk_size)
        self._db.execute(
            "INSERT OR REPLACE INTO files_v2 VALUES (?,?,?,?,?,?,?,?,?)",
            (*self._key(f, chunk_size),
             json.dumps(entry if entry is not None else old_entry) if (entry or old_entry) else None,
             sha256 or old_sha))

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.close()


@dataclass
class HashStats:
    files: int = 0
    files_hashed: int = 0  # files read and hashed in this run; the rest came from the cache
    bytes_total: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0
    workers: int = 1
    hashed_paths: list[str] = field(default_factory=list)  # relative paths read and hashed in this run
    cached_paths: list[str] = field(default_factory=list)  # relative paths whose digests came from the cache

    @property
    def files_from_cache(self) -> int:
        return self.files - self.files_hashed

    @property
    def bytes_from_cache(self) -> int:
        return self.bytes_total - self.bytes_hashed

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if not k.endswith("_paths")}
        d["mib_per_s"] = round(self.bytes_hashed / (1 << 20) / self.seconds, 1) if self.seconds else None
        return d


_tls = threading.local()


def _buffer(size: int) -> memoryview:
    buf = getattr(_tls, "buf", None)
    if buf is None or len(buf) < size:
        buf = memoryview(bytearray(size))
        _tls.buf = buf
    return buf


READ_MODE = os.environ.get("AILEDGER_HASH_READ", "auto")  # "auto" (default), "pread" or "mmap"
PIECE = 256 << 10  # pread piece: stays in L2 between the copy and the hash
_PAGE = mmap.ALLOCATIONGRANULARITY
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
MAP_MIN = 64 << 20  # files at least this big are mapped whole under a read lease (READ_MODE "auto")

# Linux fcntl commands (fcntl.h); Python's fcntl module does not name all of them
_F_SETSIG, _F_SETLEASE, _F_GETLEASE = 10, 1024, 1025
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)
_DROP_EVERY, _DROP_MARGIN = 64 << 20, 16 << 20


class _LeasedMap:
    """A whole file mapped once, shared by every thread hashing its chunks, under a read lease.

    Hashing straight from the page cache through one long-lived mapping costs no copy (a ``pread``
    copy costs ~14% extra CPU per byte here, see bench/RESULTS.md), but a mapped file that shrinks
    under us would raise SIGBUS.  The kernel's read lease (``F_SETLEASE``) closes that hole: it is
    only granted when nobody has the file open for writing, and any later open for writing or
    truncate blocks (up to ``/proc/sys/fs/lease-break-time``) until we let go.  A pending break is
    seen with ``F_GETLEASE`` before every chunk; hashing then stops with a clear error and releases
    the file.  The break notice is sent as SIGURG, whose default action is to be ignored."""

    def __init__(self, path: str, rel: str, size: int, chunks: int) -> None:
        self.rel = rel
        self.left = chunks
        self.dropped = 0
        self.lock = threading.Lock()
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            import fcntl

            fcntl.fcntl(self.fd, _F_SETSIG, signal.SIGURG)
            fcntl.fcntl(self.fd, _F_SETLEASE, fcntl.F_RDLCK)
            self._fcntl = fcntl
            if os.fstat(self.fd).st_size != size:
                raise BadInputError(f"{rel} changed while it was being hashed (its size moved)", field="path")
            self.mm = mmap.mmap(self.fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            try:
                self.mm.madvise(mmap.MADV_SEQUENTIAL)
            except (AttributeError, OSError):  # pragma: no cover
                pass
            self.mv = memoryview(self.mm)
        except BaseException:
            os.close(self.fd)
            raise

    def digest(self, offset: int, length: int, algo: str) -> bytes:
        if self._fcntl.fcntl(self.fd, _F_GETLEASE) != self._fcntl.F_RDLCK:
            raise BadInputError(f"{self.rel} was opened for writing while it was being hashed; nothing was recorded",
                                field="path")
        part = self.mv[offset:offset + length]
        try:
            d = hashlib.new(algo, part).digest()
        finally:
            part.release()
        # every 64 MiB, drop the pages hashed so far from this process's page tables (they stay in the
        # page cache): resident memory stays bounded, and one TLB flush covers many chunks
        if _DONTNEED is not None and offset - self.dropped >= _DROP_EVERY:
            with self.lock:
                hi = (offset - _DROP_MARGIN) // _PAGE * _PAGE
                if hi > self.dropped:
                    self.mm.madvise(_DONTNEED, self.dropped, hi - self.dropped)
                    self.dropped = hi
        return d

    def close(self) -> None:
        self.mv.release()
        self.mm.close()
        os.close(self.fd)


def _lease_usable() -> bool:
    return (sys.platform.startswith("linux") and READ_MODE == "auto"
            and signal.getsignal(signal.SIGURG) in (signal.SIG_DFL, signal.SIG_IGN, None))


class _Maps:
    """The leased mappings of one hashing run: opened by the first chunk of a file, closed by its last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.maps: dict[str, _LeasedMap | None] = {}

    def get(self, path: str, rel: str, size: int, chunks: int) -> _LeasedMap | None:
        with self.lock:
            if path in self.maps:
                return self.maps[path]
            try:
                m: _LeasedMap | None = _LeasedMap(path, rel, size, chunks)
            except OSError:  # no lease here (open for writing elsewhere, not our file, no support): pread
                m = None
            self.maps[path] = m
            return m

    def done(self, path: str) -> None:
        with self.lock:
            m = self.maps.get(path)
            if m is not None:
                m.left -= 1
                if m.left == 0:
                    m.close()
                    self.maps[path] = None

    def close(self) -> None:
        with self.lock:
            for m in self.maps.values():
                if m is not None:
                    m.close()
            self.maps.clear()


def _hash_chunk(maps: _Maps | None, f: ScannedFile, chunks: int, offset: int, length: int,
                algo: str = "sha256") -> bytes:
    if maps is None or f.st.st_size < MAP_MIN:
        return _read_range(f.path, f.rel, offset, length, algo)
    m = maps.get(f.path, f.rel, f.st.st_size, chunks)
    if m is None:
        return _read_range(f.path, f.rel, offset, length, algo)
    try:
        return m.digest(offset, length, algo)
    finally:
        maps.done(f.path)


def _read_range(path: str, rel: str, offset: int, length: int, algo: str = "sha256") -> bytes:
    """Digest of bytes [offset, offset + length) of a file.

    ``preadv`` 256 KiB pieces into a per-thread buffer that stays in the CPU cache and feed them to
    one hash object (a file truncated under us is a clean error, not SIGBUS).  Used for small files
    and wherever a read lease cannot be had; ``AILEDGER_HASH_READ=mmap`` maps each chunk instead."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise BadInputError(f"cannot read {rel}: {e.strerror}", field="path") from e
    try:
        if READ_MODE == "mmap" and length >= 1 << 16:
            if os.fstat(fd).st_size < offset + length:
                raise BadInputError(f"{rel} changed while it was being hashed (it got shorter)", field="path")
            base = offset - offset % _PAGE
            mm = mmap.mmap(fd, length + offset - base, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ,
                           offset=base)
            try:
                with memoryview(mm) as mv:
                    part = mv[offset - base:]
                    try:
                        return hashlib.new(algo, part).digest()
                    finally:
                        part.release()
            finally:
                mm.close()
        buf = _buffer(PIECE)
        h = hashlib.new(algo)
        pos, end = offset, offset + length
        while pos < end:
            n = os.preadv(fd, [buf[:min(PIECE, end - pos)]], pos)
            if n <= 0:
                raise BadInputError(f"{rel} changed while it was being hashed (it got shorter)", field="path")
            h.update(buf[:n])
            pos += n
        return h.digest()
    except OSError as e:
        raise BadInputError(f"cannot read {rel}: {e.strerror}", field="path") from e
    finally:
        os.close(fd)


def _safetensors_plan(f: ScannedFile, chunk_size: int, strict: bool = True
                      ) -> tuple[list[tuple[int, int]], list[Tensor] | None]:
    """Chunk plan of one file: cut at the safetensors header and at both ends of every tensor.

    ``strict`` (registering): a malformed header is bad input.  Otherwise (verifying a copy) the
    file is hashed as it is: a file cut short keeps the cuts its intact header states (its tensors
    past the end are kept with their stated offsets, so the diff can name them), and one whose
    header cannot be read at all is cut into plain chunks."""
    size = f.st.st_size
    if not f.rel.endswith(".safetensors"):
        return plan_chunks(size, chunk_size), None
    try:
        with open(f.path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            header = fh.read(n) if 8 + n <= size and n <= 100 << 20 else b""
    except OSError as e:
        raise BadInputError(f"cannot read {f.rel}: {e.strerror}", field="path") from e
    try:
        hdr = parse_safetensors_header(head, header, size, what=f.rel, truncated_ok=not strict)
    except BadInputError:
        if strict:
            raise
        return plan_chunks(size, chunk_size), None
    cuts = [hdr.data_start]
    for t in hdr.tensors:
        cuts += [t.begin, t.end]
    plan = plan_chunks(size, chunk_size, cuts)
    starts = {off: i for i, (off, _) in enumerate(plan)}
    tensors = []
    for t in hdr.tensors:
        if t.begin == t.end:
            tensors.append(Tensor(t.name, t.dtype, t.shape, t.begin, t.end, starts.get(t.begin, len(plan)), 0))
            continue
        first = starts.get(t.begin, len(plan))  # not a chunk start only when past the end of a cut-short file
        last = starts[t.end] if t.end in starts else len(plan)
        tensors.append(Tensor(t.name, t.dtype, t.shape, t.begin, t.end, first, last - first))
    return plan, tensors


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino, a.st_ctime_ns) == (b.st_size, b.st_mtime_ns, b.st_ino, b.st_ctime_ns)


def _changed_since(f: ScannedFile) -> bool:
    """``f`` is gone or not the file that was scanned (size, times or inode differ)."""
    try:
        now = os.stat(f.path)
    except OSError:
        return True
    return not _same_file(now, f.st)


def cached_entry(cache: HashCache, f: ScannedFile, chunk_size: int) -> FileEntry | None:
    """``f``'s file entry from the cache (under its path ``f.rel``), or None: not there, not cacheable,
    or a damaged row (a miss: the file is hashed again).  Counts the hit or miss."""
    hit, _ = cache.get(f, chunk_size)
    fe = None
    if hit is not None:
        hit["path"] = f.rel
        try:
            fe = FileEntry.from_dict(hit)
        except AiledgerError:
            fe = None
    if fe is None:
        cache.misses += 1
    else:
        cache.hits += 1
    return fe


def hash_model_dir(root: str | os.PathLike[str], *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                   workers: int | None = None, cache: HashCache | None = None, progress: bool = False,
                   follow_external_symlinks: bool = False, ignore: Iterable[str] = (),
                   on_chunk: Callable[[str, int, int], None] | None = None,
                   stats: HashStats | None = None, strict: bool = True) -> Manifest:
    """Hash every file of ``root`` into a manifest (files, chunks, safetensors tensors).

    ``cache``: take unchanged files' digests from it and store new ones (for registering the
    user's own tree; a verifier passes none).  ``strict=False``: a damaged safetensors file is
    hashed as it is instead of refused (see ``_safetensors_plan``)."""
    t0 = time.perf_counter()
    files = scan_dir(root, follow_external_symlinks=follow_external_symlinks, ignore=ignore)
    workers = workers or cpu_workers()
    st = stats if stats is not None else HashStats()
    st.workers = workers
    st.files = len(files)
    st.bytes_total = sum(f.st.st_size for f in files)
    entries: dict[str, FileEntry] = {}
    todo: list[tuple[ScannedFile, list[tuple[int, int]], list[Tensor] | None]] = []
    for f in files:
        if cache is not None:
            fe = cached_entry(cache, f, chunk_size)
            if fe is not None:
                entries[f.rel] = fe
                st.cached_paths.append(f.rel)
                continue
        st.hashed_paths.append(f.rel)
        plan, tensors = _safetensors_plan(f, chunk_size, strict)
        todo.append((f, plan, tensors))
    total = sum(f.st.st_size for f, _, _ in todo)
    st.bytes_hashed = total
    st.files_hashed = len(todo)
    digests: dict[str, list[bytes | None]] = {f.rel: [None] * len(plan) for f, plan, _ in todo}
    remaining = {f.rel: len(plan) for f, plan, _ in todo}
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
               disable=not progress, desc="hashing", leave=False)
    changed: list[str] = []
    maps = _Maps() if _lease_usable() else None
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futs = {}
            for f, plan, _ in todo:
                if not plan:
                    continue
                for i, (off, ln) in enumerate(plan):
                    futs[pool.submit(_hash_chunk, maps, f, len(plan), off, ln)] = (f, i, ln)
            try:
                for fut in as_completed(futs):
                    f, i, ln = futs[fut]
                    digests[f.rel][i] = fut.result()
                    bar.update(ln)
                    if on_chunk is not None:
                        on_chunk(f.rel, i, ln)
                    remaining[f.rel] -= 1
                    if remaining[f.rel] == 0 and _changed_since(f):
                        changed.append(f.rel)
            except BaseException:
                for x in futs:
                    x.cancel()
                raise
    finally:
        bar.close()
        if maps is not None:
            maps.close()
    changed += [f.rel for f, plan, _ in todo if not plan and _changed_since(f)]  # empty files: re-check too
    if changed:
        raise BadInputError(f"{min(changed)} changed while it was being hashed; nothing was recorded",
                            field="path", files=sorted(changed))
    for f, plan, tensors in todo:
        ds = digests[f.rel]
        fe = FileEntry(f.rel, f.st.st_size,
                       tuple(Chunk(off, ln, d) for (off, ln), d in zip(plan, ds) if d is not None),
                       tuple(tensors) if tensors is not None else None)
        entries[f.rel] = fe
        if cache is not None:
            d = fe.to_dict()
            del d["path"]
            cache.put(f, chunk_size, d)
    if cache is not None:
        cache.commit()
    st.seconds = time.perf_counter() - t0
    return Manifest.build(entries.values(), chunk_size)


def _whole_file(path: str, rel: str, algo: str, bufsize: int = 4 << 20) -> str:
    h = hashlib.new(algo)
    mv = _buffer(bufsize)
    try:
        with open(path, "rb", buffering=0) as fh:
            while True:
                n = fh.readinto(mv)
                if not n:
                    break
                h.update(mv[:n])
    except OSError as e:
        raise BadInputError(f"cannot read {rel}: {e.strerror}", field="path") from e
    return h.hexdigest()


def hash_files_whole(files: list[ScannedFile], *, algo: str = "sha256", workers: int | None = None,
                     cache: HashCache | None = None, progress: bool = False) -> dict[str, str]:
    """Plain whole-file digests (for OpenSSF model signing's ``files`` serialization), one file per
    thread; the cache keeps SHA-256 ones."""
    out: dict[str, str] = {}
    todo = []
    for f in files:
        if cache is not None and algo == "sha256":
            _, sha = cache.get(f, 0)
            if sha:
                out[f.rel] = sha
                continue
        todo.append(f)
    from tqdm import tqdm

    bar = tqdm(total=sum(f.st.st_size for f in todo), unit="B", unit_scale=True, unit_divisor=1024,
               file=sys.stderr, disable=not progress, desc="hashing", leave=False)
    try:
        with ThreadPoolExecutor(max_workers=workers or cpu_workers()) as pool:
            futs = {pool.submit(_whole_file, f.path, f.rel, algo): f for f in todo}
            for fut in as_completed(futs):
                f = futs[fut]
                out[f.rel] = fut.result()
                bar.update(f.st.st_size)
                now = os.stat(f.path)
                if not _same_file(now, f.st):
                    raise BadInputError(f"{f.rel} changed while it was being hashed", field="path")
                if cache is not None and algo == "sha256":
                    cache.put(f, 0, None, out[f.rel])
    finally:
        bar.close()
    if cache is not None:
        cache.commit()
    return out


