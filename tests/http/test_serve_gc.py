"""The serving process's collector tuning (http.app.tune_gc, run by the `serve` factory): start-up objects frozen,
gen-0 threshold raised; cycles made afterwards are still collected. Run in a child process (it changes the
interpreter's global collector state)."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = r"""
import gc, weakref
from ailedger.http.app import tune_gc
before = gc.get_threshold()
tune_gc()
after = gc.get_threshold()
assert after[0] == 50_000 and after[1:] == before[1:], (before, after)
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle only the collector can free
ref = weakref.ref(a)
del a, b
gc.collect()
assert ref() is None
print("ok")
"""


def test_serve_freezes_start_up_objects_and_still_collects_cycles():
    out = subprocess.run([sys.executable, "-c", CHILD], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_serve_factory_tunes_the_collector(tmp_path):
    from ailedger.tlog.ledger import Ledger

    Ledger.init(tmp_path / "l", origin="gc.example/log").close()
    child = ("import gc; from ailedger.http.app import app_from_env; app_from_env(); "
             "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)")
    env = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "l")}
    out = subprocess.run([sys.executable, "-c", child], check=False, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["50000", "True"]
