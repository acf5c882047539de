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


def _journal_with(root, groups, inflight=None):
    """A closed (not removed) journal holding ``groups`` of records, as a dead trail leaves it."""
    got = []
    j = Journal(root, "0123456789ab", {"v": 1, "stream": "0123456789ab"}, lambda items, seg: got.extend(items),
                inflight=inflight)
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


def _frame_offsets(buf, segno):
    """(offset, sequence, end) of every valid format-2 frame of a segment, in file order."""
    from ailedger.inference.journal import BLOCK, _frame2_at

    out = []
    for k in range(BLOCK, len(buf), BLOCK):
        got = _frame2_at(buf, k, segno)
        if got is not None:
            out.append((k, got[2], got[3]))
    return out


def _aij1_segment(segno, groups):
    """A segment of format 1 (frames back to back, no head), as trails before format 2 wrote them."""
    import hashlib
    import struct

    out = b""
    for g in groups:
        payload = b"".join(g)
        head = struct.pack(">4sIII", b"AIJ1", segno, len(payload), len(g))
        out += head + payload + hashlib.sha256(head + payload).digest()
    return out


def test_torn_tail_is_cut_and_damage_before_valid_frames_is_refused(tmp_path):
    from ailedger.inference.journal import BLOCK

    d, _ = _journal_with(tmp_path / "j", [[_rec(1)], [_rec(2)], [_rec(3)]])
    seg = d / "00000001.wal"
    data = seg.read_bytes()
    assert data[:4] == b"AIS2"  # format 2: a head block, then frames on block boundaries
    frames = _frame_offsets(data, 1)
    assert [(off, seq) for off, seq, _ in frames] == [(BLOCK, 1), (2 * BLOCK, 2), (3 * BLOCK, 3)]
    end = segment_end(seg, 1)
    assert end == 4 * BLOCK < len(data) and not any(data[end:])  # zero-filled ahead
    assert read_segment(seg, 1, cut=False)[1] == 0  # the zeros are no torn tail
    whole = data[:end]
    # a torn last frame (its write never completed: its call had not returned): cut on open
    seg.write_bytes(whole[: frames[2][2] - 7] + bytes(1000))
    recs, cut = read_segment(seg, 1)
    assert [r.t_ns for r in recs] == [1, 2] and cut > 0
    assert len(seg.read_bytes()) == segment_end(seg, 1) == 3 * BLOCK
    # garbage after the last frame (a torn write of a frame's head) is cut too
    with open(seg, "ab") as f:
        f.write(b"AIJ2\x00\x00")
    recs, cut = read_segment(seg, 1)
    assert [r.t_ns for r in recs] == [1, 2] and cut == 6
    # one flipped byte in the first frame, with valid frames after it beyond the window (1 here): damage
    bad = bytearray(whole)
    bad[BLOCK + 30] ^= 1
    seg.write_bytes(bytes(bad))
    with pytest.raises(TamperError, match="valid frame"):
        read_segment(seg, 1)
    assert seg.read_bytes() == bytes(bad)  # nothing cut


def test_format_1_segments_are_still_read_cut_and_refused_as_before(tmp_path):
    """Segments written before format 2 (frames back to back): read, a torn tail cut, damage refused."""
    seg = tmp_path / "00000001.wal"
    whole = _aij1_segment(1, [[_rec(1)], [_rec(2), _rec(3)], [_rec(4)]])
    seg.write_bytes(whole + bytes(5000))
    recs, cut = read_segment(seg, 1, cut=False)
    assert [r.t_ns for r in recs] == [1, 2, 3, 4] and cut == 0 and segment_end(seg, 1) == len(whole)
    seg.write_bytes(whole[:-7] + bytes(100))  # the last frame torn
    recs, cut = read_segment(seg, 1)
    assert [r.t_ns for r in recs] == [1, 2, 3] and cut > 0
    assert len(seg.read_bytes()) == len(whole) - len(_rec(4)) - 48  # 16 head + 32 hash
    bad = bytearray(whole)
    bad[30] ^= 1
    seg.write_bytes(bytes(bad))
    with pytest.raises(TamperError, match="valid frame follows"):
        read_segment(seg, 1)
    assert seg.read_bytes() == bytes(bad)


