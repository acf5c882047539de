"""The limits of this machine that the benchmarks compare their figures with (issue 21).

Each reference is the fastest way this machine can do the same essential work, measured in the same run
as the figure it judges (a ratio above 1 would mean the reference is not the limit):

* signatures: libsodium's ``crypto_sign_open`` (what ailedger verifies with) on every core, keys decoded
  beforehand, nothing else (no parsing, no JSON) -- :func:`sodium_verify_per_s`;
* hashing many short inputs: SHA-256 with the CPU's SHA extensions (``ailedger.encoding._speedups``) on every
  core -- :func:`sha256_many_per_s`;
* hashing large buffers: OpenSSL's SHA-256 (hashlib, SHA extensions when the CPU has them) with one
  thread per core on separate chunks (hashlib releases the GIL) -- :func:`sha256_bulk_mib_s`;
* durable writes: the store's own batched insert of the same rows; it depends on the rows, so each bench
  measures it beside its figure (see ledger_bench.store_insert_reference); and for latency, one
  rewrite-and-fdatasync of 4 KiB in the same directory (:func:`fsync_s`), the floor of any durable commit;
* AES-256-GCM: the cryptography package's AESGCM on every core -- :func:`aesgcm_mib_s`.

Process pools use the fork start method so that workers inherit the inputs without pickling them twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any


def _default_signals() -> None:
    """A pool worker's first step: the default SIGTERM and SIGINT. A worker forked from a process that installed
    a Python handler (a server, a CLI run in process) would keep it, survive ``Pool.terminate()`` and leave the
    pool's exit waiting for it forever."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def fork_pool(procs: int, method: str = "fork") -> Iterator[Any]:
    """A pool (``method``: fork, or forkserver / spawn for work that must not inherit this process's state)
    that ends by close() and join(), whatever the work did: its workers leave on their own once
    the work is done. The ``with Pool()`` form ends by terminate(), whose SIGTERMs race the workers' start (see
    below) and the pool's own thread that replaces workers that exit: a worker that survives them waits on the
    task queue forever, and so does the pool's exit (seen as a hung pytest-xdist worker)."""
    pool = mp.get_context(method).Pool(procs, initializer=_default_signals)
    try:
        yield pool
    finally:
        # also when the work raised (a bad signature in a reference): Pool.map raises only once every task has
        # ended, so the workers are idle and leave at close(). Never terminate(): a worker that has not yet run
        # _default_signals may still hold an inherited Python SIGTERM handler, take the signal without dying and
        # wait on the task queue forever (seen: a pytest-xdist worker hung in the pool's exit)
        pool.close()
        pool.join()


__all__ = [
    "aesgcm_mib_s",
    "cores",
    "fork_pool",
    "fsync_s",
    "sha256_bulk_mib_s",
    "sha256_many_per_s",
    "signed_messages",
    "sodium_cpu_us_per_verify",
    "sodium_verify_per_s",
    "tree_cpu_s",
]


def cores() -> int:
    return os.cpu_count() or 1


