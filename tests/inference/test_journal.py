"""The durable trail's write-ahead journal: framing, torn tails, replay after SIGKILL, erasure, failures."""

from __future__ import annotations

import os
import threading

import pytest

from ailedger.errors import NotFoundError, StorageError, TamperError
from ailedger.inference import InferenceTrail, disclose, erase_subject, receipt_proof, verify_receipt_proof
from ailedger.inference.journal import Journal, dead_journals, read_segment, segment_end
from ailedger.inference.payloads import PayloadStore, inference_dir
from ailedger.inference.store import RecordStore
from ailedger.tlog.ledger import Ledger

from .conftest import grep_tree
from .test_crash import _run_and_kill


def _journal_with(root, groups):
    """A closed (not removed) journal holding ``groups`` of records, as a dead trail leaves it."""
    got = []
    j = Journal(root, "0123456789ab", {"v": 1, "stream": "0123456789ab"}, lambda items, seg: got.extend(items))
    for g in groups:
        ts = [threading.Thread(target=j.commit, args=(r, r)) for r in g]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    j.close(remove=False)
    return j.dir, got


def _rec(i):
    from ailedger.inference.journal import encode_record

    return encode_record(f"0123456789ab-{i}", i, b'{"r":%d}' % i, "ab" * 32, b"k" * 8, b"n" * 12, b"c" * (20 + i))


def test_group_commit_from_threads_then_replay_reads_every_record_in_order(tmp_path):
    recs = [_rec(i) for i in range(1, 41)]
    d, got = _journal_with(tmp_path / "j", [recs[k : k + 8] for k in range(0, 40, 8)])
    assert sorted(got) == sorted(recs)  # every record handed on once it was on disk
    (dj,) = list(dead_journals(tmp_path / "j"))
    out = dj.records()
    assert sorted(r.t_ns for r in out) == list(range(1, 41))
    assert [r.rid for r in out] == [f"0123456789ab-{r.t_ns}" for r in out]
    assert out[0].ct == b"c" * (20 + out[0].t_ns) and out[0].key_id == b"k" * 8 and out[0].ref == "ab" * 32
    assert dj.cut_bytes == 0
    dj.remove()
    assert not d.exists()


def test_a_live_journal_is_not_replayed(tmp_path):
    j = Journal(tmp_path / "j", "0123456789ab", {"v": 1}, lambda items, seg: None)
    j.commit(_rec(1), 1)
    assert list(dead_journals(tmp_path / "j")) == []  # its trail holds the lock
    j.close(remove=False)
    assert len(list(dead_journals(tmp_path / "j"))) == 1


def test_torn_tail_is_cut_and_damage_before_valid_frames_is_refused(tmp_path):
    d, _ = _journal_with(tmp_path / "j", [[_rec(1)], [_rec(2)], [_rec(3)]])
    seg = d / "00000001.wal"
    end = segment_end(seg, 1)
    assert 0 < end < len(seg.read_bytes()) and not any(seg.read_bytes()[end:])  # zero-filled ahead
    assert read_segment(seg, 1, cut=False)[1] == 0  # the zeros are no torn tail
    whole = seg.read_bytes()[:end]
    # a torn last frame (its write never completed: its call had not returned): cut on open
    seg.write_bytes(whole[:-7] + bytes(1000))
    recs, cut = read_segment(seg, 1)
    assert [r.t_ns for r in recs] == [1, 2] and cut > 0
    assert len(seg.read_bytes()) == segment_end(seg, 1) == len(whole) - len(_rec(3)) - 48  # 16 head + 32 hash
    # garbage after the last frame (a torn write of a frame's head) is cut too
    with open(seg, "ab") as f:
        f.write(b"AIJ1\x00\x00")
    recs, cut = read_segment(seg, 1)
    assert [r.t_ns for r in recs] == [1, 2] and cut == 6
    # one flipped byte in the first frame, with a valid frame after it: damage, not a torn write
    seg.write_bytes(whole)
    bad = bytearray(whole)
    bad[30] ^= 1
    seg.write_bytes(bytes(bad))
    with pytest.raises(TamperError, match="valid frame follows"):
        read_segment(seg, 1)
    assert seg.read_bytes() == bytes(bad)  # nothing cut


def _rids_in_log(led):
    rs = RecordStore(inference_dir(led.path))
    try:
        stored = [r for (rids,) in rs.con.execute("SELECT rids FROM batches") for r in rids.split("\n")]
    finally:
        rs.close()
    return stored


