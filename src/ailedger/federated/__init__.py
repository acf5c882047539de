"""Federated learning with an audit trail: any Flower strategy wrapped so that every round is logged
(``fl.round``), every update signed by its client's ailedger identity, every aggregate replayable bit for
bit from the stored updates, and poisoned contributors scored, flagged and removable (docs/federated.md).

The names below are this folder's public interface; they load on first use (Flower and numpy with them),
so importing a module of the folder does not load the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.federated.audit import RunView, remove_client, replay, run_view, runs
    from ailedger.federated.blobstore import BlobUpdateStore
    from ailedger.federated.client import InProcessProxy, SignedClient
    from ailedger.federated.dp import DPConfig
    from ailedger.federated.service import run_simulation, store_for
    from ailedger.federated.store import UpdateStore
    from ailedger.federated.strategy import LedgerStrategy, RunContext, make_strategy

_LAZY = {
    "RunView": "ailedger.federated.audit", "remove_client": "ailedger.federated.audit",
    "replay": "ailedger.federated.audit", "run_view": "ailedger.federated.audit", "runs": "ailedger.federated.audit",
    "InProcessProxy": "ailedger.federated.client", "SignedClient": "ailedger.federated.client",
    "DPConfig": "ailedger.federated.dp",
    "run_simulation": "ailedger.federated.service", "store_for": "ailedger.federated.service",
    "UpdateStore": "ailedger.federated.store", "BlobUpdateStore": "ailedger.federated.blobstore",
    "LedgerStrategy": "ailedger.federated.strategy", "RunContext": "ailedger.federated.strategy",
    "make_strategy": "ailedger.federated.strategy",
}

__all__ = ["BlobUpdateStore", "DPConfig", "InProcessProxy", "LedgerStrategy", "RunContext", "RunView", "SignedClient", "UpdateStore",
           "make_strategy", "remove_client", "replay", "run_simulation", "run_view", "runs", "store_for"]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
