"""Who may sign what, with effect (docs/authority.md): the rules as pure folds (rules), the one
admission check every write path makes and the one answer to "may this model be used?" (service), and
the model-status protocol through which the DAO and the dataset owners are read (hooks).

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.authority.hooks import DaoView, DatasetOwner
    from ailedger.authority.rules import RULES, AuthorityState, ModelStatus
    from ailedger.authority.service import (
        admit,
        model_registration,
        model_status,
        require_model_usable,
        write_genesis,
    )

_LAZY = {
    "RULES": "ailedger.authority.rules",
    "AuthorityState": "ailedger.authority.rules",
    "ModelStatus": "ailedger.authority.rules",
    "admit": "ailedger.authority.service",
    "model_registration": "ailedger.authority.service",
    "model_status": "ailedger.authority.service",
    "require_model_usable": "ailedger.authority.service",
    "write_genesis": "ailedger.authority.service",
    "DaoView": "ailedger.authority.hooks",
    "DatasetOwner": "ailedger.authority.hooks",
}

__all__ = [
    "RULES",
    "AuthorityState",
    "DaoView",
    "DatasetOwner",
    "ModelStatus",
    "admit",
    "model_registration",
    "model_status",
    "require_model_usable",
    "write_genesis",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