@pytest.mark.parametrize("tear", [False, True])
def test_sigkill_before_any_batch_every_returned_call_is_logged_once(tmp_path, ledger_dir, tear):
    """SIGKILL a 4-thread durable load whose writer has logged nothing yet (flush_interval 60 s): every call
    that returned is logged once when the next trail opens.  With ``tear`` the last frame is torn (as a
    power loss during its write would leave it): exactly its records are dropped, the rest are logged."""
    calls, _ = _run_and_kill(ledger_dir, "durable", 200, flush_interval=60, threads=4)
    jdir = inference_dir(ledger_dir) / "journal"
    (d,) = list(jdir.iterdir())
    segs = sorted(d.glob("*.wal"))
    journalled = [r.rid for p in segs for r in read_segment(p, int(p.stem), cut=False)[0]]
    assert {rid for rid, _ in calls} <= set(journalled)  # a call returned only once it was on disk
    assert grep_tree(ledger_dir, b'{"i":') == []  # no input in clear on disk
    led = Ledger.open(ledger_dir)
    size = led.store.size()
    lost = set()
    if tear:
        last = segs[-1]
        before = {r.rid for r in read_segment(last, int(last.stem), cut=False)[0]}
        end = segment_end(last, int(last.stem))
        data = last.read_bytes()
        last.write_bytes(data[: end - 5] + bytes(len(data) - end + 5))  # the last frame's end never reached the disk
        lost = before - {r.rid for r in read_segment(last, int(last.stem), cut=False)[0]}
        assert lost
    with InferenceTrail(led, "iris") as t:
        assert t.stats["replayed_records"] == len(set(journalled)) - len(lost)
        assert (t.stats["journal_bytes_cut"] > 0) == tear
    assert not any(jdir.iterdir())
    stored = _rids_in_log(led)
    assert len(stored) == len(set(stored))  # no record twice
    assert set(stored) == set(journalled) - lost
    assert led.store.size() > size
    for rid, _ in calls[:2] + calls[-2:]:
        if rid not in lost:
            assert verify_receipt_proof(receipt_proof(led, rid), led.verifier)["ok"]
            assert disclose(led, rid)["receipt"] == rid
    # a second trail replays nothing again
    with InferenceTrail(led, "iris") as t:
        assert t.stats.get("replayed_records", 0) == 0
    assert _rids_in_log(led) == stored
    rep = led.audit(signatures=True)
    assert rep.ok, rep.problems
    led.close()


def test_erasure_of_journalled_records_after_a_crash(tmp_path, ledger_dir):
    """A subject erased while its calls wait in a dead trail's journal: their records are logged on replay,
    their payloads are not (the key is gone: the journal's ciphertexts are unreadable), other subjects' are."""
    calls, _ = _run_and_kill(ledger_dir, "durable", 60, flush_interval=60, threads=2)
    led = Ledger.open(ledger_dir)
    jdir = inference_dir(ledger_dir) / "journal"
    blob = b"".join(p.read_bytes() for p in jdir.rglob("*.wal"))
    ps = PayloadStore(ledger_dir)
    ref = ps.subject_ref("s1")
    key = ps.key_of(ref)
    ps.close()
    assert key is not None and key not in blob
    rep = erase_subject(led, "s1")
    assert rep["key_destroyed"] is True
    with InferenceTrail(led, "iris") as t:
        assert t.stats["replayed_records"] >= len(calls)
    erased = kept = 0
    for rid, _ in calls:
        assert verify_receipt_proof(receipt_proof(led, rid), led.verifier)["ok"]  # the record is logged
        try:
            d = disclose(led, rid)
        except NotFoundError:
            erased += 1
            continue
        assert '"i":' in d["input"]
        kept += 1
    assert erased > 0 and kept > 0
    d = inference_dir(ledger_dir)
    assert key not in b"".join(p.read_bytes() for p in d.rglob("*") if p.is_file())
    led.close()


