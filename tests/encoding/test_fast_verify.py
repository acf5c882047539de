"""The C batch checker of entries (_speedups.verify_entries through records.fast_parse_entries) against the
Python path (records.parse_entry): every entry the C code accepts is exactly the entry parse_entry returns
for those bytes; every entry parse_entry refuses, the C code refuses too (valid, tampered, non-canonical
and odd entries)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ailedger.encoding import _speedups, records
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry, fast_parse_entries, parse_entry
from ailedger.errors import AiledgerError, SignatureError

pytestmark = pytest.mark.skipif(not records.FAST_VERIFY, reason="the C module _speedups is not built")

_KEY = Ed25519PrivateKey.generate()
_DID = did_from_public_key(_KEY.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw))
_OTHER = Ed25519PrivateKey.generate()
TIME = "2026-01-02T03:04:05.678Z"


def python_verdict(data: bytes) -> records.SignedEntry | None:
    try:
        return parse_entry(data, verify=True)
    except (AiledgerError, RecursionError):
        return None


def agree(data: bytes) -> records.SignedEntry | None:
    """Assert the C path agrees with the Python path on ``data``; return the C result."""
    fast = fast_parse_entries([data])[0]
    slow = python_verdict(data)
    if fast is not None:
        assert slow is not None, data
        assert fast == slow, data
        assert fast.leaf_bytes == data
    return fast


def entry(body: dict, *, type: str = "model.card", time: str = TIME, v: int = 1, key=_KEY) -> bytes:
    return build_entry(type, body, _DID, time, key.sign, v=v).leaf_bytes


scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60)
           | st.text(max_size=12) | st.floats(allow_nan=False, allow_infinity=False))
keys = st.text(max_size=6) | st.sampled_from(["a", "b", "aa", "ab", "B", "é", "\U0001f600", "\ue000"])
json_values = st.recursive(scalars, lambda ch: st.lists(ch, max_size=4) | st.dictionaries(keys, ch, max_size=4),
                           max_leaves=20)
bodies = st.dictionaries(keys, json_values, max_size=5)
types = st.from_regex(r"[a-z][a-z0-9_-]{0,8}(\.[a-z][a-z0-9_-]{0,8}){0,2}", fullmatch=True)
times = st.from_regex(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?Z",
                      fullmatch=True)

FAST_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _plain(x: object) -> bool:
    """No floats, integers of at most 15 digits and plain ASCII keys (no escapes): the shapes the C code handles."""
    if isinstance(x, float):
        return False
    if isinstance(x, int) and not isinstance(x, bool):
        return abs(x) < 10**15
    if isinstance(x, dict):
        return all(k.isascii() and k.isprintable() and '"' not in k and "\\" not in k and _plain(v)
                   for k, v in x.items())
    if isinstance(x, list):
        return all(_plain(v) for v in x)
    return True


@FAST_SETTINGS
@given(bodies, types, times, st.integers(min_value=1, max_value=1000))
def test_valid_entries_agree(body, type_, time_, v):
    data = entry(body, type=type_, time=time_, v=v)
    got = agree(data)
    if _plain(body):
        assert got is not None  # the common shapes do take the fast path


@FAST_SETTINGS
@given(bodies, st.data())
def test_tampered_entries_agree(body, data):
    good = entry(body)
    i = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    bad = bytearray(good)
    bad[i] ^= 1 << bit
    assume(bytes(bad) != good)
    agree(bytes(bad))
    # cut, doubled and spliced
    agree(good[:i])
    agree(good[:i] + good[i:] * 2)
    agree(good[:i] + b" " + good[i:])


@FAST_SETTINGS
@given(bodies)
def test_non_canonical_spellings_agree(body):
    good = entry(body)
    obj = json.loads(good)
    for spelled in (json.dumps(obj).encode(),                                  # spaces, ASCII escapes
                    json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                               sort_keys=False).encode(),                       # key order
                    json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode()):
        got = agree(spelled)
        if spelled != good:
            assert got is None  # only canonical bytes take the fast path


def test_a_bad_signature_is_refused_by_both():
    good = entry({"a": 1})
    obj = json.loads(good)
    obj["sig"] = base64.b64encode(_OTHER.sign(b"something else")).decode()
    forged = records.canonical_json(obj)
    assert _speedups.verify_entries([forged]) == b"\x00"  # well-formed: the C code decided it itself
    assert fast_parse_entries([forged]) == [None]
    with pytest.raises(SignatureError):
        parse_entry(forged)


def _edit(good: bytes, **changes: object) -> bytes:
    obj = json.loads(good)
    for k, v in changes.items():
        if v is _DROP:
            obj.pop(k)
        else:
            obj[k] = v
    return records.canonical_json(obj)


_DROP = object()


@pytest.mark.parametrize("changes", [
    {"v": 0}, {"v": 1001}, {"v": True}, {"v": "1"}, {"v": 1.5}, {"v": -1},
    {"type": "Model.card"}, {"type": "model..card"}, {"type": "a" * 65}, {"type": "model.card\n"}, {"type": 7},
    {"time": "2026-01-02 03:04:05Z"}, {"time": "2026-01-02T03:04:05.Z"}, {"time": "2026-01-02T03:04:05.1234567890Z"},
    {"time": "2026-01-02T03:04:05+00:00"}, {"time": "\uff12026-01-02T03:04:05Z"},
    {"signer": "did:key:z6Mk"}, {"signer": "did:key:z" + "1" * 48}, {"signer": "did:web:example.com"},
    {"signer": "did:key:z" + "z" * 60}, {"signer": 5},
    {"sig": "AAAA"}, {"sig": "%" * 88}, {"sig": base64.b64encode(b"\0" * 63).decode()}, {"sig": None},
    {"body": []}, {"body": "x"}, {"body": _DROP}, {"sig": _DROP}, {"extra": 1},
])
def test_odd_entries_agree(changes):
    good = entry({"a": [1, 2, {"b": None}]})
    odd = _edit(good, **changes)
    assert agree(odd) is None
    assert python_verdict(odd) is None


def test_sig_with_nonzero_spare_bits_goes_to_python():
    good = entry({"a": 1})
    obj = json.loads(good)
    s = obj["sig"]
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(s[85])
    obj["sig"] = s[:85] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last | 1] + "=="
    spelled = records.canonical_json(obj)
    assert _speedups.verify_entries([spelled]) == b"\x02"
    agree(spelled)


@pytest.mark.parametrize("body", [
    {"s": "\u0001\u001f\b\t\n\f\r\"\\/\x7f\u2028é\U0001f600"}, {"deep": [[[[[[[[[[1]]]]]]]]]]},
    {"n": 0, "m": -7, "big": 2**49, "bigger": 10**15, "huge": 2**70}, {"f": 1.0}, {"f": 0.5},
    {"é": 1}, {"\ue000": 1, "\U0001f600": 2}, {"": {"": []}}, {"t": True, "f": False, "z": None},
])
def test_edge_bodies_agree(body):
    agree(entry(body))


def test_too_deep_and_too_big_go_to_python():
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    data = entry({"d": deep})
    assert _speedups.verify_entries([data]) == b"\x02"
    agree(data)
    assert agree(b"{" * 70000) is None


def test_many_at_once_keep_their_order():
    goods = [entry({"i": i}) for i in range(50)]
    mixed = [g if i % 3 else g.replace(b'"i":', b'"j":') for i, g in enumerate(goods)]
    got = fast_parse_entries(mixed)
    for i, (g, data) in enumerate(zip(got, mixed)):
        if i % 3:
            assert g is not None and g.body == {"i": i}
        else:
            assert g is None and python_verdict(data) is None
    with pytest.raises(TypeError):
        _speedups.verify_entries(["not bytes"])  # type: ignore[list-item]


def test_signers_change_within_a_batch():
    other_did = did_from_public_key(_OTHER.public_key().public_bytes(serialization.Encoding.Raw,
                                                                     serialization.PublicFormat.Raw))
    mine = build_entry("model.card", {"a": 1}, _DID, TIME, _KEY.sign).leaf_bytes
    theirs = build_entry("model.card", {"a": 1}, other_did, TIME, _OTHER.sign).leaf_bytes
    # signed by _KEY but naming the other signer, right after an entry of that signer (its key cached)
    claimed = build_entry("model.card", {"a": 2}, other_did, TIME, _KEY.sign).leaf_bytes
    batch = [mine, theirs, claimed, mine, claimed, theirs, mine]
    assert _speedups.verify_entries(batch) == bytes([1, 1, 0, 1, 0, 1, 1])
    for data in batch:
        agree(data)
