"""The agent that manages the vault: a small, reproducible rebalancing policy registered in the ledger as a
model, deciding from a seeded price series that is logged (``rwa.series``) before the first decision; every
decision is an ``agent.action`` logged before its transaction (``defi.actions.act``), so ``agent audit``
matches each vault transaction to its logged decision.

The policy (``POLICY``, written to ``policy.json`` in the model folder; its manifest root is what ``ailedger
model register`` logs) is volatility targeting: the weight of the asset token is ``base * target_vol / vol``
clipped to ``[min, max]``, ``vol`` the exponentially weighted volatility of the NAV's log returns; the agent
trades when the weight drifts more than ``band`` from that target, never more than what the guard still
allows in the period (it reads the guard's own counters), and asks for at most ``slippage`` below the quote.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from ailedger.authority.service import model_registration
from ailedger.defi.actions import act
from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, NotFoundError, VerificationError
from ailedger.provenance.hashing import hash_model_dir

from . import SERIES
from .chain import E18, Vault, cap_left, send

__all__ = ["POLICY", "decide", "export_policy", "find_series", "log_series", "policy_root", "price_series",
           "rebalance_step", "target_weight", "tracking_error"]

POLICY: dict[str, Any] = {"name": "rwa-vol-target", "version": 1, "base_bps": 6000, "min_bps": 2000,
                          "max_bps": 8000, "target_vol": "0.01", "ewma_lambda": "0.94", "warmup": 5,
                          "band_bps": 50, "slippage_bps": 30}
GENERATOR = "gbm-regimes-v1"


def export_policy(folder: str | Path) -> Path:
    """Write the policy's model folder (``policy.json``, RFC 8785 JSON of ``POLICY``)."""
    p = Path(folder)
    p.mkdir(parents=True, exist_ok=True)
    (p / "policy.json").write_bytes(canonical_json(POLICY))
    return p / "policy.json"


@cache
def policy_root() -> str:
    """The model manifest root of the policy folder (what ``ailedger model register FOLDER`` logs)."""
    with tempfile.TemporaryDirectory(prefix="ailedger-rwa-policy-") as d:
        export_policy(d)
        return hash_model_dir(d, workers=1).root.hex()


def require_policy_model(ledger: Any, model: str) -> tuple[int, str]:
    """The registration ``model`` names must be of this policy (its manifest root); (entry, name)."""
    idx, reg = model_registration(ledger, model)
    root = str((reg.body.get("manifest") or {}).get("root", ""))
    if root != policy_root():
        raise VerificationError(f"model {model} (entry #{idx}) has manifest root {root[:16]}..., not the vault "
                                f"policy's {policy_root()[:16]}... (register the folder `vault policy` writes)",
                                field="model", expected=policy_root(), found=root)
    return idx, str(reg.body.get("name", model))


# -- the price series --------------------------------------------------------------------------------------
def price_series(seed: int, steps: int, *, start: str = "1.00") -> list[int]:
    """A seeded NAV path (stable units per token, 18 decimals): geometric Brownian motion whose daily
    volatility switches between calm (0.5%) and stressed (2.5%) regimes (a Markov chain, 5% switch chance)."""
    if not 2 <= steps <= 100_000:
        raise BadInputError("steps must be between 2 and 100000", field="steps")
    rng = random.Random(f"{GENERATOR}:{seed}")
    p = float(start)
    stressed = False
    out = [round(p * 1e6) * 10**12]
    for _ in range(steps - 1):
        if rng.random() < 0.05:
            stressed = not stressed
        sigma = 0.025 if stressed else 0.005
        p *= math.exp(0.0002 - sigma * sigma / 2 + sigma * rng.gauss(0.0, 1.0))
        out.append(round(p * 1e6) * 10**12)
    return out


def series_digest(prices: list[int]) -> str:
    return hashlib.sha256(canonical_json([str(x) for x in prices])).hexdigest()


def log_series(ledger: Any, identity: Any, *, seed: int, steps: int, vault: str, chain_id: int) -> dict[str, Any]:
    """Log the series the agent will decide from (generator, seed, length, digest) before any decision."""
    prices = price_series(seed, steps)
    body = {"generator": GENERATOR, "seed": seed, "steps": steps, "sha256": series_digest(prices),
            "vault": vault.lower(), "chain_id": chain_id, "unit": "stable per token, 18 decimals"}
    res = ledger.append_record(SERIES, body, identity)
    return {"index": res.index, "body": body}


def find_series(ledger: Any, index: int) -> tuple[dict[str, Any], list[int]]:
    """The ``rwa.series`` at ``index`` and the prices it names, regenerated and checked against its digest."""
    try:
        e = ledger.entry(index)
    except (IndexError, KeyError, ValueError, NotFoundError):
        raise NotFoundError(f"no entry #{index} in this ledger", field="series") from None
    if e.type != SERIES:
        raise BadInputError(f"entry #{index} is a {e.type}, not an {SERIES}", field="series")
    b = e.body
    if b.get("generator") != GENERATOR or not isinstance(b.get("seed"), int) or not isinstance(b.get("steps"), int):
        raise BadInputError(f"entry #{index}: unknown generator or malformed series", field="series")
    prices = price_series(b["seed"], b["steps"])
    if series_digest(prices) != b.get("sha256"):
        raise VerificationError(f"entry #{index}: the regenerated series does not have the logged digest",
                                expected=b.get("sha256"), found=series_digest(prices))
    return b, prices


