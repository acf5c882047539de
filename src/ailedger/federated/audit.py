"""Reading a federated run back from the log: the fold (:func:`run_view`), replay of every round from
the stored updates (:func:`replay`), and removal of a client (:func:`remove_client`).

Every ``fl.round`` / ``fl.remove`` is judged by ``authority.service.fl_entry_allowed`` (the one rule for
these types); entries without effect are listed in ``ignored`` and never read as rounds."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from ailedger.authority.service import fl_entry_allowed
from ailedger.errors import BadInputError, NotFoundError, VerificationError
from ailedger.federated.params import deserialize, digest, model_root

__all__ = ["RunView", "remove_client", "replay", "run_view", "runs"]


@dataclass
class RunView:
    index: int
    server: str
    body: dict[str, Any]
    rounds: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (entry index, body)
    removals: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    ignored: list[tuple[int, str]] = field(default_factory=list)

    def flagged(self) -> dict[str, list[int]]:
        """Client -> the rounds in which its update was flagged."""
        out: dict[str, list[int]] = {}
        for _, b in self.rounds:
            for c in b.get("clients", []):
                if c.get("flagged"):
                    out.setdefault(c["did"], []).append(b["round"])
        return out

    def rounds_with(self, did: str) -> list[int]:
        return [b["round"] for _, b in self.rounds if any(c.get("did") == did for c in b.get("clients", []))]

    def summary(self) -> dict[str, Any]:
        last = self.rounds[-1][1] if self.rounds else {}
        return {"run": self.index, "name": self.body.get("name"), "server": self.server,
                "rule": self.body.get("rule"), "clients": self.body.get("clients", []),
                "rounds": len(self.rounds), "accuracy": last.get("accuracy"),
                "final_root": last.get("root_after", self.body.get("init_root")),
                "store": self.body.get("store"), "dp": self.body.get("dp"), "epsilon": (last.get("dp") or {}).get("epsilon"),
                "flagged": self.flagged(),
                "removed": [{"entry": i, "client": b.get("client"), "reason": b.get("reason"),
                             "rounds": b.get("rounds")} for i, b in self.removals],
                "ignored": [{"entry": i, "why": w} for i, w in self.ignored],
                "round_list": [{"entry": i, "round": b.get("round"), "accuracy": b.get("accuracy"),
                                "accepted": len(b.get("clients", [])), "refused": b.get("refused", []),
                                "flagged": [c["did"] for c in b.get("clients", []) if c.get("flagged")],
                                "epsilon": (b.get("dp") or {}).get("epsilon"), "root_after": b.get("root_after")}
                               for i, b in self.rounds]}


def runs(ledger: Any) -> list[int]:
    return [i for i, _ in ledger.find(type="fl.run")]


def run_view(ledger: Any, run: int) -> RunView:
    if not 0 <= run < ledger.size:
        raise NotFoundError(f"no entry {run} in this log (a run is the index of its fl.run entry)", field="run")
    e = ledger.entry(run)
    if e.type != "fl.run":
        raise NotFoundError(f"entry {run} is not an fl.run (it is a {e.type} entry)", field="run")
    v = RunView(run, e.signer, dict(e.body))
    for t in ("fl.round", "fl.remove"):
        for idx, r in ledger.find(type=t):
            if r.body.get("run") != run:
                continue
            why = fl_entry_allowed(ledger, r, before=idx)
            if why:
                v.ignored.append((idx, why))
            elif t == "fl.round":
                v.rounds.append((idx, dict(r.body)))
            else:
                v.removals.append((idx, dict(r.body)))
    v.rounds.sort()
    seen: set[int] = set()
    kept = []
    for idx, b in v.rounds:  # the first effective entry of each round counts
        if b["round"] in seen:
            v.ignored.append((idx, f"round {b['round']} was already logged"))
            continue
        seen.add(b["round"])
        kept.append((idx, b))
    v.rounds = kept
    v.ignored.sort()
    return v


def replay(ledger: Any, run: int, store: Any, *, progress: Any = None) -> dict[str, Any]:
    """Recompute every round of ``run`` from the stored updates and check each aggregate's root equals
    the logged ``root_after``, bit for bit.  Raises :class:`VerificationError` naming the client and round when
    a stored update does not match its logged digest, :class:`VerificationError` when a recomputed root
    differs."""
    from flwr.common import Parameters

    from ailedger.federated.dp import DPConfig
    from ailedger.federated.strategy import aggregate_round, make_strategy

    t0 = time.perf_counter()
    v = run_view(ledger, run)
    init = deserialize(store.get_init(), what="initial model")
    if model_root(init) != v.body.get("init_root"):
        raise VerificationError(f"run {run}: the stored initial model's root {model_root(init)[:16]}... is not the "
                          f"logged {str(v.body.get('init_root'))[:16]}...", field="store")
    rule = v.body.get("rule") or {}
    inner = make_strategy(str(rule.get("name")), dict(rule.get("params") or {}),
                          n_clients=len(v.body.get("clients", [])),
                          initial=Parameters(tensors=list(init), tensor_type="numpy.ndarray"))
    dpc = v.body.get("dp")
    dp = DPConfig(float(dpc["clip"]), float(dpc["noise_multiplier"]), float(dpc["delta"])) if dpc else None
    current = init
    checked = []
    for idx, b in v.rounds:
        rnd = b["round"]
        if b["root_before"] != model_root(current):
            raise VerificationError(f"round {rnd} (entry {idx}) starts from model {b['root_before'][:16]}... but the "
                                    f"previous round ended at {model_root(current)[:16]}...", field="root_before")
        updates = []
        clients = b.get("clients", [])
        for c, raw in zip(clients, store.get_updates(rnd, [c["did"] for c in clients])):
            tensors = deserialize(raw, what=f"round {rnd} update of {c['did']}")
            if digest(tensors) != c["digest"]:
                raise VerificationError(f"round {rnd}: the stored update of client {c['did']} does not match its logged "
                                  f"digest (entry {idx}): tampered", field="store", expected=c["digest"], found=digest(tensors))
            updates.append((c["did"], tensors, int(c["n"])))
        seed = None
        if dp is not None:
            seed = store.get_seed(rnd)
            if hashlib.sha256(seed).hexdigest() != (b.get("dp") or {}).get("noise_commit"):
                raise VerificationError(f"round {rnd}: the stored noise seed does not match its logged commitment",
                                  field="store")
        new = aggregate_round(inner, rnd, updates, current, dp, seed)
        root = model_root(new)
        if root != b["root_after"]:
            raise VerificationError(f"round {rnd} (entry {idx}): the recomputed aggregate's root {root[:16]}... is not "
                                    f"the logged {b['root_after'][:16]}...", field="root_after",
                                    expected=b["root_after"], found=root)
        checked.append({"round": rnd, "entry": idx, "clients": len(updates), "root": root})
        current = new
        if progress is not None:
            progress.update(1)
    return {"run": run, "ok": True, "rounds": len(checked), "final_root": model_root(current),
            "seconds": round(time.perf_counter() - t0, 4), "checked": checked,
            "ignored": [{"entry": i, "why": w} for i, w in v.ignored]}


def remove_client(ledger: Any, run: int, client: str, server: Any, *, reason: str) -> dict[str, Any]:
    """Log ``fl.remove``: ``client`` takes no further part in ``run``; names the rounds its updates went
    into and the rounds whose models descend from them."""
    v = run_view(ledger, run)
    if client not in v.body.get("clients", []):
        raise BadInputError(f"{client} is not enrolled in run {run}", field="client")
    if any(b.get("client") == client for _, b in v.removals):
        raise BadInputError(f"{client} was already removed from run {run}", field="client")
    rounds = v.rounds_with(client)
    all_rounds = [b["round"] for _, b in v.rounds]
    tainted = [r for r in all_rounds if rounds and r >= rounds[0]]
    body = {"run": run, "client": client, "reason": reason, "rounds": rounds, "tainted_rounds": tainted,
            "flagged_in": v.flagged().get(client, []), "subjects": [client]}
    res = ledger.append_record("fl.remove", body, server)
    return {"entry": res.index, **body}
