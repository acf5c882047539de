"""Model manifests hashed on a Dask cluster (``ailedger model register DIR --engine dask``).

A model of hundreds of GB is hashed where its bytes are:

1. **scan**: one worker on each host of the cluster lists the model folder as that host sees it
   (:func:`hashing.scan_dir`, the same rules as a single-host register: sorted relative paths,
   symlinks, ignored names) and plans each file's chunks (fixed ``chunk_size`` pieces, cut at a
   safetensors header and at both ends of every tensor).  A host may hold all the files (a shared
   mount) or only some of them (each host's local disk); a file held by several hosts must have the
   same size and chunk plan on each, else nothing is hashed.  ``roots`` maps a host to the folder it
   keeps the model under, when that differs from host to host.
2. **hash**: the chunks still to hash (the hash cache, if given, supplies files unchanged since this
   ledger last hashed them) are packed into tasks of about ``task_bytes`` each (byte ranges of one
   big file, or several small files) and run on the workers of the hosts that hold them (Dask
   worker restrictions by host; none when every host holds the file).  Each task stats its file
   before and after, against what its host's scan saw: a file that moved is an error naming it.
3. **combine**: this process puts the chunk digests back into :class:`manifest.FileEntry` objects,
   in the same order as the single-host path, and builds the :class:`manifest.Manifest`: the root is
   the root ``model register`` gives on one host, whatever the task size, worker count or host split.

A worker killed mid-hash is replaced by Dask and its tasks run again (a digest is a pure function of
the bytes, so a retry changes nothing); if Dask gives up, or every host holding a file leaves the
cluster, the register fails before anything is logged.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ailedger.errors import AiledgerError, BadInputError
from ailedger.provenance.distributed import DaskEngine, EngineError
from ailedger.provenance.hashing import (
    HashCache,
    HashStats,
    ScannedFile,
    _hash_chunk,
    _lease_usable,
    _Maps,
    _safetensors_plan,
    cached_entry,
    scan_dir,
)
from ailedger.provenance.manifest import DEFAULT_CHUNK_SIZE, Chunk, FileEntry, Manifest, Tensor

__all__ = ["TASK_BYTES", "DaskModelHasher", "HostFiles", "merge_scans", "plan_tasks", "scan_host"]

TASK_BYTES = 256 << 20  # bytes of chunks per task: big enough to amortise a task's ~1 ms, small enough to spread
HOLDER_GRACE = 30.0  # seconds a task may wait with no worker left on any host holding its file
SCAN_TIMEOUT = 600.0  # seconds for one host to list the folder and read its safetensors headers


def _sig(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass(frozen=True)
class HostFiles:
    """One file as one host's scan saw it."""

    rel: str
    path: str  # where this host reads it
    real: str
    st: os.stat_result
    seen_ns: int
    plan: tuple[tuple[int, int], ...]
    tensors: tuple[Tensor, ...] | None


# -- worker side -------------------------------------------------------------------------------------

def scan_host(root: str, chunk_size: int, follow_external_symlinks: bool, ignore: tuple[str, ...],
              strict: bool) -> dict[str, Any]:
    """List and plan the model files this host holds under ``root`` (run on one worker per host).

    A folder missing or empty here means this host holds none of them; any other problem (a symlink
    leaving the folder, an unreadable file, a malformed safetensors header) is returned as an error."""
    out: dict[str, Any] = {"hostname": socket.gethostname(), "root": root, "files": []}
    if not os.path.isdir(root):
        out["absent"] = True
        return out
    try:
        files = scan_dir(root, follow_external_symlinks=follow_external_symlinks, ignore=ignore)
        for f in files:
            plan, tensors = _safetensors_plan(f, chunk_size, strict)
            out["files"].append(HostFiles(f.rel, f.path, f.real, f.st, f.seen_ns, tuple(plan),
                                          tuple(tensors) if tensors is not None else None))
    except BadInputError as e:
        if "contains no files" in e.message:
            out["files"] = []
            return out
        out["error"] = e.message
    return out


def _my_host() -> str:
    from distributed import get_worker
    from distributed.comm import get_address_host

    return str(get_address_host(get_worker().address))


