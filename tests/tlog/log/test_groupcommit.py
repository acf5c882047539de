"""Group commit (ailedger.tlog.groupcommit): many writers, one durable transaction per group, each
request answered with its own indices; a bad request fails alone; a store failure fails the whole
group and stores none of it. Real SQLite stores (and a real full disk: a small tmpfs)."""

import asyncio
import subprocess
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.errors import BadInputError, ConflictError, StorageError
from ailedger.tlog.checkpoint import parse_checkpoint_text
from ailedger.tlog.groupcommit import AppendRequest, GroupCommitter, LogCommitter
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.note import Signer, parse_note
from ailedger.tlog.stores import LeafRow, MemoryStore, SQLiteStore


def row(s: str) -> LeafRow:
    return LeafRow(s.encode(), leaf_hash(s.encode()), (f"t:{s}",))


@pytest.fixture(params=["sqlite", "memory"])
def log(request, tmp_path):
    store = SQLiteStore(tmp_path / "l.db", create=True) if request.param == "sqlite" else MemoryStore()
    yield TransparencyLog(store, "example.org/gc", Signer("example.org/gc", Ed25519PrivateKey.generate()))
    store.close()


def cp_size(log: TransparencyLog) -> int:
    return parse_checkpoint_text(parse_note(log.store.latest_checkpoint()).text).size


