"""Shared helpers for the HTTP API tests: a real `ailedger serve` process and signed entries."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_str(offset: float = 0.0) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class Key:
    def __init__(self, name: str = "alice") -> None:
        self.name = name
        self.key = Ed25519PrivateKey.generate()
        pub = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.did = did_from_public_key(pub)

    def entry(self, type_: str, body: dict, time_offset: float = 0.0, time: str | None = None) -> dict:
        return build_entry(type_, body, self.did, time or now_str(time_offset), self.key.sign).to_dict()

    def registration(self) -> dict:
        return self.entry("identity.register", {"name": self.name, "did": self.did, "subjects": [self.did]})


class Server:
    """A real `ailedger serve` process. ``open_registration`` (the default here, so tests can register
    identities freely) passes --open-registration; tests of registration control pass False."""

    def __init__(self, ledger: Path, *args: str, workers: int = 1, env: dict | None = None,
                 open_registration: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(ledger.parent / f"serve-{self.port}.log", "wb")  # noqa: SIM115 - closed by stop()
        cmd = [sys.executable, "-c", "from ailedger.cli.main import main; main()", "serve", "--ledger", str(ledger),
               "--port", str(self.port), "--workers", str(workers),
               *(["--open-registration"] if open_registration else []), *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, cwd=ROOT)
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("server did not start: " + (ledger.parent / f"serve-{self.port}.log").read_text())
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def run_writers(urls: list[str], keys: list[Key], seconds: float, n_writers: int = 50,
                batch_every: int = 5) -> dict:
    """n_writers threads append for `seconds` (single entries, every `batch_every`-th request a batch of 20),
    round-robin over `urls`. Returns acknowledged entries and every status seen."""
    import threading

    acked: list[tuple[int, str, bool]] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.time() + seconds

    def writer(w: int) -> None:
        key = keys[w % len(keys)]
        with httpx.Client(timeout=60) as c:
            n = 0
            while time.time() < stop:
                url = urls[(w + n) % len(urls)]
                try:
                    if n % batch_every == batch_every - 1:
                        es = [key.entry("load.event", {"w": w, "n": n, "j": j}) for j in range(20)]
                        r = c.post(url + "/v1/entries/batch", json={"entries": es})
                        res = r.json().get("results", []) if r.status_code in (200, 201) else []
                    else:
                        r = c.post(url + "/v1/entries", json=key.entry("load.event", {"w": w, "n": n}))
                        res = [r.json()] if r.status_code in (200, 201) else []
                except httpx.HTTPError:
                    with lock:
                        statuses[0] = statuses.get(0, 0) + 1
                    n += 1
                    continue
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    acked.extend((x["index"], x["leaf_hash"], x["duplicate"]) for x in res)
                n += 1

    ts = [threading.Thread(target=writer, args=(w,)) for w in range(n_writers)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"acked": acked, "statuses": statuses, "seconds": time.time() - t0}


def check_no_loss_no_dup(acked: list[tuple[int, str, bool]], ledger) -> None:
    """Every acknowledged entry is in the log at its index; indices are dense and unique."""
    from ailedger.tlog.merkle import leaf_hash

    new = [(i, h) for i, h, dup in acked if not dup]
    idxs = [i for i, _ in new]
    assert len(idxs) == len(set(idxs)), "an index was handed out twice"
    size = ledger.size
    assert sorted(idxs) == list(range(size - len(idxs), size)), "gap or extra entries"
    for i, h in new:
        assert leaf_hash(ledger.entry_bytes(i)).hex() == h


def append_notes(led, who, start: int, n: int) -> list[bytes]:
    """Append n signed `note` records {"i": start..start+n-1} by identity ``who``; returns their leaves."""
    datas = [led.make_entry("note", {"i": i}, who).leaf_bytes for i in range(start, start + n)]
    led.append_entries(datas, parallel=False)
    return datas


def ledger_with_notes(path: Path, origin: str, n: int):
    """A new ledger at ``path`` with one identity and n note records; returns (ledger, identity)."""
    from ailedger.tlog.ledger import Ledger

    led = Ledger.init(path, origin)
    who = led.identities.create("a")
    append_notes(led, who, 0, n)
    return led, who