def test_a_dead_journal_with_format_1_and_format_2_segments_replays_in_order(tmp_path):
    """A journal left by the code before (format 1) next to format-2 segments: every record, in order."""
    d, _ = _journal_with(tmp_path / "j", [[_rec(5)], [_rec(6)]])
    (d / "00000001.wal").rename(d / "00000002.wal")  # renumber: the format-2 segment becomes the second
    data = (d / "00000002.wal").read_bytes()
    from ailedger.inference import journal

    # its head and frames name segment 1: rewrite them for segment 2 (as a trail writing segment 2 would)
    fixed = bytearray(data)
    fixed[: journal.BLOCK] = journal._seg_head(2, 2).ljust(journal.BLOCK, b"\0")
    for off, seq, end in _frame_offsets(data, 1):
        import hashlib
        import struct

        head = bytearray(data[off : off + 20])
        struct.pack_into(">I", head, 4, 2)
        body = bytes(head) + data[off + 20 : end - 32]
        fixed[off:end] = body + hashlib.sha256(body).digest()
    (d / "00000002.wal").write_bytes(bytes(fixed))
    (d / "00000001.wal").write_bytes(_aij1_segment(1, [[_rec(1), _rec(2)], [_rec(3)], [_rec(4)]]) + bytes(4096))
    (dj,) = list(dead_journals(tmp_path / "j"))
    assert [r.t_ns for r in dj.records()] == [1, 2, 3, 4, 5, 6] and dj.cut_bytes == 0
    dj.remove()


def _journal_in_flight_crash(tmp_path, inflight, holes, frames=8):
    """A format-2 segment of ``frames`` single-record frames written with ``inflight``; the frames whose
    sequence is in ``holes`` are then zeroed (never reached the disk), as a crash with frames in flight leaves it."""
    d, _ = _journal_with(tmp_path / "j", [[_rec(i)] for i in range(1, frames + 1)], inflight=inflight)
    seg = d / "00000001.wal"
    data = bytearray(seg.read_bytes())
    for off, seq, end in _frame_offsets(bytes(data), 1):
        if seq in holes:
            data[off:end] = bytes(end - off)
    seg.write_bytes(bytes(data))
    return seg


@pytest.mark.parametrize(("inflight", "holes", "kept"), [
    (3, {6}, 5),  # frame 6 torn, 7 and 8 were written beside it: not acknowledged, cut
    (3, {6, 8}, 5),  # two holes within the window
    (4, {5}, 4),
    (1, {8}, 7),  # one frame in flight: only the last can be missing
])
def test_frames_in_flight_at_a_crash_after_a_hole_are_cut(tmp_path, inflight, holes, kept):
    """With up to ``inflight`` frames written at once a crash may leave a hole followed by valid frames: none of
    their calls had returned (a call returns once its frame and every earlier one is on disk): cut, the
    records before the hole kept."""
    seg = _journal_in_flight_crash(tmp_path, inflight, holes)
    recs, cut = read_segment(seg, 1)
    assert [r.t_ns for r in recs] == list(range(1, kept + 1))
    # frames written after the hole: cut (zeros alone are not counted)
    assert (cut > 0) == any(k > min(holes) for k in range(1, 9) if k not in holes)
    assert _frame_offsets(seg.read_bytes(), 1)[-1][1] == kept  # the file truncated after frame `kept`
    assert read_segment(seg, 1) == (recs, 0)


@pytest.mark.parametrize(("inflight", "holes"), [
    (3, {5}),  # frames 6, 7 valid (in the window) but 8 is beyond it: damage, not a crash in flight
    (2, {4}),  # frame 5 may have been in flight, 6 may not
    (1, {7}),
    (3, {2, 3}),  # frames 4.. beyond the window
])
def test_a_valid_frame_beyond_the_window_after_a_hole_is_damage(tmp_path, inflight, holes):
    seg = _journal_in_flight_crash(tmp_path, inflight, holes)
    before = seg.read_bytes()
    with pytest.raises(TamperError, match="refusing to cut"):
        read_segment(seg, 1)
    assert seg.read_bytes() == before  # nothing cut


