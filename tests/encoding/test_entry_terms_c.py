"""The C pass over a canonical batch (``_speedups.check_entries`` through ``records.fast_parse_rows``, used by
``Ingestor._prepare_part``/``_merge``) gives exactly what the Python path gives: the same verdicts and entries
as ``fast_parse_entries``, the RFC 6962 leaf hash of every leaf, and ``ledger.entry_terms`` of every entry it
makes terms for (None: Python makes them) -- for a corpus of every record type the code and the tests write,
for random entries (hypothesis), and end to end: the rows ``Ingestor.prepare`` gives the store are the same
with and without the C pass."""

from __future__ import annotations

import hashlib
import json
import time

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.encoding import _speedups, records
from ailedger.encoding.canonical import parse_canonical
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry, fast_parse_entries, fast_parse_rows, parse_entry
from ailedger.errors import AiledgerError
from ailedger.tlog import ingest
from ailedger.tlog.ingest import Ingestor, IngestPolicy
from ailedger.tlog.ledger import Ledger, entry_terms

pytestmark = pytest.mark.skipif(records._check_entries is None, reason="the C module _speedups is not built")

_KEY = Ed25519PrivateKey.generate()
_DID = did_from_public_key(_KEY.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw))
TIME = "2026-01-02T03:04:05.678Z"
H = "ab" * 32
# every type the source and the tests write (grep of build_entry calls and *_TYPE constants), and a few more
TYPES = ["note", "bench.event", "model.card", "model.eval", "model.register", "model.zk", "dataset.commit",
         "dataset.screening", "gov.vote", "gov.propose", "subnet.commit", "subnet.epoch", "subnet.register",
         "subnet.params", "blob.put", "blob.attach", "blob.supersede", "identity.register", "identity.revoke",
         "inference.batch", "inference.erasure", "inference.zk", "eval.commit", "eval.reveal", "mpc.commit",
         "agent.action", "agent.finding", "agent.backtest.plan", "agent.backtest.result", "dao.advice",
         "epcis.event", "epcis.allocation", "content.register", "contract.audit", "rwa.series", "log.genesis",
         "org.ailedger.record", "x", "blob", "blobs.x", "blob.x-y", "dataset.commitx"]
BODIES: list[dict] = [
    {}, {"i": 1}, {"subjects": []}, {"subjects": ["a"]}, {"subjects": ["a", "b", "a", 3, None, ["a"], {"a": 1}]},
    {"subjects": "a"}, {"subjects": {"a": "b"}}, {"subjects": None}, {"subjects": [""]},
    {"subjects": ["s" * 299, "s" * 300, "é" * 299, "é" * 300, "\U0001f600" * 299, "\U0001f600" * 300]},
    {"subjects": ['a"b', "a\\b", "a\nb", "\u2028", "\x7f", "\x00", "\ue000"]},
    {"subjects": [f"s{i}" for i in range(70)]}, {"subjects": [f"s{i}" for i in range(64)]},
    {"subjects": ["did:key:z6Mk", "did:key:z6Mk"]}, {"a": [1, [2, {"subjects": ["x"]}]], "subjects": ["y"], "z": "w"},
    {"name": "n"}, {"name": ""}, {"name": "n" * 300}, {"root": H}, {"root": "AB" * 32}, {"sha256": H},
    {"manifest": {"root": H}}, {"manifest": "x"}, {"cid": "bafy"}, {"cid": 3}, {"did": _DID, "name": "me"},
    {"did": _DID}, {"dataset": "d", "record": 1}, {"artifact": "a", "cid": "c", "record": 0},
    {"lineage": {"base_model": {"name": "b"}, "datasets": [{"name": "d"}]}, "name": "m"},
    {"subjectsx": ["a"], "subject": ["b"], "Subjects": ["c"]}, {"\u00e9": ["a"], "subjects": ["b"]},
    {"k": "v" * 5000, "subjects": ["a"]}, {"n": -5, "t": True, "f": False, "z": None, "subjects": ["q"]},
]


