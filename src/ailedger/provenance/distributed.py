"""Dataset commitments hashed on a Dask cluster (``ailedger dataset commit --engine dask``).

The same two phases as :mod:`ailedger.provenance.datasets`, with the work on Dask workers:

1. every work unit (a byte range of a JSONL file cut at a line end, a CSV file, a Parquet row group,
   a slice of a folder's files) is a *shard*: one task that turns its records into keys and appends
   them to partition files (the keys' first P bits choose the file), exactly as the local pool does;
2. every partition is one task: sorted, de-duplicated and hashed into its subtree of the sparse
   Merkle tree; the 2^P subtree roots come back to this process (32 bytes each) and combine into
   the root in the top P levels.

The keys, the partitions and the tree are the local path's, so the root (and every proof) is exactly
the one a single-process commit of the same data gives, whatever the shard and worker counts.

Workers read the input paths and write into the ledger's staging folder by their path names: they run
on this host, or on hosts that mount both at the same paths (NFS, Lustre, a CSI volume).  A worker
that dies mid-commit is replaced by Dask and its tasks run again elsewhere: every key a dead worker
wrote is a key of a real record (written again by the retry), and the build de-duplicates, so the root
is unchanged; a key cut short by the kill (the end of a file not a multiple of 32 bytes) is dropped.
If the tasks cannot finish (every worker gone, a task killed too often), the commit fails before
anything is logged and the staging folder is removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError
from ailedger.provenance import datasets as ds
from ailedger.provenance import s3input

__all__ = ["DaskEngine", "EngineError"]

CONNECT_TIMEOUT = 10.0


class EngineError(AiledgerError):
    """The distributed engine could not finish the work (workers lost, scheduler gone)."""

    code = "engine_failed"


# -- worker side -------------------------------------------------------------------------------------

def _shard_task(unit: tuple[Any, ...], tmp: str, P: int, secret: bytes | None, tag: str) -> dict[str, Any]:
    """Hash one shard on a worker; its keys go to this worker thread's partition files."""
    t0, c0 = time.perf_counter(), time.thread_time()
    r = ds._hash_unit(unit, tmp, P, secret, f"{tag}-{threading.get_ident()}")
    r["seconds"], r["cpu_seconds"] = time.perf_counter() - t0, time.thread_time() - c0
    r["worker_pid"] = os.getpid()
    return r


def _digest_task(path: str) -> dict[str, Any]:
    """A file source's SHA-256 and size (its Croissant digest), and whether it changed while read."""
    try:
        sha, size, st0 = ds._file_sha256(path)
        changed = ds._signature(path) != st0
    except OSError as e:
        return {"error": f"cannot read {path}: {e.strerror}"}
    except AiledgerError as e:  # an object store's error, already worded
        return {"error": e.message.removesuffix("; nothing was logged"), "code": e.code}
    return {"sha256": sha, "size": size, "changed": changed}


def _close_fds(tmp: str) -> int:
    ds._close_part_fds(tmp)
    return os.getpid()


def _trim_torn(tmp: str) -> int:
    """Cut a partial key (a worker killed mid-write) off the end of every partition file."""
    cut = 0
    for f in Path(tmp).glob("part-*.bin"):
        n = f.stat().st_size
        if n % 32:
            os.truncate(f, n - n % 32)
            cut += 1
    return cut


# -- client side -------------------------------------------------------------------------------------