def _hash_task(pieces: list[tuple[int, str, str, dict[str, tuple[int, int, int, int]], tuple[tuple[int, int], ...]]]
               ) -> dict[str, Any]:
    """Hash byte ranges on a worker: ``pieces`` = (file number, rel, path on this host, the stat each
    host's scan saw, the chunk ranges).  Returns the digests per piece, or the first problem."""
    t0, c0 = time.perf_counter(), time.thread_time()
    host = _my_host()
    maps = _Maps() if _lease_usable() else None
    digests: list[tuple[int, list[bytes]]] = []
    nbytes = 0
    try:
        for fid, rel, path, sigs, ranges in pieces:
            try:
                st0 = os.stat(path)
            except OSError as e:
                return {"error": f"cannot read {rel} on {host}: {e.strerror}", "rel": rel}
            want = sigs.get(host)
            if want is not None and _sig(st0) != want:
                return {"error": f"{rel} changed on {host} after it was listed; nothing was recorded", "rel": rel,
                        "changed": True}
            f = ScannedFile(rel, path, st0)
            ds = [_hash_chunk(maps, f, len(ranges), off, ln) for off, ln in ranges]
            st1 = os.stat(path)
            if _sig(st1) != _sig(st0):
                return {"error": f"{rel} changed on {host} while it was being hashed; nothing was recorded",
                        "rel": rel, "changed": True}
            digests.append((fid, ds))
            nbytes += sum(ln for _, ln in ranges)
    except AiledgerError as e:
        return {"error": e.message, "changed": "changed" in e.message}
    except OSError as e:
        return {"error": f"cannot read on {host}: {e.strerror}"}
    finally:
        if maps is not None:
            maps.close()
    return {"digests": digests, "bytes": nbytes, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.thread_time() - c0, "host": host, "pid": os.getpid()}


# -- coordinator side --------------------------------------------------------------------------------

@dataclass
class _File:
    rel: str
    size: int
    plan: tuple[tuple[int, int], ...]
    tensors: tuple[Tensor, ...] | None
    by_host: dict[str, HostFiles]

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(self.by_host)


def merge_scans(scans: Mapping[str, dict[str, Any]], root: str) -> list[_File]:
    """One list of files from each host's scan (host -> :func:`scan_host` result), sorted by path.

    BadInputError when a host's scan failed, when no host holds any file, or when two hosts hold a
    file with different sizes or chunk plans (two different files under one name)."""
    for host, s in sorted(scans.items()):
        if "error" in s:
            raise BadInputError(f"{s['error']} (on host {host}); nothing was logged", field="path", host=host)
    merged: dict[str, _File] = {}
    for host, s in sorted(scans.items()):
        for hf in s["files"]:
            f = merged.get(hf.rel)
            if f is None:
                merged[hf.rel] = _File(hf.rel, hf.st.st_size, hf.plan, hf.tensors, {host: hf})
                continue
            other = min(f.by_host)
            if hf.st.st_size != f.size or hf.plan != f.plan or hf.tensors != f.tensors:
                raise BadInputError(
                    f"{hf.rel} differs between hosts {other} ({f.size} bytes) and {host} ({hf.st.st_size} bytes"
                    f"{'' if hf.st.st_size != f.size else ', another safetensors layout'}): two different files "
                    "under one name; nothing was logged", field="path", file=hf.rel)
            f.by_host[host] = hf
    if not merged:
        where = ", ".join(sorted(scans)) or "no host"
        raise BadInputError(f"{root} holds no files on any host of the cluster ({where}); nothing was logged",
                            field="path")
    return [merged[r] for r in sorted(merged)]


def plan_tasks(files: list[tuple[int, _File]], task_bytes: int, all_hosts: frozenset[str]
               ) -> list[tuple[frozenset[str] | None, list[tuple[int, int, int]], int]]:
    """Pack the chunks of ``files`` (file number, file) into tasks of about ``task_bytes``: each task is
    (hosts it must run on, or None for any; [(file number, first chunk, end chunk)], bytes).  A task
    holds consecutive chunks of one file, or several whole files, all held by the same hosts."""
    if task_bytes <= 0:
        raise BadInputError("task bytes must be positive", field="task_bytes")
    by_hosts: dict[frozenset[str], list[tuple[int, _File]]] = {}
    for fid, f in files:
        by_hosts.setdefault(f.hosts, []).append((fid, f))
    tasks: list[tuple[frozenset[str] | None, list[tuple[int, int, int]], int]] = []
    for hosts, group in sorted(by_hosts.items(), key=lambda kv: sorted(kv[0])):
        where = None if hosts >= all_hosts else hosts
        cur: list[tuple[int, int, int]] = []
        cur_bytes = 0
        for fid, f in group:
            if not f.plan:  # an empty file: no bytes, but its task still checks it is empty and unmoved
                cur.append((fid, 0, 0))
                continue
            i = 0
            while i < len(f.plan):
                if cur and cur_bytes + f.plan[i][1] > task_bytes:
                    tasks.append((where, cur, cur_bytes))
                    cur, cur_bytes = [], 0
                j, b = i, 0
                while j < len(f.plan) and (j == i or cur_bytes + b + f.plan[j][1] <= task_bytes):
                    b += f.plan[j][1]
                    j += 1
                cur.append((fid, i, j))
                cur_bytes += b
                i = j
                if cur_bytes >= task_bytes or i < len(f.plan):
                    tasks.append((where, cur, cur_bytes))
                    cur, cur_bytes = [], 0
        if cur:
            tasks.append((where, cur, cur_bytes))
    return tasks