def test_frames_out_of_sequence_or_a_damaged_head_are_refused(tmp_path):
    from ailedger.inference.journal import BLOCK

    d, _ = _journal_with(tmp_path / "j", [[_rec(1)], [_rec(2)], [_rec(3)]])
    seg = d / "00000001.wal"
    data = seg.read_bytes()
    # frames 2 and 3 swapped: each is valid, in the wrong place
    swapped = data[: 2 * BLOCK] + data[3 * BLOCK : 4 * BLOCK] + data[2 * BLOCK : 3 * BLOCK] + data[4 * BLOCK :]
    seg.write_bytes(swapped)
    with pytest.raises(TamperError, match="where frame 2 belongs"):
        read_segment(seg, 1)
    # a damaged head with valid frames after it
    bad = bytearray(data)
    bad[10] ^= 1
    seg.write_bytes(bytes(bad))
    with pytest.raises(TamperError, match="damaged head"):
        read_segment(seg, 1)
    assert seg.read_bytes() == bytes(bad)
    # a head torn at creation (nothing after it was written): no records, cut
    seg.write_bytes(data[:40] + bytes(len(data) - 40))
    assert read_segment(seg, 1)[0] == []


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
        data = bytearray(last.read_bytes())
        _, _, end = _frame_offsets(bytes(data), int(last.stem))[-1]
        data[end - 5 : end] = bytes(5)  # the last frame's end never reached the disk
        last.write_bytes(bytes(data))
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


def _record_from_threads(trail, threads: int, per: int) -> list[str]:
    """``threads`` threads each recording ``per`` calls one after the other (subject ``u<k>``); every receipt id."""
    out: list[str] = []
    lock = threading.Lock()

    def worker(k):
        mine = [trail.record({"k": k, "i": i}, {"o": i}, subject=f"u{k}").id for i in range(per)]
        with lock:
            out.extend(mine)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_many_durable_threads_share_groups_and_receipts_wait_for_the_batch(ledger):
    trail = InferenceTrail(ledger, "iris", mode="durable", flush_interval=60)
    out = _record_from_threads(trail, 8, 50)
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


def test_group_commit_shares_one_write_among_waiting_threads(tmp_path):
    """One frame in flight at a time (inflight=1): while a group is written, the calls that arrive wait and
    then go to disk together in the next group, one durable write for all of them: the first write is held at
    its start (the real write follows) until the seven others are queued."""
    import time

    gate = threading.Event()
    started = threading.Event()

    class HeldJournal(Journal):
        def _write(self, g):
            if not started.is_set():
                started.set()
                gate.wait(10)
            return super()._write(g)

    groups: list[int] = []
    j = HeldJournal(tmp_path / "j", "0123456789ab", {"v": 1}, lambda items, seg: groups.append(len(items)),
                    inflight=1)
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


def test_a_later_frame_on_disk_first_waits_for_the_earlier_one(tmp_path):
    """Two frames in flight: the second is on disk while the first is still being written; its call returns
    only once the first is on disk too, and the trail's writer gets the groups in journal order."""
    import time

    gate = threading.Event()
    done2 = threading.Event()

    class HeldJournal(Journal):
        def _write(self, g):
            if g.seq == 1:
                gate.wait(10)
            super()._write(g)
            if g.seq == 2:
                done2.set()

    got: list[list[int]] = []
    j = HeldJournal(tmp_path / "j", "0123456789ab", {"v": 1}, lambda items, seg: got.append(list(items)),
                    inflight=2)
    first = threading.Thread(target=j.commit, args=(_rec(1), 1))
    first.start()
    deadline = time.monotonic() + 10
    while not j._groups and time.monotonic() < deadline:
        time.sleep(0.002)
    second = threading.Thread(target=j.commit, args=(_rec(2), 2))
    second.start()
    assert done2.wait(10)  # frame 2 is on disk ...
    time.sleep(0.05)
    assert second.is_alive() and first.is_alive() and got == []  # ... but its call waits for frame 1
    assert j.stats["groups"] == 0
    gate.set()
    first.join(10)
    second.join(10)
    assert not second.is_alive() and got == [[1], [2]] and j.stats["groups"] == 2
    j.close(remove=False)
    (dj,) = list(dead_journals(tmp_path / "j"))
    assert [r.t_ns for r in dj.records()] == [1, 2]
    dj.remove()


