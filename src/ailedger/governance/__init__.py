"""The DAO: its state as a pure fold over governance entries (state), the service that writes and
reads them (service), staking and reputation (staking) and the on-chain mode (chain).  It provides the
DAO's side of the model-status protocol (service.AuthorityView).

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.governance.service import (
        AuthorityView,
        balances,
        cancel,
        delegate,
        execute,
        init_dao,
        mint,
        model_status,
        proposal_info,
        propose,
        queue,
        transfer,
        vote,
    )
    from ailedger.governance.staking import claims_for, dispute, reputation, stake_claim
    from ailedger.governance.state import GovState

_LAZY = {
    "GovState": "ailedger.governance.state",
    "AuthorityView": "ailedger.governance.service",
    "balances": "ailedger.governance.service",
    "cancel": "ailedger.governance.service",
    "delegate": "ailedger.governance.service",
    "execute": "ailedger.governance.service",
    "init_dao": "ailedger.governance.service",
    "mint": "ailedger.governance.service",
    "model_status": "ailedger.governance.service",
    "proposal_info": "ailedger.governance.service",
    "propose": "ailedger.governance.service",
    "queue": "ailedger.governance.service",
    "transfer": "ailedger.governance.service",
    "vote": "ailedger.governance.service",
    "claims_for": "ailedger.governance.staking",
    "dispute": "ailedger.governance.staking",
    "reputation": "ailedger.governance.staking",
    "stake_claim": "ailedger.governance.staking",
}

__all__ = [
    "AuthorityView", "GovState", "balances", "cancel", "claims_for", "delegate", "dispute",
    "execute", "init_dao", "mint", "model_status", "proposal_info", "propose", "queue",
    "reputation", "stake_claim", "transfer", "vote",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
