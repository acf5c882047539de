"""The C index terms of canonical entries (``_speedups.entry_terms_many``, used by ``ledger.entry_terms_batch``)
equal ``ledger.entry_terms`` of the parsed entries, term for term, or are None (left to Python) -- for a
corpus of every record type the code and the tests write, and for random entries (hypothesis)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.encoding import fasthash
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry, parse_entry
from ailedger.tlog import ledger
from ailedger.tlog.ledger import entry_terms, entry_terms_batch

pytestmark = pytest.mark.skipif(fasthash.entry_terms_many is None, reason="the C module _speedups is not built")

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


def _leaf(type_: str, body: dict) -> bytes:
    return build_entry(type_, body, _DID, TIME, _KEY.sign).leaf_bytes


def _check(leaves: list[bytes]) -> int:
    """Assert C == Python for each leaf; return how many the C code took."""
    assert fasthash.entry_terms_many is not None
    got = fasthash.entry_terms_many(leaves)
    entries = [parse_entry(x) for x in leaves]
    want = [entry_terms(e) for e in entries]
    taken = 0
    for leaf, g, w in zip(leaves, got, want):
        if g is not None:
            taken += 1
            assert type(g) is tuple and all(type(t) is str for t in g), leaf
            assert g == w, leaf
            assert [t.encode("utf-8", "surrogatepass") for t in g] == [t.encode("utf-8", "surrogatepass") for t in w]
    assert entry_terms_batch(entries) == want
    return taken


def test_corpus_of_every_type():
    leaves = [_leaf(t, b) for t in TYPES for b in BODIES]
    taken = _check(leaves)
    assert taken > len(leaves) // 3  # the common entries were taken in C


def test_what_goes_to_python():
    f = fasthash.entry_terms_many
    assert f is not None
    for t in ("model.register", "dataset.commit", "dataset.screening", "blob.put", "identity.register",
              "identity.revoke"):
        assert f([_leaf(t, {"subjects": ["a"]})]) == [None], t
    for b in ({"name": "n"}, {"root": H}, {"sha256": 1}, {"manifest": {}}, {"cid": "c"}, {"subjects": ["a\\b"]},
              {"subjects": [f"s{i}" for i in range(65)]}):
        assert f([_leaf("note", b)]) == [None], b
    good = _leaf("note", {"subjects": ["a", "a", "b"]})
    assert f([good]) == [("type:note", "signer:" + _DID, "subject:a", "subject:b")]
    # anything not an entry the checker would take: Python decides
    for bad in (b"", b"{}", b"x" * 100, good[:-1], good + b" ", good.replace(b'"v":1', b'"v":1.0'),
                good.replace(b'"v":1', b'"v":0'), b" " + good, good.replace(b'"time":"2026', b'"time":"2O26'),
                json.dumps(json.loads(good)).encode()):
        assert f([bad]) == [None], bad
    with pytest.raises(TypeError):
        f([good, "x"])  # type: ignore[list-item]


def test_many_keep_order_and_mix_with_python():
    leaves = [_leaf(TYPES[i % len(TYPES)], BODIES[i % len(BODIES)]) for i in range(500)]
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


def test_python_fallback_when_c_missing(monkeypatch):
    entries = [parse_entry(_leaf(t, b)) for t in TYPES[:6] for b in BODIES[:6]]
    want = entry_terms_batch(entries)
    monkeypatch.setattr(ledger, "_c_terms", None)
    assert entry_terms_batch(entries) == want == [entry_terms(e) for e in entries]
