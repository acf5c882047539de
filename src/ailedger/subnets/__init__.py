"""Incentivised AI subnets: a task whose miners serve model outputs, validators that score them by
commit-reveal weight vectors, and an epoch fold in the manner of Bittensor's Yuma Consensus (stake-weighted
consensus with kappa, clipping, incentive, EMA bonds, dividends, emission split), in integer arithmetic so
a replay of the log agrees bit for bit.  Stake is reputation locked on the subnet through the governance
module's staking (``stake.claim`` of kind ``subnet``).

The names below are this folder's public interface; they load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.subnets.service import (
        audit,
        book,
        commit,
        create,
        epoch,
        register,
        replay,
        reveal,
        reveal_pool,
        set_params,
        show,
        stake,
    )
    from ailedger.subnets.simulate import SimConfig, simulate
    from ailedger.subnets.state import SubnetBook, commitment, pool_commitment
    from ailedger.subnets.yuma import EpochResult, Params, fold_epoch

_LAZY = {
    "book": "ailedger.subnets.service", "commit": "ailedger.subnets.service", "create": "ailedger.subnets.service",
    "epoch": "ailedger.subnets.service", "register": "ailedger.subnets.service",
    "replay": "ailedger.subnets.service", "reveal": "ailedger.subnets.service",
    "set_params": "ailedger.subnets.service", "show": "ailedger.subnets.service",
    "audit": "ailedger.subnets.service", "reveal_pool": "ailedger.subnets.service",
    "stake": "ailedger.subnets.service", "pool_commitment": "ailedger.subnets.state",
    "SimConfig": "ailedger.subnets.simulate", "simulate": "ailedger.subnets.simulate",
    "SubnetBook": "ailedger.subnets.state", "commitment": "ailedger.subnets.state",
    "EpochResult": "ailedger.subnets.yuma", "Params": "ailedger.subnets.yuma", "fold_epoch": "ailedger.subnets.yuma",
}

__all__ = ["EpochResult", "Params", "SimConfig", "SubnetBook", "audit", "book", "commit", "commitment", "create",
           "epoch", "fold_epoch", "pool_commitment", "register", "replay", "reveal", "reveal_pool", "set_params",
           "show", "simulate", "stake"]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
