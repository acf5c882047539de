"""C2SP tlog-cosignature (Ed25519, type 0x04) and witness policies over cosigned checkpoints.

A cosignature is a signed-note signature line by a witness whose signature bytes are
``timestamp (8 bytes, big-endian) || Ed25519 signature (64 bytes)`` over the message::

    cosignature/v1\\n
    time <timestamp>\\n
    <checkpoint note body, including its final newline>

Its key id is ``SHA-256(name || "\\n" || 0x04 || public key)[:4]`` (``note.key_id`` with
``ALG_COSIGNATURE_V1``).  A verifier policy is "the log's key, and ``threshold`` of these
witness keys": :func:`verify_cosigned_checkpoint` checks it and says which witnesses counted.

Pure: the current time is passed in by the caller when future timestamps must be refused.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ailedger.errors import BadInputError, SignatureError, VerificationError
from ailedger.tlog.checkpoint import Checkpoint, parse_checkpoint_text
from ailedger.tlog.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Note,
    Signature,
    Signer,
    Verifier,
    format_note,
    parse_note,
    parse_vkey,
    verify_note,
)

__all__ = [
    "COSIGNATURE_HEADER",
    "MAX_TIMESTAMP",
    "CosignedCheckpoint",
    "WitnessPolicy",
    "add_cosignatures",
    "cosign",
    "cosignature_message",
    "cosignature_timestamp",
    "evaluate_cosigned_checkpoint",
    "verify_cosignature",
    "verify_cosigned_checkpoint",
]

COSIGNATURE_HEADER = "cosignature/v1"
MAX_TIMESTAMP = 2**63 - 1
_SIG_LEN = 8 + 64


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosigner signs for ``checkpoint_text`` (the note body) at ``timestamp``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise BadInputError("cosignature timestamp out of range", field="timestamp", found=timestamp)
    if not checkpoint_text.endswith("\n"):
        raise BadInputError("checkpoint body must end with a newline", field="checkpoint")
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign(checkpoint_text: str, signer: Signer, timestamp: int) -> Signature:
    """Cosign a checkpoint body; ``signer`` must be a cosignature (0x04) signer."""
    if signer.alg != ALG_COSIGNATURE_V1:
        raise BadInputError("a witness signer must use the cosignature/v1 key type 0x04", field="signer")
    sig = signer.sign(cosignature_message(checkpoint_text, timestamp))
    return Signature(signer.name, signer.key_id, struct.pack(">Q", timestamp) + sig)


def cosignature_timestamp(sig: Signature) -> int:
    if len(sig.sig) != _SIG_LEN:
        raise SignatureError(
            f"cosignature by {sig.name} has {len(sig.sig)} signature bytes", expected=_SIG_LEN, found=len(sig.sig)
        )
    ts: int = struct.unpack(">Q", sig.sig[:8])[0]
    return ts


def verify_cosignature(checkpoint_text: str, sig: Signature, verifier: Verifier, now: int | None = None) -> int:
    """Check one cosignature line; return its timestamp or raise :class:`SignatureError`."""
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise BadInputError(f"witness key {verifier.name} is not a cosignature/v1 (0x04) key", field="vkey")
    if sig.name != verifier.name or sig.key_id != verifier.key_id:
        raise SignatureError(
            "cosignature is not by this witness",
            expected=f"{verifier.name}/{verifier.key_id.hex()}",
            found=f"{sig.name}/{sig.key_id.hex()}",
        )
    ts = cosignature_timestamp(sig)
    if ts > MAX_TIMESTAMP:
        raise SignatureError("cosignature timestamp exceeds 2^63-1", found=ts)
    if now is not None and ts > now:
        raise SignatureError(f"cosignature by {sig.name} is dated in the future", expected=f"<= {now}", found=ts)
    if not verifier.verify(cosignature_message(checkpoint_text, ts), sig.sig[8:]):
        raise SignatureError(f"cosignature by {sig.name} does not verify", expected=verifier.vkey, found="bad signature")
    return ts


def add_cosignatures(note_bytes: bytes, signature_lines: bytes | Iterable[Signature]) -> bytes:
    """Append signature lines (e.g. a witness's add-checkpoint response) to a signed note,
    dropping exact duplicates."""
    note = parse_note(note_bytes)
    if isinstance(signature_lines, (bytes, bytearray)):
        extra = parse_note(b"x\n\n" + bytes(signature_lines)).signatures if signature_lines else ()
    else:
        extra = tuple(signature_lines)
    sigs = list(note.signatures)
    for s in extra:
        if s not in sigs:
            sigs.append(s)
    return format_note(note.text, sigs)


@dataclass(frozen=True)
class WitnessPolicy:
    """The log's key and at least ``threshold`` of ``witnesses``."""

    log: Verifier
    witnesses: tuple[Verifier, ...] = ()
    threshold: int = 0

    @staticmethod
    def from_vkeys(log_vkey: str | Verifier, witness_vkeys: Sequence[str | Verifier] = (),
                   threshold: int | None = None) -> WitnessPolicy:
        log = parse_vkey(log_vkey) if isinstance(log_vkey, str) else log_vkey
        if log.alg != ALG_ED25519:
            raise BadInputError("the log key must be an Ed25519 (0x01) signed-note key", field="log_vkey")
        ws: list[Verifier] = []
        for v in witness_vkeys:
            w = parse_vkey(v) if isinstance(v, str) else v
            if w.alg != ALG_COSIGNATURE_V1:
                raise BadInputError(
                    f"witness key {w.name} must be a cosignature/v1 (0x04) key", field="witness_vkey", found=w.alg
                )
            if any(x.public_key == w.public_key or (x.name, x.key_id) == (w.name, w.key_id) for x in ws):
                raise BadInputError(f"witness key {w.name} is listed twice", field="witness_vkey")
            ws.append(w)
        t = len(ws) if threshold is None else threshold
        if not 0 <= t <= len(ws):
            raise BadInputError(
                f"witness threshold {t} must be between 0 and the number of witness keys ({len(ws)})",
                field="witness_threshold",
            )
        return WitnessPolicy(log, tuple(ws), t)


@dataclass(frozen=True)
class CosignedCheckpoint:
    """What a cosigned checkpoint was found to carry under a policy."""

    checkpoint: Checkpoint
    log_signature_ok: bool
    threshold: int
    cosigners: tuple[tuple[str, int], ...]  # (witness name, timestamp) of valid cosignatures, policy order
    failures: tuple[tuple[str, str], ...] = field(default=())  # (witness name, reason)

    @property
    def ok(self) -> bool:
        return self.log_signature_ok and len(self.cosigners) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        import base64

        return {
            "ok": self.ok,
            "origin": self.checkpoint.origin,
            "size": self.checkpoint.size,
            "root": base64.b64encode(self.checkpoint.root).decode(),
            "log_signature_ok": self.log_signature_ok,
            "threshold": self.threshold,
            "cosigned_by": [{"witness": n, "timestamp": t} for n, t in self.cosigners],
            "failures": [{"witness": n, "reason": r} for n, r in self.failures],
        }


def evaluate_cosigned_checkpoint(note_bytes: bytes, policy: WitnessPolicy, now: int | None = None,
                                 origin: str | None = None) -> CosignedCheckpoint:
    """Check every part of the policy and report, without raising for a policy failure.

    Raises only for malformed input.  Signature lines from unknown keys are ignored."""
    note: Note = parse_note(note_bytes)
    cp = parse_checkpoint_text(note.text)
    log_ok = True
    failures: list[tuple[str, str]] = []
    try:
        verify_note(note_bytes, policy.log)
    except SignatureError as exc:
        log_ok = False
        failures.append((policy.log.name, f"log signature: {exc.message}"))
    want = origin if origin is not None else policy.log.name
    if cp.origin != want:
        log_ok = False
        failures.append((policy.log.name, f"origin {cp.origin!r} is not the expected {want!r}"))
    cosigners: list[tuple[str, int]] = []
    for w in policy.witnesses:
        mine = [s for s in note.signatures if s.name == w.name and s.key_id == w.key_id]
        if not mine:
            failures.append((w.name, "no cosignature"))
            continue
        reason = ""
        for s in mine:
            try:
                cosigners.append((w.name, verify_cosignature(note.text, s, w, now)))
                break
            except SignatureError as exc:
                reason = exc.message
        else:
            failures.append((w.name, reason))
    return CosignedCheckpoint(cp, log_ok, policy.threshold, tuple(cosigners), tuple(failures))


def verify_cosigned_checkpoint(note_bytes: bytes, log_vkey: str | Verifier,
                               witness_vkeys: Sequence[str | Verifier] = (), threshold: int | None = None,
                               *, now: int | None = None, origin: str | None = None) -> CosignedCheckpoint:
    """Gate for verifiers: the log's signature and ``threshold`` (default: all) of the witness keys.

    Returns the :class:`CosignedCheckpoint` when the policy holds; raises
    :class:`SignatureError` (bad log signature) or :class:`VerificationError` (too few valid
    cosignatures) otherwise, saying how many were expected and found."""
    policy = WitnessPolicy.from_vkeys(log_vkey, witness_vkeys, threshold)
    res = evaluate_cosigned_checkpoint(note_bytes, policy, now=now, origin=origin)
    if not res.log_signature_ok:
        raise SignatureError(
            "checkpoint is not validly signed by the log", expected=policy.log.vkey,
            found="; ".join(r for _, r in res.failures[:1]),
        )
    if len(res.cosigners) < res.threshold:
        missing = "; ".join(f"{n}: {r}" for n, r in res.failures)
        raise VerificationError(
            f"checkpoint carries {len(res.cosigners)} valid witness cosignatures, policy needs {res.threshold}"
            + (f" ({missing})" if missing else ""),
            expected=res.threshold,
            found=len(res.cosigners),
        )
    return res
