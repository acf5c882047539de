"""Private inference: a registered model evaluated on encrypted inputs (CKKS, TenSEAL) or shared among
three parties (MPyC), with the audit trail on the ledger.  Loaded on first use (PEP 562)."""

from __future__ import annotations

from ailedger._lazy import lazy_getattr

__all__ = ["FheKeys", "FheServer", "RegisteredModel", "audit_run", "decrypt", "encrypt", "keygen",
           "registered_model", "run_mpc"]

_LAZY = {"FheKeys": ".fhe", "FheServer": ".fhe", "decrypt": ".fhe", "encrypt": ".fhe", "keygen": ".fhe",
         "RegisteredModel": ".binding", "registered_model": ".binding", "audit_run": ".mpc", "run_mpc": ".mpc"}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
