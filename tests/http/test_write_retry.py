"""What a client gets when it retries after a crash or a lost answer (issue 21): its entry's index on every
store, and a checkpoint that is never left behind the store (signed at start-up and after any write).
Real `ailedger serve` processes on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from tests.http.commit_helpers import append_unsigned, checkpoint_size, register
from tests.http.helpers import Key, Server


def test_retry_of_a_logged_entry_gets_its_index(any_ledger):
    """A client whose write committed but whose answer was lost re-sends it: 200 duplicate with its index,
    alone or inside a batch of new entries (PostgreSQL answered 503 `storage` before)."""
    s = Server(any_ledger)
    try:
        k = Key("k")
        register(s.url, k)
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
        register(s.url, k)
        assert checkpoint_size(s.url) == 1
    finally:
        s.stop()
    size = append_unsigned(any_ledger, [k.entry("x.y", {"i": i}) for i in range(300)])
    s = Server(any_ledger)
    try:
        assert checkpoint_size(s.url) == size == 301
        r = httpx.get(s.url + "/v1/entries/300/inclusion")
        assert r.status_code == 200 and r.json()["tree_size"] == 301, r.text
    finally:
        s.stop()


def test_checkpoint_behind_the_store_is_signed_after_any_write(any_ledger):
    """Even a write that appends nothing new (a retried duplicate) signs the checkpoint the store is owed."""
    s = Server(any_ledger)
    try:
        k = Key("k")
        register(s.url, k)
        e = k.entry("x.y", {"n": 0})
        assert httpx.post(s.url + "/v1/entries", json=e).status_code == 201
        size = append_unsigned(any_ledger, [k.entry("x.y", {"i": i}) for i in range(40)])
        assert httpx.post(s.url + "/v1/entries", json=e).status_code == 200  # only a duplicate
        assert checkpoint_size(s.url) == size == 42
        r = httpx.get(s.url + "/v1/entries/41/proof")
        assert r.status_code == 200, r.text
    finally:
        s.stop()
