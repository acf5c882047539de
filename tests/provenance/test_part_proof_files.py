"""A model part proof file that is malformed is refused with a clear error (BadInputError: exit 2), one
that is well formed but does not hold fails verification (exit 1), and what is shown is what was
verified.  These used to end in KeyError / binascii.Error / TypeError tracebacks."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, ProofError, VerificationError
from ailedger.provenance import MODEL_PART_PROOF, prove_model_part, register_model, verify_model_part

CS = 1024
HEAD = (MODEL_PART_PROOF + "\n").encode()


def _doc(data):
    return json.loads(data[len(HEAD):])


def _file(doc):
    return HEAD + canonical_json(doc) + b"\n"


@pytest.fixture
def proofs(ledger, alice, model_dir):
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    return (prove_model_part(ledger, "tiny", "model.safetensors"),
            prove_model_part(ledger, "tiny", "model.safetensors", chunk=2))


# edits that leave a document that is not a model part proof at all: BadInputError (exit 2)
NOT_A_PROOF = {
    "no entry": lambda d: d.pop("entry"),
    "entry not base64": lambda d: d.__setitem__("entry", "%%%"),
    "entry a number": lambda d: d.__setitem__("entry", 7),
    "no tlog_proof": lambda d: d.pop("tlog_proof"),
    "tlog_proof a list": lambda d: d.__setitem__("tlog_proof", []),
    "no manifest_root": lambda d: d.pop("manifest_root"),
    "manifest_root short": lambda d: d.__setitem__("manifest_root", "ab"),
    "file a string": lambda d: d.__setitem__("file", "x"),
    "file without size": lambda d: d["file"].pop("size"),
    "file size text": lambda d: d["file"].__setitem__("size", "12"),
    "file_index bool": lambda d: d.__setitem__("file_index", True),
    "file_path not a list": lambda d: d.__setitem__("file_path", {}),
    "file_path holds a number": lambda d: d.__setitem__("file_path", [1]),
    "file_path too long": lambda d: d.__setitem__("file_path", ["00" * 32] * 65),
    "chunk_digests missing": lambda d: d.pop("chunk_digests", None) if "chunk_digests" in d else d.pop("chunk"),
    "offsets fall": lambda d: d.__setitem__("chunk_offsets", d["chunk_offsets"][::-1])
    if "chunk_offsets" in d else d["chunk"].__setitem__("offset", -1),
    "document a list": lambda d: [d.clear()],
}


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("edit", sorted(NOT_A_PROOF))
def test_not_a_proof_is_bad_input(ledger, model_dir, proofs, which, edit):
    doc = _doc(proofs[which])
    NOT_A_PROOF[edit](doc)
    data = _file(doc) if doc else HEAD + b"[]\n"
    with pytest.raises(BadInputError) as ei:
        verify_model_part(data, model_dir / "model.safetensors", ledger.vkey)
    assert not isinstance(ei.value, VerificationError) and ei.value.field


def test_edited_index_is_refused_and_the_verified_one_shown(ledger, model_dir, proofs):
    doc = _doc(proofs[1])
    logged = doc["index"]
    doc["index"] = logged + 1
    with pytest.raises(ProofError, match="inclusion proof is for entry"):
        verify_model_part(_file(doc), model_dir / "model.safetensors", ledger.vkey)
    assert verify_model_part(proofs[1], model_dir / "model.safetensors", ledger.vkey)["index"] == logged


def test_entry_that_is_not_a_registration_with_a_manifest(ledger, alice, model_dir, proofs):
    """A logged model.register whose body has no manifest (anyone may log one over HTTP): the proof
    fails verification, it does not crash."""
    res = ledger.append_record("model.register", {"name": "odd"}, alice)
    doc = _doc(proofs[0])
    doc["entry"] = base64.b64encode(ledger.entry_bytes(res.index)).decode()
    doc["tlog_proof"] = ledger.prove(res.index).decode()
    doc["index"] = res.index
    with pytest.raises(ProofError, match="manifest root is not the logged one"):
        verify_model_part(_file(doc), model_dir / "model.safetensors", ledger.vkey)


def test_chunk_length_beyond_the_file_is_read_streamed_and_fails(ledger, model_dir, proofs, tmp_path):
    doc = _doc(proofs[1])
    doc["chunk"]["length"] = 2**40  # a terabyte: must not be read into memory
    with pytest.raises(ProofError):
        verify_model_part(_file(doc), model_dir / "model.safetensors", ledger.vkey)


@pytest.mark.parametrize("data", [b"", b"garbage", HEAD, HEAD + b"{", HEAD + b"null", HEAD + b"\xff\xfe"])
def test_garbage(ledger, model_dir, data):
    with pytest.raises(BadInputError):
        verify_model_part(data, model_dir / "model.safetensors", ledger.vkey)


def _cli(*args):
    return subprocess.run([sys.executable, "-c", "from ailedger.cli.main import main; main()", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_exit_codes(ledger, model_dir, proofs, tmp_path):
    vk = ledger.vkey
    good = tmp_path / "good.proof"
    good.write_bytes(proofs[0])
    assert _cli("model", "verify-part", str(good), str(model_dir / "model.safetensors"), "--vkey", vk).returncode == 0
    # not a proof at all: exit 2, one error line
    doc = _doc(proofs[0])
    doc.pop("entry")
    bad = tmp_path / "bad.proof"
    bad.write_bytes(_file(doc))
    p = _cli("model", "verify-part", str(bad), str(model_dir / "model.safetensors"), "--vkey", vk)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.startswith("error:"), p.stderr
    # a proof that does not hold: exit 1
    doc = _doc(proofs[0])
    doc["chunk_digests"][0] = "00" * 32
    bad.write_bytes(_file(doc))
    p = _cli("model", "verify-part", str(bad), str(model_dir / "model.safetensors"), "--vkey", vk)
    assert p.returncode == 1 and "Traceback" not in p.stderr + p.stdout, (p.stdout, p.stderr)
