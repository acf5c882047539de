"""Incentivised AI subnets: a task whose miners serve model outputs, validators that score them by
commit-reveal weight vectors, and an epoch fold in the manner of Bittensor's Yuma Consensus (stake-weighted
consensus with kappa, clipping, incentive, EMA bonds, dividends, emission split), in integer arithmetic so
a replay of the log agrees bit for bit.  Stake is the governance module's reputation.

The names below are this folder's public interface; they load on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailedger.subnets.service import (
        book,
        commit,
        create,
        epoch,
        register,
        replay,
        reveal,
        set_params,
        show,
    )
    from ailedger.subnets.simulate import SimConfig, simulate
    from ailedger.subnets.state import SubnetBook, commitment
    from ailedger.subnets.yuma import EpochResult, Params, fold_epoch

_LAZY = {
    "book": "ailedger.subnets.service", "commit": "ailedger.subnets.service", "create": "ailedger.subnets.service",
    "epoch": "ailedger.subnets.service", "register": "ailedger.subnets.service",
    "replay": "ailedger.subnets.service", "reveal": "ailedger.subnets.service",
    "set_params": "ailedger.subnets.service", "show": "ailedger.subnets.service",
    "SimConfig": "ailedger.subnets.simulate", "simulate": "ailedger.subnets.simulate",
    "SubnetBook": "ailedger.subnets.state", "commitment": "ailedger.subnets.state",
    "EpochResult": "ailedger.subnets.yuma", "Params": "ailedger.subnets.yuma", "fold_epoch": "ailedger.subnets.yuma",
}

__all__ = ["EpochResult", "Params", "SimConfig", "SubnetBook", "book", "commit", "commitment", "create", "epoch",
           "fold_epoch", "register", "replay", "reveal", "set_params", "show", "simulate"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
