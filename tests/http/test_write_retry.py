"""What a client gets when it retries after a crash or a lost answer (issue 21): its entry's index on every
store, and a checkpoint that is never left behind the store (signed at start-up and after any write).
Real `ailedger serve` processes on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow
from tests.http.helpers import Key, Server
from tests.tlog.stores.pg_factory import PG_DSN, fresh_schema, require_pg


def _cp_size(url: str) -> int:
    return int(httpx.get(url + "/checkpoint").text.split("\n")[1])


@pytest.fixture(params=["sqlite", "postgres"])
def any_ledger(request, tmp_path):
    d = tmp_path / "ledger"
    if request.param == "postgres":
        require_pg()
        Ledger.init(d, origin="test.example/gc", store={"store": "postgres", "dsn": PG_DSN,
                                                          "schema": fresh_schema()}).close()
    else:
        Ledger.init(d, origin="test.example/gc").close()
    return d


def _register(url: str, *keys: Key) -> None:
    for k in keys:
        r = httpx.post(url + "/v1/identities", json=k.registration())
        assert r.status_code == 201, r.text


def _append_unsigned(ledger_dir, entries: list[dict]) -> int:
    """Entries stored without a checkpoint covering them, as a crash between an append's commit and its
    checkpoint left them in earlier versions (or a writer without the log key). Returns the store size."""
    with Ledger.open(ledger_dir) as led:
        bare = TransparencyLog(led.store, led.origin)  # no signing key
        bare.append([LeafRow(canonical_json(e), leaf_hash(canonical_json(e))) for e in entries])
        return led.size


def test_retry_of_a_logged_entry_gets_its_index(any_ledger):
    """A client whose write committed but whose answer was lost re-sends it: 200 duplicate with its index,
    alone or inside a batch of new entries (PostgreSQL answered 503 `storage` before)."""
    s = Server(any_ledger)
    try:
        k = Key("k")
        _register(s.url, k)
        e = k.entry("x.y", {"n": 1})
        first = httpx.post(s.url + "/v1/entries", json=e)
        assert first.status_code == 201, first.text
        again = httpx.post(s.url + "/v1/entries", json=e)
        assert again.status_code == 200, again.text
        assert again.json() == {**first.json(), "duplicate": True}
        fresh = [k.entry("x.y", {"n": 2}), k.entry("x.y", {"n": 3})]
        r = httpx.post(s.url + "/v1/entries/batch", json={"entries": [fresh[0], e, fresh[1]]})
        assert r.status_code == 201, r.text
        res = r.json()["results"]
        assert [(x["index"], x["duplicate"]) for x in res] == [(2, False), (1, True), (3, False)]
        assert r.json()["appended"] == 2 and r.json()["duplicates"] == 1
        r = httpx.post(s.url + "/v1/entries/batch", json={"entries": [e, fresh[1]]})
        assert r.status_code == 200 and [x["index"] for x in r.json()["results"]] == [1, 3]
    finally:
        s.stop()


def test_checkpoint_behind_the_store_is_signed_at_start_up(any_ledger):
    k = Key("k")
    s = Server(any_ledger)
    try:
        _register(s.url, k)
        assert _cp_size(s.url) == 1
    finally:
        s.stop()
    size = _append_unsigned(any_ledger, [k.entry("x.y", {"i": i}) for i in range(300)])
    s = Server(any_ledger)
    try:
        assert _cp_size(s.url) == size == 301
        r = httpx.get(s.url + "/v1/entries/300/inclusion")
        assert r.status_code == 200 and r.json()["tree_size"] == 301, r.text
    finally:
        s.stop()


def test_checkpoint_behind_the_store_is_signed_after_any_write(any_ledger):
    """Even a write that appends nothing new (a retried duplicate) signs the checkpoint the store is owed."""
    s = Server(any_ledger)
    try:
        k = Key("k")
        _register(s.url, k)
        e = k.entry("x.y", {"n": 0})
        assert httpx.post(s.url + "/v1/entries", json=e).status_code == 201
        size = _append_unsigned(any_ledger, [k.entry("x.y", {"i": i}) for i in range(40)])
        assert httpx.post(s.url + "/v1/entries", json=e).status_code == 200  # only a duplicate
        assert _cp_size(s.url) == size == 42
        r = httpx.get(s.url + "/v1/entries/41/proof")
        assert r.status_code == 200, r.text
    finally:
        s.stop()
