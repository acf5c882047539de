"""The ingest's fast path (a request of fresh entries by registered identities is checked per distinct time
and signer and charged before its leaves are looked up): re-sent entries are answered as duplicates with
their first index, and what they were charged is given back, so only new entries are charged."""

from __future__ import annotations

import time

import pytest

from ailedger.tlog.ingest import BatchRejectedError, Ingestor, IngestPolicy, RateLimitedError, StaleEntryError
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key


@pytest.fixture
def ing(tmp_path):
    led = Ledger.init(tmp_path / "led", origin="fast.example/log")
    now = time.time()
    ing = Ingestor(led, policy=IngestPolicy(rate=1.0, burst=60.0), clock=lambda: now)
    yield ing
    led.close()


def _tokens(ing: Ingestor, did: str) -> float:
    return ing._buckets[did].tokens


def test_resent_entries_are_duplicates_and_not_charged(ing):
    k = Key("alice")
    ing.submit([k.registration()], registration=True)
    assert _tokens(ing, k.did) == 59
    batch = [k.entry("bench.event", {"i": i, "subjects": [f"s{i}"]}) for i in range(20)]
    first = ing.submit(batch, batch=True)
    assert [r.duplicate for r in first] == [False] * 20
    assert _tokens(ing, k.did) == 39
    again = ing.submit(batch, batch=True)  # a client retrying a batch whose answer it lost
    assert [(r.index, r.duplicate) for r in again] == [(r.index, True) for r in first]
    assert _tokens(ing, k.did) == 39  # charged 20 up front, given back 20
    mixed = batch[:10] + [k.entry("bench.event", {"i": 100 + i}) for i in range(5)]
    res = ing.submit(mixed, batch=True)
    assert [r.duplicate for r in res] == [True] * 10 + [False] * 5
    assert [r.index for r in res[:10]] == [r.index for r in first[:10]]
    assert _tokens(ing, k.did) == 34  # only the 5 new ones
    assert ing.ledger.log.size == 1 + 20 + 5
    # the tokens given back are usable: 34 fresh entries pass, one more is over the limit
    ing.submit([k.entry("bench.event", {"j": i}) for i in range(34)], batch=True)
    with pytest.raises(RateLimitedError):
        ing.submit([k.entry("bench.event", {"j": "over"})])


def test_a_resent_stale_entry_is_still_a_duplicate(ing):
    """A re-sent entry whose time is now outside the window fails the fast path's checks: the per-entry path
    looks the leaves up and answers it as a duplicate; a new stale entry beside it is refused."""
    k = Key("bob")
    ing.submit([k.registration()], registration=True)
    old = k.entry("bench.event", {"i": 1}, time_offset=-500)
    (r,) = ing.submit([old])
    ing.policy.time_window = 100.0
    (again,) = ing.submit([old])
    assert again.duplicate and again.index == r.index
    with pytest.raises(BatchRejectedError) as exc:
        ing.submit([old, k.entry("bench.event", {"i": 2}, time_offset=-500)], batch=True)
    assert exc.value.to_dict()["errors"][0]["entry"] == 1
    with pytest.raises(StaleEntryError):
        ing.submit([k.entry("bench.event", {"i": 3}, time_offset=-500)])
