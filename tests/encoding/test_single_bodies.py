"""The C pass over the single-entry bodies of a group (``_speedups.check_rows(..., partial=True)`` through
``records.fast_check_leaves`` and ``Ingestor.prepare_bodies``, used by the ingest front): each body is judged
alone -- a body the C checker does not take gets verdict 2 and None without sending its neighbours anywhere --
and for every other body the verdict, hash, terms and entry are exactly those of ``check_entries`` /
``check_rows`` / ``parse_entry``; the batch prepare_bodies makes is the one ``prepare_group`` makes of the same
entries (same rows), and the positions it leaves out are exactly the bodies prepare_group would not append.
With ``split`` half the signatures are checked by the C module's helper thread: the same result, also when
several threads call at once (one owns the helper, the others check alone) and in a child after fork."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding import _speedups, records
from ailedger.encoding.canonical import parse_canonical
from ailedger.encoding.records import SignedEntry, fast_check_leaves, fast_parse_leaves, parse_entry
from ailedger.tlog import ingest
from ailedger.tlog.ingest import Ingestor, IngestPolicy
from ailedger.tlog.ledger import Ledger
from tests.encoding.test_entry_terms_c import _DID, BODIES, TYPES, _leaf

pytestmark = pytest.mark.skipif(records._check_rows is None, reason="the C module _speedups is not built")


def _odd() -> list[bytes]:
    """Bodies the C checker does not take (verdict 2) or whose signature fails (verdict 0)."""
    other = Ed25519PrivateKey.generate()
    return [
        _leaf("note", {"x": 1}).replace(b'"x":1', b'"x":1.5'),  # a float: not handled
        b"{}", b"", b"[1,2]", b'"x"', b"{nope", b" " + _leaf("note", {"i": 1}),  # not an entry / not canonical
        _leaf("note", {"i": 2}).replace(b'"v":1}', b'"v":1,"x":1}'),  # an extra field
        _leaf("note", {"i": 3}, other).replace(b'"i":3', b'"i":4'),  # verdict 0: the signature
        _leaf("note", {"subjects": ["a"]}).replace(b'"a"', b'"b"'),  # verdict 0
    ]


def test_partial_judges_each_leaf_alone():
    good = [x for x in (_leaf(t, b) for t in TYPES[::2] for b in BODIES[::3]) if _speedups.verify_entries([x]) == b"\x01"]
    assert len(good) > 100
    odd = _odd()
    leaves = good[:40] + odd[:5] + good[40:80] + odd[5:] + good[80:]
    assert fast_parse_leaves(leaves) is None  # the batch pass refuses the whole piece
    made = fast_check_leaves(leaves)
    assert made is not None
    verdicts, hashes, terms, entries = made
    want_v, want_h, want_t = _speedups.check_entries(leaves)
    assert verdicts == want_v == _speedups.verify_entries(leaves)
    assert set(verdicts) == {0, 1, 2} and verdicts.count(0) == 2
    assert hashes == want_h == [hashlib.sha256(b"\x00" + x).digest() for x in leaves]
    assert terms == want_t
    for leaf, v, e in zip(leaves, verdicts, entries):
        if v != 1:
            assert e is None
            continue
        assert type(e) is SignedEntry and "body" not in e.__dict__  # read on demand
        assert e == parse_entry(leaf)
    # the entries of the good leaves are those the whole-batch pass gives for them alone
    assert [e for e in entries if e is not None] == fast_parse_leaves(good)[3]  # type: ignore[index]
    assert fast_check_leaves([]) == (b"", [], [], [])
    assert _speedups.check_rows(odd[:1], SignedEntry, False) is None
    with pytest.raises(TypeError):
        fast_check_leaves(good[:2] + ["x"])  # type: ignore[list-item]


def test_prepare_bodies_is_prepare_group_of_the_same_entries(tmp_path, monkeypatch):
    led = Ledger.init(tmp_path / "led", origin="singles.example/log")
    try:
        ing = Ingestor(led, policy=IngestPolicy(), clock=time.time)
        good = [_leaf(t, b) for t in TYPES[::3] for b in BODIES[::2]]
        reg = _leaf("identity.register", {"did": _DID, "name": "me"})
        bodies = good[:30] + _odd() + [reg] + good[30:]
        merged, where, rest = ing.prepare_bodies(bodies)
        assert merged is not None and sorted(where + rest) == list(range(len(bodies)))
        # prepare_group takes the canonical entries (a parsed dict each): the same batch, the same positions
        canon = [i for i, b in enumerate(bodies) if type(parse_canonical(b)) is dict]
        g_merged, g_where, g_rest = ing.prepare_group([bodies[i] for i in canon],
                                                      [parse_canonical(bodies[i]) for i in canon])
        assert g_merged is not None
        assert (merged.rows, merged.hashes, merged.parsed) == (g_merged.rows, g_merged.hashes, g_merged.parsed)
        assert (merged.single, merged.n) == (g_merged.single, g_merged.n)
        assert where == [canon[i] for i in g_where]
        assert bodies.index(reg) in rest and all(bodies[i] in good for i in where)
        assert set(rest) == {canon[i] for i, _ in g_rest} | (set(range(len(bodies))) - set(canon))
        # every body taken, the common piece: one batch of all
        m2, w2, r2 = ing.prepare_bodies(good)
        assert m2 is not None and w2 == list(range(len(good))) and r2 == []
        assert m2.rows == ing.prepare_group(good, [orjson.loads(b) for b in good])[0].rows  # type: ignore[union-attr]
        # without the C module every body takes the general path
        monkeypatch.setattr(ingest, "fast_check_leaves", lambda leaves, split=False: None)
        assert ing.prepare_bodies(bodies) == (None, [], list(range(len(bodies))))
        assert ing.prepare_bodies([]) == (None, [], [])
    finally:
        led.close()


def _good(n: int) -> list[bytes]:
    return [_leaf("note", {"i": i, "subjects": [f"s{i}"]}) for i in range(n)]


def test_split_gives_the_same_result_on_the_helper_thread():
    leaves = _good(60)
    odd = _odd()
    mixed = leaves[:20] + odd + leaves[20:]
    for xs in (leaves, mixed, leaves[:2], leaves[:1], []):
        want = _speedups.check_rows(xs, SignedEntry, True, False)
        before = _speedups._helper_jobs()
        got = _speedups.check_rows(xs, SignedEntry, True, True)
        assert got == want
        assert _speedups._helper_jobs() == before + (len(xs) >= 2)  # a call of two or more leaves used it
        assert fast_check_leaves(xs, split=True) == want
    # the whole-batch mode keeps its answer with split too (None before any signature)
    assert _speedups.check_rows(mixed, SignedEntry, False, True) is None
    assert _speedups.check_rows(leaves, SignedEntry, False, True) == _speedups.check_rows(leaves, SignedEntry)


def test_split_from_many_threads_at_once():
    leaves = _good(40) + _odd()
    want = _speedups.check_rows(leaves, SignedEntry, True, False)
    out: list[bool] = []
    gate = threading.Barrier(4)

    def run() -> None:
        gate.wait()
        for _ in range(15):
            out.append(_speedups.check_rows(leaves, SignedEntry, True, True) == want)

    ts = [threading.Thread(target=run) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert out == [True] * 60


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_split_in_a_child_after_fork():
    leaves = _good(30)
    want = _speedups.check_rows(leaves, SignedEntry, True, False)
    assert _speedups.check_rows(leaves, SignedEntry, True, True) == want  # the parent's helper runs
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        before = _speedups._helper_jobs()
        ok = _speedups.check_rows(leaves, SignedEntry, True, True) == want and _speedups._helper_jobs() == before + 1
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
