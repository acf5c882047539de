"""A compute marketplace for AI jobs with a bisection dispute game on Ethereum (docs/compute.md).

``job``: the deterministic program (fixed-point MLP SGD) and its state roots; ``chain``: the ComputeMarket
contract; ``service``: the ledger entries, the one fold (``job_view``), the referee; ``game``: the parties'
moves and spot-checking.  The names below load on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.compute.chain import Market
    from ailedger.compute.game import Challenger, Provider, play, sample_check, sample_steps
    from ailedger.compute.job import JobSpec, run, state_root, step, trace_root
    from ailedger.compute.service import Trace, job_view, referee_step, replay_verdict

_LAZY = {
    "Market": "ailedger.compute.chain",
    "Challenger": "ailedger.compute.game", "Provider": "ailedger.compute.game", "play": "ailedger.compute.game",
    "sample_check": "ailedger.compute.game", "sample_steps": "ailedger.compute.game",
    "JobSpec": "ailedger.compute.job", "run": "ailedger.compute.job", "state_root": "ailedger.compute.job",
    "step": "ailedger.compute.job", "trace_root": "ailedger.compute.job",
    "Trace": "ailedger.compute.service", "job_view": "ailedger.compute.service",
    "referee_step": "ailedger.compute.service", "replay_verdict": "ailedger.compute.service",
}

__all__ = ["Challenger", "JobSpec", "Market", "Provider", "Trace", "job_view", "play", "referee_step",
           "replay_verdict", "run", "sample_check", "sample_steps", "state_root", "step", "trace_root"]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
