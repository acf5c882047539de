"""A small subnet on a real ledger: an owner, three miners, validators that lock governance reputation on the
subnet (and one without), and entry times placed in the past (within the writers' 600 s skew) so epochs pass at once."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from ailedger.encoding.times import iso
from ailedger.governance import service as gov
from ailedger.subnets import service
from ailedger.tlog.ledger import Ledger

EPOCH_MS = 60_000


@dataclass
class World:
    led: Any
    ids: dict[str, Any]
    t0: int  # ms: the subnet's start

    def at(self, epoch: int, offset_ms: int = 1000) -> str:
        return iso(self.t0 + epoch * EPOCH_MS + offset_ms)


@pytest.fixture()
def world(tmp_path):
    led = Ledger.init(tmp_path / "led", "example.org/subnet-test")
    ids = {n: led.new_identity(n)[0] for n in ("owner", "v1", "v2", "v3", "m0", "m1", "m2", "keeper")}
    now = int(time.time() * 1000)
    t0 = now - 590_000
    gov.name_founders(led, [ids["owner"].did])
    gov.init_dao(led, ids["owner"], "dao", reputation={ids["v1"].did: 600, ids["v2"].did: 300},
                 time=iso(t0 - 5000))
    w = World(led, ids, t0)
    service.create(led, ids["owner"], "digits", {"metric": "accuracy", "pool": "sklearn digits"},
                   epoch_ms=EPOCH_MS, params={"emission": 1_000_000}, time=iso(t0))
    for n in ("m0", "m1", "m2"):
        service.register(led, ids[n], "digits", "miner", time=w.at(0, 100))
    for n in ("v1", "v2", "v3"):
        service.register(led, ids[n], "digits", "validator", time=w.at(0, 200))
    # stake: v1 and v2 lock reputation on the subnet (governance stake claims); v3 has none
    service.stake(led, ids["v1"], "digits", 600, time=w.at(0, 300))
    service.stake(led, ids["v2"], "digits", 300, time=w.at(0, 300))
    yield w
    led.close()
