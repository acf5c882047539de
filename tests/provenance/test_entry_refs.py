"""Every "#N" reference a service takes is parsed one way (core.refs): `#²` (str.isdigit is true for
superscripts) or thousands of digits used to reach int() and escape as a bare ValueError."""

from __future__ import annotations

import json

import pytest

from ailedger.errors import BadInputError
from ailedger.provenance import commit_dataset, find_dataset, find_model, register_model, verify_model

BAD = ["#²", "#\u0663", "#" + "9" * 5000]


@pytest.fixture
def committed(ledger, alice, tmp_path, model_dir):
    f = tmp_path / "a.jsonl"
    f.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(5)))
    commit_dataset(ledger, [str(f)], "corpus", alice)
    register_model(ledger, model_dir, "m", alice)
    return f


@pytest.mark.parametrize("ref", BAD)
def test_find_dataset(ledger, committed, ref):
    with pytest.raises(BadInputError, match="dataset: .* is not an entry reference") as ei:
        find_dataset(ledger, ref)
    assert ei.value.field == "dataset"


@pytest.mark.parametrize("ref", BAD)
def test_supersedes(ledger, alice, committed, ref):
    n = ledger.size
    with pytest.raises(BadInputError, match="supersedes: .* is not an entry reference"):
        commit_dataset(ledger, [str(committed)], "corpus", alice, supersedes=ref)
    assert ledger.size == n


@pytest.mark.parametrize("ref", BAD)
def test_models(ledger, committed, model_dir, ref):
    with pytest.raises(BadInputError, match="model: .* is not an entry reference"):
        find_model(ledger, ref)
    with pytest.raises(BadInputError, match="model: .* is not an entry reference"):
        verify_model(ledger, model_dir, name=ref)
    with pytest.raises(BadInputError, match="dataset: .* is not an entry reference"):
        register_model(ledger, model_dir, "m2", ledger.identities.load("alice"), datasets=[ref])


def test_good_references_still_work(ledger, committed, model_dir):
    assert find_dataset(ledger, "#0")[0] == 0
    assert verify_model(ledger, model_dir, name="#1")["ok"]
