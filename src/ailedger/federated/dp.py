"""Central differential privacy for a round: clip each client's update (its difference from the global
model) to L2 norm ``clip``, aggregate, add Gaussian noise of standard deviation
``noise_multiplier * clip * max_i(n_i) / sum_i(n_i)`` (the most one client can move a weighted mean),
as Flower's ``DifferentialPrivacyServerSideFixedClipping`` does, but with the noise drawn from a seed
kept off-ledger beside the updates, so the round can be replayed bit for bit.

Accounting: every enrolled client takes part in every round (no subsampling), so each round is one
Gaussian mechanism with noise multiplier z; its Renyi DP is ``alpha / (2 z^2)`` at every order alpha
(Mironov 2017, "Renyi Differential Privacy", Prop. 7), rounds add up, and
``epsilon(delta) = min_alpha  T alpha / (2 z^2) + log(1/delta) / (alpha - 1)`` (ibid., Prop. 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["DPConfig", "add_noise", "clip_update", "epsilon"]


@dataclass(frozen=True)
class DPConfig:
    clip: float
    noise_multiplier: float
    delta: float = 1e-5

    def as_dict(self) -> dict[str, Any]:
        return {"clip": self.clip, "noise_multiplier": self.noise_multiplier, "delta": self.delta}


def clip_update(update: list[Any], base: list[Any], clip: float) -> tuple[list[Any], float]:
    """``base + d * min(1, clip / ||d||)`` with d = update - base (all tensors as one vector); and ||d||."""
    import numpy as np

    deltas = [np.asarray(u, dtype=np.float64) - np.asarray(b, dtype=np.float64) for u, b in zip(update, base)]
    norm = math.sqrt(sum(float(np.sum(d * d)) for d in deltas))
    f = 1.0 if norm <= clip else clip / norm
    return [np.asarray(b, dtype=np.float64) + d * f for b, d in zip(base, deltas)], norm


def add_noise(params: list[Any], std: float, seed: bytes) -> list[Any]:
    import numpy as np

    rng = np.random.default_rng(int.from_bytes(seed, "big"))
    return [np.asarray(p, dtype=np.float64) + rng.normal(0.0, std, size=np.shape(p)) for p in params]


def epsilon(rounds: int, noise_multiplier: float, delta: float) -> float:
    """The (epsilon, delta) bound after ``rounds`` full-participation Gaussian rounds (RDP, see above)."""
    if rounds <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    rdp_one = 1.0 / (2.0 * noise_multiplier ** 2)
    best = math.inf
    alpha = 1.01
    while alpha < 10000:
        best = min(best, rounds * alpha * rdp_one + math.log(1.0 / delta) / (alpha - 1.0))
        alpha *= 1.02
    return best
