"""bench/durable_floor_bench.py: the ceiling's arithmetic, and one small real round of every variant."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import durable_floor_bench as dfb
import inference_bench as ib


def test_ceiling_grants_a_fast_call_plus_the_cheaper_wait():
    # fast 20 us per call; encode_only 25 us; one GIL hand-off makes it 40 us (+15); holding the GIL 200 (+175)
    c = dfb.ceiling(50_000, 40_000, 25_000, 5_000)
    assert c["by"] == "release_once"
    assert c["wait_us_per_call"] == {"release_once": 15.0, "hold_gil": 175.0}
    assert c["ceiling_vs_fast"] == round(20 / 35, 4) and c["below_target"] is True
    # a wait that costs little would leave the target reachable: the bench says so
    c = dfb.ceiling(50_000, 50_000, 48_000, 1_000)
    assert c["by"] == "release_once" and c["below_target"] is False
    assert c["ceiling_vs_fast"] == round(20 / (20 + (1e6 / 48_000 - 20)), 4)
    # holding the GIL can be the cheaper wait (a very fast device)
    c = dfb.ceiling(50_000, 50_000, 10_000, 40_000)
    assert c["by"] == "hold_gil" and c["ceiling_vs_fast"] == round(20 / 25, 4) and c["below_target"] is False


def test_one_small_round(tmp_path):
    path, why = dfb.build(tmp_path / "cc")
    if path is None:
        pytest.skip(why)
    lib = ctypes.CDLL(str(path))
    lib.pingpong.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
    lib.nap.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
    out = (ctypes.c_double * 2)()
    assert lib.pingpong(200, 1, out) == 0 and out[0] > 0 and out[1] > 0
    assert lib.nap(50, out) == 0 and out[0] >= 1e-6  # a 1 us sleep takes at least 1 us
    led = ib.make_ledger(tmp_path / "l")
    direct = dfb._Direct(led.path)
    try:
        r = dfb.one_round(led, 20, lib, direct)
    finally:
        direct.close()
    assert not list(led.path.glob(".hold-gil-probe-*"))
    variants = {"durable", "encode_only", "release_once", "woken_once", "hold_gil"}
    assert set(r["ratios_vs_fast"]) == variants
    fast = r["fast"]["records_per_s"]
    for k in variants:
        assert r[k]["records_per_s"] > 0 and r[k]["cpu_us_per_record"] > 0
        assert r["ratios_vs_fast"][k] == round(r[k]["records_per_s"] / fast, 4)
    again = dfb.ceiling(fast, r["encode_only"]["records_per_s"], r["release_once"]["records_per_s"],
                        r["hold_gil"]["records_per_s"])
    assert r["ceiling_vs_fast"] == again["ceiling_vs_fast"] and 0 < r["ceiling_vs_fast"] <= 1.5
    for k in variants - {"durable"}:  # every call of the floor variants was logged (the clock stopped after)
        assert r[k]["logged"] == r[k]["calls"] == 8 * {"woken_once": 20, "hold_gil": 25}.get(k, 80)


@pytest.mark.parametrize("args", [["--rounds", "0"], ["--per-thread", "5"], ["--rounds", "two"]])
def test_bad_arguments_exit_2_naming_them_before_anything(tmp_path, args):
    import os
    import subprocess

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    r = subprocess.run([sys.executable, str(Path(dfb.__file__)), *args], capture_output=True, text=True, env=env,
                       timeout=120, check=False)
    assert r.returncode == 2 and args[0] in r.stderr
    assert not list(tmp_path.iterdir())  # no ledger, no probe file, no build
