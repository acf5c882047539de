"""bench/ingest_timeline_bench.py: the shares of the wall time it reports (commit, check, both, neither) from
stage intervals, and one small real round on the ingest front that leaves the front's class as it found it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import ingest_timeline_bench as tl
import singles_client


def test_shares_from_intervals():
    ev = [
        ("take", "ailedger-ingest-check", 0.0, 1.0, 3),  # the run starts at the first request taken (t=1)
        ("check", "ailedger-ingest-check", 1.0, 3.0, 3),
        ("commit", "ailedger-ingest-commit", 3.0, 4.0, 3),
        ("reply", "ailedger-ingest-commit", 4.0, 4.5, 3),
        ("check", "ailedger-ingest-check_0", 4.0, 5.0, 2),  # overlaps the reply of the group before
        ("commit", "ailedger-ingest-commit", 6.0, 7.0, 2),
        ("reply", "ailedger-ingest-commit", 7.0, 7.5, 2),
    ]
    a = tl.analyse(ev)
    wall = 6.5  # 1.0 .. 7.5
    assert a["wall_s"] == wall and a["groups"] == 2
    assert a["commit_busy"] == round(3.0 / wall, 3)  # 3-4.5 and 6-7.5
    assert a["check_busy"] == round(3.0 / wall, 3)  # 1-3 and 4-5
    assert a["overlap"] == round(0.5 / wall, 3)  # 4-4.5
    assert a["neither"] == round(1 - 5.5 / wall, 3)  # 5-6
    assert a["gap_ms_median"] == 2000.0 and a["commit_ms_median"] == 1000.0
    assert a["check_share_per_thread"] == {"ailedger-ingest-check": round(2 / wall, 3),
                                           "ailedger-ingest-check_0": round(1 / wall, 3)}
    assert tl.intersect([(0, 2), (3, 5)], [(1, 4)]) == 2
    assert tl.union([(3, 4), (0, 2), (1, 3)]) == [(0, 4)]


def test_one_small_round_on_the_real_front(tmp_path):
    from ailedger.http.ingest_front import IngestFront, available

    if not available():
        pytest.skip("ailedger.tlog._front is not built")
    exe, why = singles_client.build(tmp_path / "cc")
    if exe is None:
        pytest.skip(why)
    before = dict(IngestFront.__dict__)
    args = argparse.Namespace(entries=150, conns=10, window_ms=2.0, max_group=20000, rounds=1, store="sqlite", cohorts=2,
                              pg_dsn="", sched=False)
    r = tl.one_round(args, exe, tmp_path, 0)
    assert r["statuses"] == {"201": 150} and r["entries"] == 150
    assert {"IngestFront.check", "IngestFront.commit", "_front.take_ready", "_front.reply"} <= set(r["timed"])
    assert r["groups"] >= 1 and 0 < r["commit_busy"] <= 1 and 0 < r["check_busy"] <= 1
    assert -0.01 <= r["neither"] <= 1
    assert dict(IngestFront.__dict__) == before  # the wrappers are gone
    from ailedger.http import ingest_front

    assert ingest_front._front.__name__.endswith("_front")  # the real C module again
