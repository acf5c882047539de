"""entry_terms' short path (bodies without name/manifest/root/sha256/cid, types without record terms) gives
exactly the terms of the general path, for random bodies and extras."""

from __future__ import annotations

import random

from ailedger.encoding.records import SignedEntry
from ailedger.tlog.ledger import _all_terms, entry_terms

_VALUES = ["a", "", "x" * 300, 7, None, ["s1", "s1", 3, "s2"], {"root": "ab" * 32}, "ab" * 32, ["s" * 299, "s" * 300]]
_KEYS = ["subjects", "i", "note", "name", "manifest", "root", "sha256", "cid", "dataset", "record"]
_TYPES = ["bench.event", "note", "model.register", "dataset.commit", "blob.put", "blob.attach", "identity.register"]


def _entry(t: str, body: dict) -> SignedEntry:
    e = object.__new__(SignedEntry)
    object.__setattr__(e, "type", t)
    object.__setattr__(e, "signer", "did:key:z6Mkexample")
    object.__setattr__(e, "body", body)
    return e


def test_short_path_equals_general_path():
    rng = random.Random(21)
    short = 0
    for _ in range(3000):
        body = {k: rng.choice(_VALUES) for k in rng.sample(_KEYS, rng.randrange(0, 5))}
        if rng.random() < 0.4:
            body["subjects"] = [rng.choice(["s1", "s2", "did:key:z", 4, "t" * 301]) for _ in range(rng.randrange(0, 4))]
        t = rng.choice(_TYPES)
        extra = tuple(rng.sample(["identity:x", "subject:s1", "type:note", "revoked:y"], rng.randrange(0, 3)))
        e = _entry(t, body)
        want = _all_terms(t, ["type:" + t, "signer:" + e.signer], body, extra)
        assert entry_terms(e, extra) == want, (t, body, extra)
        short += not ({"name", "manifest", "root", "sha256", "cid"} & set(body))
    assert short > 500  # the short path was taken often
