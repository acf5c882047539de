"""services.screening.ledger_log: screening records found whichever path logged them; "#N" references
parsed by core.refs; a malformed or edited screening proof is a clear error."""

from __future__ import annotations

import base64
import json

import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import AiledgerError, BadInputError, ProofError
from ailedger.screening.ledger_log import (
    SCREENING_PROOF,
    log_screening,
    screening_proof,
    verify_screening_proof,
)
from ailedger.tlog.ledger import Ledger, entry_terms
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow

REPORT = {"verdict": "PASS", "dataset": {"sha256": "ab" * 32, "records": 3},
          "summary": {"flagged": 0, "by_reason": {}, "backdoor_suspected_classes": []},
          "sources": [{"source": "a", "records": 3, "flagged": 0, "label_flagged": 0, "verdict": "PASS"}]}


@pytest.fixture
def led(tmp_path):
    lg = Ledger.init(tmp_path / "l", origin="test.example/screening")
    yield lg
    lg.close()


@pytest.mark.parametrize("ref", ["#²", "#\u0663", "#" + "9" * 5000])
def test_malformed_reference_is_bad_input(led, ref):
    with pytest.raises(BadInputError, match="screening: .* is not an entry reference") as ei:
        screening_proof(led, ref)
    assert ei.value.field == "screening"


def test_screening_logged_by_another_path_is_found_by_dataset(led):
    """A signed screening entry appended with only the terms every write path indexes (as `POST
    /v1/entries` or `ailedger append` do) is found by its dataset's name."""
    alice = led.identities.create("alice")
    logged = log_screening(led, alice, REPORT, dataset="corpus", html="<p>")  # stores the report file beside the ledger
    e = led.make_entry("dataset.screening", {**logged["body"], "note": "again"}, alice)
    idx = led.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])[0].index
    data, info = screening_proof(led, "corpus")
    assert info["index"] == idx
    assert verify_screening_proof(data, led.vkey)[0]["screening_index"] == idx


def _doc(data):
    return json.loads(data[len(SCREENING_PROOF) + 1:])


def _file(doc):
    return (SCREENING_PROOF + "\n").encode() + canonical_json(doc) + b"\n"


def test_edited_index_is_refused(led):
    alice = led.identities.create("alice")
    log_screening(led, alice, REPORT, dataset="corpus", html="<p>")
    data, _ = screening_proof(led, "corpus")
    doc = _doc(data)
    doc["screening"]["index"] += 1
    with pytest.raises(ProofError, match="inclusion proof is for entry"):
        verify_screening_proof(_file(doc), led.vkey)


@pytest.mark.parametrize("edit", [
    lambda d: d.pop("screening"),
    lambda d: d.__setitem__("screening", []),
    lambda d: d.__setitem__("screening", "x"),
    lambda d: d["screening"].pop("entry"),
    lambda d: d["screening"].__setitem__("tlog_proof", 7),
    lambda d: d["screening"].__setitem__("entry", "%%%"),
    lambda d: d.__setitem__("report", 5),
    lambda d: d.__setitem__("report", "%%%"),
    lambda d: d.__setitem__("report", base64.b64encode(b"[1]").decode()),
    lambda d: d.__setitem__("dataset_commit", {"entry": 1}),
])
def test_malformed_proof_is_a_clear_error(led, edit):
    alice = led.identities.create("alice")
    log_screening(led, alice, REPORT, dataset="corpus", html="<p>")
    data, _ = screening_proof(led, "corpus")
    doc = _doc(data)
    edit(doc)
    with pytest.raises(AiledgerError):
        verify_screening_proof(_file(doc), led.vkey)