def test_a_failed_frame_fails_its_calls_and_every_later_one_not_the_earlier(tmp_path):
    """Three frames in flight; the second's write fails (disk full) after the third is on disk, while the
    first is still being written: the first's call returns, the second's and the third's raise, and every
    later call is refused."""
    import errno
    import time

    gate1, gate2 = threading.Event(), threading.Event()

    class FailingJournal(Journal):
        def _write(self, g):
            if g.seq == 1:
                gate1.wait(10)
            if g.seq == 2:
                gate2.wait(10)
                raise OSError(errno.ENOSPC, "No space left on device")
            super()._write(g)

    got: list[int] = []
    out: dict[int, str] = {}
    j = FailingJournal(tmp_path / "j", "0123456789ab", {"v": 1}, lambda items, seg: got.extend(items), inflight=3)

    def call(i):
        try:
            j.commit(_rec(i), i)
            out[i] = "ok"
        except StorageError as exc:
            out[i] = str(exc)

    def wait_for(cond):
        deadline = time.monotonic() + 10
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert cond()

    ts = [threading.Thread(target=call, args=(i,)) for i in (1, 2, 3)]
    for i, t in enumerate(ts, 1):
        t.start()
        wait_for(lambda i=i: any(g.seq == i for g in list(j._groups)))
    wait_for(lambda: any(g.seq == 3 and g.done for g in list(j._groups)))  # frame 3 on disk
    gate2.set()
    wait_for(lambda: j.error is not None)
    assert out == {}  # nobody answered yet: frame 1 is still being written
    gate1.set()
    for t in ts:
        t.join(10)
    assert out[1] == "ok" and "No space" in out[2] and "No space" in out[3], out
    assert got == [1] and j.stats["groups"] == 1
    with pytest.raises(StorageError, match="failed"):
        j.commit(_rec(4), 4)
    j.close(remove=False)


def test_without_o_direct_the_journal_writes_the_same_format(tmp_path, monkeypatch):
    """Where O_DIRECT is refused (at open, or by the first write: a device with larger blocks) the journal
    writes with O_DSYNC alone, the same format 2 on disk."""
    import errno

    from ailedger.inference import journal

    real = os.pwrite
    calls = {"n": 0}

    def pwrite(fd, data, off):
        if calls["n"] == 0:  # the segment head, the first write through the O_DIRECT descriptor
            calls["n"] += 1
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, off)

    monkeypatch.setattr(journal.os, "pwrite", pwrite)
    d, got = _journal_with(tmp_path / "j", [[_rec(1)], [_rec(2), _rec(3)]])
    monkeypatch.undo()
    assert calls["n"] == 1 and sorted(got) == sorted([_rec(1), _rec(2), _rec(3)])
    (dj,) = list(dead_journals(tmp_path / "j"))
    assert sorted(r.t_ns for r in dj.records()) == [1, 2, 3]
    assert (d / "00000001.wal").read_bytes()[:4] == b"AIS2"
    dj.remove()


@pytest.mark.parametrize(("window", "inflight"), [(0.05, 1), (0.05, 2), (0.0, 4)])
def test_many_threads_every_record_once_in_journal_order(tmp_path, window, inflight):
    """8 threads x 30 commits, lingering leaders (``window``) or several frames in flight: each record handed on
    once, each thread's records in its own order, and the replay reads them in the order they were handed on."""
    got: list[tuple[int, int]] = []
    j = Journal(tmp_path / "j", "0123456789ab", {"v": 1}, lambda items, seg: got.extend(items), window=window,
                inflight=inflight)

    def worker(k):
        for i in range(30):
            j.commit(_rec(1000 * k + i), (k, i))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(got) == 240 and j.stats["records"] == 240
    for k in range(8):
        assert [i for kk, i in got if kk == k] == list(range(30))
    j.close(remove=False)
    (dj,) = list(dead_journals(tmp_path / "j"))
    assert [r.t_ns for r in dj.records()] == [1000 * k + i for k, i in got]
    dj.remove()


def test_journal_inflight_is_checked_and_used(ledger):
    from ailedger.errors import BadInputError

    for bad in (0, 65):
        with pytest.raises(BadInputError, match="journal_inflight") as ei:
            InferenceTrail(ledger, "iris", mode="durable", journal_inflight=bad)
        assert ei.value.field == "journal_inflight"
    assert not any((inference_dir(ledger.path) / "journal").glob("*/*.wal"))  # nothing made
    trail = InferenceTrail(ledger, "iris", mode="durable", flush_interval=60, journal_inflight=3)
    try:
        assert trail._journal.inflight == 3
        out = _record_from_threads(trail, 6, 25)
        trail.flush()
    finally:
        trail.close()
    assert sorted(_rids_in_log(ledger)) == sorted(out) and len(out) == 150
