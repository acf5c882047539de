"""A local anvil node for tests and benchmarks (the binary from the pinned npm package in tools/anvil).

Started directly (not through npx) on 127.0.0.1 with a free port, and stopped by its own pid.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import NetworkError, NotFoundError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ANVIL_KEYS", "AnvilNode", "find_anvil", "free_port"]

# anvil's well-known dev accounts (mnemonic "test test ... junk"); public test keys, never real funds
ANVIL_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
]


def find_anvil() -> str:
    env = os.environ.get("AILEDGER_ANVIL")
    if env and os.access(env, os.X_OK):
        return env
    repo = Path(__file__).resolve().parents[1]
    cand = repo / "tools" / "anvil" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if cand.exists() and os.access(cand, os.X_OK):
        return str(cand)
    found = shutil.which("anvil")
    if found:
        return found
    raise NotFoundError("anvil not found: run `npm ci --prefix tools/anvil` (pinned @foundry-rs/anvil-linux-amd64)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: all bound at once, so the OS cannot hand the same one out twice (separate
    :func:`free_port` calls can)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class AnvilNode:
    """``with AnvilNode() as node: node.url`` -- a fresh dev chain on loopback."""

    def __init__(self, port: int | None = None, *, block_time: float | None = None, chain_id: int = 31337,
                 extra_args: list[str] | None = None) -> None:
        self._own_port = port is None  # a port picked here may be moved if another process takes it first
        self.port = port or free_port()
        self.block_time = block_time
        self.chain_id = chain_id
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Self:
        for attempt in range(3):
            try:
                return self._start(timeout)
            except NetworkError as e:
                if not (self._own_port and "in use" in str(e).lower()) or attempt == 2:
                    raise
                self.port = free_port()  # another process bound the free port first: take another
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> Self:
        args = [find_anvil(), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id),
                "--silent", "--accounts", "3", *self.extra_args]
        if self.block_time:
            args += ["--block-time", str(self.block_time)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise NetworkError(f"anvil exited at start: {err[-500:]}")
            try:
                self.rpc("eth_chainId")
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise NetworkError("anvil did not answer in time")

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            out = json.loads(r.read())
        if "error" in out:
            raise NetworkError(f"anvil {method}: {out['error']}")
        return out.get("result")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
