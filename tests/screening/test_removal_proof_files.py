"""A source-removal proof file with a field missing or of the wrong kind is a clear error (never KeyError /
AttributeError), and the indexes it shows are the ones its inclusion proofs were verified at."""

from __future__ import annotations

import copy
import json

import pytest

from ailedger.errors import AiledgerError, ProofError
from ailedger.provenance import commit_dataset
from ailedger.screening.removal import remove_paths, verify_removal_proof
from ailedger.tlog.ledger import Ledger


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("removal")
    led = Ledger.init(tmp / "l", origin="test.example/removal-files")
    a, b = tmp / "a", tmp / "b"
    for d, n in ((a, 3), (b, 2)):
        d.mkdir()
        for i in range(n):
            (d / f"{i}.txt").write_text(f"{d.name} record {i}\n")
    alice = led.identities.create("alice")
    led.append_record("note", {"text": "so that no index is 0"}, alice)
    commit_dataset(led, [str(a), str(b)], "books", alice, workers=1)
    proof, _ = remove_paths(led, alice, "books", [str(a), str(b)], [str(b)], new_name="books-v2", workers=1)
    yield led, proof
    led.close()


def _split(proof):
    head, _, text = proof.partition(b"\n")
    return head, json.loads(text)


def _paths(d, path=()):
    if isinstance(d, dict):
        for k in list(d):
            yield (*path, k)
            yield from _paths(d[k], (*path, k))
    elif isinstance(d, list):
        for i in range(min(len(d), 2)):
            yield (*path, i)
            yield from _paths(d[i], (*path, i))


def test_any_field_removed_or_retyped_is_a_clear_error(made):
    led, proof = made
    head, doc = _split(proof)
    assert verify_removal_proof(proof, led.vkey)["ok"]
    for p in _paths(doc):
        for v in ("DEL", None, "x", [], {}, -1, True):
            d = copy.deepcopy(doc)
            node = d
            for k in p[:-1]:
                node = node[k]
            if v == "DEL":
                node.pop(p[-1])
            else:
                node[p[-1]] = v
            try:
                verify_removal_proof(head + b"\n" + json.dumps(d).encode(), led.vkey)
            except AiledgerError:
                pass


@pytest.mark.parametrize("part", ["old", "new", "removal"])
def test_edited_index_is_refused(made, part):
    led, proof = made
    head, doc = _split(proof)
    doc[part]["index"] += 1
    with pytest.raises(ProofError, match="inclusion proof is for entry"):
        verify_removal_proof(head + b"\n" + json.dumps(doc).encode(), led.vkey)