def test_concurrent_writers_share_transactions_and_each_gets_its_own_index(log):
    c = LogCommitter(log, window=0.05)
    out: dict[int, int] = {}
    barrier = threading.Barrier(100)

    def writer(i: int) -> None:
        barrier.wait()
        with c.expecting():  # as a request being parsed and checked would be
            fut = c.submit(AppendRequest([row(f"e{i}")]))
        out[i] = fut.result(30)[0].index

    ts = [threading.Thread(target=writer, args=(i,)) for i in range(100)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    c.close()
    assert sorted(out.values()) == list(range(100))
    for i, idx in out.items():
        assert log.entry(idx) == f"e{i}".encode()
    assert c.stats["items"] == 100 and c.stats["groups"] < 50, c.stats
    # every group signed the checkpoint covering it in its own transaction
    assert cp_size(log) == 100 and len(log.store.checkpoints()) == c.stats["groups"]
    assert log.audit().ok


def test_one_failing_check_among_1000_good_requests_fails_only_that_request(log):
    c = LogCommitter(log, window=1.0)

    def refuse(view):
        raise BadInputError("signer is not allowed here", field="signer")

    # the requests are made first: only their submission runs while the group is held open (at most the
    # window, 1 s, after its first item), so a loaded machine still queues every one of them in that time
    reqs = [AppendRequest([row(f"g{i}")]) for i in range(1000)]
    bad_req = AppendRequest([row("bad")], refuse)
    more_reqs = [AppendRequest([row(f"h{i}"), row(f"h{i}x")]) for i in range(5)]
    with c.expecting():  # hold the group open until every request is queued: they share one group
        good = [c.submit(r) for r in reqs]
        bad = c.submit(bad_req)
        more = [c.submit(r) for r in more_reqs]
    with pytest.raises(BadInputError, match="not allowed"):
        bad.result(30)
    got = [f.result(30)[0].index for f in good]
    assert sorted(got) == list(range(1000))
    assert [len(f.result(30)) for f in more] == [2] * 5
    assert c.stats["groups"] == 1 and c.stats["items"] == 1006
    assert log.size == 1010 and not log.store.indices_of([leaf_hash(b"bad")])
    c.close()


def test_a_check_sees_what_earlier_requests_of_its_group_will_store(log):
    c = LogCommitter(log, window=1.0)

    def register(view):
        view.notes.setdefault("ok", set()).add("alice")

    def needs_alice(view):
        if "alice" not in view.notes.get("ok", ()):
            raise BadInputError("alice is not registered", field="signer")

    with c.expecting():
        a = c.submit(AppendRequest([row("reg")], register))
        b = c.submit(AppendRequest([row("by-alice")], needs_alice))
    assert a.result(10)[0].index == 0 and b.result(10)[0].index == 1
    with pytest.raises(BadInputError):  # a later group does not inherit the notes
        c.append([row("by-alice-2")], needs_alice)
    c.close()


def test_duplicates_across_requests_of_a_group_get_one_index(log):
    c = LogCommitter(log, window=1.0)
    log.append([row("old")])
    with c.expecting():
        a = c.submit(AppendRequest([row("x"), row("old")]))
        b = c.submit(AppendRequest([row("x")]))
    ra, rb = a.result(10), b.result(10)
    assert [(r.index, r.duplicate) for r in ra] == [(1, False), (0, True)]
    assert [(r.index, r.duplicate) for r in rb] == [(1, True)]
    assert log.size == 2
    c.close()


def test_a_lone_writer_does_not_wait_for_the_window(log):
    c = LogCommitter(log, window=0.8)
    t = time.perf_counter()
    c.append([row("alone")])
    assert time.perf_counter() - t < 0.4
    c.close()


def test_a_request_given_up_before_its_group_started_is_not_stored(log):
    c = LogCommitter(log, window=1.0)
    with c.expecting():
        gone = c.submit(AppendRequest([row("gone")]))
        kept = c.submit(AppendRequest([row("kept")]))
        assert gone.cancel()
    assert kept.result(10)[0].index == 0
    assert log.size == 1 and not log.store.indices_of([leaf_hash(b"gone")])
    c.close()


def test_appending_from_the_committing_thread_does_not_deadlock(log):
    c = LogCommitter(log, window=0.01)

    def nested(view):
        c.append([row("nested")])  # on the committer's own thread: committed at once, alone

    res = c.append([row("outer")], nested)
    assert res[0].index == 1 and log.entry(0) == b"nested"
    c.close()


def test_closed_committer_refuses_new_work(log):
    c = LogCommitter(log)
    c.append([row("a")])
    c.close()
    with pytest.raises(ConflictError):
        c.append([row("b")])


def test_asyncio_submitters_and_lazily_made_items(log):
    c = LogCommitter(log, window=0.05)

    async def main():
        def make(i):
            def f():
                if i == 7:
                    raise BadInputError("entry 7 does not parse")
                return AppendRequest([row(f"a{i}")])
            return f

        return await asyncio.gather(*[c.acall(make=make(i)) for i in range(40)], return_exceptions=True)

    res = asyncio.run(main())
    assert isinstance(res[7], BadInputError)
    idxs = sorted(r[0].index for i, r in enumerate(res) if i != 7)
    assert idxs == list(range(39)) and log.size == 39
    assert c.stats["groups"] < 39
    c.close()


def test_generic_committer_isolates_results_per_item():
    seen: list[list[int]] = []

    def commit(items):
        seen.append(list(items))
        return [ValueError(f"odd {x}") if x % 2 else x * 10 for x in items]

    g = GroupCommitter(commit, window=0.5, max_weight=3)
    with g.expecting():
        futs = [g.submit(i) for i in range(7)]
    assert [f.result(5) if i % 2 == 0 else None for i, f in enumerate(futs)] == [0, None, 20, None, 40, None, 60]
    assert all(isinstance(f.exception(5), ValueError) for f in futs[1::2])
    assert [len(x) for x in seen] == [3, 3, 1]  # the size cap splits the groups
    g.close()


@pytest.fixture
def small_disk(tmp_path):
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=768k", "tmpfs", str(d)], capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + r.stderr.decode().strip())
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_disk_full_mid_group_fails_every_request_of_the_group_and_stores_none(small_disk):
    store = SQLiteStore(small_disk / "l.db", create=True)
    log = TransparencyLog(store, "example.org/full", Signer("example.org/full", Ed25519PrivateKey.generate()))
    c = LogCommitter(log, window=1.0)
    pad = "p" * 2000
    stored = 0
    failed_group = None
    for g in range(400):
        with c.expecting():
            futs = [c.submit(AppendRequest([row(f"{g}-{i}-{pad}")])) for i in range(20)]
        errs = [f.exception(30) for f in futs]
        if any(errs):
            failed_group = (g, errs)
            break
        stored += 20
    assert failed_group is not None, "the disk never filled up"
    g, errs = failed_group
    assert all(isinstance(e, StorageError) for e in errs), errs  # every request of the group, cleanly
    c.close()
    store.close()
    again = SQLiteStore(small_disk / "l.db")
    try:
        assert again.size() == stored  # nothing of the failed group
        assert not again.indices_of([leaf_hash(f"{g}-{i}-{pad}".encode()) for i in range(20)])
        assert TransparencyLog(again, "example.org/full").audit().ok
    finally:
        again.close()