class DaskEngine:
    """A Dask client for one commit: connected to ``scheduler`` (``tcp://HOST:PORT``), or to a
    LocalCluster of ``workers`` processes started here (one thread each).  Use as a context manager."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.scheduler, self.workers, self.connect_timeout = scheduler, workers, connect_timeout
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> DaskEngine:  # noqa: PYI034 - not subclassed
        import logging

        import distributed  # ModuleNotFoundError -> the CLI names the extra: ailedger[dask]

        for name in ("distributed", "distributed.worker", "distributed.nanny", "distributed.scheduler",
                     "distributed.core", "distributed.comm"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if self.scheduler:
            if "://" not in self.scheduler and ":" not in self.scheduler:
                raise BadInputError(f"--scheduler {self.scheduler!r}: give tcp://HOST:PORT", field="scheduler")
            try:
                self.client = distributed.Client(self.scheduler, timeout=self.connect_timeout)
            except (OSError, TimeoutError, ValueError) as e:
                raise BadInputError(f"cannot reach the Dask scheduler at {self.scheduler} ({e.__class__.__name__}: "
                                    f"{str(e)[:200]}); nothing was logged", field="scheduler") from e
        else:
            n = self.workers or ds.cpu_workers()
            if n < 1:
                raise BadInputError("--workers must be at least 1", field="workers")
            self.cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                    dashboard_address=":0", host="127.0.0.1",
                                                    silence_logs=40)
            self.client = distributed.Client(self.cluster)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    @property
    def n_workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def _gather(self, futures: list[Any], what: str) -> Iterator[tuple[int, Any]]:
        """(job number, result) as the tasks finish; EngineError when Dask gives up on one."""
        import distributed

        order = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in distributed.as_completed(futures):
                yield order[fut.key], fut.result()
        except (distributed.client.FutureCancelledError, OSError, TimeoutError) as e:
            raise EngineError(f"the Dask cluster lost the {what} ({e.__class__.__name__}: {str(e)[:200]}); nothing "
                              "was logged") from e
        except Exception as e:
            if e.__class__.__name__ in ("KilledWorker", "CommClosedError", "CancelledError"):
                raise EngineError(f"the Dask cluster could not finish the {what} ({e.__class__.__name__}: "
                                  f"{str(e)[:200]}); nothing was logged") from e
            raise

    def map_ordered(self, fn: Callable[..., Any], jobs: Sequence[Any], what: str = "tasks") -> Iterator[Any]:
        futs = self.client.map(fn, list(jobs), pure=False)
        try:
            got: dict[int, Any] = {}
            nxt = 0
            for i, r in self._gather(futs, what):
                got[i] = r
                while nxt in got:
                    yield got.pop(nxt)
                    nxt += 1
        finally:
            self.client.cancel(futs)

    # -- the two phases ------------------------------------------------------------------------------

    def build_index(self, paths: Sequence[str], out_dir: Path, *, private: bool = False, workers: int | None = None,
                    progress: bool = False, follow_symlinks: bool = False, partitions_log2: int | None = None,
                    secret: bytes | None = None, unit_bytes: int = ds.UNIT_BYTES) -> dict[str, Any]:
        """:func:`datasets.build_index` with both phases on the cluster; same result, same files."""
        t0 = time.perf_counter()
        tmp = Path(str(out_dir) + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        if private and secret is None:
            secret = secrets.token_bytes(32)
        units, sources, total, inputs = ds._plan_units(paths, follow_symlinks, unit_bytes)
        P = partitions_log2 if partitions_log2 is not None else ds.choose_partitions(total)
        if not 0 <= P <= 16:
            raise BadInputError("partitions_log2 must be 0..16", field="partitions")
        tmp.mkdir(parents=True)
        ok = False
        try:
            sh = self._hash(units, sources, inputs, tmp, P, secret, progress)
            t_hash = time.perf_counter() - t0
            if sh["records_in"] == 0:
                raise BadInputError("the dataset holds no records; nothing was logged", field="path")
            t1 = time.perf_counter()
            b = ds._build([tmp], tmp, P, sh["records_in"], 1, consume=True, progress=progress,
                          mapper=lambda fn, jobs: self.map_ordered(fn, jobs, "partition builds"))
            t_build = time.perf_counter() - t1
            meta = {"format": ds.SMT_FORMAT, "root": b["root"].hex(), "records": b["n"],
                    "records_in": sh["records_in"], "duplicates": sh["records_in"] - b["n"], "P": P, "D": b["D"],
                    "leaf": "hmac-sha256" if secret is not None else "sha256", "sources": sources,
                    "layout": ds.INDEX_LAYOUT}
            ds._finish(tmp, out_dir, meta, secret)
            ok = True
            return {**meta, "seconds_hash": t_hash, "seconds_build": t_build, "seconds": time.perf_counter() - t0,
                    "bytes": total, "units": len(units), "workers": self.n_workers, "engine": "dask",
                    "shards": sh["shards"], "cpu_seconds_hash": sh["cpu_seconds"], "cpu_seconds_build": 0.0}
        finally:
            if not ok and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _hash(self, units: list[tuple[Any, ...]], sources: list[dict[str, Any]], paths: Sequence[str], tmp: Path,
              P: int, secret: bytes | None, progress: bool) -> dict[str, Any]:
        from tqdm import tqdm

        tag = secrets.token_hex(4)
        digests = {si: self.client.submit(_digest_task, paths[si] if s3input.is_s3(paths[si])
                                          else os.path.abspath(paths[si]), pure=False)
                   for si, s in enumerate(sources) if s["kind"] != "files"}
        futs = self.client.map(_shard_task, units, tmp=str(tmp), P=P, secret=secret, tag=tag, pure=False)
        counts = [0] * len(sources)
        shards: list[dict[str, Any]] = [{} for _ in units]
        bar = tqdm(total=len(units), unit="shard", file=sys.stderr, disable=not progress, desc="hashing shards",
                   leave=False, mininterval=0.0, miniters=1)
        t0 = time.perf_counter()
        done_records = 0
        try:
            for i, r in self._gather(futs, "shard hashing"):
                if "error" in r:
                    if r["error"] == "bad_json":
                        line = ds._line_of(r["path"], r["offset"])
                        raise BadInputError(f"{r['path']} line {line}: record does not parse ({r['reason']}); "
                                            "nothing was logged", field="record", file=r["path"], line=line)
                    raise ds.unit_error(r)
                counts[r["source"]] += r["n"]
                done_records += r["n"]
                if "header" in r:
                    sources[r["source"]]["header"] = r["header"]
                rate = r["n"] / r["seconds"] if r["seconds"] > 0 else 0.0
                shards[i] = {"shard": i, "records": r["n"], "seconds": round(r["seconds"], 4),
                             "cpu_seconds": round(r["cpu_seconds"], 4),
                             "records_per_s": round(rate), "worker_pid": r["worker_pid"]}
                bar.set_postfix_str(f"shard {i}: {r['n']} records at {rate:,.0f}/s; all: "
                                    f"{done_records / max(1e-9, time.perf_counter() - t0):,.0f} records/s")
                bar.update(1)
            for si, f in digests.items():
                d = f.result()
                if "error" in d:
                    raise ds.unit_error({**d, "where": str(paths[si])})
                if d["changed"]:
                    raise BadInputError(f"{paths[si]} changed while it was being hashed; nothing was logged",
                                        field="path", file=str(paths[si]))
                sources[si]["sha256"], sources[si]["size"] = d["sha256"], d["size"]
        finally:
            bar.close()
            self.client.cancel(futs + list(digests.values()))
            try:
                self.client.run(_close_fds, str(tmp))
            except Exception:  # noqa: BLE001, S110 - a worker gone: its files closed with it
                pass
        _trim_torn(str(tmp))
        for src, c in zip(sources, counts):
            src["records"] = c
        return {"records_in": sum(counts), "shards": shards,
                "cpu_seconds": sum(s.get("cpu_seconds", 0.0) for s in shards)}
