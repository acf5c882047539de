"""C2SP tlog-proof bundles (``.tlog-proof``): index, inclusion proof and the signed checkpoint."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ailedger.errors import BadInputError, ProofError
from ailedger.tlog.checkpoint import Checkpoint, open_checkpoint, parse_u64
from ailedger.tlog.merkle import leaf_hash, verify_inclusion
from ailedger.tlog.note import Verifier

__all__ = ["HEADER", "ProofBundle", "parse_proof_bundle", "verify_proof_bundle"]

HEADER = "c2sp.org/tlog-proof@v1"
# an inclusion proof in a tree of at most 2^64 leaves has at most 64 hashes
MAX_PROOF_HASHES = 64


@dataclass(frozen=True)
class ProofBundle:
    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed note, verbatim
    extra: bytes | None = None

    def to_bytes(self) -> bytes:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint


def parse_proof_bundle(data: bytes) -> ProofBundle:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError("proof bundle is not UTF-8 text") from exc
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise BadInputError("proof bundle has no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise BadInputError(f"proof bundle must start with {HEADER!r}", found=lines[0][:60])
    pos = 1
    extra = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        try:  # ValueError: bad base64, or non-ASCII text
            extra = base64.b64decode(lines[pos][6:], validate=True)
        except ValueError as exc:
            raise BadInputError("proof bundle extra line is not base64", field="extra") from exc
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise BadInputError("proof bundle has no index line")
    index = parse_u64(lines[pos][6:], "proof bundle index", "index")
    if len(lines) - pos - 1 > MAX_PROOF_HASHES:
        raise BadInputError(f"proof bundle has {len(lines) - pos - 1} proof lines; at most {MAX_PROOF_HASHES}",
                            field="proof")
    proof: list[bytes] = []
    for ln in lines[pos + 1 :]:
        try:
            h = base64.b64decode(ln, validate=True)
        except ValueError as exc:
            raise BadInputError(f"proof line {ln[:60]!r} is not base64", field="proof") from exc
        if len(h) != 32:
            raise BadInputError(f"proof line {ln[:60]!r} is not a 32-byte hash", field="proof")
        proof.append(h)
    return ProofBundle(index, tuple(proof), checkpoint.encode(), extra)


def verify_proof_bundle(data: bytes, verifier: Verifier, entry: bytes | None = None,
                        entry_hash: bytes | None = None) -> tuple[ProofBundle, Checkpoint]:
    """Check the log's signature on the checkpoint and the inclusion of the entry.

    Pass the entry's leaf bytes (``entry``) or its RFC 6962 leaf hash (``entry_hash``)."""
    bundle = parse_proof_bundle(data)
    cp = open_checkpoint(bundle.checkpoint, verifier)
    if entry is not None:
        lh = leaf_hash(entry)
        if entry_hash is not None and entry_hash != lh:
            raise ProofError("entry does not match the given leaf hash", expected=entry_hash.hex(), found=lh.hex())
    elif entry_hash is not None:
        lh = entry_hash
    else:
        raise BadInputError("verifying a proof bundle needs the entry or its leaf hash")
    verify_inclusion(bundle.index, cp.size, lh, bundle.proof, cp.root)
    return bundle, cp
