"""The monitor against a static tile mirror: incremental reads, resume from state, matches, forged tiles,
rollback / split view / fork with evidence, malformed checkpoints, witness cosignatures."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.errors import BadInputError, SignatureError, VerificationError
from ailedger.monitor import ForkError, Monitor, parse_watch
from ailedger.tlog.cosignature import add_cosignatures, cosign
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import ALG_COSIGNATURE_V1, Signer, parse_note, parse_vkey
from ailedger.tlog.tiles import tile_path
from tests.monitor.conftest import notes


def _mon(led, mirror, tmp_path, *watches, **kw):
    return Monitor(mirror.url, parse_vkey(led.vkey), [parse_watch(w) for w in watches],
                   state_path=tmp_path / "state.json", **kw)


def test_follows_only_new_entries_and_resumes_from_state(ledger, mirror, tmp_path):
    led, who = ledger
    notes(led, who, 0, 300)
    led.append_record("note", {"name": "family-photos", "subjects": ["record:alice-0042"],
                               "fingerprints": {"phash64": "00ff00ff00ff00ff"}}, who)
    mirror.publish(led)
    got: list[dict] = []
    mon = _mon(led, mirror, tmp_path, "subject=record:alice-0042", "fingerprint=phash64:00ff00ff00ff00fe/2",
               f"signer={who.did}", on_match=got.append)
    first = mon.poll()
    assert first["size"] == led.size and first["entries_read"] == led.size
    assert [m["index"] for m in got if m["body"].get("name") == "family-photos"] == [led.size - 1]
    hit = next(m for m in got if m["index"] == led.size - 1)
    assert {h["watch"] for h in hit["matched"]} == {"subject=record:alice-0042", "fingerprint=phash64:00ff00ff00ff00fe/2",
                                                    f"signer={who.did}"}
    assert hit["signature_ok"] is True and [h.get("distance") for h in hit["matched"] if "distance" in h] == [1]

    # a restart resumes: a new Monitor on the same state reads only what was appended since
    size1 = led.size
    notes(led, who, 300, 40, tag="later")
    led.append_record("note", {"name": "family-photos-2", "fingerprints": {"phash64": "ffffffff00000000"}}, who)
    mirror.publish(led)
    first_matches = len(got)
    assert first["matches"] == first_matches == size1  # every entry: the curator signed them all
    got.clear()
    mon2 = _mon(led, mirror, tmp_path, "name=family-photos-2", "fingerprint=phash64:00ff00ff00ff00fe/2",
                on_match=got.append)
    assert mon2.state.size == size1
    second = mon2.poll()
    assert second["previous_size"] == size1 and second["entries_read"] == led.size - size1
    assert [m["index"] for m in got] == [led.size - 1]  # the far fingerprint does not match
    # only the tiles of the new range: one level-0 tile, one bundle (plus the checkpoint)
    assert second["files_fetched"] == 3
    assert mon2.poll()["entries_read"] == 0  # nothing new: nothing read
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["size"] == led.size and state["matches"] == first_matches + 1


def test_forged_leaf_in_a_tile_off_the_roots_path_is_refused(ledger, mirror, tmp_path):
    led, who = ledger
    notes(led, who, 0, 600)
    mirror.publish(led)
    # tile 0 (leaves 0..255) is complete and not on the right edge of the size-600 tree: a reader that only
    # checks the tiles on the root's path would take its hashes unchecked
    t = mirror.site / tile_path(0, 0)
    data = bytearray(t.read_bytes())
    data[32 * 7] ^= 1
    t.write_bytes(bytes(data))
    got: list[dict] = []
    mon = _mon(led, mirror, tmp_path, f"signer={who.did}", on_match=got.append)
    with pytest.raises(VerificationError, match="do not give the root"):
        mon.poll()
    assert got == [] and not (tmp_path / "state.json").exists()


def test_forged_entry_in_a_bundle_is_refused(ledger, mirror, tmp_path):
    led, who = ledger
    notes(led, who, 0, 300)
    mirror.publish(led)
    b = mirror.site / tile_path("entries", 0)
    data = bytearray(b.read_bytes())
    data[40] ^= 1  # inside the first entry
    b.write_bytes(bytes(data))
    got: list[dict] = []
    mon = _mon(led, mirror, tmp_path, f"signer={who.did}", on_match=got.append)
    with pytest.raises(VerificationError, match="does not hash to the leaf hash"):
        mon.poll()
    assert got == [] and mon.state.size == 0


def test_malformed_checkpoint_and_truncated_tile_are_errors_not_crashes(ledger, mirror, tmp_path):
    led, who = ledger
    notes(led, who, 0, 10)
    mirror.publish(led)
    mon = _mon(led, mirror, tmp_path)
    good = (mirror.site / "checkpoint").read_bytes()
    (mirror.site / "checkpoint").write_bytes(b"not a checkpoint\n")
    with pytest.raises(VerificationError, match="malformed|signature"):
        mon.poll()
    (mirror.site / "checkpoint").write_bytes(good)
    t = mirror.site / tile_path(0, 0, led.size)
    t.write_bytes(t.read_bytes()[:-5])
    with pytest.raises(VerificationError, match="bytes, a tile of width"):
        mon.poll()
    mirror.publish(led)
    assert mon.poll()["size"] == led.size  # the monitor goes on once the mirror is right again



def test_rollback_split_view_and_fork_are_reported_with_both_checkpoints(ledger, mirror, tmp_path):
    led, who = ledger
    notes(led, who, 0, 100)
    led.close()
    shutil.copytree(tmp_path / "led", tmp_path / "fork")
    a, b = Ledger.open(tmp_path / "led"), Ledger.open(tmp_path / "fork")
    try:
        notes(a, who, 100, 50, tag="a")
        mirror.publish(a)
        mon = _mon(a, mirror, tmp_path)
        mon.poll()
        # rollback: the same log's older, smaller tree
        notes(b, who, 100, 5, tag="b")
        mirror.publish(b)
        with pytest.raises(ForkError) as e:
            mon.poll()
        ev = e.value.details
        assert ev["kind"] == "rollback" and ev["seen"]["size"] == 150 and ev["new"]["size"] == 105
        for side in (ev["seen"], ev["new"]):  # both are notes signed by the log: evidence anyone can check
            parse_vkey(a.vkey).verify  # noqa: B018 - the key parses
            assert parse_note(side["note"].encode()).text.startswith("example.org/monitored\n")
        # split view: same size, other root
        notes(b, who, 105, 45, tag="b")
        mirror.publish(b)
        with pytest.raises(ForkError) as e:
            mon.poll()
        assert e.value.details["kind"] == "split_view" and e.value.details["new"]["root"] != e.value.details["seen"]["root"]
        # fork: a larger tree that does not contain the one seen
        notes(b, who, 150, 30, tag="b")
        mirror.publish(b)
        with pytest.raises(ForkError) as e:
            mon.poll()
        assert e.value.details["kind"] == "fork" and e.value.details["new"]["size"] == 180
        assert mon.state.size == 150  # nothing accepted from the forked history
        # the honest log goes on and is followed again
        notes(a, who, 150, 10, tag="a")
        mirror.publish(a)
        assert mon.poll()["entries_read"] == 10
    finally:
        a.close()
        b.close()


def test_witness_cosignatures_are_required_when_keys_are_given(ledger, mirror, tmp_path):
    led, who = ledger
    notes(led, who, 0, 20)
    mirror.publish(led)
    w = Signer("witness.example/w1", Ed25519PrivateKey.generate(), ALG_COSIGNATURE_V1)
    mon = _mon(led, mirror, tmp_path, witness_keys=(w.verifier,))
    with pytest.raises(VerificationError, match="cosignatures"):
        mon.poll()
    cp = mirror.site / "checkpoint"
    note = cp.read_bytes()
    cp.write_bytes(add_cosignatures(note, [cosign(parse_note(note).text, w, int(time.time()))]))
    assert mon.poll()["size"] == led.size
    other = Signer("witness.example/w1", Ed25519PrivateKey.generate(), ALG_COSIGNATURE_V1)
    mon2 = Monitor(mirror.url, parse_vkey(led.vkey), [], witness_keys=(other.verifier,))
    with pytest.raises(VerificationError):
        mon2.poll()


def test_foreign_log_key_and_bad_watches(ledger, mirror, tmp_path):
    led, who = ledger
    notes(led, who, 0, 3)
    mirror.publish(led)
    other = Ledger.init(tmp_path / "other", "example.org/monitored")
    try:
        with pytest.raises(SignatureError):
            Monitor(mirror.url, parse_vkey(other.vkey), []).poll()
    finally:
        other.close()
    for bad, msg in [("model", "KIND=VALUE"), ("colour=red", "unknown"), ("fingerprint=phash64:zz/3", "not hex"),
                     ("fingerprint=phash64:00ff/3", "16 hex digits"), ("leaf=abcd", "64-digit")]:
        with pytest.raises(BadInputError, match=msg):
            parse_watch(bad)
    with pytest.raises(BadInputError, match="not an http"):
        Monitor("ftp://x", parse_vkey(led.vkey), [])
    (tmp_path / "bad.json").write_text('{"v": 1, "size": 3}')
    with pytest.raises(BadInputError, match="damaged"):
        Monitor(mirror.url, parse_vkey(led.vkey), [], state_path=tmp_path / "bad.json")


def test_prefilter_never_hides_a_match(ledger, mirror, tmp_path):
    """The raw-bytes prefilter is off for values canonical JSON may escape; every watched entry is found."""
    from ailedger.monitor.watch import needles

    assert needles([parse_watch("name=plain"), parse_watch("fingerprint=phash64:00ff00ff00ff00ff/3")]) == \
        [b"plain", b"phash64"]
    assert needles([parse_watch('name=caf\u00e9 "x"')]) is None and needles([parse_watch("term=name:x")]) is None
    led, who = ledger
    odd = 'caf\u00e9 "quoted" \\ tab\t'
    led.append_record("note", {"name": odd}, who)
    led.append_record("note", {"name": "plain"}, who)
    notes(led, who, 0, 5)
    mirror.publish(led)
    got: list[dict] = []
    Monitor(mirror.url, parse_vkey(led.vkey), [parse_watch("name=" + odd), parse_watch("name=plain")],
            on_match=got.append).poll()
    assert sorted(m["body"]["name"] for m in got) == sorted([odd, "plain"])


def test_any_tlog_tiles_log_with_opaque_entries_and_its_own_origin(mirror, tmp_path):
    """A non-ailedger C2SP log (raw entries, origin other than the key name), written here by hand."""
    from ailedger.tlog.checkpoint import Checkpoint, sign_checkpoint
    from ailedger.tlog.merkle import leaf_hash, root_from_leaf_hashes
    from ailedger.tlog.tiles import entry_bundle

    signer = Signer("example.com-log-key", Ed25519PrivateKey.generate())
    entries = [f"opaque record {i}".encode() for i in range(40)]
    hashes = [leaf_hash(e) for e in entries]
    for path, data in [(tile_path(0, 0, 40), b"".join(hashes)), (tile_path("entries", 0, 40), entry_bundle(entries)),
                       ("checkpoint", sign_checkpoint(Checkpoint("example.com/other-log", 40,
                                                                 root_from_leaf_hashes(hashes)), signer))]:
        (mirror.site / path).parent.mkdir(parents=True, exist_ok=True)
        (mirror.site / path).write_bytes(data)
    got: list[dict] = []
    with pytest.raises(VerificationError, match="origin 'example.com/other-log' is not the expected"):
        Monitor(mirror.url, signer.verifier, []).poll()  # the origin is not the key's name: say which
    mon = Monitor(mirror.url, signer.verifier, [parse_watch("leaf=" + hashes[17].hex()), parse_watch("name=x")],
                  origin="example.com/other-log", on_match=got.append, state_path=tmp_path / "o.json")
    assert mon.poll()["size"] == 40
    assert [m["index"] for m in got] == [17] and "type" not in got[0]  # opaque: reported by its leaf hash