def test_erasure_of_a_journalled_call_of_a_live_trail(ledger):
    """Erased while its call waits in a live trail's journal (not logged yet): the writer logs the record but
    never stores its payload (it would have to under a new key); a call after the erasure is stored."""
    trail = InferenceTrail(ledger, "iris", mode="durable", flush_interval=60)
    try:
        before = trail.record({"note": "Jane-Before-Erasure"}, {"d": 1}, subject="jane")
        other = trail.record({"note": "joe"}, {"d": 2}, subject="joe")
        erase_subject(ledger, "jane")
        after = trail.record({"note": "Jane-After-Erasure"}, {"d": 3}, subject="jane")
        trail.flush()
        assert trail.stats["payloads_erased_before_logged"] == 1
        for r in (before, other, after):
            assert verify_receipt_proof(r.proof(), ledger.verifier)["ok"]
        with pytest.raises(NotFoundError):
            disclose(ledger, before.id)
        assert disclose(ledger, other.id)["input"] == '{"note":"joe"}'
        assert disclose(ledger, after.id)["input"] == '{"note":"Jane-After-Erasure"}'
    finally:
        trail.close()
    assert grep_tree(ledger.path, b"Jane-Before-Erasure") == []


def test_writer_failure_keeps_calls_in_the_journal_until_replayed(ledger, monkeypatch):
    """The writer cannot store a batch (disk full): the trail refuses further calls, the calls that returned
    stay in the journal (not removed at close), and the next trail logs them once."""
    trail = InferenceTrail(ledger, "iris", mode="durable", flush_interval=60)
    ok = trail.record({"i": 0}, {"o": 0}, subject="ann")

    def full(self, items):
        raise StorageError("database or disk is full")

    monkeypatch.setattr(PayloadStore, "put_journalled", full)
    with pytest.raises(StorageError, match="disk is full"):
        trail.flush()
    with pytest.raises(StorageError, match="refused"):
        trail.record({"i": 1}, {"o": 1}, subject="ann")
    monkeypatch.undo()
    with pytest.raises(StorageError):
        trail.close()
    assert any((inference_dir(ledger.path) / "journal").iterdir())  # kept for the next trail
    with pytest.raises(NotFoundError, match="not logged yet"):
        receipt_proof(ledger, ok.id)
    with InferenceTrail(ledger, "iris") as t2:
        assert t2.stats["replayed_records"] == 1
    assert verify_receipt_proof(receipt_proof(ledger, ok.id), ledger.verifier)["ok"]
    assert disclose(ledger, ok.id)["input"] == '{"i":0}'
    assert _rids_in_log(ledger).count(ok.id) == 1


def test_journal_write_failure_fails_the_call_and_closes_the_trail(ledger):
    """The journal cannot be written (here: its descriptor replaced by a read-only one, so write() fails with
    EBADF as on a lost disk): the call raises StorageError and is not acknowledged, and every later call is
    refused before the model runs."""
    trail = InferenceTrail(ledger, "iris", mode="durable", flush_interval=60)
    ok = trail.record(1, 2, subject="a")
    seg = next((inference_dir(ledger.path) / "journal" / trail.stream).glob("*.wal"))
    ro = os.open(seg, os.O_RDONLY)
    os.dup2(ro, trail._journal._fd)
    os.close(ro)
    with pytest.raises(StorageError, match="not written"):
        trail.record(3, 4, subject="a")
    with pytest.raises(StorageError, match="refused"):
        trail.record(5, 6, subject="a")
    with pytest.raises(StorageError):
        trail.close()
    with InferenceTrail(ledger, "iris"):
        pass
    # the call that returned is logged once; the failed one never
    assert _rids_in_log(ledger) == [ok.id]


def test_many_durable_threads_share_groups_and_receipts_wait_for_the_batch(ledger):
    trail = InferenceTrail(ledger, "iris", mode="durable", flush_interval=60)
    out: list[str] = []
    lock = threading.Lock()

    def worker(k):
        mine = [trail.record({"k": k, "i": i}, {"o": i}, subject=f"u{k}").id for i in range(50)]
        with lock:
            out.extend(mine)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    st = trail._journal.stats
    assert st["records"] == 400 and 1 <= st["groups"] <= 400  # concurrent calls may share fdatasyncs
    rid = out[-1]
    doc = trail.receipt(rid).proof()  # waits until its batch is logged
    assert verify_receipt_proof(doc, ledger.verifier)["ok"]
    trail.close()
    assert sorted(_rids_in_log(ledger)) == sorted(out)


