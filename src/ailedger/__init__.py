"""ailedger: a verifiable trust layer for AI (transparency log, provenance, audit, authenticity)."""

__version__ = "0.1.0"

from ailedger.errors import (
    AiledgerError,
    BadInputError,
    NetworkError,
    NotFoundError,
    ProofError,
    SignatureError,
    StorageError,
    VerificationError,
)

__all__ = [
    "AiledgerError",
    "BadInputError",
    "NetworkError",
    "NotFoundError",
    "ProofError",
    "SignatureError",
    "StorageError",
    "VerificationError",
    "__version__",
]
