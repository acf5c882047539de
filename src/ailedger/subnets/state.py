"""Subnets as a pure fold over ``subnet.*`` entries: who may sign what, with effect, and the epoch results.

Pure: no I/O, no clock.  Entries come in log order with their index; a member's stake comes from
``stake_of(subnet, did, index, until_ms)``: the reputation it has locked on the subnet through the
governance module's staking (``stake.claim`` of kind ``subnet`` on subject ``subnet:NAME``) at entry
``index``, counting only locks that cannot be released before ``until_ms`` (the service reads it from the
governance fold).
:meth:`SubnetBook.apply` raises :class:`NotAuthorisedError` / :class:`BadInputError` and changes nothing
when the rules refuse an entry; :meth:`SubnetBook.fold` records the refusal and goes on (an entry that
reached the log another way is ignored, never honoured).

Time: a subnet's epochs are windows of ``epoch_ms`` of signed entry time from its ``subnet.create``:
epoch n is ``[start + n L, start + (n+1) L)``.  Commits for epoch n are signed in window n, reveals in
window n+1, and ``subnet.epoch`` n once window n+1 has ended.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.times import time_ms
from ailedger.errors import BadInputError, ConflictError, NotAuthorisedError, NotFoundError
from ailedger.subnets.yuma import U16, EpochResult, Params, copies, fold_epoch

__all__ = ["TYPES", "Subnet", "SubnetBook", "audit_reveal", "commitment", "epoch_body", "pool_commitment",
           "weights_from_observations"]

TYPES = ("subnet.create", "subnet.params", "subnet.register", "subnet.commit", "subnet.reveal", "subnet.epoch",
         "subnet.pool")
ROLES = ("miner", "validator")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_EPOCH_MS = 100
MAX_MINERS = 4096
MAX_VALIDATORS = 256

StakeOf = Callable[[str, str, int, int], int]
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _seal(doc: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def commitment(subnet: str, epoch: int, validator: str, uids: list[int], values: list[int], salt: str,
               observations: dict[str, Any] | None = None) -> str:
    """sha256 over the RFC 8785 canonical JSON of the revealed fields (the validator's did included, so a
    commitment cannot be reused by another key; ``observations`` only when the reveal carries them)."""
    doc: dict[str, Any] = {"epoch": epoch, "salt": salt, "subnet": subnet, "uids": uids, "validator": validator,
                           "values": values}
    if observations is not None:
        doc["observations"] = observations
    return _seal(doc)


def pool_commitment(subnet: str, items: list[Any], salt: str) -> str:
    """The evaluation pool's commitment: sha256 over the RFC 8785 JSON of ``{items, salt, subnet}``."""
    return _seal({"items": items, "salt": salt, "subnet": subnet})


