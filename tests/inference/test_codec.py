from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.encoding.canonical import canonical_json
from ailedger.inference.codec import canonical_payload, record_bytes

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_fast_canonical_payload_is_rfc8785(v):
    assert canonical_payload(v) == canonical_json(v)


def test_tricky_numbers_and_keys():
    for v in [1.0, -0.0, 1e-7, 1e21, 1e20, 5e-324, [0.1, 1.5, 2.0], {"\ue000": 1, "\U0001f600": 2},
              {"a.0": "x.0", "e": "1e5"}, "1.0", math.pi, 1e-5, 1e-6, 1e16, 1e21, 1e22, 123456789012345678.0,
              0.1 + 0.2, 1.7976931348623157e308, -1e-7, [0.05, 1.01, 10.0], {"k": "e-mail e+ 3e-5 text"},
              {"t": "caf\u00e9 \u65e5\u672c"}, 2**60, -(2**60)]:
        assert canonical_payload(v) == canonical_json(v), v


def test_numpy_and_bytes_payloads():
    import numpy as np

    assert canonical_payload(np.array([[1.0, 2.5]])) == b"[[1,2.5]]"
    assert canonical_payload(np.float32(0.5)) == b"0.5"
    assert canonical_payload(b"\x00\x01") == b'{"$base64":"AAE="}'


def test_record_bytes_are_canonical():
    got = record_bytes("0123456789ab-1", "iris", 3, "caller \u00e9\"x", "2026-01-02T03:04:05.000006Z",
                       "aa" * 32, None, "ok", canonical_payload({"b": 1.0, "a": [1e-7]}))
    import json

    obj = json.loads(got)
    assert canonical_json(obj) == got
    assert obj["out"] is None and obj["meta"] == {"a": [1e-7], "b": 1}


def test_level_wise_root_matches_rfc6962():
    import hashlib

    from ailedger.inference.sdk import merkle_root
    from ailedger.tlog.merkle import root_from_leaf_hashes

    for n in list(range(40)) + [255, 256, 257, 1000]:
        leaves = [hashlib.sha256(b"%d" % i).digest() for i in range(n)]
        assert merkle_root(leaves) == root_from_leaf_hashes(leaves), n


def test_batch_paths_match_core_plan_and_verify():
    import hashlib

    from ailedger.inference.receipts import _reference_path, batch_inclusion_path
    from ailedger.tlog.merkle import root_from_leaf_hashes, verify_inclusion

    for n in [1, 2, 3, 5, 8, 13, 64, 100]:
        leaves = [hashlib.sha256(b"%d" % i).digest() for i in range(n)]
        root = root_from_leaf_hashes(leaves)
        for pos in range(n):
            p = batch_inclusion_path(leaves, pos)
            assert p == _reference_path(leaves, pos)
            verify_inclusion(pos, n, leaves[pos], p, root)
