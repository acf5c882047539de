"""The C pass over a whole batch body (``_speedups.split_entries``, ``check_rows`` and ``answer_batch``, used by
``Ingestor.submit_body_async`` for ``POST /v1/entries/batch``) gives exactly what the parsed path gives: the body's
entries are the canonical bytes of the elements ``parse_canonical`` finds, ``check_rows`` the verdicts, hashes and
terms of ``check_entries`` with entries equal to ``parse_entry``'s (their body read on demand), or None before any
signature when one leaf is not handled, and the answer the bytes orjson writes for the same document."""

from __future__ import annotations

import hashlib
import random

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.encoding import _speedups, records
from ailedger.encoding.canonical import canonical_value_bytes, parse_canonical
from ailedger.encoding.records import (
    SignedEntry,
    fast_parse_entries,
    fast_parse_leaves,
    parse_entry,
    split_batch,
)
from tests.encoding.test_entry_terms_c import BODIES, TYPES, _leaf

pytestmark = pytest.mark.skipif(records._check_rows is None, reason="the C module _speedups is not built")


def _body(leaves: list[bytes]) -> bytes:
    return b'{"entries":[' + b",".join(leaves) + b"]}"


def test_split_gives_the_elements_parse_canonical_finds():
    leaves = [_leaf(t, b) for t in TYPES[::4] for b in BODIES]
    body = _body(leaves)
    doc = parse_canonical(body)
    assert doc is not None
    assert split_batch(body) == leaves == [canonical_value_bytes(o) for o in doc["entries"]]
    # strings holding braces, brackets, quotes and backslashes do not cut an element
    tricky = [b'{"a":"}{]["}', b'{"a":"\\\\"}', b'{"a":"\\"}"}', b'{"a":"\\\\\\""}', b'{"a":[{"b":"]"}],"c":{}}',
              b"{}"]
    assert split_batch(_body(tricky)) == tricky


@pytest.mark.parametrize("body", [
    b'{"entries":[]}', b'{"entries": [{}]}', b'{"entries":[{}] }', b' {"entries":[{}]}', b'{"entries":[{},]}',
    b'{"entries":[,{}]}', b'{"entries":[{}{}]}', b'{"entries":[{}],"x":1}', b'{"entries":[1]}', b'{"entries":[[]]}',
    b'{"entries":["a"]}', b'{"entries":[{"a":"}]}', b'{"entries":[{"a":[}]}', b'{"entries":[{]}', b'{"entries":[{}',
    b'{"entries":[{"a":"\\"}]}', b'{"entries":[{}} ]}', b"", b"{}", b'{"entrie":[{}]}', b'{"entries":{}}',
])
def test_split_refuses_every_other_shape(body):
    assert split_batch(body) is None


def test_split_takes_bytes_only():
    assert split_batch(bytearray(b'{"entries":[{}]}')) is None  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.split_entries("x")  # type: ignore[arg-type]


def _agree(leaves: list[bytes]) -> None:
    made = fast_parse_leaves(leaves)
    verdicts, hashes, terms = _speedups.check_entries(leaves)
    if 2 in verdicts:
        assert made is None
        return
    assert made is not None
    v, h, t, entries = made
    assert (v, h, t) == (verdicts, hashes, terms)
    assert h == [hashlib.sha256(b"\x00" + x).digest() for x in leaves]
    assert all(type(e) is SignedEntry and "body" not in e.__dict__ for e in entries if e is not None)  # on demand
    assert entries == fast_parse_entries(leaves)
    for leaf, verdict, e in zip(leaves, v, entries):
        if verdict != 1:
            assert e is None
            continue
        assert e == parse_entry(leaf) and repr(e) == repr(parse_entry(leaf))
        assert e.body == parse_entry(leaf).body and "body" in e.__dict__


def test_rows_equal_check_entries_for_every_type():
    handled = [x for x in (_leaf(t, b) for t in TYPES for b in BODIES) if _speedups.verify_entries([x]) != b"\x02"]
    assert len(handled) > 1000
    _agree(handled)
    other = Ed25519PrivateKey.generate()
    bad = [_leaf("note", {"i": i}, other).replace(b'"i":', b'"j":') for i in range(3)]  # verdict 0: signature
    _agree(handled[:50] + bad + handled[50:100])
    assert fast_parse_leaves(bad)[0] == b"\x00\x00\x00"  # type: ignore[index]


def test_one_leaf_not_handled_gives_none_before_any_signature(monkeypatch):
    good = [_leaf("note", {"i": i}) for i in range(5)]
    floats = _leaf("note", {"x": 1}).replace(b'"x":1', b'"x":1.5')
    assert _speedups.verify_entries([floats]) == b"\x02"
    assert fast_parse_leaves(good + [floats]) is None
    assert fast_parse_leaves(good + [b"{}"]) is None
    assert fast_parse_leaves([]) == (b"", [], [], [])
    with pytest.raises(TypeError):
        fast_parse_leaves(good + ["x"])  # type: ignore[list-item]