def check_pool(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not items:
        raise BadInputError("the pool is a non-empty list of {prompt, answer} items", field="items")
    for k, it in enumerate(items):
        if not isinstance(it, dict) or "prompt" not in it or "answer" not in it:
            raise BadInputError(f"pool item {k} must be an object with prompt and answer", field="items")
    return items


def check_observations(obs: Any, miners: int) -> dict[str, list[list[Any]]]:
    """``{uid: [[item, answer], ...]}``: the answers a validator was served, by pool item index."""
    if not isinstance(obs, dict) or not obs:
        raise BadInputError("observations are an object {miner uid: [[pool item, answer], ...]}",
                            field="observations")
    for u, rows in obs.items():
        if not isinstance(u, str) or not u.isdigit() or not 0 <= int(u) < miners:
            raise BadInputError(f"observations for {u!r}, which is not a registered miner uid", field="observations")
        if not isinstance(rows, list) or not rows:
            raise BadInputError(f"observations for miner {u} must be a non-empty list", field="observations")
        for r in rows:
            if (not isinstance(r, list) or len(r) != 2 or isinstance(r[0], bool) or not isinstance(r[0], int)
                    or r[0] < 0):
                raise BadInputError(f"observation {r!r} of miner {u} is not [pool item index, answer]",
                                    field="observations")
    return obs


def weights_from_observations(items: list[dict[str, Any]], obs: dict[str, list[list[Any]]]
                              ) -> tuple[list[int], list[int]]:
    """The accuracy rule, exactly: ``a_j = (answers equal to the pool's) / (answers observed)`` and
    ``w_j = round_half_even(a_j / max_k a_k * 65535)`` in rational arithmetic (uids ascending)."""
    from fractions import Fraction

    acc: dict[int, Fraction] = {}
    for u, rows in obs.items():
        for k, _ans in rows:
            if k >= len(items):
                raise BadInputError(f"observation of miner {u} cites pool item {k}; the pool has {len(items)}",
                                    field="observations")
        acc[int(u)] = Fraction(sum(1 for k, ans in rows if ans == items[k]["answer"]), len(rows))
    top = max(acc.values())
    if top == 0:
        raise BadInputError("every observed answer is wrong: every weight would be zero", field="observations")
    uids = sorted(acc)
    return uids, [round(acc[u] / top * U16) for u in uids]


def audit_reveal(items: list[dict[str, Any]], body: dict[str, Any]) -> str | None:
    """None when a reveal's weights follow from its observations on the revealed pool, else why not."""
    obs = body.get("observations")
    if obs is None:
        return "the reveal carries no observations"
    try:
        uids, values = weights_from_observations(items, obs)
    except BadInputError as exc:
        return exc.message
    got = dict(zip(body.get("uids", []), body.get("values", []), strict=False))
    want = dict(zip(uids, values, strict=True))
    if got != want:
        bad = sorted(u for u in set(got) | set(want) if got.get(u) != want.get(u))[:4]
        return "weights differ from the pool's accuracy for miner(s) " + ", ".join(
            f"{u} ({got.get(u)} revealed, {want.get(u)} by the pool)" for u in bad)
    return None


def _int(body: dict[str, Any], k: str) -> int:
    v = body.get(k)
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadInputError(f"body.{k} must be an integer", field=k)
    return v


def _diff(want: Any, got: Any, path: str = "") -> list[str]:
    """Where ``got`` differs from ``want`` (dotted paths, list positions in brackets)."""
    if isinstance(want, dict) and isinstance(got, dict):
        return [d for k in sorted(set(want) | set(got), key=str)
                for d in _diff(want.get(k), got.get(k), f"{path}.{k}" if path else str(k))]
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for i, (a, b) in enumerate(zip(want, got, strict=True)) for d in _diff(a, b, f"{path}[{i}]")]
    if want != got or type(want) is not type(got):
        return [f"{path}: {got!r} instead of {want!r}" if not isinstance(want, (dict, list)) else path]
    return []


def _refuse(e: Any, why: str, field: str = "signer") -> NotAuthorisedError:
    return NotAuthorisedError(f"{e.type} by {e.signer} has no effect: {why}", field=field, type=e.type)


def check_weights(uids: Any, values: Any, miners: int) -> tuple[list[int], list[int]]:
    """The rules a weight vector must meet (also used before a commit, so nothing unrevealable is committed)."""
    if not isinstance(uids, list) or not isinstance(values, list) or len(uids) != len(values):
        raise BadInputError("weights are two lists of equal length: uids and values", field="weights")
    if not uids:
        raise BadInputError("the weight vector is empty", field="weights")
    for u in uids:
        if isinstance(u, bool) or not isinstance(u, int):
            raise BadInputError(f"miner uid {u!r} is not an integer", field="uids")
        if not 0 <= u < miners:
            raise BadInputError(f"weight for miner uid {u}, which is not a registered miner "
                                f"(this subnet has {miners} miner(s): uids 0..{miners - 1})", field="uids")
    if len(set(uids)) != len(uids):
        raise BadInputError("a miner uid appears twice in the weights", field="uids")
    for x in values:
        if isinstance(x, bool) or not isinstance(x, int):
            raise BadInputError(f"weight {x!r} is not an integer 0..{U16}", field="values")
        if not 0 <= x <= U16:
            raise BadInputError(f"weight {x} is outside 0..{U16}", field="values")
    if not any(values):
        raise BadInputError("every weight is zero", field="values")
    return list(uids), list(values)