# -- the policy ------------------------------------------------------------------------------------------------
def target_weight(prices: list[int], policy: dict[str, Any] = POLICY) -> int:
    """The policy's target weight of the asset token (basis points) after observing ``prices``."""
    lam = float(policy["ewma_lambda"])
    rets = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    if len(rets) < int(policy["warmup"]):
        return int(policy["base_bps"])
    var = rets[0] ** 2
    for r in rets[1:]:
        var = lam * var + (1 - lam) * r * r
    vol = math.sqrt(var)
    w = int(policy["base_bps"]) * float(policy["target_vol"]) / max(vol, 1e-9)
    return int(min(int(policy["max_bps"]), max(int(policy["min_bps"]), round(w))))


def decide(prices: list[int], *, stable: int, rwa: int, nav: int, cap_stable: int, cap_rwa: int,
           policy: dict[str, Any] = POLICY) -> dict[str, Any]:
    """The decision at the last price: ``{"target_bps", "weight_bps", "trade": None | {token, amount}}``.
    Buys the asset token with stable (token ``stable``) or sells it (token ``rwa``), at most the guard's
    remaining cap and the vault's balance."""
    total = stable + rwa * nav // E18
    w = (rwa * nav // E18) * 10000 // total if total else 0
    t = target_weight(prices, policy)
    out: dict[str, Any] = {"target_bps": t, "weight_bps": w, "trade": None}
    if total == 0 or abs(w - t) <= int(policy["band_bps"]):
        return out
    diff = t * total // 10000 - rwa * nav // E18  # stable units to move into (+) or out of (-) the asset
    if diff > 0:
        amount = min(diff, cap_stable, stable)
        token = "stable"
    else:
        amount = min(-diff * E18 // nav, cap_rwa, rwa)
        token = "rwa"
    if amount > 0:
        out["trade"] = {"token": token, "amount": amount}
    return out


def tracking_error(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Root mean square and maximum of (weight after the step - target), in basis points."""
    d = [r["weight_after_bps"] - r["target_bps"] for r in rows]
    if not d:
        return {"rms_bps": 0.0, "max_bps": 0.0, "steps": 0}
    return {"rms_bps": round(math.sqrt(sum(x * x for x in d) / len(d)), 2), "max_bps": float(max(map(abs, d))),
            "steps": len(d)}


def _weight(v: Vault) -> int:
    s = int(v.stable.functions.balanceOf(v.vault.address).call())
    r = int(v.rwa.functions.balanceOf(v.vault.address).call())
    nav = int(v.desk.functions.nav().call())
    total = s + r * nav // E18
    return (r * nav // E18) * 10000 // total if total else 0


def rebalance_step(ledger: Any, identity: Any, v: Vault, *, model: str, series_index: int, prices: list[int],
                   t: int, post_nav: bool = True) -> dict[str, Any]:
    """Step ``t``: the oracle posts the NAV ``prices[t]`` (when ``post_nav``), the policy decides from
    ``prices[:t+1]`` and the vault's balances, and a trade is logged (``agent.action``) then sent through the
    guard.  A row with the decision, the action's entry and the weights."""
    if not 0 <= t < len(prices):
        raise BadInputError(f"step {t} is outside the series (0..{len(prices) - 1})", field="step")
    require_policy_model(ledger, model)
    w3 = v.w3
    if post_nav:
        send(w3, v.desk.functions.postNav(prices[t]), v.oracle)
    nav = int(v.desk.functions.nav().call())
    if nav != prices[t]:
        raise VerificationError("the desk's NAV is not the series' price at this step", expected=prices[t], found=nav)
    va = v.vault.address
    stable = int(v.stable.functions.balanceOf(va).call())
    rwa = int(v.rwa.functions.balanceOf(va).call())
    cs, cr = cap_left(v, v.stable), cap_left(v, v.rwa)
    window = prices[: t + 1]
    d = decide(window, stable=stable, rwa=rwa, nav=nav, cap_stable=cs, cap_rwa=cr)
    row: dict[str, Any] = {"t": t, "nav": str(nav), "target_bps": d["target_bps"], "weight_before_bps": d["weight_bps"],
                           "action": None}
    if d["trade"] is not None:
        token = v.stable if d["trade"]["token"] == "stable" else v.rwa
        amount = int(d["trade"]["amount"])
        quote = int(v.vault.functions.getAmountOut(token.address, amount).call())
        min_out = quote * (10000 - int(POLICY["slippage_bps"])) // 10000
        intent = {"kind": "swap", "target": va.lower(), "token_in": token.address.lower(), "amount": str(amount),
                  "min_out": str(min_out), "to": v.guard.address.lower()}
        inputs = {"policy_root": policy_root(), "series": series_index, "t": t, "nav": str(nav),
                  "balances": {"stable": str(stable), "rwa": str(rwa)}, "cap_left": {"stable": str(cs), "rwa": str(cr)}}
        res = act(ledger, identity, v, model=model, inputs=inputs, intent=intent)
        row["action"] = {"index": res["index"], "tx": res["body"]["tx"], "token": d["trade"]["token"],
                         "amount": str(amount), "gas": res["gas"], "status": res["status"], "salt": res["salt"]}
    row["weight_after_bps"] = _weight(v)
    return row
