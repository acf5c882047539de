"""Progress bars of `dataset commit` (per shard, with records/s) on a terminal; none under --json."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from ailedger.tlog.ledger import Ledger


def _run_on_tty(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (as a user's shell has it); (exit, stdout, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))  # a 200-column terminal
    p = subprocess.Popen([sys.executable, "-m", "ailedger", *args], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    err = bytearray()
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not b:
            break
        err += b
    out = p.stdout.read() if p.stdout else b""
    os.close(master)
    return p.wait(timeout=300), out.decode(), err.decode("utf-8", "replace")


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_progress_bar_per_shard_with_records_per_second(tmp_path, engine):
    if engine == "dask":
        pytest.importorskip("distributed")
    data = tmp_path / "big.jsonl"
    with open(data, "w") as fh:  # ~20 MiB: three 8 MiB shards
        fh.writelines("".join(json.dumps({"id": i, "text": "x" * 80}) + "\n" for i in range(a, a + 10_000)) for a in range(0, 200_000, 10_000))
    lg = Ledger.init(tmp_path / "lg", origin="test.example/progress")
    lg.identities.create("alice")
    lg.close()
    env = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "lg")}
    extra = ["--engine", "dask", "--workers", "1"] if engine == "dask" else ["--workers", "1"]
    code, out, err = _run_on_tty(["dataset", "commit", str(data), "--name", "big", "--as", "alice", *extra], env)
    assert code == 0, err
    assert "records/s" in err and ("shard 2/3: " in err if engine == "local" else "shard 1: " in err), err[-2000:]
    assert "committed dataset big" in out
    code, out, err = _run_on_tty(["dataset", "commit", str(data), "--name", "big2", "--as", "alice", "--json",
                                  *extra], env)
    assert code == 0 and json.loads(out)["records"] == 200_000
    assert "records/s" not in err and "hashing" not in err, err[-2000:]
