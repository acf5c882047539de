"""Any change to stored data is reported by audit with the index and what was expected."""

import sqlite3

import pytest

from ailedger.errors import BadInputError, ConflictError, NotFoundError, SignatureError
from ailedger.tlog.ledger import Ledger


@pytest.fixture
def led(tmp_path):
    led = Ledger.init(tmp_path / "ledger", "example.org/test")
    alice, _ = led.new_identity("alice")
    for i in range(40):
        led.append_record("note", {"i": i}, alice)
    led.checkpoint()
    for i in range(40, 70):
        led.append_record("note", {"i": i}, alice)
    led.checkpoint()
    yield led
    led.close()


def db(led):
    return sqlite3.connect(led.path / "ledger.db", isolation_level=None)


def kinds(rep):
    return {(p.kind, p.index) for p in rep.problems}


def test_clean_audit(led):
    rep = led.audit(signatures=True)
    assert rep.ok, rep.problems
    # every append signs the checkpoint covering it in its own transaction (issue 21): one per append here
    assert rep.leaves_checked == 71 and rep.signatures_checked == 71 and rep.checkpoints_checked == 71


def test_flipped_byte_in_leaf(led):
    c = db(led)
    d = bytearray(c.execute("SELECT data FROM leaves WHERE idx=41").fetchone()[0])
    d[10] ^= 1
    c.execute("UPDATE leaves SET data=? WHERE idx=41", (bytes(d),))
    assert ("leaf_hash", 41) in kinds(led.audit())


def test_forged_leaf_with_recomputed_hash(led):
    # the tamperer also fixes the leaf hash: the tree nodes and checkpoints still catch it,
    # and the signature check names the entry
    from ailedger.tlog.merkle import leaf_hash
    c = db(led)
    d = c.execute("SELECT data FROM leaves WHERE idx=12").fetchone()[0].replace(b'"i":11', b'"i":99')
    c.execute("UPDATE leaves SET data=?, hash=? WHERE idx=12", (d, leaf_hash(d)))
    rep = led.audit(signatures=True)
    ks = {k for k, _ in kinds(rep)}
    assert {"node_hash", "checkpoint", "signature"} <= ks
    assert ("signature", 12) in kinds(rep)


def test_flipped_node_hash(led):
    c = db(led)
    # store format 3: a level's nodes, 256 to a row; flip the 6th node of level 1
    key, blob = c.execute("SELECT id, hashes FROM node_stripes ORDER BY id LIMIT 1").fetchone()
    h = blob[5 * 32 : 6 * 32]
    c.execute("UPDATE node_stripes SET hashes=? WHERE id=?", (blob[:160] + bytes([h[0] ^ 1]) + blob[161:], key))
    rep = led.audit()
    assert any(p.kind == "node_hash" and p.expected == h.hex() for p in rep.problems)


def test_flipped_checkpoint(led):
    c = db(led)
    note = bytearray(c.execute("SELECT note FROM checkpoints WHERE size=41").fetchone()[0])
    note[-10] = ord("A") if note[-10] != ord("A") else ord("B")
    c.execute("UPDATE checkpoints SET note=? WHERE size=41", (bytes(note),))
    assert ("checkpoint", 41) in kinds(led.audit())


def test_deleted_row(led):
    db(led).execute("DELETE FROM leaves WHERE idx=30")
    rep = led.audit()
    assert ("gap", 30) in kinds(rep)


def test_deleted_last_row(led):
    db(led).execute("DELETE FROM leaves WHERE idx=70")
    assert ("checkpoint", 71) in kinds(led.audit())


def test_reordered_rows(led):
    c = db(led)
    a = c.execute("SELECT hash, data FROM leaves WHERE idx=5").fetchone()
    b = c.execute("SELECT hash, data FROM leaves WHERE idx=6").fetchone()
    c.execute("UPDATE leaves SET hash=?, data=? WHERE idx=5", (b"\0" * 32, b"tmp"))
    c.execute("UPDATE leaves SET hash=?, data=? WHERE idx=6", a)
    c.execute("UPDATE leaves SET hash=?, data=? WHERE idx=5", b)
    rep = led.audit()
    assert any(p.kind == "node_hash" and p.index == 4 for p in rep.problems)


def test_identity_rules(tmp_path):
    led = Ledger.init(tmp_path / "l", "example.org/t")
    with pytest.raises(ConflictError):
        Ledger.init(tmp_path / "l", "example.org/t")
    with pytest.raises(BadInputError):
        Ledger.init(tmp_path / "m", "has space")
    with pytest.raises(NotFoundError):
        Ledger.open(tmp_path / "nope")
    bob, _ = led.new_identity("bob")
    with pytest.raises(ConflictError):
        led.new_identity("bob")
    with pytest.raises(BadInputError):
        led.identities.create("../evil")
    assert oct((led.path / "identities" / "bob.key").stat().st_mode & 0o777) == "0o600"
    led.revoke_identity("bob")
    before = led.size
    with pytest.raises(BadInputError):
        led.append_record("note", {}, bob)
    assert led.size == before
    led.close()


def test_passphrase_protected_identity(tmp_path, monkeypatch):
    led = Ledger.init(tmp_path / "l", "example.org/t")
    led.identities.create("carol", passphrase="s3cret")
    assert b"ENCRYPTED" in (led.path / "identities" / "carol.key").read_bytes()
    monkeypatch.delenv("AILEDGER_PASSPHRASE", raising=False)
    with pytest.raises(BadInputError):
        led.identities.load("carol")
    with pytest.raises(BadInputError):
        led.identities.load("carol", passphrase="wrong")
    assert led.identities.load("carol", passphrase="s3cret").did.startswith("did:key:z6Mk")
    led.close()


def test_rotation_logged(tmp_path):
    led = Ledger.init(tmp_path / "l", "example.org/t")
    a, _ = led.new_identity("a")
    new, res = led.rotate_identity("a")
    e = led.entry(res.index)
    assert e.type == "identity.rotate" and e.signer == a.did and e.body["new"] == new.did
    led.close()


def test_append_entries_batch_reports_bad_ones(tmp_path):
    led = Ledger.init(tmp_path / "l", "example.org/t")
    a, _ = led.new_identity("a")
    good = [led.make_entry("note", {"i": i}, a).leaf_bytes for i in range(5)]
    bad = good[2].replace(b'"i":2', b'"i":7')
    res = led.append_entries(good[:2] + [bad, b"{not json"] + good[2:], parallel=False)
    assert [r.index if not isinstance(r, str) else "err" for r in res] == [1, 2, "err", "err", 3, 4, 5]
    assert "signature" in res[2] and "parse" in res[3]
    led.close()


def test_signature_error_type(tmp_path):
    from ailedger.encoding.records import parse_entry
    led = Ledger.init(tmp_path / "l", "example.org/t")
    a, _ = led.new_identity("a")
    d = led.make_entry("note", {"i": 1}, a).to_dict()
    d["body"]["i"] = 2
    with pytest.raises(SignatureError):
        parse_entry(d)
    led.close()
