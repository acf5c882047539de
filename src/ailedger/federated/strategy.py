"""The ailedger wrapper for any Flower strategy.

:class:`LedgerStrategy` wraps a Flower ``Strategy`` (FedAvg, FedProx, FedAdam, FedMedian, FedTrimmedAvg,
Krum, ... or your own) and, every round: tells the clients the run, round and base model to sign for
(``configure_fit``); refuses updates that are unsigned, from a key not enrolled in the run or not
registered on the ledger, for another round, with a signature already used, or whose parameters do not
match the signed digest; scores every accepted update for anomaly; stores the accepted updates off-ledger;
lets the inner strategy aggregate them (:func:`aggregate_round`, also what ``fl replay`` runs); and logs
one ``fl.round`` entry signed by the run's server key."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flwr.common import (
    Code,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy

from ailedger.authority.rules import fl_update_statement
from ailedger.authority.service import state as authority_state
from ailedger.encoding.identity import verify_did_signature
from ailedger.errors import BadInputError, VerificationError
from ailedger.federated import dp as dpm
from ailedger.federated.client import InProcessProxy
from ailedger.federated.params import digest, model_root, serialize
from ailedger.federated.store import Store
from ailedger.tlog.identities import Identity

__all__ = ["RULE_NAMES", "LedgerStrategy", "aggregate_round", "anomaly_scores", "make_strategy"]

RULE_NAMES = ("fedavg", "fedprox", "fedadam", "median", "trimmed", "krum")
MEAN_RULES = ("fedavg", "fedprox")  # the rules whose output is the weighted mean the DP noise is calibrated to


def make_strategy(name: str, params: dict[str, Any], *, n_clients: int, initial: Parameters,
                  evaluate_fn: Callable[..., Any] | None = None) -> Strategy:
    """A Flower strategy by rule name and its parameters (the ones logged in ``fl.run``)."""
    from flwr.server.strategy import FedAdam, FedAvg, FedMedian, FedProx, FedTrimmedAvg, Krum

    common: dict[str, Any] = {"min_fit_clients": n_clients, "min_available_clients": n_clients,
                              "fraction_evaluate": 0.0, "min_evaluate_clients": 0,
                              "initial_parameters": initial, "evaluate_fn": evaluate_fn,
                              "fit_metrics_aggregation_fn": _no_metrics}
    if name == "fedavg":
        return FedAvg(**common)
    if name == "fedprox":
        return FedProx(**common, proximal_mu=float(params.get("proximal_mu", 0.1)))
    if name == "fedadam":
        return FedAdam(**common, eta=float(params.get("eta", 0.05)), eta_l=float(params.get("eta_l", 0.5)),
                       tau=float(params.get("tau", 1e-3)))
    if name == "median":
        return FedMedian(**common)
    if name == "trimmed":
        return FedTrimmedAvg(**common, beta=float(params.get("beta", 0.2)))
    if name == "krum":
        return Krum(**common, num_malicious_clients=int(params.get("num_malicious_clients", 2)),
                    num_clients_to_keep=int(params.get("num_clients_to_keep", 0)))
    raise BadInputError(f"unknown aggregation rule {name!r} (one of {', '.join(RULE_NAMES)})", field="strategy")


def _no_metrics(metrics: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    return {}


def default_params(name: str, poisoned: int) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {"fedprox": {"proximal_mu": 0.1}, "fedadam": {"eta": 0.05, "eta_l": 0.5, "tau": 1e-3},
            "trimmed": {"beta": 0.2}, "krum": {"num_malicious_clients": max(poisoned, 1), "num_clients_to_keep": 0}}
    return dict(table.get(name, {}))


def anomaly_scores(updates: list[list[Any]], base: list[Any]) -> list[float]:
    """Each update's distance to the coordinate-wise median update, over the median of those distances
    (1.0 is typical; a poisoned update stands out)."""
    import numpy as np

    if not updates:
        return []
    flat = np.stack([np.concatenate([(np.asarray(u) - np.asarray(b)).ravel() for u, b in zip(up, base)])
                     for up in updates])
    med = np.median(flat, axis=0)
    d = np.linalg.norm(flat - med, axis=1)
    scale = float(np.median(d)) or 1e-12
    return [round(float(x) / scale, 4) for x in d]


def aggregate_round(inner: Strategy, rnd: int, updates: list[tuple[str, list[bytes], int]], base: list[bytes],
                    dp: dpm.DPConfig | None, seed: bytes | None) -> list[bytes]:
    """The new global model's tensors from the accepted ``(did, tensors, n)`` updates (taken in did
    order), clipped and noised when ``dp`` is set.  The live run and ``fl replay`` both call this."""
    if not updates:
        return list(base)
    ups = sorted(updates, key=lambda u: u[0])
    base_arrays = parameters_to_ndarrays(Parameters(tensors=list(base), tensor_type="numpy.ndarray"))
    results: list[tuple[ClientProxy, FitRes]] = []
    for did, tensors, n in ups:
        p = Parameters(tensors=list(tensors), tensor_type="numpy.ndarray")
        if dp is not None:
            clipped, _ = dpm.clip_update(parameters_to_ndarrays(p), base_arrays, dp.clip)
            p = ndarrays_to_parameters(clipped)
        results.append((InProcessProxy(did, None), FitRes(status=Status(code=Code.OK, message=""), parameters=p,
                                                          num_examples=n, metrics={})))
    out, _ = inner.aggregate_fit(rnd, results, [])
    if out is None:
        return list(base)
    if dp is not None:
        if seed is None:
            raise BadInputError(f"round {rnd} adds DP noise and no noise seed was given", field="seed")
        ns = [n for _, _, n in ups]
        std = dp.noise_multiplier * dp.clip * max(ns) / sum(ns)
        out = ndarrays_to_parameters(dpm.add_noise(parameters_to_ndarrays(out), std, seed))
    return list(out.tensors)


@dataclass
class RoundInfo:
    round: int
    entry: int
    accepted: list[str]
    refused: list[dict[str, str]]
    scores: dict[str, float]
    flagged: list[str]
    root_before: str
    root_after: str
    accuracy: float | None
    round_seconds: float = 0.0
    log_seconds: float = 0.0
    epsilon: float | None = None


@dataclass
class RunContext:
    ledger: Any
    server: Identity
    run: int
    enrolled: set[str]
    store: Store
    rule: dict[str, Any]
    dp: dpm.DPConfig | None = None
    flag_threshold: float = 3.0
    evaluate: Callable[[list[Any]], float] | None = None
    rounds: list[RoundInfo] = field(default_factory=list)


class LedgerStrategy(Strategy):
    """Wraps ``inner`` (any Flower strategy) with the audit trail described in the module text."""

    def __init__(self, inner: Strategy, ctx: RunContext) -> None:
        self.inner = inner
        self.ctx = ctx
        self._base: dict[int, list[bytes]] = {}
        self._seen_sigs: dict[str, int] = {}
        self._t0: dict[int, float] = {}

    def __repr__(self) -> str:
        return f"LedgerStrategy({self.inner!r})"

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(self, server_round: int, parameters: Parameters,
                      client_manager: ClientManager) -> list[tuple[ClientProxy, FitIns]]:
        self._t0[server_round] = time.perf_counter()
        self._base[server_round] = list(parameters.tensors)
        base = model_root(parameters.tensors)
        out = []
        for proxy, ins in self.inner.configure_fit(server_round, parameters, client_manager):
            cfg = dict(ins.config)
            cfg.update({"ailedger.run": self.ctx.run, "ailedger.round": server_round, "ailedger.base": base})
            out.append((proxy, FitIns(parameters=ins.parameters, config=cfg)))
        return out

    # -- who may contribute ---------------------------------------------------------------------------
    def _why_refused(self, rnd: int, base_root: str, res: FitRes, seen: set[str]) -> tuple[str | None, str]:
        m = res.metrics
        did, sig, claimed = m.get("ailedger.did"), m.get("ailedger.sig"), m.get("ailedger.digest")
        if not isinstance(did, str) or not isinstance(sig, str) or not isinstance(claimed, str):
            return "unsigned update (no ailedger.did / ailedger.sig / ailedger.digest)", str(did)
        if did not in self.ctx.enrolled:
            return f"{did} is not enrolled in run {self.ctx.run}", did
        led = self.ctx.ledger
        removed = [i for i, r in led.find(type="fl.remove", term=f"subject:{did}")
                   if r.body.get("run") == self.ctx.run and r.signer == self.ctx.server.did]
        if removed:
            return f"{did} was removed from run {self.ctx.run} at entry {removed[0]}", did
        if not any(True for _ in led.find(type="identity.register", signer=did, limit=1)):
            return f"{did} is not a registered identity on this ledger", did
        keys = authority_state(led).keys
        if not keys.can_act(did):
            return f"{did} cannot sign: {keys.why_not(did, keys.principal(did))}", did
        if did in seen:
            return f"a second update from {did} in round {rnd}", did
        if sig in self._seen_sigs:
            return f"replayed signature: already used in round {self._seen_sigs[sig]}", did
        if "ailedger.round" in m and m["ailedger.round"] != rnd:
            return f"update signed for round {m['ailedger.round']!r}, not round {rnd}", did
        actual = digest(res.parameters.tensors)
        if actual != claimed:
            return f"parameters do not match the signed digest ({actual[:16]}... != {claimed[:16]}...)", did
        try:
            verify_did_signature(did, fl_update_statement(self.ctx.run, rnd, claimed, int(res.num_examples),
                                                          base_root), base64.b64decode(sig, validate=True))
        except (VerificationError, ValueError):
            return (f"signature does not verify for run {self.ctx.run} round {rnd} from model {base_root[:16]}..."
                    " (signed for another round, run or model, or forged)"), did
        return None, did

    def aggregate_fit(self, server_round: int, results: list[tuple[ClientProxy, FitRes]],
                      failures: list[tuple[ClientProxy, FitRes] | BaseException]
                      ) -> tuple[Parameters | None, dict[str, Scalar]]:
        ctx = self.ctx
        base = self._base.pop(server_round)
        t_start = self._t0.pop(server_round, time.perf_counter())
        base_root = model_root(base)
        accepted: list[tuple[str, FitRes]] = []
        refused: list[dict[str, str]] = []
        seen: set[str] = set()
        for _proxy, res in results:
            why, did = self._why_refused(server_round, base_root, res, seen)
            if why is None:
                seen.add(did)
                accepted.append((did, res))
            else:
                refused.append({"did": did, "reason": why})
        accepted.sort(key=lambda a: a[0])
        t_log = time.perf_counter()
        base_arrays = parameters_to_ndarrays(Parameters(tensors=base, tensor_type="numpy.ndarray"))
        scores = anomaly_scores([parameters_to_ndarrays(r.parameters) for _, r in accepted], base_arrays)
        # did -> CID when the store is the blob store (logged beside each update); the folder store gives {}
        blobs = ctx.store.put_updates(server_round, [(did, serialize(res.parameters.tensors)) for did, res in accepted])
        seed = None
        noise_blob = None
        if ctx.dp is not None:
            seed = os.urandom(32)
            noise_blob = ctx.store.put_seed(server_round, seed)
        t_log = time.perf_counter() - t_log
        new = aggregate_round(self.inner, server_round,
                              [(did, list(r.parameters.tensors), int(r.num_examples)) for did, r in accepted],
                              base, ctx.dp, seed)
        root_after = model_root(new)
        acc = None
        if ctx.evaluate is not None:
            acc = round(ctx.evaluate(parameters_to_ndarrays(Parameters(tensors=new, tensor_type="numpy.ndarray"))), 6)
        flagged = [did for (did, _), s in zip(accepted, scores) if s > ctx.flag_threshold]
        body: dict[str, Any] = {
            "run": ctx.run, "round": server_round, "root_before": base_root, "root_after": root_after,
            "rule": ctx.rule,
            "clients": [{"did": did, "digest": r.metrics["ailedger.digest"], "n": int(r.num_examples),
                         "sig": r.metrics["ailedger.sig"], "score": s, "flagged": s > ctx.flag_threshold,
                         **({"blob": blobs[did]} if did in blobs else {})}
                        for (did, r), s in zip(accepted, scores)],
            "refused": refused, "flag_threshold": ctx.flag_threshold,
            "subjects": [did for did, _ in accepted],
        }
        eps = None
        if ctx.dp is not None and seed is not None:
            eps = dpm.epsilon(server_round, ctx.dp.noise_multiplier, ctx.dp.delta)
            body["dp"] = {**ctx.dp.as_dict(), "epsilon": round(eps, 6) if math.isfinite(eps) else None,
                          "noise_commit": hashlib.sha256(seed).hexdigest(),
                          **({"noise_blob": noise_blob} if isinstance(noise_blob, str) else {})}
        if acc is not None:
            body["accuracy"] = acc
        t1 = time.perf_counter()
        res_entry = ctx.ledger.append_record("fl.round", body, ctx.server)
        t_log += time.perf_counter() - t1
        for _, r in accepted:
            self._seen_sigs[str(r.metrics["ailedger.sig"])] = server_round
        ctx.rounds.append(RoundInfo(server_round, res_entry.index, [d for d, _ in accepted], refused,
                                    {d: s for (d, _), s in zip(accepted, scores)}, flagged, base_root, root_after,
                                    acc, time.perf_counter() - t_start, t_log, eps))
        return Parameters(tensors=new, tensor_type="numpy.ndarray"), {}

    def configure_evaluate(self, server_round: int, parameters: Parameters,
                           client_manager: ClientManager) -> list[tuple[ClientProxy, EvaluateIns]]:
        return []

    def aggregate_evaluate(self, server_round: int, results: list[tuple[ClientProxy, EvaluateRes]],
                           failures: list[tuple[ClientProxy, EvaluateRes] | BaseException]
                           ) -> tuple[float | None, dict[str, Scalar]]:
        return None, {}

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        return self.inner.evaluate(server_round, parameters)