@dataclass
class Subnet:
    name: str
    owner: str
    created: int
    start_ms: int
    epoch_ms: int
    task: dict[str, Any]
    params: list[tuple[int, Params]]                  # (effective from time ms, params)
    miners: list[str] = field(default_factory=list)   # uid -> did
    validators: list[str] = field(default_factory=list)
    role: dict[str, str] = field(default_factory=dict)
    commits: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)   # (epoch, did) -> commit
    reveals: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)  # epoch -> did -> reveal
    next_epoch: int = 0
    bonds: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    epochs: list[dict[str, Any]] = field(default_factory=list)  # per folded epoch: index, result body
    earned: dict[str, int] = field(default_factory=dict)        # did -> units, over all folded epochs
    previous: list[tuple[int, np.ndarray]] = field(default_factory=list)  # last epoch's rows and consensus
    pool_commitment: str | None = None
    pool: dict[str, Any] | None = None                          # the revealed pool: index, items

    def epoch_of(self, t_ms: int) -> int:
        return (t_ms - self.start_ms) // self.epoch_ms

    def window(self, n: int) -> tuple[int, int]:
        return self.start_ms + n * self.epoch_ms, self.start_ms + (n + 1) * self.epoch_ms

    def params_for(self, n: int) -> Params:
        begin = self.window(n)[0]
        cur = self.params[0][1]
        for since, p in self.params:
            if since <= begin:
                cur = p
        return cur

    def compute(self, n: int) -> tuple[EpochResult, list[str]]:
        """Epoch n's result from the reveals folded so far (rows: validators in uid order)."""
        res, rows, _copied = self.compute_full(n)
        return res, rows

    def compute_full(self, n: int) -> tuple[EpochResult, list[str], list[int]]:
        """Also the rows whose dividends the copy rule cut (see docs/incentives.md)."""
        v, m = len(self.validators), len(self.miners)
        w = np.zeros((v, m), dtype=np.int64)
        stake = [0] * v
        for i, did in enumerate(self.validators):
            r = self.reveals.get(n, {}).get(did)
            if r is None:
                continue
            stake[i] = r["stake"]
            w[i, r["uids"]] = r["values"]
        p = self.params_for(n)
        copied = copies(w, self.previous, p.copy_tol_bps)
        return fold_epoch(stake, w, self.bonds, p, copied=copied), list(self.validators), copied

    def clone(self) -> Subnet:
        """A copy that applying one entry to cannot change this one (containers copied, values shared)."""
        return replace(self, params=list(self.params), miners=list(self.miners), validators=list(self.validators),
                       role=dict(self.role), commits=dict(self.commits),
                       reveals={k: dict(v) for k, v in self.reveals.items()}, epochs=list(self.epochs),
                       earned=dict(self.earned), previous=list(self.previous))

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "owner": self.owner, "created": self.created, "task": self.task,
                "epoch_ms": self.epoch_ms, "start_ms": self.start_ms,
                "params": self.params[-1][1].to_dict(), "miners": list(self.miners),
                "validators": list(self.validators), "next_epoch": self.next_epoch,
                "epochs": len(self.epochs), "earned": dict(sorted(self.earned.items())),
                "pool_commitment": self.pool_commitment,
                "pool": None if self.pool is None else {"index": self.pool["index"], "items": len(self.pool["items"])}}


def epoch_body(sn: Subnet, n: int, res: EpochResult, copied: list[int] | None = None) -> dict[str, Any]:
    body = {"subnet": sn.name, "epoch": n, "miners": len(sn.miners), "validators": len(sn.validators),
            "result": res.body()}
    if copied:
        body["copies"] = copied
    return body


