"""Reading the log for a report: which entries name a model, and entry times.  Pure functions on the entries'
JSON (dicts with ``type``, ``body``, ``signer``, ``time``), so a verifier recomputes the same answers."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterator
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["STATUS_TYPES", "iter_entries", "names_model", "parse_when", "proposal_of", "when"]

STATUS_TYPES = ("model.revoke", "model.suspend", "model.reinstate", "model.unrevoke", "model.approve")
_GOV_FOLLOW = ("gov.vote", "gov.queue", "gov.execute", "gov.cancel")


def iter_entries(ledger: Any, start: int = 0, end: int | None = None,
                 progress: Callable[[int], Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, entry JSON) for every entry of [start, end), in log order; ``progress(n)`` every 1000."""
    stop = ledger.size if end is None else end
    for idx, _h, data in ledger.store.iter_leaves(start, stop, 5000):
        if progress is not None and idx % 1000 == 999:
            progress(1000)
        try:
            e = json.loads(bytes(data))
        except ValueError:
            continue
        if isinstance(e, dict) and isinstance(e.get("body"), dict):
            yield idx, e


def proposal_of(e: dict[str, Any]) -> int | None:
    p = e["body"].get("proposal")
    return p if type(p) is int else None


def names_model(e: dict[str, Any], name: str, proposals: set[int]) -> bool:
    """Does entry ``e`` name model ``name``?  ``proposals``: indices of gov.propose entries found to name it
    so far (a gov.propose naming the model is added to it; votes, queue, execute and cancel of one match)."""
    t, b = e.get("type"), e["body"]
    if t in STATUS_TYPES or t == "gov.guardian.suspend" or t == "model.zk":
        return b.get("model") == name or b.get("name") == name
    if t == "gov.propose":
        acts = b.get("actions")
        return isinstance(acts, list) and any(isinstance(a, dict) and a.get("model") == name for a in acts)
    if t in _GOV_FOLLOW:
        return proposal_of(e) in proposals
    if t == "agent.action" or t == "agent.finding":
        m = b.get("model")
        return m == name or (isinstance(m, dict) and m.get("name") == name)
    return False


def parse_when(value: str, field: str) -> _dt.datetime:
    """A date (``2026-01-02``, midnight UTC) or RFC 3339 time; BadInputError naming ``field`` otherwise."""
    v = value.strip()
    try:
        d = _dt.datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith("Z") else v)
    except ValueError:
        raise BadInputError(f"--{field} must be a date or RFC 3339 time like 2026-01-02T03:04:05Z, got {value!r}",
                            field=field, found=value) from None
    return d if d.tzinfo is not None else d.replace(tzinfo=_dt.timezone.utc)


def when(e: dict[str, Any]) -> _dt.datetime:
    return parse_when(str(e.get("time", "")), "time")
