"""A compute marketplace for AI jobs with a bisection dispute game on Ethereum (docs/compute.md).

``job``: the deterministic program (fixed-point MLP SGD) and its state roots; ``chain``: the ComputeMarket
contract; ``service``: the ledger entries, the one fold (``job_view``), the referee; ``game``: the parties'
moves; ``sampling``: spot-checking a trace."""

from __future__ import annotations

__all__ = ["chain", "game", "job", "sampling", "service"]
