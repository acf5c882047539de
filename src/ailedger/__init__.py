"""ailedger: a verifiable trust layer for AI (transparency log, provenance, audit, authenticity).

The public surface is ``__all__`` below: the :class:`Ledger` (open or create a ledger directory, append,
prove, audit), the offline verification helpers (a proof file, a tlog-proof bundle, a signed note, a
vkey), the entry types, and the error tree.  Each capability's own interface is its folder's
``__init__`` (``ailedger.provenance``, ``ailedger.governance``, ...); everything else may change
without notice (docs/ARCHITECTURE.md, "Public interface").

The names from the kernel are loaded on first use, so ``import ailedger`` stays light; importing the
package installs the answers the kernel asks of the capabilities (``ailedger._registry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from ailedger import _registry
from ailedger._lazy import lazy_dir, lazy_getattr
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    DuplicateLeafError,
    NetworkError,
    NotAuthorisedError,
    NotFoundError,
    ProofError,
    SignatureError,
    StorageError,
    TamperError,
    VerificationError,
)

_registry.install()

if TYPE_CHECKING:
    from ailedger.encoding.records import SignedEntry, build_entry, parse_entry
    from ailedger.tlog.identities import Identity
    from ailedger.tlog.ledger import Ledger
    from ailedger.tlog.note import Verifier, parse_vkey, verify_note
    from ailedger.tlog.proofbundle import verify_proof_bundle
    from ailedger.tlog.verify import verify_file, verify_tlog_proof

# public name -> the module that defines it (imported on first use: PEP 562)
_LAZY = {
    "Ledger": "ailedger.tlog.ledger",
    "Identity": "ailedger.tlog.identities",
    "SignedEntry": "ailedger.encoding.records",
    "build_entry": "ailedger.encoding.records",
    "parse_entry": "ailedger.encoding.records",
    "Verifier": "ailedger.tlog.note",
    "parse_vkey": "ailedger.tlog.note",
    "verify_note": "ailedger.tlog.note",
    "verify_proof_bundle": "ailedger.tlog.proofbundle",
    "verify_file": "ailedger.tlog.verify",
    "verify_tlog_proof": "ailedger.tlog.verify",
}

__all__ = [
    "AiledgerError",
    "BadInputError",
    "ConflictError",
    "DuplicateLeafError",
    "Identity",
    "Ledger",
    "NetworkError",
    "NotAuthorisedError",
    "NotFoundError",
    "ProofError",
    "SignatureError",
    "SignedEntry",
    "StorageError",
    "TamperError",
    "VerificationError",
    "Verifier",
    "__version__",
    "build_entry",
    "parse_entry",
    "parse_vkey",
    "verify_file",
    "verify_note",
    "verify_proof_bundle",
    "verify_tlog_proof",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(globals(), __all__)
