"""The one exception tree of ailedger.

Every failure a user can meet is an :class:`AiledgerError`.  The subtrees say
*whose* fault it is: the caller's input, a proof that does not hold, the store,
or the network.  Verification failures carry what was expected and what was
found, so a message never has to be parsed to know what went wrong.
"""

from __future__ import annotations

from typing import Any


class AiledgerError(Exception):
    """Root of every error raised by ailedger."""

    code: str = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        for k, v in self.details.items():
            out[k] = v.hex() if isinstance(v, (bytes, bytearray)) else v
        return out


class BadInputError(AiledgerError):
    """The caller gave something malformed, missing or out of range."""

    code = "bad_input"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, **({"field": field} if field else {}), **details)
        self.field = field


class NotFoundError(BadInputError):
    """A named thing (entry, identity, record, ledger) does not exist."""

    code = "not_found"


class ConflictError(BadInputError):
    """The request contradicts existing state (duplicate name, replay, etc.)."""

    code = "conflict"


class DuplicateLeafError(ConflictError):
    """A store refused a leaf whose hash it already holds (the log then deduplicates)."""

    code = "duplicate"


class StaleSizeError(ConflictError):
    """A write transaction begun on an assumed log size (``writer_at``: the size after this process's last
    append, not read first) found the log at another size under the sequencer lock: another writer appended
    in between. Nothing was written; the log redoes the append reading the size first."""


class NotAuthorisedError(BadInputError):
    """The signer may not sign this entry type with effect (see docs/authority.md): refused at ingest
    (HTTP 403 ``not_authorised``) and ignored by every fold that meets it in the log."""

    code = "not_authorised"


class VerificationError(AiledgerError):
    """Something that should hold cryptographically does not."""

    code = "verification_failed"

    def __init__(self, message: str, *, expected: Any = None, found: Any = None, **details: Any) -> None:
        extra: dict[str, Any] = {}
        if expected is not None:
            extra["expected"] = expected
        if found is not None:
            extra["found"] = found
        super().__init__(message, **extra, **details)
        self.expected = expected
        self.found = found


class SignatureError(VerificationError):
    """A signature does not verify under the key it claims."""

    code = "bad_signature"


class ProofError(VerificationError):
    """A Merkle inclusion or consistency proof does not hold."""

    code = "bad_proof"


class StorageError(AiledgerError):
    """The store failed or holds data that is inconsistent."""

    code = "storage"


class TamperError(StorageError):
    """Stored data differs from what its hashes commit to."""

    code = "tampered"


class NetworkError(AiledgerError):
    """A remote peer (RPC node, witness, storage node) failed or misbehaved."""

    code = "network"


__all__ = [
    "AiledgerError",
    "BadInputError",
    "ConflictError",
    "DuplicateLeafError",
    "NetworkError",
    "NotAuthorisedError",
    "NotFoundError",
    "ProofError",
    "SignatureError",
    "StaleSizeError",
    "StorageError",
    "TamperError",
    "VerificationError",
]
