"""The store's share of a pre-batched append, in process: ``TransparencyLog.append`` of 1000-entry groups of the
rows the batch endpoint hands it (leaf bytes, leaf hash, the index terms of a ``bench.event`` entry: its type, its
signer, one subject of its own), with the checkpoint signed in each group's transaction, on SQLite or PostgreSQL.
No HTTP, no signature check, no parse: only the leaf rows, the dedup rows, the node stripes, the terms and term
runs, the checkpoint, their statements and the Python around them.

    PYTHONPATH=src .venv/bin/python bench/store_append_bench.py [--entries 20000] [--store sqlite|postgres]
        [--rows FILE] [--warm 2000] [--subjects random|sequential] [--signers 1] [--wal-groups 0]

Figure: CPU-us per entry of the appending thread (``time.thread_time``; PostgreSQL's own server process is
not counted: see ``--pg-backend``, which adds the backend's CPU read from /proc when the server is local), per
group after ``--warm`` entries of warm-up, the median and the minimum over the groups. ``--rows FILE`` reuses
(or writes) the rows, so that two source trees can be compared on identical input (run the same command with
``PYTHONPATH=treeA/src`` and ``treeB/src``, alternated). Under ``valgrind --tool=callgrind`` run it with two
``--entries`` and subtract (instructions per entry). The log is audited at the end (``audit_ok``). Last line:
one JSON object.

``--subjects``: each entry names one subject of its own, a SHA-256 of the run's tag and its number (``random``,
the default: new terms land anywhere in the ``terms`` index) or its number as 64 hex digits (``sequential``, as
``http_bench.py``'s entries: each group's new terms sit side by side). ``--signers N``: the entries are signed by
N keys in turn (a group of single entries from many writers; each signer's term rows are a run of their own in
the index). ``--wal-groups K`` (SQLite): after the timed groups, K more groups each started on an empty WAL
(``PRAGMA wal_checkpoint(TRUNCATE)``): the WAL frames each one wrote, in all and by table or index (the page
numbers in the frames' headers, named by ``dbstat``), the mean per group.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import statistics
import tempfile
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.tlog.ledger import Ledger, entry_terms
from ailedger.tlog.stores import LeafRow


def subject(tag: str, i: int, kind: str) -> str:
    """The subject entry ``i`` names: random-looking (a SHA-256) or its number in 64 hex digits."""
    return f"sha256:{hashlib.sha256(f'{tag}{i}'.encode()).hexdigest() if kind == 'random' else format(i, '064x')}"


def make_rows(n: int, subjects: str = "random", signers: int = 1) -> list[tuple[bytes, bytes, tuple[str, ...]]]:
    keys = []
    for k in range(signers):
        key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"store-append-bench" + (b"%d" % k if k else b"")).digest())
        keys.append((key, did_from_public_key(key.public_key().public_bytes_raw())))
    tag = uuid.uuid4().hex[:8]  # fresh leaves for every file of rows
    out = []
    for i in range(n):
        key, did = keys[i % signers]
        e = build_entry("bench.event", {"b": tag, "i": i, "subjects": [subject(tag, i, subjects)]},
                        did, "2026-12-07T00:00:00.000Z", key.sign)
        out.append((e.leaf_bytes, hashlib.sha256(b"\0" + e.leaf_bytes).digest(), entry_terms(e)))
    return out


def wal_frames(wal: bytes) -> list[int]:
    """The page number in each frame header of a SQLite WAL file (32-byte header, then frames of a 24-byte header
    and one page); a torn last frame is not counted."""
    if len(wal) < 32:
        return []
    page = int.from_bytes(wal[8:12], "big")
    step = 24 + page
    return [int.from_bytes(wal[p : p + 4], "big") for p in range(32, len(wal) - step + 1, step)]


def page_owners(con: Any) -> dict[int, str]:
    """Page number -> the table or index it belongs to (SQLite's dbstat virtual table)."""
    return {int(p): str(n) for n, p in con.execute("SELECT name, pageno FROM dbstat")}


def by_owner(pages: list[int], owners: dict[int, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in pages:
        name = owners.get(p, "other")
        out[name] = out.get(name, 0) + 1
    return out


def _backend_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=20000)
    ap.add_argument("--group", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=2000)
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres")
    ap.add_argument("--pg-backend", action="store_true", help="add the PostgreSQL backend's CPU (local server)")
    ap.add_argument("--rows", help="a file of rows to reuse (written when missing)")
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--subjects", choices=("random", "sequential"), default="random",
                    help="each entry's own subject: a SHA-256 (random) or its number (sequential); new rows only")
    ap.add_argument("--signers", type=int, default=1, help="keys signing the entries in turn (new rows only)")
    ap.add_argument("--wal-groups", type=int, default=0,
                    help="SQLite: K more groups, each on an empty WAL, counting the WAL frames each writes")
    args = ap.parse_args()
    if args.entries < 1 or args.group < 1 or args.warm < 0 or args.signers < 1 or args.wal_groups < 0:
        ap.error("--entries, --group and --signers must be positive, --warm and --wal-groups not negative")
    if args.wal_groups and args.store != "sqlite":
        ap.error("--wal-groups counts SQLite WAL frames: --store sqlite only")
    wal_n = args.wal_groups * args.group
    total = args.entries + args.warm + wal_n
    reused = bool(args.rows and os.path.exists(args.rows))
    if reused:
        with open(args.rows, "rb") as f:
            raw = pickle.load(f)
        if len(raw) < total:
            ap.error(f"{args.rows} holds {len(raw)} rows, fewer than --entries + --warm + --wal-groups x --group")
        raw = raw[:total]
    else:
        raw = make_rows(total, args.subjects, args.signers)
        if args.rows:
            with open(args.rows, "wb") as f:
                pickle.dump(raw, f)
    rows = [LeafRow(*r) for r in raw]
    d = tempfile.mkdtemp()
    store = ({"store": "postgres", "dsn": args.pg_dsn, "schema": "sab_" + uuid.uuid4().hex[:12]}
             if args.store == "postgres" else None)
    led = Ledger.init(os.path.join(d, "led"), origin="storebench.example/log", store=store)
    backend = None
    try:
        log = led.log
        if args.store == "postgres" and args.pg_backend:
            with log.store._read() as cur:  # type: ignore[attr-defined]
                cur.execute("SELECT 1")
            with log.store.writer() as w:  # type: ignore[attr-defined]
                w.cur.execute("SELECT pg_backend_pid()")
                backend = int(w.cur.fetchone()[0])
        g = args.group
        for k in range(0, args.warm, g):  # groups end at --warm (a last shorter one), then at the timed end
            log.append(rows[k : min(k + g, args.warm)])
        per: list[float] = []
        slowest = 0.0  # CPU-ms of the costliest group (one that folds levels of the dedup or terms index)
        t_all = time.thread_time()
        b_all = _backend_cpu(backend)
        timed_end = args.warm + args.entries
        for k in range(args.warm, timed_end, g):
            b0 = _backend_cpu(backend)
            t0 = time.thread_time()
            res = log.append(rows[k : min(k + g, timed_end)])
            per.append((time.thread_time() - t0 + _backend_cpu(backend) - b0) / len(res) * 1e6)
            slowest = max(slowest, per[-1] * len(res) / 1000)
        us = (time.thread_time() - t_all + _backend_cpu(backend) - b_all) / args.entries * 1e6
        frames: list[int] = []
        owners_sum: dict[str, int] = {}
        if wal_n:
            con = log.store._con  # type: ignore[attr-defined]
            wal_path = str(log.store.path) + "-wal"  # type: ignore[attr-defined]
            for k in range(timed_end, total, g):
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                log.append(rows[k : k + g])
                with open(wal_path, "rb") as f:
                    pages = wal_frames(f.read())
                frames.append(len(pages))
                for name, c in by_owner(pages, page_owners(con)).items():
                    owners_sum[name] = owners_sum.get(name, 0) + c
        audit = None if args.no_audit else log.audit().ok
        size = log.size
    finally:
        led.close()
        if args.store == "postgres":
            from ailedger.tlog.stores.postgres import PostgresStore

            ps = PostgresStore(args.pg_dsn, schema=store["schema"])  # type: ignore[index]
            ps.drop_schema()
            ps.close()
        shutil.rmtree(d, ignore_errors=True)
    assert size == total, size
    out = {"bench": "store_append", "store": args.store, "entries": args.entries, "group": g,
           "cpu_us_per_entry": round(us, 2), "median_group_us_per_entry": round(statistics.median(per), 2),
           "min_group_us_per_entry": round(min(per), 2), "max_group_cpu_ms": round(slowest, 2),
           "backend_counted": backend is not None,
           "subjects": "from --rows" if reused else args.subjects,
           "signers": "from --rows" if reused else args.signers,
           "audit_ok": audit, "loadavg": round(os.getloadavg()[0], 2)}
    if frames:
        out["wal_groups"] = len(frames)
        out["wal_frames_per_group"] = round(statistics.mean(frames), 1)
        out["wal_frames_by_table"] = {n: round(c / len(frames), 1)
                                      for n, c in sorted(owners_sum.items(), key=lambda kv: -kv[1])}
        print(f"WAL frames per group of {g} at {args.warm + args.entries} entries: {out['wal_frames_per_group']} "
              f"({', '.join(f'{n} {c}' for n, c in out['wal_frames_by_table'].items())})")
    print(f"CPU-us per entry: {out['cpu_us_per_entry']} (median group {out['median_group_us_per_entry']}; the costliest "
          f"group {out['max_group_cpu_ms']} CPU-ms)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
