"""ailedger: a verifiable trust layer for AI (transparency log, provenance, audit, authenticity)."""

__version__ = "0.1.0"

from ailedger.errors import (  # noqa: E402
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
    "__version__",
    "AiledgerError",
    "BadInputError",
    "NotFoundError",
    "VerificationError",
    "SignatureError",
    "ProofError",
    "StorageError",
    "NetworkError",
]