def _leaf(type_: str, body: dict, key: Ed25519PrivateKey = _KEY) -> bytes:
    return build_entry(type_, body, _DID, TIME, key.sign).leaf_bytes


def _python(leaf: bytes) -> tuple[str, ...] | None:
    try:
        return entry_terms(parse_entry(leaf))
    except (AiledgerError, RecursionError):
        return None


def _check(leaves: list[bytes]) -> int:
    """Assert the C pass equals the Python path on each leaf; return how many entries the C code made terms for."""
    made = fast_parse_rows(leaves)
    assert made is not None
    entries, hashes, terms = made
    assert _speedups.check_entries(leaves)[0] == _speedups.verify_entries(leaves)
    assert entries == fast_parse_entries(leaves)
    assert hashes == [hashlib.sha256(b"\x00" + x).digest() for x in leaves]
    taken = 0
    for leaf, e, t in zip(leaves, entries, terms):
        if t is None:
            continue
        taken += 1
        assert e is not None, leaf  # terms only for entries the checker took
        assert type(t) is tuple and all(type(x) is str for x in t), leaf
        want = _python(leaf)
        assert t == want, leaf
        assert [x.encode() for x in t] == [x.encode() for x in want]  # type: ignore[union-attr]
    return taken


def test_corpus_of_every_type():
    leaves = [_leaf(t, b) for t in TYPES for b in BODIES]
    taken = _check(leaves)
    assert taken > len(leaves) // 3  # the common entries were made in C


def test_what_goes_to_python():
    def terms(leaf: bytes) -> tuple[str, ...] | None:
        return _speedups.check_entries([leaf])[2][0]

    for t in ("model.register", "dataset.commit", "dataset.screening", "blob.put", "identity.register",
              "identity.revoke"):
        assert terms(_leaf(t, {"subjects": ["a"]})) is None, t
    for b in ({"name": "n"}, {"root": H}, {"sha256": 1}, {"manifest": {}}, {"cid": "c"}, {"subjects": ["a\\b"]},
              {"subjects": [f"s{i}" for i in range(9)]}):
        assert terms(_leaf("note", b)) is None, b
    good = _leaf("note", {"subjects": ["a", "a", "b", "é"]})
    assert terms(good) == ("type:note", "signer:" + _DID, "subject:a", "subject:b", "subject:é")
    # not an entry the checker takes (or a bad signature): no terms, Python decides
    for bad in (b"", b"{}", b"x" * 100, good[:-1], good + b" ", good.replace(b'"v":1', b'"v":1.0'),
                good.replace(b'"v":1', b'"v":0'), b" " + good, good.replace(b'"time":"2026', b'"time":"2O26'),
                json.dumps(json.loads(good)).encode(), _leaf("note", {"subjects": ["a"]}).replace(b'"a"', b'"b"')):
        assert terms(bad) is None, bad
    with pytest.raises(TypeError):
        _speedups.check_entries([good, "x"])  # type: ignore[list-item]
    assert _speedups.check_entries([]) == (b"", [], [])


def test_many_keep_order_and_mix_with_python():
    other = Ed25519PrivateKey.generate()
    leaves = [_leaf(TYPES[i % len(TYPES)], BODIES[i % len(BODIES)], _KEY if i % 7 else other) for i in range(500)]
    _check(leaves)


_text = st.text(max_size=8) | st.sampled_from(["a", "é", "\\", '"', "\n", "\x00", "\U0001f600", "x" * 299, "y" * 300])
_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53) | _text
_values = st.recursive(_scalars, lambda ch: st.lists(ch, max_size=4) | st.dictionaries(_text, ch, max_size=3),
                       max_leaves=12)
_keys = st.sampled_from(["subjects", "name", "root", "cid", "sha256", "manifest", "a", "z", "did", "é"]) | _text
_bodies = st.dictionaries(_keys, _values | st.lists(_text | _scalars, max_size=6), max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TYPES) | st.from_regex(r"[a-z][a-z0-9_-]{0,6}(\.[a-z][a-z0-9_-]{0,6}){0,2}", fullmatch=True),
       _bodies)
