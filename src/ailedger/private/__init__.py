"""Private inference: a registered model evaluated on encrypted inputs (CKKS, TenSEAL) or shared among
three parties (MPyC), with the audit trail on the ledger.  Loaded on first use (PEP 562)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FheKeys", "FheServer", "RegisteredModel", "audit_run", "decrypt", "encrypt", "keygen",
           "registered_model", "run_mpc"]

_WHERE = {"FheKeys": "fhe", "FheServer": "fhe", "decrypt": "fhe", "encrypt": "fhe", "keygen": "fhe",
          "RegisteredModel": "binding", "registered_model": "binding", "audit_run": "mpc", "run_mpc": "mpc"}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"ailedger.private.{mod}"), name)
