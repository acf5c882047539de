"""Several `ailedger serve` processes on one PostgreSQL schema; the database going away mid-request."""

import threading
import time

import httpx
import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.merkle import leaf_hash
from tests.http.helpers import Key, Server, check_no_loss_no_dup, run_writers
from tests.tlog.stores.pg_factory import PG_DSN, fresh_schema, require_pg

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_ledger(tmp_path):
    require_pg()
    d = tmp_path / "pgledger"
    schema = fresh_schema()
    Ledger.init(d, origin="test.example/pg", store={"store": "postgres", "dsn": PG_DSN, "schema": schema}).close()
    return d, schema


def _kill_backends(schema: str) -> int:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as con:
        rows = con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                           (f"ailedger:{schema}"[:63],)).fetchall()
    return len(rows)


@pytest.mark.slow
def test_two_servers_one_postgres_no_gap_no_dup(pg_ledger):
    d, _schema = pg_ledger
    a = Server(d, workers=2)
    b = Server(d)
    try:
        keys = [Key(f"w{i}") for i in range(4)]
        for k in keys:
            assert httpx.post(a.url + "/v1/identities", json=k.registration()).status_code == 201
        out = run_writers([a.url, b.url], keys, seconds=6, n_writers=30)
        assert set(out["statuses"]) <= {200, 201}, out["statuses"]
    finally:
        a.stop()
        b.stop()
    with Ledger.open(d) as led:
        check_no_loss_no_dup(out["acked"], led)
        assert led.size == 4 + len(out["acked"])
        rep = led.audit(signatures=True)
        assert rep.ok, rep.to_dict()


def test_database_goes_away_mid_request(pg_ledger):
    d, schema = pg_ledger
    s = Server(d)
    try:
        k = Key("k")
        assert httpx.post(s.url + "/v1/identities", json=k.registration()).status_code == 201
        stop = time.time() + 4
        statuses: list[int] = []
        acked: list[tuple[int, str, bool]] = []
        unacked_batches: list[set[str]] = []

        def write(w: int) -> None:
            n = 0
            with httpx.Client(timeout=30) as c:
                while time.time() < stop:
                    # w keeps the writers' batches apart: without it two writers building batch n in the same
                    # millisecond sign identical entries, and one writer's batch then shares entries with another's
                    es = [k.entry("x.y", {"w": w, "n": n, "j": j}) for j in range(200)]
                    r = c.post(s.url + "/v1/entries/batch", json={"entries": es})
                    statuses.append(r.status_code)
                    if r.status_code == 201:
                        acked.extend((x["index"], x["leaf_hash"], x["duplicate"]) for x in r.json()["results"])
                    else:
                        assert r.json()["code"] == "storage" and r.headers["retry-after"] == "1", r.text
                        # a commit can succeed while its reply is lost with the connection: remember the
                        # batch, which must then be in the log whole or not at all
                        unacked_batches.append({leaf_hash(canonical_json(e)).hex() for e in es})
                    n += 1

        ts = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        [t.start() for t in ts]
        killed = 0
        while time.time() < stop - 1:
            time.sleep(0.3)
            killed += _kill_backends(schema)
            httpx.get(s.url + "/checkpoint")  # reads meet the dead connections too
        [t.join() for t in ts]
        assert killed > 0
        assert set(statuses) <= {201, 503}, statuses
        assert 503 in statuses and 201 in statuses
        # the server keeps serving once the database is back
        time.sleep(0.2)
        codes = [httpx.get(s.url + "/v1/log").status_code for _ in range(3)]
        assert codes[-1] == 200, codes  # at most one failure per pool, then fresh connections
        r = httpx.post(s.url + "/v1/entries", json=k.entry("x.y", {"after": True}))
        assert r.status_code == 201
        acked.append((r.json()["index"], r.json()["leaf_hash"], False))
    finally:
        s.stop()
    with Ledger.open(d) as led:  # nothing half-written: every acknowledged entry; others only as whole batches
        idxs = [i for i, _, dup in acked if not dup]
        assert len(idxs) == len(set(idxs)), "an index was handed out twice"
        for i, h, dup in acked:
            assert leaf_hash(led.entry_bytes(i)).hex() == h, f"acknowledged entry {i} lost"
        extra = {leaf_hash(led.entry_bytes(i)).hex() for i in range(1, led.size)} - {h for _, h, _ in acked}
        for batch in unacked_batches:
            assert not (batch & extra) or batch <= extra, "a batch was half-written"
        assert extra <= set().union(*unacked_batches) if unacked_batches else not extra
        assert led.audit(signatures=True).ok
