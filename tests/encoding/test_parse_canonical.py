"""parse_canonical (the batch fast path of the HTTP API): it accepts only bytes that are their own
canonical form, and then gives what the strict parser gives; anything else is left to the strict parser."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.encoding.canonical import canonical_json, canonical_value_bytes, parse_canonical, parse_json
from ailedger.errors import BadInputError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_bytes_parse_as_the_strict_parser_reads_them(value):
    data = canonical_json(value)
    got = parse_canonical(data)
    assert got is None or got == parse_json(data)
    if got is not None and isinstance(got, dict):
        for v in got.values():
            assert canonical_value_bytes(v) == canonical_json(v)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_other_spellings_are_left_to_the_strict_parser(value):
    spaced = json.dumps(value, indent=1).encode()
    if spaced != canonical_json(value):
        assert parse_canonical(spaced) is None


@pytest.mark.parametrize("data", [
    b'{"a":1,"a":2}',  # a duplicate key (orjson keeps the last one: the bytes differ)
    b'{"a":NaN}', b'{"a":1e999}', b'{"a":1.5}',  # floats take the exact path
    b'{"b":1,"a":2}',  # not sorted
    b'{"a":"\xff"}',  # not UTF-8
    b'{"a":' + b"9" * 30 + b"}",  # beyond 64 bits
    b"[" * 300 + b"]" * 300,  # deeper than the fast encoder goes
    b"", b"{", b" {}",
])
def test_what_the_fast_path_refuses(data):
    assert parse_canonical(data) is None


def test_a_duplicate_key_is_still_refused_by_the_api_parser():
    with pytest.raises(BadInputError):
        parse_json(b'{"a":1,"a":2}')


any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=500, deadline=None)
@given(any_json)
def test_the_c_walk_decides_as_the_python_walk(value):
    """_speedups.needs_slow_path (what parse_canonical uses when built) against _needs_slow_path, on the
    values orjson gives: floats, astral and surrogate-range keys, nesting."""
    from ailedger.encoding import canonical

    fast = canonical._c_needs_slow_path
    if fast is None:
        pytest.skip("the C module is not built")
    import orjson

    parsed = orjson.loads(orjson.dumps(value))
    assert fast(parsed) == canonical._needs_slow_path(parsed)


def test_the_c_walk_sends_other_types_and_deep_values_to_the_strict_path():
    from ailedger.encoding import canonical

    fast = canonical._c_needs_slow_path
    if fast is None:
        pytest.skip("the C module is not built")
    assert fast({"a": [1, "x", None, True]}) is False
    assert fast({"a": [1, 2.0]}) is True
    assert fast({"\U0001f600": 1}) is True and fast({"\ue000": 1}) is True and fast({"\u00e9": 1}) is False
    assert fast({"a": (1, 2)}) is True  # a tuple is not what orjson gives: judged by the strict path
    assert fast({1: 2}) is True
    deep: list = []
    cur = deep
    for _ in range(2000):
        cur.append([])
        cur = cur[0]
    assert fast(deep) is True
