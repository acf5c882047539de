"""Subnets on a ledger: write the entries (checked by the fold first, so a refused entry is never logged),
fold the log into the subnets' state, replay every epoch and compare it with what was logged.

A member's stake is the reputation it has locked on the subnet with the governance module's staking: a
``stake.claim`` of kind ``subnet`` on subject ``subnet:NAME`` (:func:`stake`), read from the governance fold
(:func:`ailedger.governance.service.state`); a lock counts while it is held and only if it cannot be
released before the epoch's reveal window ends.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ailedger.encoding.records import build_entry, parse_entry
from ailedger.encoding.times import time_ms
from ailedger.errors import AiledgerError, BadInputError, NotAuthorisedError, NotFoundError, VerificationError
from ailedger.governance import staking
from ailedger.governance.service import state as gov_state
from ailedger.subnets.state import (
    TYPES,
    SubnetBook,
    audit_reveal,
    check_observations,
    check_pool,
    check_weights,
    commitment,
    pool_commitment,
    weights_from_observations,
)
from ailedger.subnets.yuma import U16, Params
from ailedger.tlog.sparse import indexed_leaves

__all__ = ["audit", "book", "commit", "create", "epoch", "judge", "register", "replay", "reveal", "reveal_pool",
           "set_params", "show", "stake", "stake_reader", "to_u16"]

_MARK = b'"type":"subnet.'


def _subnet_entries(ledger: Any, *, verify: bool = False, batch: int = 20000, start: int = 0,
                    end: int | None = None) -> Iterator[tuple[int, Any]]:
    for idx, _h, data in ledger.store.iter_leaves(start, ledger.size if end is None else end, batch):
        data = bytes(data)
        if _MARK in data:
            e = parse_entry(data, verify=verify)
            if e.type in TYPES:
                yield idx, e


SPARSE_SCAN_FROM = 20000


def _indexed_entries(ledger: Any, start: int, end: int) -> list[tuple[int, Any]] | None:
    """Subnet entries in [start, end) found through the log's type index; None when they are not sparse
    (then scanning is cheaper)."""
    found = indexed_leaves(ledger.store, TYPES, start, end)
    if found is None:
        return None
    return [(i, e) for i, leaf in found if (e := parse_entry(leaf, verify=False)).type in TYPES]


def stake_reader(ledger: Any) -> Callable[[str, str, int, int], int]:
    """A member's stake in a subnet just before entry ``index``: the sum of its governance stake claims of
    kind ``subnet`` on ``subnet:NAME`` made before ``index``, neither released nor settled by a dispute
    before it, whose challenge window (the shortest lock governance allows) ends at or after ``until_ms``."""
    seen: dict[str, Any] = {"size": -1, "claims": {}}

    def stake_of(subnet: str, did: str, index: int, until_ms: int) -> int:
        if seen["size"] != ledger.size:  # the subnet claims by (staker, subject), read once per log size
            by: dict[tuple[str, str], list[Any]] = {}
            for c in gov_state(ledger).claims.values():
                if c.claim == "subnet":
                    by.setdefault((c.staker, c.subject), []).append(c)
            seen.update(size=ledger.size, claims=by)
        return sum(int(c.stake) for c in seen["claims"].get((did, f"subnet:{subnet}"), [])
                   if c.window_ends >= until_ms and c.locked_at(index))
    return stake_of


_cache: dict[str, tuple[SubnetBook, int]] = {}
_cache_lock = threading.Lock()


def book(ledger: Any) -> SubnetBook:
    """Every subnet's state, folded from the log (unauthorised or wrong entries are ignored and listed).

    Cached per ledger: only the entries appended since the last call are folded (``replay`` always folds
    from entry 0)."""
    key = f"{Path(ledger.path).resolve()} {ledger.vkey}"
    with _cache_lock:
        b, done = _cache.get(key, (None, 0))
        size = ledger.size
        if b is None or done > size:
            b, done = SubnetBook(stake_reader(ledger)), 0
        if size > done:
            found = _indexed_entries(ledger, done, size) if size - done >= SPARSE_SCAN_FROM else None
            b.fold(found if found is not None else _subnet_entries(ledger, start=done, end=size))
        _cache[key] = (b, size)
        return b


def judge(ledger: Any, items: list[tuple[int, Any]]) -> list[NotAuthorisedError | None]:
    """The admission check (``authority.hooks.use_judge("subnet.")``): for each (index, entry) of a batch, in
    order, the NotAuthorisedError when the rules give it no effect there (each judged after the ones before
    it, on a trial copy of the book); other faults are left to the fold (ignored there)."""
    if len(items) == 1:
        idx, e = items[0]
        try:
            book(ledger).check(idx, e)
        except NotAuthorisedError as exc:
            return [exc]
        except BadInputError:
            pass
        return [None]
    trial = book(ledger).trial()
    out: list[NotAuthorisedError | None] = []
    for idx, e in items:
        try:
            trial.apply(idx, e)
            out.append(None)
        except NotAuthorisedError as exc:
            out.append(exc)
        except BadInputError:
            out.append(None)
    return out


def _write(ledger: Any, ident: Any, record_type: str, body: dict[str, Any], time: str | None) -> dict[str, Any]:
    entry = build_entry(record_type, body, ident.did, time or str(ledger.now()), ident.sign)
    ledger.check_time(entry.time)
    book(ledger).check(ledger.size, entry)  # raises with the rule's reason; nothing is logged
    res = ledger.append_entry(entry, terms=[f"subnet:{body.get('subnet', body.get('name'))}"])
    return {"index": res.index, "type": record_type, "signer": ident.did, "time": entry.time, "body": body}


def _save_secret(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)


def _pool_path(ledger: Any, name: str) -> Path:
    return Path(ledger.path) / "subnet-secrets" / f"{name}.pool.json"


def create(ledger: Any, ident: Any, name: str, task: dict[str, Any], *, epoch_ms: int = 3_600_000,
           params: dict[str, Any] | None = None, pool: list[dict[str, Any]] | None = None,
           pool_salt: str | None = None, time: str | None = None) -> dict[str, Any]:
    """Create a subnet.  ``pool``: the evaluation pool (``[{prompt, answer}, ...]``), committed now by
    sha256 (kept with its salt in ``subnet-secrets/``, mode 0600) and revealed later with :func:`reveal_pool`."""
    p = Params.from_dict(params or {})
    body: dict[str, Any] = {"name": name, "task": task, "epoch_ms": epoch_ms, "params": p.to_dict()}
    if pool is not None:
        check_pool(pool)
        pool_salt = pool_salt or secrets.token_hex(16)
        body["pool_commitment"] = pool_commitment(name, pool, pool_salt)
    out = _write(ledger, ident, "subnet.create", body, time)
    if pool is not None:
        _save_secret(_pool_path(ledger, name), {"subnet": name, "salt": pool_salt, "items": pool})
        out["pool_secret"] = str(_pool_path(ledger, name))
    return out


def reveal_pool(ledger: Any, ident: Any, name: str, *, items: list[dict[str, Any]] | None = None,
                salt: str | None = None, time: str | None = None) -> dict[str, Any]:
    """Publish the committed evaluation pool (from the saved secret unless items and salt are given)."""
    if items is None or salt is None:
        path = _pool_path(ledger, name)
        if not path.exists():
            raise NotFoundError(f"no saved pool for subnet {name} ({path}); pass the items and salt", field="subnet")
        saved = json.loads(path.read_text())
        items, salt = saved["items"], saved["salt"]
    return _write(ledger, ident, "subnet.pool", {"subnet": name, "salt": salt, "items": items}, time)


def stake(ledger: Any, ident: Any, name: str, amount: int, *, time: str | None = None) -> dict[str, Any]:
    """Lock ``amount`` reputation on the subnet: a governance ``stake.claim`` of kind ``subnet`` on
    ``subnet:NAME`` (released with ``ailedger stake release`` once its challenge window has ended)."""
    book(ledger).get(name)
    return staking.stake_claim(ledger, ident, f"subnet:{name}", "subnet", amount, time=time)


def audit(ledger: Any, name: str) -> dict[str, Any]:
    """Check every folded reveal against the revealed evaluation pool: its weights must follow, by the
    accuracy rule, from the answers it says it observed (``observations``)."""
    sn = book(ledger).get(name)
    if sn.pool is None:
        why = "committed to no pool" if sn.pool_commitment is None else "has not revealed its pool yet"
        raise BadInputError(f"subnet {name} {why}; nothing to check scores against", field="subnet")
    items = sn.pool["items"]
    rows = []
    for ep in sn.epochs:
        for did, r in sorted(ep["reveals"].items()):
            problem = audit_reveal(items, ledger.entry(r["index"]).body)
            status = ("agrees" if problem is None else
                      "unchecked" if problem == "the reveal carries no observations" else "differs")
            rows.append({"epoch": ep["epoch"], "validator": did, "reveal": r["index"], "status": status,
                         "problem": problem})
    return {"subnet": name, "pool_entry": sn.pool["index"], "pool_items": len(items), "reveals": rows,
            "agree": not any(r["status"] == "differs" for r in rows)}


def set_params(ledger: Any, ident: Any, name: str, params: dict[str, Any], *,
               time: str | None = None) -> dict[str, Any]:
    return _write(ledger, ident, "subnet.params", {"subnet": name, "params": params}, time)


def register(ledger: Any, ident: Any, name: str, role: str, *, time: str | None = None) -> dict[str, Any]:
    return _write(ledger, ident, "subnet.register", {"subnet": name, "role": role}, time)


def to_u16(weights: dict[int, float]) -> tuple[list[int], list[int]]:
    """Scores -> u16 weights, the largest to 65535 (Bittensor's ``convert_weights_and_uids_for_emit``), by
    round-half-even of ``w / max * 65535``.  Negative or non-finite scores are refused."""
    import math

    if not weights:
        raise BadInputError("no weights given", field="weights")
    for u, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise BadInputError(f"weight for miner uid {u} is not a finite number: {w!r}", field="weights")
        if w < 0:
            raise BadInputError(f"weight for miner uid {u} is negative: {w!r}", field="weights")
    top = max(weights.values())
    if top <= 0:
        raise BadInputError("every weight is zero", field="weights")
    uids = sorted(weights)
    return uids, [round(weights[u] / top * U16) for u in uids]


def _secret_path(ledger: Any, name: str, n: int, did: str) -> Path:
    return Path(ledger.path) / "subnet-secrets" / f"{name}.{n}.{did.rsplit(':', 1)[-1][-16:]}.json"


def commit(ledger: Any, ident: Any, name: str, weights: dict[int, float] | None = None, *,
           epoch: int | None = None, salt: str | None = None, observations: dict[str, Any] | None = None,
           pool: list[dict[str, Any]] | None = None, time: str | None = None) -> dict[str, Any]:
    """Commit to a weight vector for the current epoch; the salt and the weights are kept in the ledger
    folder (``subnet-secrets/``, mode 0600) for ``reveal``.  With ``observations`` (``{uid: [[pool item,
    answer served], ...]}``) and the validator's copy of the ``pool``, the weights are the accuracy rule's
    (:func:`ailedger.subnets.state.weights_from_observations`) and the observations are committed too, so
    anyone can check them once the pool is revealed (``audit``)."""
    t = time or str(ledger.now())
    b = book(ledger)
    sn = b.get(name)
    n = sn.epoch_of(time_ms(t)) if epoch is None else epoch
    if observations is not None:
        if pool is None:
            raise BadInputError("observations need the evaluation pool to score them", field="pool")
        check_observations(observations, len(sn.miners))
        uids, values = weights_from_observations(check_pool(pool), observations)
    elif weights is None:
        raise BadInputError("give weights or observations", field="weights")
    else:
        uids, values = to_u16(weights)
    check_weights(uids, values, len(sn.miners))  # unregistered miners are refused before anything is logged
    salt = salt or secrets.token_hex(16)
    c = commitment(name, n, ident.did, uids, values, salt, observations)
    out = _write(ledger, ident, "subnet.commit", {"subnet": name, "epoch": n, "commitment": c}, t)
    path = _secret_path(ledger, name, n, ident.did)
    _save_secret(path, {"subnet": name, "epoch": n, "salt": salt, "uids": uids, "values": values,
                        "observations": observations})
    out.update({"epoch": n, "salt": salt, "uids": uids, "values": values, "secret": str(path)})
    return out


def reveal(ledger: Any, ident: Any, name: str, epoch: int, *, salt: str | None = None,
           uids: list[int] | None = None, values: list[int] | None = None, evidence: list[int] | None = None,
           observations: dict[str, Any] | None = None, time: str | None = None) -> dict[str, Any]:
    if salt is None or uids is None or values is None:
        path = _secret_path(ledger, name, epoch, ident.did)
        if not path.exists():
            raise NotFoundError(f"no saved commit for subnet {name} epoch {epoch} by {ident.did} ({path}); "
                                "pass the salt and weights", field="epoch")
        saved = json.loads(path.read_text())
        salt, uids, values = saved["salt"], saved["uids"], saved["values"]
        observations = saved.get("observations")
    for ix in evidence or []:
        if not 0 <= ix < ledger.size:
            raise BadInputError(f"evidence entry {ix} is not in the log", field="evidence")
        if ledger.entry(ix).type != "inference.batch":
            raise BadInputError(f"evidence entry {ix} is a {ledger.entry(ix).type}, not an inference.batch",
                                field="evidence")
    body = {"subnet": name, "epoch": epoch, "salt": salt, "uids": uids, "values": values,
            "evidence": sorted(set(evidence or []))}
    if observations is not None:
        body["observations"] = observations
    return _write(ledger, ident, "subnet.reveal", body, time)


def epoch(ledger: Any, ident: Any, name: str, n: int | None = None, *, time: str | None = None) -> dict[str, Any]:
    """Fold the subnet's next epoch and log its result (anyone may, as a keeper; the fold recomputes it)."""
    b = book(ledger)
    nxt, body = b.compute_next(name)
    if n is not None and n != nxt:
        if n < nxt:
            raise BadInputError(f"epoch {n} of subnet {name} is already folded (at entry "
                                f"{b.get(name).epochs[n]['index']}); nothing is paid twice", field="epoch")
        raise BadInputError(f"epoch {nxt} must be folded before epoch {n}", field="epoch")
    return _write(ledger, ident, "subnet.epoch", body, time)


def show(ledger: Any, name: str) -> dict[str, Any]:
    b = book(ledger)
    sn = b.get(name)
    out = sn.summary()
    stake_of = stake_reader(ledger)
    out["stake"] = {d: stake_of(name, d, ledger.size, 0) for d in sn.validators + sn.miners}
    out["epoch_results"] = [{"epoch": ep["epoch"], "index": ep["index"], "pay": ep["result"]["pay"],
                             "incentive": ep["result"]["incentive"], "reveals": ep["reveals"],
                             "copies": ep["copies"]} for ep in sn.epochs]
    out["ignored"] = [x for x in b.ignored]
    return out


def replay(ledger: Any, name: str | None = None, *, verify_signatures: bool = False,
           progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Recompute every epoch from the log alone and compare it, bit for bit, with the logged results.

    Raises :class:`VerificationError` when a logged ``subnet.epoch`` disagrees with the recomputation (it is
    then also ignored by every fold)."""
    b = SubnetBook(stake_reader(ledger))
    checked = 0
    mismatches: list[dict[str, Any]] = []
    try:
        entries = list(_subnet_entries(ledger, verify=verify_signatures))
    except AiledgerError as exc:
        raise VerificationError(f"a subnet entry does not verify: {exc.message}") from exc
    for idx, e in entries:
        try:
            b.apply(idx, e)
            if e.type == "subnet.epoch":
                checked += 1
                if progress is not None:
                    progress(checked)
        except BadInputError as exc:
            b.ignored.append({"index": idx, "type": e.type, "reason": exc.message})
            if (e.type == "subnet.epoch" and exc.details.get("field") == "result"
                    and (name is None or e.body.get("subnet") == name)):
                mismatches.append({"index": idx, "epoch": e.body.get("epoch"), "reason": exc.message})
    subnets = {k: {"epochs": len(v.epochs), "earned": sum(v.earned.values())}
               for k, v in sorted(b.subnets.items()) if name is None or k == name}
    if name is not None and name not in b.subnets:
        raise NotFoundError(f"no subnet named {name!r}", field="subnet")
    out = {"subnets": subnets, "epochs_checked": checked, "mismatches": mismatches, "ignored": b.ignored,
           "agree": not mismatches}
    if mismatches:
        m = mismatches[0]
        raise VerificationError(f"epoch {m['epoch']} at entry {m['index']} does not agree with the replay: "
                                f"{m['reason']}", found=m, report=out)
    return out
