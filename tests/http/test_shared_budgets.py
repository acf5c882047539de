"""Per-identity rate limits kept in PostgreSQL: several API servers, one budget per identity."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key, Server
from tests.tlog.stores.pg_factory import PG_DSN, fresh_schema, require_pg

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store():
    require_pg()
    from ailedger.tlog.stores.postgres import PostgresStore

    s = PostgresStore(PG_DSN, schema=fresh_schema(), create=True)
    yield s
    s.drop_schema()
    s.close()


def test_buckets_all_or_none_and_refill(pg_store):
    """Refill at 2 tokens/s, so each expected wait keeps half a second of slack for a loaded machine
    (the database's clock runs on between two charges)."""
    b = pg_store.budgets(lease_fraction=0)  # exact: every charge asks the table
    assert b.charge({"a": 5, "b": 7}, 2.0, 10.0, 0.0) == 0.0
    # b has 3 left: the pair is refused whole, a is not charged either
    wait = b.charge({"a": 1, "b": 5}, 2.0, 10.0, 0.0)
    assert 0.5 < wait <= 1.0
    assert b.charge({"a": 5}, 2.0, 10.0, 0.0) == 0.0  # a still had its 5
    assert b.charge({"a": 11}, 2.0, 10.0, 0.0) == float("inf")  # beyond the burst: never
    one = b.charge({"b": 5}, 2.0, 10.0, 0.0)
    assert 0.5 < one <= 1.0
    time.sleep(one + 0.05)
    assert b.charge({"b": 5}, 2.0, 10.0, 0.0) == 0.0  # refilled at 2/s
    # a second handle (another server) sees the same buckets
    from ailedger.tlog.stores.postgres import PostgresStore

    other = PostgresStore(PG_DSN, schema=pg_store.schema)
    try:
        assert other.budgets(lease_fraction=0).charge({"a": 10}, 2.0, 10.0, 0.0) > 0.0
    finally:
        other.close()


@pytest.mark.parametrize("lease", [0.0, 0.01])
def test_concurrent_charges_never_overspend(pg_store, lease):
    """Two stores (two servers) x 4 threads, each thread a server of its own, race for one identity's burst of
    300 tokens (refill ~0): exactly 300 charges of 1 succeed without leases; with leases never more, and at
    most one lease per server less (what an idle server holds)."""
    from ailedger.tlog.stores.postgres import PostgresStore

    stores = [pg_store, PostgresStore(PG_DSN, schema=pg_store.schema)]
    granted = [0]
    lock = threading.Lock()
    rate, burst = 1e-6, 300.0

    def run(s: PostgresStore) -> None:
        b = s.budgets(lease_fraction=lease)
        for i in range(100):
            if b.charge({"did:x": 1, **({"did:y": 1} if i % 3 == 0 else {})}, rate, burst, 0.0) == 0.0:
                with lock:
                    granted[0] += 1

    ts = [threading.Thread(target=run, args=(s,)) for s in stores for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    stores[1].close()
    assert granted[0] <= 300
    assert granted[0] >= 300 - 8 * (1 + lease * min(rate, burst)), granted[0]
    if not lease:
        assert granted[0] == 300


def test_leases_save_round_trips(pg_store):
    """With a lease of 1% of the rate, 100 charges of 1 cost about 10 round trips, not 100 (that leases never
    over-admit is test_concurrent_charges_never_overspend's)."""
    b = pg_store.budgets()
    calls = [0]
    take = b._take

    def counting(*a):
        calls[0] += 1
        return take(*a)

    b._take = counting
    for _ in range(100):
        assert b.charge({"did:l": 1}, 1000.0, 1000.0, 0.0) == 0.0
    assert calls[0] <= 12, calls[0]  # 10 per lease, plus refusal retries


def test_two_servers_share_one_budget(tmp_path):
    """Two `ailedger serve` processes on one PostgreSQL schema: one identity's accepted entries stay within
    rate x seconds + burst in total (each server alone would allow that much), the rest get 429 with
    Retry-After and nothing of them is logged."""
    require_pg()
    d = tmp_path / "pgledger"
    Ledger.init(d, origin="test.example/budgets",
                store={"store": "postgres", "dsn": PG_DSN, "schema": fresh_schema()}).close()
    d2 = tmp_path / "host2" / "pgledger"  # the second "host": its own copy of the ledger folder (config, keys),
    shutil.copytree(d, d2)                  # so its own per-host table under run/, as on another machine
    rate, burst = 200.0, 200.0
    args = ("--rate", str(rate), "--burst", str(burst))
    a = Server(d, *args)
    b = Server(d2, *args)
    k = Key("busy")
    accepted = {a.url: 0, b.url: 0}
    limited: list[httpx.Response] = []
    lock = threading.Lock()
    try:
        for s in (a, b):
            assert httpx.get(s.url + "/v1/log").json()["policy"]["rate_shared_by"] == "store"
        assert httpx.post(a.url + "/v1/identities", json=k.registration()).status_code == 201
        with Ledger.open(d) as led:
            size0 = led.size
        started = time.monotonic()
        stop = started + 3.0

        def write(w: int) -> None:
            url = (a.url, b.url)[w % 2]
            n = 0
            with httpx.Client(timeout=30) as c:
                while time.monotonic() < stop:
                    es = [k.entry("load.event", {"w": w, "n": n, "j": j}) for j in range(10)]
                    r = c.post(url + "/v1/entries/batch", json={"entries": es})
                    with lock:
                        if r.status_code == 201:
                            accepted[url] += len(r.json()["results"])
                        else:
                            limited.append(r)
                    n += 1

        ts = [threading.Thread(target=write, args=(w,)) for w in range(6)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        elapsed = time.monotonic() - started
    finally:
        a.stop()
        b.stop()
    total = sum(accepted.values())
    budget = burst + rate * elapsed - 1  # the registration took one token
    assert all(accepted.values()), accepted  # both servers admitted some
    print(f"accepted {total} (per server {list(accepted.values())}), budget {budget:.0f}, "
          f"{len(limited)} refused in {elapsed:.2f} s")
    assert total <= budget + 10, (total, budget, accepted)  # one budget, not one per server
    assert total >= burst - 1, (total, accepted)  # and the budget is usable
    assert limited, "the writers never met the limit"
    for r in limited:
        assert r.status_code == 429, r.text
        assert r.json()["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
    with Ledger.open(d) as led:
        assert led.size == size0 + total  # nothing of a refused batch was logged


def test_sqlite_keeps_per_host_buckets(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/host").close()
    s = Server(d)
    try:
        assert httpx.get(s.url + "/v1/log").json()["policy"]["rate_shared_by"] == "host"
    finally:
        s.stop()
