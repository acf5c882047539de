"""The compiled schema validator (fastjsonschema) and the reference one (jsonschema) give the same verdict on
GS1's published examples and on hundreds of seeded mutations of them; both check the schema's two formats
(uri, date-time) with the same functions; a document is refused alike whichever path checks it."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import fastjsonschema
import pytest

from ailedger.errors import BadInputError
from ailedger.supplychain import events as E

from . import chain as c

VECTORS = Path(__file__).parent / "vectors"
DOCS = [json.loads(p.read_text()) for p in sorted(VECTORS.glob("*.jsonld"))] + [c.chain()]
BAD_VALUES = [None, 5, -1.5, True, "", "has space", "urn:x:ok", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00Z",
              "2026-01-01 00:00:00", "ADD", "DELETE", "shipping", [], {}, ["urn:x:1", "urn:x:1"], {"id": "x y"},
              "+01:00", "+15:00", "ni:///sha-256;00?ver=CBV2.0", "\u00e9t\u00e9:x"]


def _paths(x, path=()):
    yield path
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, (*path, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, (*path, i))


def _mutate(doc, rng):
    doc = copy.deepcopy(doc)
    paths = [p for p in _paths(doc) if p]
    p = rng.choice(paths)
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    r = rng.random()
    if r < 0.25 and isinstance(parent, dict):
        del parent[p[-1]]
    elif r < 0.35 and isinstance(parent, dict):
        parent[rng.choice(["extra", "ex:extra", "has space:x", "sensorReport", "action"])] = rng.choice(BAD_VALUES)
    else:
        parent[p[-1]] = copy.deepcopy(rng.choice(BAD_VALUES))
    return doc


def _verdicts(doc):
    ref = not list(E._validator().iter_errors(doc))
    try:
        E._compiled()(doc)
        fast = True
    except fastjsonschema.JsonSchemaException:
        fast = False
    return ref, fast


def test_same_verdict_on_the_published_examples():
    for doc in DOCS:
        assert _verdicts(doc) == (True, True)


def test_same_verdict_on_seeded_mutations():
    rng = random.Random(29)
    n = refused = 0
    for _ in range(500):
        doc = _mutate(rng.choice(DOCS), rng)
        ref, fast = _verdicts(doc)
        assert ref == fast, json.dumps(doc)[:2000]
        n += 1
        refused += not ref
    assert refused > n // 4  # the mutations do reach the schema's checks


@pytest.mark.parametrize(("field", "value"), [("eventTime", "yesterday"), ("eventTime", "2026-02-30T10:00:00Z"),
                                              ("readPoint", {"id": "not a uri"}), ("epcList", ["urn:x:1", "a b"])])
def test_formats_are_checked_by_either_path(field, value):
    one = c.ship([c.PALLET])
    one[field] = value
    small = c.doc(one)
    big = c.doc(*[c.ship([c.product(n)], minute=n % 60) for n in range(E._SMALL)], one)
    for doc in (small, big):
        with pytest.raises(BadInputError, match="not valid EPCIS 2.0"):
            E.validate_document(doc)
