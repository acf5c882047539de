"""A private-inference model folder, accepted only when it is the registered model of that name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.errors import VerificationError
from ailedger.inference import is_model_revoked, resolve_model
from ailedger.inference.sdk import ModelRevokedError
from ailedger.private.digits import DigitsModel, load_model
from ailedger.provenance.models import verify_model

__all__ = ["RegisteredModel", "registered_model"]


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    index: int
    manifest_root: str
    folder: Path
    model: DigitsModel


def registered_model(ledger: Any, name: str, folder: str | Path) -> RegisteredModel:
    """Load ``folder`` after re-hashing it against model ``name``'s registration: NotFoundError when the name
    is not registered, ModelRevokedError when it is revoked or suspended, VerificationError when the folder is
    not the registered model (the differences named)."""
    name, index, root = resolve_model(ledger, name)
    reason = is_model_revoked(ledger, name)
    if reason is not None:
        raise ModelRevokedError(f"model {name} is revoked: {reason}", field="model")
    res = verify_model(ledger, folder, name=name)
    if not res.get("ok") or res.get("manifest_root") != root:
        diffs = "; ".join(d.get("detail", "") for d in res.get("differences", [])[:3]) or "a different version"
        raise VerificationError(f"{folder} is not the registered model {name} (entry {index}): {diffs}",
                                expected=root, found=str(res.get("manifest_root")))
    return RegisteredModel(name, index, root, Path(folder), load_model(folder))
