"""A source-removal proof counts only when the dataset's committer signed the removal and the new
commitment (docs/authority.md): a stranger's "X was removed from your dataset" does not verify."""

from __future__ import annotations

import pytest

from ailedger.errors import NotAuthorisedError, ProofError
from ailedger.provenance import commit_dataset
from ailedger.screening.removal import remove_paths, verify_removal_proof
from ailedger.tlog.ledger import Ledger


@pytest.fixture
def setup(tmp_path):
    led = Ledger.init(tmp_path / "l", origin="test.example/removal")
    a, b = tmp_path / "a", tmp_path / "b"
    for d, n in ((a, 3), (b, 2)):
        d.mkdir()
        for i in range(n):
            (d / f"{i}.txt").write_text(f"{d.name} record {i}\n")
    alice = led.identities.create("alice")
    mallory = led.identities.create("mallory")
    commit_dataset(led, [str(a), str(b)], "books", alice, workers=1)
    yield led, a, b, alice, mallory
    led.close()


def test_the_committers_removal_verifies(setup):
    led, a, b, alice, _ = setup
    proof, info = remove_paths(led, alice, "books", [str(a), str(b)], [str(b)], new_name="books-v2", workers=1)
    assert verify_removal_proof(proof, led.vkey)["ok"] and info["removed_keys"] == 2


def test_a_strangers_removal_is_refused_at_ingest(setup):
    led, a, b, _alice, mallory = setup
    size = led.size
    with pytest.raises(NotAuthorisedError, match="original committer"):
        remove_paths(led, mallory, "books", [str(a), str(b)], [str(b)], new_name="books-v2", workers=1)
    assert led.size == size


def test_a_strangers_removal_does_not_verify(setup, monkeypatch):
    """Had it reached the log another way (an older log, another writer: ingest checks switched off
    here), the proof built on it still fails."""
    led, a, b, alice, mallory = setup
    monkeypatch.setattr(led, "admit", lambda entries, **kw: [None] * len(entries))
    proof, _ = remove_paths(led, mallory, "books", [str(a), str(b)], [str(b)], new_name="books-v2", workers=1)
    with pytest.raises(ProofError, match="committer") as ei:
        verify_removal_proof(proof, led.vkey)
    assert ei.value.expected == alice.did and ei.value.found == [mallory.did]