def test_a_lazy_body_is_read_once_and_other_names_still_fail():
    leaf = _leaf("note", {"subjects": ["a"], "n": [1, {"b": None}]})
    e = fast_parse_leaves([leaf])[3][0]  # type: ignore[index]
    assert e.body == {"subjects": ["a"], "n": [1, {"b": None}]}
    assert e.body is e.body and e.to_dict() == parse_entry(leaf).to_dict()
    with pytest.raises(AttributeError):
        e.nope  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        object.__new__(SignedEntry).body  # noqa: B018  # no leaf bytes either: a plain missing attribute
    e.verify()


_text = st.text(max_size=6) | st.sampled_from(["}", "{", "]", "[", '"', "\\", '\\"', "é", "\U0001f600"])
_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _text,
                       lambda ch: st.lists(ch, max_size=3) | st.dictionaries(_text, ch, max_size=3), max_leaves=10)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(_text, _values, max_size=4), min_size=1, max_size=5))
def test_split_of_any_canonical_body(objs):
    body = orjson.dumps({"entries": objs}, option=orjson.OPT_SORT_KEYS)
    doc = parse_canonical(body)
    parts = split_batch(body)
    if doc is not None:
        assert parts == [canonical_value_bytes(o) for o in doc["entries"]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2000), st.binary(min_size=0, max_size=3)), min_size=1, max_size=3))
def test_edited_bodies_taken_whole_are_canonical(edits):
    """Byte edits of a body: whenever split + check_rows take every element (verdict 1), the body is the
    canonical document of exactly those entries (what the parsed path would have found)."""
    leaves = [_leaf("note", {"i": i, "subjects": ["a}", 'b"{']}) for i in range(4)]
    data = bytearray(_body(leaves))
    for at, new in edits:
        at = min(at, len(data))
        data[at : at + len(new)] = new
    body = bytes(data)
    parts = split_batch(body)
    made = fast_parse_leaves(parts) if parts else None
    if made is not None and set(made[0]) == {1}:
        doc = parse_canonical(body)
        assert doc is not None and [parse_entry(canonical_value_bytes(o)) for o in doc["entries"]] == made[3]


def test_answer_is_orjsons_bytes():
    rnd = random.Random(7)
    for n in (0, 1, 5, 1000):
        res = [(rnd.choice([0, 1, 2**40, 2**62, rnd.randrange(10**9)]), rnd.randbytes(32), rnd.random() < 0.3)
               for _ in range(n)]
        dups = sum(d for _, _, d in res)
        want = orjson.dumps({"results": [{"index": i, "leaf_hash": h.hex(), "duplicate": d} for i, h, d in res],
                             "appended": n - dups, "duplicates": dups})
        assert _speedups.answer_batch(res) == want
    for bad in ([(1, b"x", False)], [("1", b"\0" * 32, False)], [(1, b"\0" * 32, 0)], [(1, b"\0" * 32)], [None]):
        with pytest.raises(TypeError):
            _speedups.answer_batch(bad)  # type: ignore[arg-type]


def test_every_byte_in_every_position_of_a_string():
    """The structure check skips plain string text 8 bytes at a time: every byte value at every offset of a body
    string (and of the text around it) still gets the verdict the grammar gives it -- 1 unchanged, 0 (still a
    canonical entry, whose signature no longer verifies) for printable ASCII other than a quote or a backslash,
    2 (not handled) for anything else (a backslash: 0 where it makes a short escape with the next byte) -- through
    both check_entries and check_rows."""
    leaf = _leaf("note", {"s": "a" * 40, "t": ["b" * 9, "c" * 17]})
    start = leaf.index(b"a" * 40)
    spans = [range(start, start + 40), range(leaf.index(b"b" * 9), leaf.index(b"b" * 9) + 9)]
    leaves, want = [], []
    for span in spans:
        for at in span:
            for b in range(256):
                x = bytearray(leaf)
                if x[at] == b:
                    continue
                x[at] = b
                leaves.append(bytes(x))
                if b == 0x5C:  # a backslash: an escape with the byte after it ("\\b" is a backspace, written so)
                    want.append(0 if x[at + 1] in b"bfnrt" else 2)
                else:
                    want.append(0 if 0x20 <= b < 0x80 and b != 0x22 else 2)
    verdicts = _speedups.check_entries(leaves)[0]
    assert list(verdicts) == want
    assert list(_speedups.verify_entries(leaves)) == want
    ok = [x for x, w in zip(leaves, want) if w == 0]
    assert fast_parse_leaves(ok)[0] == b"\x00" * len(ok)  # type: ignore[index]
    # and the same strings written right, at every length around the 8-byte steps: taken whole
    good = [_leaf("note", {"s": "a" * n + ch, "subjects": ["x" * n]}) for n in range(25) for ch in ("", "é", '"', "\n")]
    assert fast_parse_leaves(good)[0] == b"\x01" * len(good)  # type: ignore[index]
