"""bench/singles_floor_bench.py: the ceilings' arithmetic (made-up numbers) and one tiny real round on SQLite whose
JSON holds every figure, positive, with the ceilings and ratios the stated divisions of those figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
floor = pytest.importorskip("singles_floor_bench")


def test_the_ceilings_are_the_stated_divisions():
    c = floor.ceilings(p_rate=25000, p_server_us=60, p_client_us=5, e_server_us=20, e_client_us=8, cores=2)
    assert c["e_us"] == 28
    assert c["p_machine_us"] == 65
    assert c["floor_single_us"] == 88  # the batch client's CPU is not in a single's floor
    assert c["ceiling_cpu"] == pytest.approx(65 / 88)
    assert c["ceiling_wall"] == pytest.approx(2e6 / 88 / 25000)
    assert c["ceiling_cpu_batch_client_counted"] == pytest.approx(65 / 93)
    assert c["ceiling_wall_batch_client_counted"] == pytest.approx(2e6 / 93 / 25000)
    assert c["below_target"] == {"cpu": True, "wall": False}  # 0.739 and 0.909 against 0.8
    # the commit share and the database's CPU: the commit share in the floor, the database's in both sides
    d = floor.ceilings(p_rate=10000, p_server_us=60, p_client_us=5, e_server_us=20, e_client_us=8, cores=2,
                       c_diff_us=12, p_db_us=10)
    assert d["p_machine_us"] == 75
    assert d["floor_single_us"] == 110
    assert d["ceiling_cpu"] == pytest.approx(75 / 110)
    assert d["ceiling_wall"] == pytest.approx(2e6 / 110 / 10000)  # 1.82: a reference far from the machine's limit
    assert d["below_target"] == {"cpu": True, "wall": False}
    # a fast exchange and a saturated reference: neither ceiling below the target
    e = floor.ceilings(p_rate=30000, p_server_us=64, p_client_us=2, e_server_us=4, e_client_us=2, cores=2)
    assert e["ceiling_cpu"] == pytest.approx(66 / 70)
    assert e["ceiling_wall"] == pytest.approx(2e6 / 70 / 30000)
    assert e["below_target"] == {"cpu": False, "wall": False}


@pytest.mark.parametrize("bad", [{"p_rate": 0}, {"p_server_us": -1}, {"e_client_us": 0}, {"cores": 0},
                                 {"p_client_us": -0.5}, {"c_diff_us": -200.0}])
def test_the_ceilings_refuse_figures_that_cannot_be(bad):
    args = {"p_rate": 25000, "p_server_us": 60, "p_client_us": 5, "e_server_us": 20, "e_client_us": 8, "cores": 2}
    args.update(bad)
    with pytest.raises(ValueError, match=next(iter(bad)) if "c_diff" not in next(iter(bad)) else "floor"):
        floor.ceilings(**args)


def test_bad_arguments_are_refused_with_a_reason():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "singles_floor_bench.py"), "--entries", "1500",
                        "--no-pg"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "--entries must be a positive multiple of 1000" in r.stderr


def test_one_tiny_round_on_sqlite(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, str(ROOT / "bench" / "singles_floor_bench.py"), "--entries", "2000",
           "--single-entries", "400", "--writers", "10", "--group", "5", "--rounds", "1", "--no-pg",
           "--with-singles", "--commit-share", "--commit-entries", "1000"]
    if os.environ.get("AILEDGER_TEST_PORTS"):
        cmd += ["--ports", os.environ["AILEDGER_TEST_PORTS"]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    assert any(line.startswith("round 1 sqlite: pre-batched") for line in lines)
    assert {"bench", "args", "cpus", "target", "runs", "figures", "references", "ratios", "loadavg_start",
            "loadavg_end"} <= set(out)
    assert set(out["runs"]) == {"sqlite"} and len(out["runs"]["sqlite"]) == 1
    run = out["runs"]["sqlite"][0]
    p, e, s, c = run["prebatched"], run["exchange"], run["singles"], run["ceiling"]
    cs = run["commit_share"]
    assert cs["entries_each"] == 1000 and cs["group"] == 5 and cs["big_group"] == 1000
    assert cs["group_cpu_us"] > 0 and cs["big_group_cpu_us"] > 0
    assert cs["c_diff_us"] == pytest.approx(cs["group_cpu_us"] - cs["big_group_cpu_us"])
    assert p["entries"] == 2000 and e["requests"] == 400 and s["entries"] == 400
    for k in ("entries_per_s", "server_cpu_us", "client_cpu_us", "stat_us"):
        assert p[k] > 0, k
    for k in ("requests_per_s", "server_cpu_us", "client_cpu_us", "server_process_cpu_us"):
        assert e[k] > 0, k
    assert e["server_process_cpu_us"] >= e["server_cpu_us"]  # the threads are part of the process
    assert e["body_bytes_mean"] > 200  # the real signed single entries, not {"n":i}
    assert p["db_cpu_us"] == 0  # SQLite: no database processes counted
    # the ceilings are the figures divided as the docstring states
    again = floor.ceilings(p["entries_per_s"], p["server_cpu_us"], p["client_cpu_us"], e["server_cpu_us"],
                           e["client_cpu_us"], out["cpus"], cs["c_diff_us"], p["db_cpu_us"])
    for k in ("floor_single_us", "ceiling_cpu", "ceiling_wall", "ceiling_cpu_batch_client_counted",
              "ceiling_wall_batch_client_counted"):
        assert c[k] == pytest.approx(again[k]), k
    assert c["floor_single_us"] == pytest.approx(p["server_cpu_us"] + e["server_cpu_us"] + e["client_cpu_us"]
                                                 + cs["c_diff_us"])
    assert run["ceiling_without_commit_share"]["floor_single_us"] == pytest.approx(c["floor_single_us"]
                                                                                   - cs["c_diff_us"])
    assert 0 < c["ceiling_cpu_batch_client_counted"] < 1 or cs["c_diff_us"] < 0  # noise may make C_diff negative
    assert c["ceiling_cpu_batch_client_counted"] <= c["ceiling_cpu"]
    assert c["ceiling_wall"] > 0
    a = run["actual"]
    assert a["singles_vs_prebatched"] == pytest.approx(s["entries_per_s"] / p["entries_per_s"])
    assert a["actual_vs_ceiling_wall"] == pytest.approx(a["singles_vs_prebatched"] / c["ceiling_wall"])
    # one round: the medians are that round's figures, and the ratios those medians rounded
    f = out["figures"]["sqlite"]
    assert f["ceiling"]["ceiling_wall"] == pytest.approx(c["ceiling_wall"])
    assert f["prebatched"]["entries_per_s"] == p["entries_per_s"]
    assert out["ratios"]["ceiling_cpu_sqlite"] == round(c["ceiling_cpu"], 3)
    assert out["ratios"]["ceiling_wall_sqlite"] == round(c["ceiling_wall"], 3)
    assert out["ratios"]["ceiling_below_target_sqlite"] == {"cpu": c["ceiling_cpu"] < 0.8,
                                                            "wall": c["ceiling_wall"] < 0.8}
    assert out["ratios"]["singles_vs_prebatched_sqlite"] == round(a["singles_vs_prebatched"], 3)
    assert out["references"]["sqlite"]["bare_exchange_us"] == pytest.approx(c["e_us"])
