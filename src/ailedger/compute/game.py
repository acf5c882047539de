"""The parties' moves in the dispute game, each from its own knowledge.

* The provider answers from its trace: the root it committed to, with its proof in the trace root (the
  contract refuses any other).
* A challenger agrees with a revealed root iff it is the root it computed itself (full re-execution), or,
  for a spot-checking verifier that found step ``j`` wrong, iff the revealed step is at most ``j``.
* The referee re-executes the one step left (``service.referee_step``).

``play`` makes every move the given parties have until none is left for them; each move is one transaction.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ailedger.compute.chain import Market
from ailedger.compute.service import Trace
from ailedger.errors import BadInputError

__all__ = ["Challenger", "Provider", "play", "sample_check", "sample_steps"]


@dataclass
class Provider:
    acct: Any
    trace: Trace

    def move(self, m: Market, job: int, d: dict[str, Any]) -> None:
        from ailedger.compute.job import trace_proof

        m.reveal(self.acct, job, self.trace.roots[d["mid"]], trace_proof(self.trace.roots, d["mid"]))


@dataclass
class Challenger:
    """``roots``: its own roots r_0..r_S; or ``bad_step``: the first step it found wrong."""

    acct: Any
    roots: list[bytes] | None = None
    bad_step: int | None = None

    def agrees(self, step: int, root_hex: str) -> bool:
        if self.roots is not None:
            return self.roots[step].hex() == root_hex
        if self.bad_step is None:
            raise BadInputError("a challenger needs its own roots or the step it found wrong", field="challenger")
        return step <= self.bad_step

    def move(self, m: Market, job: int, d: dict[str, Any]) -> None:
        m.respond(self.acct, job, self.agrees(d["mid"], d["mid_root"]))


def play(m: Market, job: int, provider: Provider | None = None, challenger: Challenger | None = None,
         *, on_move: Callable[[str, dict[str, Any]], None] | None = None, max_moves: int = 200) -> dict[str, Any]:
    """Make the moves of the parties given, until it is someone else's turn; the contract's status then."""
    for _ in range(max_moves):
        st = m.status(job)
        d = st.get("dispute")
        if st["phase"] != "disputed" or d is None:
            return st
        turn = d["turn"]
        if turn == "provider" and provider is not None:
            provider.move(m, job, d)
        elif turn == "challenger" and challenger is not None:
            challenger.move(m, job, d)
        else:
            return st
        if on_move:
            after = m.status(job).get("dispute") or {}
            on_move(turn, {"step": d["mid"], "root": d["mid_root"] if turn == "challenger" else
                           after.get("mid_root"), "lo": after.get("lo"), "hi": after.get("hi"),
                           "agree": (after.get("lo") == d["mid"]) if turn == "challenger" else None})
    raise BadInputError(f"the dispute did not end in {max_moves} moves", field="dispute")


def sample_steps(steps: int, rate: float, seed: bytes) -> list[int]:
    """The steps a spot-checker re-executes: each step with probability ``rate``, drawn from ``seed`` (a later
    checkpoint's root, unknown to the provider when it committed its trace)."""
    if not 0 < rate <= 1:
        raise BadInputError(f"the sampling rate must be in (0, 1], got {rate}", field="rate")
    rng = random.Random(seed)
    return [i for i in range(steps) if rng.random() < rate]


def sample_check(spec: Any, trace: Trace, steps: list[int]) -> int | None:
    """Re-execute the sampled steps from the provider's published states: the first wrong step, or None.
    A published state whose root is not the committed root is itself wrong (reported at that step - 1)."""
    from ailedger.compute.job import state_root, step

    for i in steps:
        pre = trace.state(i)
        if state_root(pre) != trace.roots[i]:
            return max(i - 1, 0)
        if state_root(step(spec, pre, i)) != trace.roots[i + 1]:
            return i
    return None
