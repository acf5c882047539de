"""bench/pg_group_bench.py: a small run on a fresh schema measures the three ways a small append is sent
(one call, pipeline, COPY), audits the log it wrote, drops its schema, and ends with one JSON line whose
ratios are the figures it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.tlog.stores.pg_factory import PG_DSN, require_pg

psycopg = pytest.importorskip("psycopg")
BENCH = Path(__file__).resolve().parents[2] / "bench" / "pg_group_bench.py"


def test_a_small_run_measures_every_way_and_cleans_up():
    require_pg()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = subprocess.run([sys.executable, str(BENCH), "--group", "5", "--rounds", "3", "--pg-dsn", PG_DSN],
                         check=False, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["bench"] == "pg_group" and res["group"] == 5 and res["audit_ok"] is True
    for mode in ("one_call", "pipeline", "copy"):
        fig = res[mode]
        assert fig["wall_us_per_group"] > 0 and fig["client_cpu_us_per_group"] > 0, mode
    for n, r in res["ratios_one_call_vs_pipeline"].items():
        assert r == pytest.approx(res["one_call"][n] / res["pipeline"][n], abs=0.002)
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        left = con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (res["schema"],)).fetchone()
    assert res["schema"].startswith("pgb_") and left is None  # its schema dropped
