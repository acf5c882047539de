"""bench/store_append_bench.py: its subjects (random or sequential), its signers in turn, the WAL frame count by
table (frame headers read back, pages named by dbstat), and one small real run whose last line is the JSON."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import store_append_bench as sab


def test_subjects_and_signers():
    seq = sab.make_rows(6, "sequential", signers=3)
    rnd = sab.make_rows(6, "random", signers=3)
    subj = [next(t for t in r[2] if t.startswith("subject:")) for r in seq]
    assert subj == sorted(subj) and subj[0] == "subject:sha256:" + "0" * 64
    subj_r = [next(t for t in r[2] if t.startswith("subject:")) for r in rnd]
    assert subj_r != sorted(subj_r) and len(set(subj_r)) == 6
    signers = [next(t for t in r[2] if t.startswith("signer:")) for r in rnd]
    assert signers[:3] == signers[3:] and len(set(signers)) == 3


def test_wal_frames_by_table(tmp_path):
    path = tmp_path / "w.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=4096")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("CREATE TABLE a (x INTEGER PRIMARY KEY, v BLOB)")
    con.execute("CREATE TABLE b (x INTEGER PRIMARY KEY, v BLOB)")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("INSERT INTO a VALUES (1, zeroblob(100))")  # one page: a's root
    pages = sab.wal_frames((tmp_path / "w.db-wal").read_bytes())
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'a'").fetchone()[0]
    assert pages == [root]
    assert sab.by_owner(pages, sab.page_owners(con)) == {"a": 1}
    con.execute("BEGIN")
    con.executemany("INSERT INTO b VALUES (?, zeroblob(3000))", [(i,) for i in range(10)])  # a page per row
    con.execute("COMMIT")
    pages = sab.wal_frames((tmp_path / "w.db-wal").read_bytes())
    got = sab.by_owner(pages, sab.page_owners(con))
    assert got["b"] >= 10 and got["a"] == 1
    con.close()
    assert sab.wal_frames(b"") == [] and sab.wal_frames(b"\0" * 31) == []


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(BENCH.parent / "src"))
    return subprocess.run([sys.executable, str(BENCH / "store_append_bench.py"), *args], check=False, env=env,
                          capture_output=True, text=True, timeout=120)


def test_one_small_run_counts_frames(tmp_path):
    p = _run("--entries", "150", "--warm", "100", "--group", "50", "--signers", "4", "--wal-groups", "2",
             "--rows", str(tmp_path / "rows.pkl"))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["subjects"] == "random" and out["signers"] == 4 and out["audit_ok"] is True
    assert out["wal_groups"] == 2 and 5 < out["wal_frames_per_group"] < 200
    assert "leaves" in out["wal_frames_by_table"] and out["cpu_us_per_entry"] > 0 and out["max_group_cpu_ms"] > 0
    # groups end at --warm and at the last timed entry even when the group size does not divide them
    again = _run("--entries", "130", "--warm", "70", "--group", "50", "--rows", str(tmp_path / "rows.pkl"))
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout.strip().splitlines()[-1])
    assert out["subjects"] == "from --rows" == out["signers"] and out["audit_ok"] is True


def test_bad_options_are_refused():
    p = _run("--store", "postgres", "--wal-groups", "2")
    assert p.returncode == 2 and "--wal-groups counts SQLite WAL frames" in p.stderr
    p = _run("--signers", "0")
    assert p.returncode == 2 and "must be positive" in p.stderr
