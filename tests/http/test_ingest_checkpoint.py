"""The ingest port signs the checkpoint at most every ``checkpoint_every`` seconds (``serve --ingest-checkpoint-ms``),
not in every group's transaction: the stored checkpoint covers every acknowledged entry within that bound (the
next group due signs it, or the committing stage once idle that long), an acknowledged entry's proof is there at
once, and stopping the front leaves the checkpoint at the store's size (docs/api.md, "The ingest port")."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from starlette.testclient import TestClient

from ailedger.encoding.canonical import canonical_json
from ailedger.http.app import ServeConfig, create_app
from ailedger.http.ingest_front import IngestFront, available
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key
from tests.http.test_ingest_front import port

pytestmark = pytest.mark.skipif(not available(), reason="ailedger.tlog._front is not built (no C compiler)")


def _latest_size(led: Ledger) -> int:
    got = led.log.latest_checkpoint()
    return -1 if got is None else got[1].size


def _write(f: IngestFront, bodies: list[bytes], writers: int) -> list[int]:
    out: dict[int, int] = {}

    def conn(k: int) -> None:
        with httpx.Client(timeout=20) as c:
            for i in range(k, len(bodies), writers):
                r = c.post(f.url, content=bodies[i])
                assert r.status_code == 201, r.text
                out[i] = r.json()["index"]

    ts = [threading.Thread(target=conn, args=(k,)) for k in range(writers)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return [out[i] for i in range(len(bodies))]


@pytest.mark.parametrize("every", [0.0, 0.3])
def test_checkpoints_at_most_every_bound_and_covering_within_it(tmp_path, every):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/front-cp").close()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig(open_registration=True, ingest_checkpoint_every=every))
        api = TestClient(app)
        keys = [Key(f"k{i}") for i in range(4)]
        for k in keys:
            assert api.post("/v1/identities", json=k.registration()).status_code == 201
        before = len(led.store.checkpoints())
        with IngestFront(app.api, "127.0.0.1", port()) as f:  # type: ignore[attr-defined]
            assert f.checkpoint_every == every
            bodies = [canonical_json(keys[i % 4].entry("note", {"i": i})) for i in range(400)]
            t0 = time.monotonic()
            idx = _write(f, bodies, 20)
            took = time.monotonic() - t0
            done = time.monotonic()
            size = led.size
            assert sorted(idx) == list(range(size - 400, size))
            # an acknowledged entry's proof is there at once (signed on demand when the checkpoint is behind)
            r = api.get(f"/v1/entries/{max(idx)}/proof")
            assert r.status_code == 200, r.text
            # the stored checkpoint covers the store within the bound (the idle committing stage signs it)
            while _latest_size(led) < size:
                assert time.monotonic() - done < every + 2.0, "the checkpoint did not catch up within the bound"
                time.sleep(0.01)
            groups = f.stats["groups"]
            signed = len(led.store.checkpoints()) - before
            if every == 0:
                assert signed >= groups  # every group's own (and the proof's)
            else:
                assert groups > 5, groups  # 20 writers, 400 entries: many groups
                # at most one per bound while writing, one when idle, one for the proof read
                assert signed <= took / every + 3, (signed, groups, took)
                assert signed < groups
        assert _latest_size(led) == led.size
        assert led.audit().ok


def test_stopping_leaves_the_checkpoint_at_the_stores_size(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/front-cp").close()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig(open_registration=True))
        api = TestClient(app)
        k = Key("solo")
        assert api.post("/v1/identities", json=k.registration()).status_code == 201
        f = IngestFront(app.api, "127.0.0.1", port(), checkpoint_every=10.0).start()  # type: ignore[attr-defined]
        try:
            _write(f, [canonical_json(k.entry("note", {"i": i})) for i in range(30)], 3)
            # the first group signed (none was due before it); the others wait for the bound or the stop
            assert _latest_size(led) < led.size
        finally:
            f.stop()
        assert _latest_size(led) == led.size


def test_bad_bound_is_refused(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/front-cp").close()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig())
        with pytest.raises(ValueError, match="checkpoint_every"):
            IngestFront(app.api, "127.0.0.1", port(), checkpoint_every=-1)  # type: ignore[attr-defined]


def test_a_groups_answers_made_at_once_are_each_requests_own():
    """_all_appended (a whole group's answers by C iterators) gives what _appended gives request by request,
    with and without a duplicate among them."""
    from ailedger.http.ingest_front import _all_appended, _appended
    from ailedger.tlog.log import AppendResult

    rs = [AppendResult(i * 977, bytes((i + j) % 256 for j in range(32)), False) for i in range(60)]
    tokens = list(range(100, 160))
    assert _all_appended(tokens, rs) == [_appended(t, r) for t, r in zip(tokens, rs)]
    rs[7] = AppendResult(3, rs[7].leaf_hash, True)
    assert _all_appended(tokens, rs) == [_appended(t, r) for t, r in zip(tokens, rs)]
    assert _all_appended([], []) == []
