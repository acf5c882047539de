"""Manifest.from_dict / from_bytes and the part-proof checks on malformed documents: a clear
BadInputError naming the field (or ProofError when a stated root is wrong), never KeyError /
TypeError / ValueError."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from ailedger.errors import AiledgerError, BadInputError, ProofError
from ailedger.provenance.manifest import (
    Chunk,
    FileEntry,
    Manifest,
    Tensor,
    verify_chunk_list,
    verify_chunk_proof,
)


def _m():
    a = b"0123456789abcdef"
    ca = (Chunk(0, 8, hashlib.sha256(a[:8]).digest()), Chunk(8, 8, hashlib.sha256(a[8:]).digest()))
    return Manifest.build([FileEntry("a.safetensors", 16, ca, (Tensor("w", "F32", (2,), 8, 16, 1, 1),)),
                           FileEntry("b", 0, ())], 8)


M = _m()
DOC = M.to_dict()

EDITS = {
    "no chunk_size": lambda d: d.pop("chunk_size"),
    "chunk_size text": lambda d: d.__setitem__("chunk_size", "8"),
    "chunk_size zero": lambda d: d.__setitem__("chunk_size", 0),
    "files an object": lambda d: d.__setitem__("files", {"a": 1}),
    "files a number": lambda d: d.__setitem__("files", 5),
    "file a list": lambda d: d["files"].__setitem__(0, []),
    "chunks a number": lambda d: d["files"][0].__setitem__("chunks", 3),
    "tensors a number": lambda d: d["files"][0].__setitem__("tensors", 3),
    "tensor a string": lambda d: d["files"][0].__setitem__("tensors", ["w"]),
    "tensor without name": lambda d: d["files"][0]["tensors"][0].pop("name"),
    "tensor shape text": lambda d: d["files"][0]["tensors"][0].__setitem__("shape", "2"),
    "tensor shape of text": lambda d: d["files"][0]["tensors"][0].__setitem__("shape", ["2"]),
    "tensor beyond the file": lambda d: d["files"][0]["tensors"][0].__setitem__("end", 99),
    "tensor beyond the chunks": lambda d: d["files"][0]["tensors"][0].__setitem__("n_chunks", 9),
    "tensor begin bool": lambda d: d["files"][0]["tensors"][0].__setitem__("begin", False),
    "path a number": lambda d: d["files"][0].__setitem__("path", 1),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_malformed_manifest_is_bad_input(edit):
    d = copy.deepcopy(DOC)
    EDITS[edit](d)
    with pytest.raises(BadInputError) as ei:
        Manifest.from_dict(d)
    assert ei.value.field
    with pytest.raises(BadInputError):
        Manifest.from_bytes(json.dumps(d).encode())


def test_wrong_root_is_a_proof_error_and_good_documents_load():
    assert Manifest.from_dict(copy.deepcopy(DOC)).root == M.root
    d = copy.deepcopy(DOC)
    d["root"] = "00" * 32
    with pytest.raises(ProofError):
        Manifest.from_dict(d)


@pytest.mark.parametrize("proof", [M.file_proof("a.safetensors"), M.chunk_proof("a.safetensors", 1),
                                   M.file_proof("b")])
def test_part_proofs_any_field_removed_or_retyped(proof):
    for key in list(proof):
        for value in (None, "x", 1.5, [], {}, -1, True, ["zz"]):
            d = copy.deepcopy(proof)
            d[key] = value
            try:
                if "chunk" in d:
                    verify_chunk_proof(d, b"89abcdef", M.root)
                else:
                    verify_chunk_list(d, M.root)
            except AiledgerError:
                pass
        d = copy.deepcopy(proof)
        del d[key]
        with pytest.raises(AiledgerError):
            verify_chunk_proof(d, b"89abcdef", M.root) if "chunk" in proof else verify_chunk_list(d, M.root)