class DaskModelHasher:
    """Hash model folders on the workers of a :class:`DaskEngine` (connected to a scheduler, or a
    LocalCluster it started).  :meth:`hash_model_dir` has the signature of
    :func:`hashing.hash_model_dir`, so :func:`models.register_model` takes it as its ``hasher``."""

    def __init__(self, engine: DaskEngine, *, task_bytes: int = TASK_BYTES,
                 roots: Mapping[str, str] | None = None, holder_grace: float = HOLDER_GRACE) -> None:
        self.engine = engine
        self.task_bytes = task_bytes
        self.roots = dict(roots or {})
        self.holder_grace = holder_grace
        self.last: dict[str, Any] = {}

    @property
    def client(self) -> Any:
        return self.engine.client

    def _hosts(self) -> dict[str, list[str]]:
        """host -> the addresses of its workers, as the scheduler knows them now."""
        out: dict[str, list[str]] = {}
        for addr, info in self.client.scheduler_info(n_workers=-1)["workers"].items():
            out.setdefault(str(info.get("host") or addr), []).append(addr)
        return out

    def scan(self, root: str, chunk_size: int, follow_external_symlinks: bool, ignore: Iterable[str],
             strict: bool) -> dict[str, dict[str, Any]]:
        hosts = self._hosts()
        if not hosts:
            raise EngineError("the Dask cluster has no workers; nothing was logged")
        unknown = sorted(set(self.roots) - set(hosts))
        if unknown:
            raise BadInputError(f"--host-root names {', '.join(unknown)}, which runs no worker of this cluster "
                                f"(its hosts: {', '.join(sorted(hosts))})", field="host_root")
        futs = {h: self.client.submit(scan_host, self.roots.get(h, root), chunk_size, follow_external_symlinks,
                                      tuple(ignore), strict, workers=[h], allow_other_workers=False, pure=False)
                for h in hosts}
        out = {}
        try:
            for h, fut in futs.items():
                out[h] = fut.result(timeout=SCAN_TIMEOUT)
        except Exception as e:
            if isinstance(e, AiledgerError):
                raise
            raise EngineError(f"the Dask cluster could not list {root} ({e.__class__.__name__}: {str(e)[:200]}); "
                              "nothing was logged") from e
        finally:
            self.client.cancel(list(futs.values()))
        return out

    def hash_model_dir(self, root: str | os.PathLike[str], *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                       workers: int | None = None, cache: HashCache | None = None, progress: bool = False,
                       follow_external_symlinks: bool = False, ignore: Iterable[str] = (),
                       stats: HashStats | None = None, strict: bool = True) -> Manifest:
        """The manifest of ``root`` hashed on the cluster: the same as :func:`hashing.hash_model_dir`."""
        from tqdm import tqdm

        t0 = time.perf_counter()
        root_s = os.path.abspath(root)
        st = stats if stats is not None else HashStats()
        scans = self.scan(root_s, chunk_size, follow_external_symlinks, ignore, strict)
        files = merge_scans(scans, root_s)
        all_hosts = frozenset(scans)
        me = socket.gethostname()
        st.workers = sum(len(a) for a in self._hosts().values())
        st.files = len(files)
        st.bytes_total = sum(f.size for f in files)
        entries: dict[str, FileEntry] = {}
        todo: list[tuple[int, _File]] = []
        for fid, f in enumerate(files):
            host = min(f.by_host)
            hf = f.by_host[host]
            if cache is not None:
                # the cache knows files by this host's real path; another host's by host and path
                name = hf.real if scans[host]["hostname"] == me else f"{scans[host]['hostname']}:{hf.real}"
                fe = cached_entry(cache, ScannedFile(f.rel, name, hf.st, hf.seen_ns, name), chunk_size)
                if fe is not None:
                    entries[f.rel] = fe
                    st.cached_paths.append(f.rel)
                    continue
            st.hashed_paths.append(f.rel)
            todo.append((fid, f))
        st.files_hashed = len(todo)
        st.bytes_hashed = sum(f.size for _, f in todo)
        digests: dict[int, list[bytes | None]] = {fid: [None] * len(f.plan) for fid, f in todo}
        tasks = plan_tasks(todo, self.task_bytes, all_hosts)
        sigs = {fid: {h: _sig(hf.st) for h, hf in f.by_host.items()} for fid, f in todo}
        futs = []
        for where, pieces, _ in tasks:
            job = []
            for fid, a, b in pieces:
                f = files[fid]
                # a task restricted to some hosts reads the path of any of them: the first one's
                # (with --host-root the paths differ by host: then each task is for one host's path)
                job.append((fid, f.rel, f.by_host[min(f.by_host)].path, sigs[fid], f.plan[a:b]))
            if self.roots:  # paths differ between hosts: run where the path in the job is
                where = frozenset({min(files[pieces[0][0]].by_host)})
            kw: dict[str, Any] = {} if where is None else {"workers": sorted(where), "allow_other_workers": False}
            futs.append((self.client.submit(_hash_task, job, pure=False, **kw), where, pieces))
        bar = tqdm(total=st.bytes_hashed, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                   disable=not progress, desc="hashing on dask", leave=False)
        per_task: list[dict[str, Any]] = []
        try:
            self._collect(futs, files, digests, bar, per_task)
        finally:
            bar.close()
            self.client.cancel([f for f, _, _ in futs])
        for fid, f in todo:
            ds = digests[fid]
            fe = FileEntry(f.rel, f.size, tuple(Chunk(off, ln, d) for (off, ln), d in zip(f.plan, ds) if d is not None),
                           f.tensors)
            if len(fe.chunks) != len(f.plan):  # pragma: no cover - every task answered or we raised
                raise EngineError(f"the Dask cluster returned no digest for part of {f.rel}; nothing was logged")
            entries[f.rel] = fe
            if cache is not None:
                host = min(f.by_host)
                hf = f.by_host[host]
                name = hf.real if scans[host]["hostname"] == me else f"{scans[host]['hostname']}:{hf.real}"
                d = fe.to_dict()
                del d["path"]
                cache.put(ScannedFile(f.rel, name, hf.st, hf.seen_ns, name), chunk_size, d)
        if cache is not None:
            cache.commit()
        st.seconds = time.perf_counter() - t0
        self.last = {"engine": "dask", "tasks": len(tasks), "hosts": sorted(all_hosts), "workers": st.workers,
                     "task_bytes": self.task_bytes,
                     "cpu_seconds": round(sum(t["cpu_seconds"] for t in per_task), 4),
                     "hosts_holding": {h: len(s["files"]) for h, s in sorted(scans.items())},
                     "by_worker_pid": _count_by(per_task, "pid")}
        return Manifest.build(entries.values(), chunk_size)

    def _collect(self, futs: list[tuple[Any, frozenset[str] | None, list[tuple[int, int, int]]]],
                 files: list[_File], digests: dict[int, list[bytes | None]], bar: Any,
                 per_task: list[dict[str, Any]]) -> None:
        import distributed

        pending = {f.key: (f, where, pieces) for f, where, pieces in futs}
        orphaned_since: dict[str, float] = {}
        while pending:
            try:
                done, _ = distributed.wait([p[0] for p in pending.values()], timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            except (OSError, distributed.client.FutureCancelledError) as e:
                raise EngineError(f"the Dask cluster lost the hashing ({e.__class__.__name__}: {str(e)[:200]}); "
                                  "nothing was logged") from e
            for fut in done:
                _, where, pieces = pending.pop(fut.key)
                try:
                    r = fut.result()
                except Exception as e:
                    if isinstance(e, AiledgerError):
                        raise
                    raise EngineError(f"the Dask cluster could not finish the hashing ({e.__class__.__name__}: "
                                      f"{str(e)[:200]}); nothing was logged") from e
                if "error" in r:
                    raise BadInputError(r["error"] if "nothing was recorded" in r["error"] else
                                        r["error"] + "; nothing was logged", field="path", file=r.get("rel"))
                for fid, ds in r["digests"]:
                    a = next(x for g, x, _ in pieces if g == fid)
                    digests[fid][a:a + len(ds)] = ds
                bar.update(r["bytes"])
                per_task.append(r)
            if not pending or done or all(p[1] is None for p in pending.values()):
                continue
            # nothing finished for a second and a task only some hosts can run is waiting: once those
            # hosts are all gone it would wait forever, so say so instead
            alive = set(self._hosts())
            now = time.monotonic()
            for key, (_, where, pieces) in pending.items():
                if where is not None and not (where & alive):
                    since = orphaned_since.setdefault(key, now)
                    if now - since > self.holder_grace:
                        rel = files[pieces[0][0]].rel
                        raise EngineError(f"no worker is left on the host(s) holding {rel} ({', '.join(sorted(where))})"
                                          "; nothing was logged")
                else:
                    orphaned_since.pop(key, None)


def _count_by(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        k = str(r.get(key))
        out[k] = out.get(k, 0) + 1
    return out