def signed_messages(entries: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
    """(signature || message, public key) of ailedger entries (canonical leaf bytes), as crypto_sign_open takes
    them: the message is the leaf without its top-level ``sig`` member (what the signer signed)."""
    from ailedger.encoding.identity import public_key_from_did
    from ailedger.encoding.records import parse_entry

    out = []
    pks: dict[str, bytes] = {}
    for d in entries:
        e = parse_entry(d, verify=False)
        i = d.rfind(b',"sig":"')
        j = d.index(b'"', i + 8)
        pk = pks.get(e.signer) or pks.setdefault(e.signer, public_key_from_did(e.signer))
        out.append((e.sig + d[:i] + d[j + 1 :], pk))
    return out


# The inputs, set before a pool forks, packed into one buffer: workers read them without pickling, and
# without touching each input object (refcount writes to objects scattered over the parent's heap would
# copy a page per object in every worker: copy-on-write faults, tens of times the hashing itself).
_PACKED: dict[str, object] = {}


def _pack(items: Sequence[bytes]) -> None:
    from array import array

    offs = array("Q", [0])
    for x in items:
        offs.append(offs[-1] + len(x))
    _PACKED["blob"] = b"".join(items)
    _PACKED["offs"] = offs


def _unpack(span: tuple[int, int]) -> list[bytes]:
    blob, offs = _PACKED["blob"], _PACKED["offs"]
    mv = memoryview(blob)  # type: ignore[arg-type]
    return [bytes(mv[offs[i] : offs[i + 1]]) for i in range(span[0], span[1])]  # type: ignore[index]


def _spans(n: int, step: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _sodium_range(span: tuple[int, int]) -> int:
    from nacl.bindings import crypto_sign_open

    items = _unpack(span)
    for k in range(0, len(items), 2):
        crypto_sign_open(items[k], items[k + 1])
    return len(items) // 2


def _sodium_range_cpu(span: tuple[int, int]) -> tuple[int, float]:
    """_sodium_range, with the CPU seconds of its verifications alone (this worker's process time)."""
    from nacl.bindings import crypto_sign_open

    items = _unpack(span)
    c = time.process_time()
    for k in range(0, len(items), 2):
        crypto_sign_open(items[k], items[k + 1])
    return len(items) // 2, time.process_time() - c


def sodium_all_cores(entries: Sequence[bytes], procs: int | None = None) -> tuple[float, float]:
    """:func:`sodium_verify_per_s` and, from the same run, the CPU microseconds of one verification while
    every core verifies (the workers' own CPU time over their verifications): the verify limit on all cores
    in CPU terms. A figure measured while the machine's cores are all busy (a server under load) compares
    with this one under the same conditions; :func:`sodium_cpu_us_per_verify` is one quiet core's."""
    procs = procs or cores()
    flat = [x for sm_pk in signed_messages(entries) for x in sm_pk]
    _pack(flat)
    try:
        spans = [(a * 2, b * 2) for a, b in _spans(len(flat) // 2, 2000)]
        with fork_pool(procs) as pool:
            pool.map(_sodium_range, [(0, min(400, len(flat)))] * procs)  # warm up every worker
            t = time.perf_counter()
            got = pool.map(_sodium_range_cpu, spans, chunksize=1)
            wall = time.perf_counter() - t
    finally:
        _PACKED.clear()
    done = sum(n for n, _ in got)
    return done / wall, sum(c for _, c in got) / max(1, done) * 1e6


def sodium_verify_per_s(entries: Sequence[bytes], procs: int | None = None) -> float:
    """Signatures/s that libsodium verifies on ``procs`` (default: every) core for these entries."""
    procs = procs or cores()
    flat = [x for sm_pk in signed_messages(entries) for x in sm_pk]
    _pack(flat)
    try:
        spans = [(a * 2, b * 2) for a, b in _spans(len(flat) // 2, 2000)]
        with fork_pool(procs) as pool:
            pool.map(_sodium_range, [(0, min(400, len(flat)))] * procs)  # warm up every worker
            t = time.perf_counter()
            done = sum(pool.map(_sodium_range, spans, chunksize=1))
            return done / (time.perf_counter() - t)
    finally:
        _PACKED.clear()


def _sha_many_range(span: tuple[int, int]) -> int:
    from ailedger.encoding.fasthash import sha256_many

    return len(sha256_many(_unpack(span))) // 32


def sha256_many_per_s(items: Sequence[bytes], procs: int | None = None) -> tuple[float, str]:
    """Inputs/s hashed by SHA-256 with the SHA extensions on every core; and the implementation name
    (``c/sha-ni`` when the CPU has them, ``c/portable`` or ``hashlib`` otherwise). The time includes
    taking each input out of a shared buffer (a copy, as reading it from anywhere would)."""
    from ailedger.encoding.fasthash import IMPLEMENTATION

    procs = procs or cores()
    _pack(items)
    n = len(items)
    try:
        spans = _spans(n, max(1000, n // (procs * 8)))
        with fork_pool(procs) as pool:
            pool.map(_sha_many_range, [(0, min(1000, n))] * procs)
            t = time.perf_counter()
            done = sum(pool.map(_sha_many_range, spans, chunksize=1))
            return done / (time.perf_counter() - t), IMPLEMENTATION
    finally:
        _PACKED.clear()


def sha256_bulk_mib_s(data: bytes | memoryview, threads: int | None = None, chunk: int = 4 << 20) -> float:
    """MiB/s of SHA-256 over ``data`` in ``chunk``-sized pieces, one thread per core, or one thread if that is
    faster at the moment (a loaded machine may not give the process more than one core): the best of three
    of each."""
    if threads is None and cores() > 1:
        return max(sha256_bulk_mib_s(data, cores(), chunk), sha256_bulk_mib_s(data, 1, chunk))
    threads = threads or 1
    mv = memoryview(data)
    pieces = [mv[i : i + chunk] for i in range(0, len(mv), chunk)]
    best = float("inf")
    for _ in range(3):
        parts = [pieces[k::threads] for k in range(threads)]

        def work(ps: list[memoryview]) -> None:
            for p in ps:
                hashlib.sha256(p).digest()

        ts = [threading.Thread(target=work, args=(p,)) for p in parts]
        t = time.perf_counter()
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        best = min(best, time.perf_counter() - t)
    return len(mv) / (1 << 20) / best


def fsync_s(directory: os.PathLike[str] | str, n: int = 200) -> float:
    """Median seconds to rewrite 4 KiB and fdatasync it in ``directory``: the floor of one durable commit
    there (a WAL commit writes its frames, then syncs)."""
    path = os.path.join(os.fspath(directory), f".fsync-probe-{os.getpid()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    ts = []
    try:
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
        for _ in range(n):
            t = time.perf_counter()
            os.pwrite(fd, b"y" * 4096, 0)
            os.fdatasync(fd)
            ts.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    ts.sort()
    return ts[len(ts) // 2]


def _aes_chunk(args: tuple[int, int]) -> int:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    size, n = args
    a = AESGCM(b"k" * 32)
    data = os.urandom(size)
    for i in range(n):
        a.encrypt(i.to_bytes(12, "big"), data, b"")
    return size * n


def aesgcm_mib_s(piece: int, total_mib: int = 256, procs: int | None = None) -> float:
    """MiB/s of AES-256-GCM encryption of ``piece``-byte messages on every core (process pool)."""
    procs = procs or cores()
    n = max(1, (total_mib << 20) // piece // (procs * 4))
    with fork_pool(procs) as pool:
        pool.map(_aes_chunk, [(piece, 10)] * procs)
        t = time.perf_counter()
        done = sum(pool.map(_aes_chunk, [(piece, n)] * (procs * 4)))
        return done / (1 << 20) / (time.perf_counter() - t)


def sodium_cpu_us_per_verify(entries: Sequence[bytes], n: int = 4000) -> float:
    """CPU microseconds of one libsodium verification of these entries' signatures (this process, one
    thread, ``time.process_time``): the same limit in CPU terms, which the load of other processes on a
    shared machine does not move (a figure's CPU per entry against it gives a load-independent ratio)."""
    from nacl.bindings import crypto_sign_open

    items = signed_messages(entries[:n])
    best = float("inf")
    for _ in range(3):
        c = time.process_time()
        for sm, pk in items:
            crypto_sign_open(sm, pk)
        best = min(best, time.process_time() - c)
    return best / len(items) * 1e6


def tree_cpu_s(root_pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by a process and all its live descendants (Linux /proc):
    with :func:`sodium_cpu_us_per_verify`, a figure's CPU per entry gives a ratio the load of other
    processes on a shared machine does not move."""
    root_pid = root_pid or os.getpid()
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(d)] = int(parts[1])
        cpu[int(d)] = (int(parts[11]) + int(parts[12])) / tick
    tree = {root_pid}
    changed = True
    while changed:
        changed = False
        for pid, pp in parents.items():
            if pp in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return sum(cpu.get(p, 0.0) for p in tree)
