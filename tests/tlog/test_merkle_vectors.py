"""Every public RFC 6962 vector (transparency-dev/merkle testdata), negative cases included."""

import base64
import json
from pathlib import Path

import pytest

from ailedger.errors import ProofError
from ailedger.tlog.merkle import verify_consistency, verify_inclusion

# vendored in the repository (source and licence: tests/vectors/rfc6962-merkle/README.md, LICENSE)
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962-merkle"


def _b64(s):
    return base64.b64decode(s) if s else b""


def _cases(kind):
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no vectors found under {VECTORS / kind}"
    return [pytest.param(f, id=str(f.relative_to(VECTORS))) for f in files]


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path):
    v = json.loads(path.read_text())
    proof = [_b64(p) for p in (v["proof"] or [])]
    args = (v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), proof, _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path):
    v = json.loads(path.read_text())
    proof = [_b64(p) for p in (v["proof"] or [])]
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), proof)
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_vector_count_is_substantial():
    assert len(list(VECTORS.rglob("*.json"))) > 100
