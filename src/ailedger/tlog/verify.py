"""Offline verification of proof files, dispatched on the file's first line.

C2SP tlog-proof files are the kernel's own; other kinds (dataset proofs, ...) and checks of a checkpoint
against something outside the log (``--rpc``: an anchor on a chain) are registered by the capabilities
in :mod:`ailedger.tlog.proofkinds`."""

from __future__ import annotations

from typing import Any

from ailedger.encoding.records import parse_entry
from ailedger.errors import AiledgerError, BadInputError, ProofError
from ailedger.tlog import proofkinds
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.note import Verifier
from ailedger.tlog.proofbundle import HEADER, verify_proof_bundle

__all__ = ["verify_file", "verify_tlog_proof"]


def verify_tlog_proof(data: bytes, verifier: Verifier, *, entry: bytes | None = None,
                      leaf_hash_hex: str | None = None) -> dict[str, Any]:
    lh = None
    if leaf_hash_hex:
        try:
            lh = bytes.fromhex(leaf_hash_hex)
        except ValueError:
            raise BadInputError("--leaf-hash must be hex", field="leaf_hash") from None
        if len(lh) != 32:
            raise BadInputError("--leaf-hash must be 32 bytes of hex", field="leaf_hash")
    if entry is None and lh is None:
        raise BadInputError("give the entry (--entry FILE with its exact bytes) or --leaf-hash", field="entry")
    bundle, cp = verify_proof_bundle(data, verifier, entry=entry, entry_hash=lh)
    out: dict[str, Any] = {
        "ok": True,
        "index": bundle.index,
        "tree_size": cp.size,
        "origin": cp.origin,
        "leaf_hash": (leaf_hash(entry) if entry is not None else lh).hex(),  # type: ignore[union-attr]
    }
    summary = f"OK: entry {bundle.index} is in {cp.origin} at tree size {cp.size}"
    if entry is not None:
        try:
            e = parse_entry(entry, verify=False)
        except AiledgerError:
            e = None
        if e is not None:
            e.verify()  # an entry that parses as ours must carry a valid signature
            out.update({"type": e.type, "signer": e.signer, "time": e.time, "signature": "valid"})
            summary += f"\n  {e.type} signed by {e.signer} at {e.time} (signature valid)"
    out["summary"] = summary
    return out


def verify_file(data: bytes, verifier: Verifier, *, entry: bytes | None = None, leaf_hash_hex: str | None = None,
                candidate: bytes | None = None, witness_vkeys: list[Verifier] | None = None,
                witness_threshold: int = 0, rpc: Any = None, contract: str | None = None,
                anchor_evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    if first == HEADER:
        result = verify_tlog_proof(data, verifier, entry=entry, leaf_hash_hex=leaf_hash_hex)
        note = data.split(b"\n\n", 1)[1]
    elif (kind := proofkinds.find_kind(first)) is not None:
        result = kind.verify(data, verifier, candidate=candidate, entry=entry, leaf_hash_hex=leaf_hash_hex)
        note = None
    else:
        raise BadInputError(f"unknown proof file format (first line {first[:60]!r})")
    if witness_vkeys or witness_threshold:
        if note is None:
            raise BadInputError("witness policy applies to tlog-proof files")
        if witness_threshold > len(witness_vkeys or []):
            raise BadInputError("--witness-threshold is larger than the number of --witness-vkey given")
        from ailedger.tlog.cosignature import verify_cosigned_checkpoint

        wres = verify_cosigned_checkpoint(note, verifier.vkey, [w.vkey for w in witness_vkeys or []],
                                          witness_threshold or None)
        result["witnesses"] = wres.to_dict()
        names = ", ".join(n for n, _ in wres.cosigners)
        result["summary"] = (result.get("summary", "OK") + f"\n  cosigned by {len(wres.cosigners)} of "
                             f"{len(witness_vkeys or [])} trusted witnesses ({names}); policy needs {wres.threshold}")
    if rpc:
        if note is None:
            raise BadInputError("--rpc applies to tlog-proof files")
        if not contract:
            raise BadInputError("--rpc needs --contract ADDRESS")
        anchored = proofkinds.checkpoint_check("anchor", flag="--rpc")
        a = anchored(note, data if first == HEADER else None, verifier, rpc=rpc, contract=contract,
                     evidence=anchor_evidence)
        result["anchor"] = a
        where = ", ".join(f"{k} {a[k]}" for k in ("block_number", "block_time_iso", "tx_hash") if k in a)
        result["summary"] = result.get("summary", "OK") + f"\n  anchored on chain ({where or a})"
    if not result.get("ok", True):
        raise ProofError(result.get("summary", "verification failed"))
    return result