class SubnetBook:
    """Every subnet of one log, folded entry by entry."""

    def __init__(self, stake_of: StakeOf) -> None:
        self.stake_of = stake_of
        self.subnets: dict[str, Subnet] = {}
        self.ignored: list[dict[str, Any]] = []
        self.applied = 0

    def fold(self, items: Iterable[tuple[int, Any]]) -> SubnetBook:
        for idx, e in items:
            try:
                self.apply(idx, e)
            except BadInputError as exc:
                self.ignored.append({"index": idx, "type": e.type, "reason": exc.message})
        return self

    def get(self, name: str) -> Subnet:
        sn = self.subnets.get(name)
        if sn is None:
            raise NotFoundError(f"no subnet named {name!r}", field="subnet")
        return sn

    def trial(self) -> SubnetBook:
        """A copy to apply entries to without changing this book."""
        t = SubnetBook(self.stake_of)
        t.subnets = {k: v.clone() for k, v in self.subnets.items()}
        t.applied = self.applied
        return t

    def check(self, idx: int, e: Any) -> None:
        """Would ``e`` at ``idx`` take effect?  Raises like :meth:`apply`; changes nothing."""
        trial = SubnetBook(self.stake_of)
        trial.subnets = dict(self.subnets)
        name = e.body.get("subnet") if isinstance(e.body, dict) else None
        if isinstance(name, str) and name in trial.subnets:
            trial.subnets[name] = trial.subnets[name].clone()
        trial.apply(idx, e)

    # -- the rules -------------------------------------------------------------------------------------------

    def apply(self, idx: int, e: Any) -> None:
        """Apply one entry; raises (and changes nothing) when the rules refuse it."""
        if e.type not in TYPES:
            raise BadInputError(f"{e.type} is not a subnet entry", field="type")
        body = e.body if isinstance(e.body, dict) else {}
        t = time_ms(e.time)
        if e.type == "subnet.create":
            self._create(idx, e, body, t)
            self.applied += 1
            return
        name = body.get("subnet")
        if not isinstance(name, str):
            raise BadInputError("body.subnet must name a subnet", field="subnet")
        sn = self.get(name)
        getattr(self, "_" + e.type.split(".", 1)[1])(sn, idx, e, body, t)
        self.applied += 1

    def _create(self, idx: int, e: Any, body: dict[str, Any], t: int) -> None:
        name = body.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise BadInputError(f"subnet name {name!r} must match {NAME.pattern}", field="name")
        if name in self.subnets:
            raise _refuse(e, f"subnet {name} already exists (created at entry {self.subnets[name].created} "
                             f"by {self.subnets[name].owner})")
        task = body.get("task")
        if not isinstance(task, dict) or not task:
            raise BadInputError("body.task must describe the task and its evaluation rule", field="task")
        epoch_ms = _int(body, "epoch_ms")
        if epoch_ms < MIN_EPOCH_MS:
            raise BadInputError(f"epoch_ms must be at least {MIN_EPOCH_MS}", field="epoch_ms")
        params = body.get("params", {})
        if not isinstance(params, dict):
            raise BadInputError("body.params must be an object", field="params")
        p = Params.from_dict(params)
        pc = body.get("pool_commitment")
        if pc is not None and (not isinstance(pc, str) or not HEX64.match(pc)):
            raise BadInputError("body.pool_commitment must be 64 lowercase hex digits (sha256)",
                                field="pool_commitment")
        self.subnets[name] = Subnet(name, e.signer, idx, t, epoch_ms, task, [(t, p)], pool_commitment=pc)

    def _pool(self, sn: Subnet, idx: int, e: Any, body: dict[str, Any], t: int) -> None:
        if e.signer != sn.owner:
            raise _refuse(e, f"only the subnet's owner {sn.owner} may reveal its evaluation pool")
        if sn.pool_commitment is None:
            raise BadInputError(f"subnet {sn.name} committed to no evaluation pool", field="subnet")
        if sn.pool is not None:
            raise ConflictError(f"the pool of subnet {sn.name} is already revealed (entry {sn.pool['index']})",
                                field="subnet")
        items = check_pool(body.get("items"))
        salt = body.get("salt")
        if not isinstance(salt, str) or not salt:
            raise BadInputError("body.salt must be the pool commitment's salt", field="salt")
        if pool_commitment(sn.name, items, salt) != sn.pool_commitment:
            raise BadInputError(f"the revealed pool does not open the commitment of subnet {sn.name} "
                                f"({sn.pool_commitment[:16]}...)", field="items")
        sn.pool = {"index": idx, "items": items}

    def _params(self, sn: Subnet, idx: int, e: Any, body: dict[str, Any], t: int) -> None:
        if e.signer != sn.owner:
            raise _refuse(e, f"only the subnet's owner {sn.owner} may set its parameters")
        params = body.get("params")
        if not isinstance(params, dict):
            raise BadInputError("body.params must be an object", field="params")
        merged = {**sn.params[-1][1].to_dict(), **params}
        sn.params.append((t, Params.from_dict(merged)))

    def _register(self, sn: Subnet, idx: int, e: Any, body: dict[str, Any], t: int) -> None:
        role = body.get("role")
        if role not in ROLES:
            raise BadInputError(f"body.role must be one of {', '.join(ROLES)}", field="role")
        if e.signer in sn.role:
            raise ConflictError(f"{e.signer} is already registered in subnet {sn.name} as a {sn.role[e.signer]}",
                                field="signer")
        if role == "miner":
            need = sn.params_for(sn.epoch_of(t)).miner_min_stake
            if need and self.stake_of(sn.name, e.signer, idx, t) < need:
                raise _refuse(e, f"a miner of subnet {sn.name} must have {need} reputation staked on it "
                                 f"(stake claim of kind subnet on subnet:{sn.name}); "
                                 f"{self.stake_of(sn.name, e.signer, idx, t)} is")
            if len(sn.miners) >= MAX_MINERS:
                raise ConflictError(f"subnet {sn.name} is full ({MAX_MINERS} miners)", field="role")
            sn.miners.append(e.signer)
        else:
            if len(sn.validators) >= MAX_VALIDATORS:
                raise ConflictError(f"subnet {sn.name} is full ({MAX_VALIDATORS} validators)", field="role")
            sn.validators.append(e.signer)
        sn.role[e.signer] = role

    def _commit(self, sn: Subnet, idx: int, e: Any, body: dict[str, Any], t: int) -> None:
        n = _int(body, "epoch")
        c = body.get("commitment")
        if not isinstance(c, str) or not re.fullmatch(r"[0-9a-f]{64}", c):
            raise BadInputError("body.commitment must be 64 lowercase hex digits (sha256)", field="commitment")
        if sn.role.get(e.signer) != "validator":
            raise _refuse(e, f"{e.signer} is not a registered validator of subnet {sn.name}")
        if sn.epoch_of(t) != n:
            lo, hi = sn.window(n)
            raise BadInputError(f"a commit for epoch {n} must be signed during that epoch ({lo}..{hi} ms); "
                                f"this one is dated in epoch {sn.epoch_of(t)}", field="epoch")
        if n < sn.next_epoch:
            raise BadInputError(f"epoch {n} is already folded", field="epoch")
        if (n, e.signer) in sn.commits:
            raise ConflictError(f"a second commit by {e.signer} for epoch {n} (the first is entry "
                                f"{sn.commits[(n, e.signer)]['index']}); one commit per validator per epoch",
                                field="epoch")
        until = sn.window(n + 1)[1]
        stake = self.stake_of(sn.name, e.signer, idx, until)
        if stake <= 0:
            raise _refuse(e, f"validator {e.signer} has no stake locked on subnet {sn.name} at entry {idx} "
                             f"(a stake claim of kind subnet on subnet:{sn.name} whose lock lasts until the "
                             f"reveal window ends, {until} ms)")
        sn.commits[(n, e.signer)] = {"index": idx, "commitment": c, "stake": stake}

    def _reveal(self, sn: Subnet, idx: int, e: Any, body: dict[str, Any], t: int) -> None:
        n = _int(body, "epoch")
        com = sn.commits.get((n, e.signer))
        if com is None:
            raise _refuse(e, f"{e.signer} made no commit for epoch {n} of subnet {sn.name}")
        if e.signer in sn.reveals.get(n, {}):
            raise ConflictError(f"epoch {n} weights of {e.signer} are already revealed", field="epoch")
        if n < sn.next_epoch:
            raise BadInputError(f"epoch {n} is already folded", field="epoch")
        at = sn.epoch_of(t)
        if at <= n:
            raise BadInputError(f"a reveal for epoch {n} is accepted only after the epoch ends (from "
                                f"{sn.window(n)[1]} ms); this one is early", field="time")
        if at > n + 1:
            raise BadInputError(f"reveal after the deadline: the reveal for epoch {n} was due before "
                                f"{sn.window(n + 1)[1]} ms; its weights are not counted", field="time")
        salt = body.get("salt")
        if not isinstance(salt, str) or not salt:
            raise BadInputError("body.salt must be the commitment's salt", field="salt")
        uids, values = check_weights(body.get("uids"), body.get("values"), len(sn.miners))
        obs = body.get("observations")
        if obs is not None:
            check_observations(obs, len(sn.miners))
        if commitment(sn.name, n, e.signer, uids, values, salt, obs) != com["commitment"]:
            raise BadInputError(f"the reveal does not open the commitment of entry {com['index']}",
                                field="commitment")
        ev = body.get("evidence", [])
        if not isinstance(ev, list) or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < idx
                                               for x in ev):
            raise BadInputError("body.evidence must list earlier entry indices (the inference records scored)",
                                field="evidence")
        sn.reveals.setdefault(n, {})[e.signer] = {"index": idx, "uids": uids, "values": values,
                                                  "stake": com["stake"], "evidence": ev}

    def _epoch(self, sn: Subnet, idx: int, e: Any, body: dict[str, Any], t: int) -> None:
        n = _int(body, "epoch")
        if n < sn.next_epoch:
            raise ConflictError(f"epoch {n} of subnet {sn.name} is already folded (entry "
                                f"{sn.epochs[n]['index']}); nothing is paid twice", field="epoch")
        if n > sn.next_epoch:
            raise BadInputError(f"epoch {sn.next_epoch} must be folded before epoch {n}", field="epoch")
        if t < sn.window(n + 1)[1]:
            raise BadInputError(f"epoch {n} can be folded once its reveal window ends ({sn.window(n + 1)[1]} ms)",
                                field="time")
        res, rows, copied = sn.compute_full(n)
        want = epoch_body(sn, n, res, copied)
        if body != want:
            diff = _diff(want, body)[:4]
            raise _refuse(e, f"its epoch {n} result differs from the fold's ({'; '.join(diff)})", field="result")
        sn.bonds = res.bonds
        for did, pay in zip(sn.miners, res.miner_pay, strict=True):
            if pay:
                sn.earned[did] = sn.earned.get(did, 0) + pay
        for did, pay in zip(rows, res.validator_pay, strict=True):
            if pay:
                sn.earned[did] = sn.earned.get(did, 0) + pay
        if res.owner_pay:
            sn.earned[sn.owner] = sn.earned.get(sn.owner, 0) + res.owner_pay
        revealed = {did: {"index": r["index"], "evidence": r["evidence"]} for did, r in sn.reveals.get(n, {}).items()}
        sn.epochs.append({"index": idx, "epoch": n, "result": want["result"], "reveals": revealed,
                          "copies": [rows[i] for i in copied]})
        sn.next_epoch = n + 1
        prev: list[tuple[int, np.ndarray]] = []
        for i, did in enumerate(sn.validators):
            r = sn.reveals.get(n, {}).get(did)
            if r is not None:
                vec = np.zeros(len(sn.miners), dtype=np.int64)
                vec[r["uids"]] = r["values"]
                prev.append((i, vec))
        prev.append((-1, np.asarray(res.consensus, dtype=np.int64)))
        sn.previous = prev
        sn.reveals.pop(n, None)
        for k in [k for k in sn.commits if k[0] == n]:
            del sn.commits[k]

    def compute_next(self, name: str) -> tuple[int, dict[str, Any]]:
        sn = self.get(name)
        n = sn.next_epoch
        res, _rows, copied = sn.compute_full(n)
        return n, epoch_body(sn, n, res, copied)