def test_random_entries_agree(type_, body):
    _check([_leaf(type_, body)])


def _rows(ing: Ingestor, objs: list) -> list:
    body = orjson.dumps({"entries": objs}, option=orjson.OPT_SORT_KEYS)
    doc = parse_canonical(body)
    assert doc is not None
    return ing.prepare(doc["entries"], batch=True, canonical=True).rows


def test_ingest_rows_equal_with_and_without_the_c_pass(tmp_path, monkeypatch):
    led = Ledger.init(tmp_path / "led", origin="cbatch.example/log")
    try:
        ing = Ingestor(led, policy=IngestPolicy(), clock=time.time)
        batches = [[json.loads(_leaf(t, b)) for b in BODIES] for t in TYPES if not t.startswith("identity.")]
        batches.append([json.loads(_leaf("bench.event", {"i": i, "subjects": [f"sha256:{i:064x}"]}))
                        for i in range(600)])  # large enough for threads in submit_async
        calls: list[int] = []

        def counted(leaves, objs=None):
            calls.append(len(leaves))
            return fast_parse_rows(leaves, objs)

        monkeypatch.setattr(ingest, "fast_parse_rows", counted)
        fast = [_rows(ing, objs) for objs in batches]
        assert sum(calls) == sum(map(len, batches))  # every entry went through the C pass
        monkeypatch.setattr(ingest, "fast_parse_rows", lambda leaves, objs=None: None)
        slow = [_rows(ing, objs) for objs in batches]
        assert fast == slow
        assert all(type(r) is type(s) for f, sl in zip(fast, slow) for r, s in zip(f, sl))
    finally:
        led.close()


def test_prepare_group_equal_with_and_without_the_c_pass(tmp_path, monkeypatch):
    led = Ledger.init(tmp_path / "led", origin="cbatch.example/log")
    try:
        ing = Ingestor(led, policy=IngestPolicy(), clock=time.time)
        leaves = [_leaf(t, b) for t in TYPES[::3] for b in BODIES[::2]]
        leaves.append(_leaf("note", {"subjects": ["a"]}).replace(b'"a"', b'"b"'))  # a bad signature
        leaves.append(_leaf("identity.register", {"did": _DID, "name": "me"}))
        objs = [orjson.loads(x) for x in leaves]

        def run() -> tuple:
            merged, where, rest = ing.prepare_group(leaves, objs)
            assert merged is not None
            return merged.rows, merged.hashes, where, [(i, r.rows if hasattr(r, "rows") else type(r)) for i, r in rest]

        fast = run()
        monkeypatch.setattr(ingest, "fast_parse_rows", lambda leaves, objs=None: None)
        slow = run()
        assert fast == slow
        assert len(fast[2]) > len(leaves) // 2 and len(fast[3]) >= 2
    finally:
        led.close()


_GOOD = [_leaf("note", {"subjects": ["a", "é", "b"], "k": [1, {"x": "y"}]}), _leaf("bench.event", {"i": 3})]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_GOOD), st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=0, max_size=3)),
                                        min_size=1, max_size=3))
def test_mutated_bytes_agree(good, edits):
    """Arbitrary byte edits (bad JSON, cut strings, bad UTF-8): the verdicts stay verify_entries', no terms
    without verdict 1, and the C code reads nothing outside the leaf (run under ASan: see bench/RESULTS.md)."""
    data = bytearray(good)
    for at, new in edits:
        at = min(at, len(data))
        data[at : at + len(new)] = new
    leaf = bytes(data)
    verdicts, hashes, terms = _speedups.check_entries([leaf])
    assert verdicts == _speedups.verify_entries([leaf])
    assert hashes == [hashlib.sha256(b"\x00" + leaf).digest()]
    if verdicts[0] != 1:
        assert terms == [None]
    elif terms[0] is not None:
        assert terms[0] == _python(leaf)