def test_segments_rotate_are_dropped_once_logged_and_all_replay(ledger_dir, monkeypatch):
    """Small segments: a live trail deletes the segments whose records are logged; a killed one leaves
    several, and the replay reads them all in order."""
    from ailedger.inference import journal

    monkeypatch.setattr(journal, "SEGMENT_BYTES", 4000)
    led = Ledger.open(ledger_dir)
    trail = InferenceTrail(led, "iris", mode="durable", flush_interval=60)
    rids = [trail.record({"i": i}, {"o": i}, subject="s").id for i in range(200)]
    d = inference_dir(ledger_dir) / "journal" / trail.stream
    assert len(list(d.glob("*.wal"))) > 5
    trail.flush()
    assert len(list(d.glob("*.wal"))) == 1  # only the segment being written is left
    trail.close()
    assert not d.exists()
    assert sorted(_rids_in_log(led)) == sorted(rids)
    led.close()
    monkeypatch.undo()
    calls, _ = _run_and_kill(ledger_dir, "durable", 150, flush_interval=60, threads=3, segment_bytes=4000)
    (d,) = list((inference_dir(ledger_dir) / "journal").iterdir())
    assert len(list(d.glob("*.wal"))) > 5
    led = Ledger.open(ledger_dir)
    with InferenceTrail(led, "iris"):
        pass
    stored = _rids_in_log(led)
    assert {rid for rid, _ in calls} <= set(stored) and len(stored) == len(set(stored))
    led.close()


def test_a_durable_call_with_an_unencodable_payload_fails_alone(ledger):
    """Durable mode encodes the payload in the caller's thread: a NaN fails that call with bad_input (nothing
    journalled), the trail keeps working and flush() does not wait for the failed call."""
    from ailedger.errors import BadInputError

    with InferenceTrail(ledger, "iris", mode="durable", flush_interval=60) as trail:
        with pytest.raises(BadInputError, match="JSON"):
            trail.record({"x": float("nan")}, {"y": 1}, subject="a")
        ok = trail.record({"x": 1}, {"y": 1}, subject="a")
        trail.flush(timeout=30)
        assert verify_receipt_proof(ok.proof(), ledger.verifier)["ok"]
    assert _rids_in_log(ledger) == [ok.id]


def test_group_commit_shares_one_fdatasync_among_waiting_threads(tmp_path):
    """While a group is written, the calls that arrive wait and then go to disk together in the next group,
    one write + fdatasync for all of them: the first write is held at its start (the real write follows)
    until the seven others are queued."""
    import time

    gate = threading.Event()
    started = threading.Event()

    class HeldJournal(Journal):
        def _write(self, recs):
            if not started.is_set():
                started.set()
                gate.wait(10)
            return super()._write(recs)

    groups: list[int] = []
    j = HeldJournal(tmp_path / "j", "0123456789ab", {"v": 1}, lambda items, seg: groups.append(len(items)))
    first = threading.Thread(target=j.commit, args=(_rec(1), 1))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=j.commit, args=(_rec(i), i)) for i in range(2, 9)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while len(j._waiters) < 7 and time.monotonic() < deadline:
        time.sleep(0.005)
    gate.set()
    for t in [first, *others]:
        t.join(10)
    assert groups == [1, 7] and j.stats["groups"] == 2 and j.stats["records"] == 8
    j.close(remove=False)
    (dj,) = list(dead_journals(tmp_path / "j"))
    assert sorted(r.t_ns for r in dj.records()) == list(range(1, 9))
    dj.remove()


def test_two_trails_opening_at_once_replay_a_dead_journal_once(ledger_dir):
    """Two processes open trails on the ledger at the same moment after a crash: the journal's lock lets one
    replay it; every returned call is logged once."""
    import subprocess
    import sys

    calls, _ = _run_and_kill(ledger_dir, "durable", 80, flush_interval=60, threads=2)
    code = ("import sys; from ailedger.tlog.ledger import Ledger; from ailedger.inference import InferenceTrail;"
            " led = Ledger.open(sys.argv[1]); t = InferenceTrail(led, 'iris');"
            " print(t.stats.get('replayed_records', 0)); t.close(); led.close()")
    ps = [subprocess.Popen([sys.executable, "-c", code, str(ledger_dir)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in ps]
    assert all(p.returncode == 0 for p in ps), [o[1][-2000:] for o in outs]
    replayed = sorted(int(o[0].split()[-1]) for o in outs)
    assert replayed[0] == 0 and replayed[1] >= len(calls)
    led = Ledger.open(ledger_dir)
    stored = _rids_in_log(led)
    assert {rid for rid, _ in calls} <= set(stored) and len(stored) == len(set(stored))
    assert not any((inference_dir(ledger_dir) / "journal").iterdir())
    led.close()
