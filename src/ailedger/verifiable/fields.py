"""Fields of a call's JSON request and answer (the gateway's calls, docs/zk.md "Sampling at the gateway"):
``pick_vector`` gives the circuit's input in a stored request, ``served_class`` the class a served answer names
(an integer label, or the argmax of a row of scores)."""

from __future__ import annotations

from typing import Any

from ailedger.errors import BadInputError

__all__ = ["argmax", "pick", "pick_vector", "served_class"]


def pick(doc: Any, field: str | None) -> Any:
    """The value at a dotted path (``features``, ``data.x``, ``choices.0.label``) of a JSON document."""
    cur = doc
    for part in (field.split(".") if field else []):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise BadInputError(f"no field {field!r} in the JSON document (stopped at {part!r})", field=field or "")
    return cur


def _numbers(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)


def pick_vector(doc: Any, field: str | None) -> list[float]:
    """One row of numbers at ``field``: a flat list, or a list holding exactly one such list."""
    v = pick(doc, field)
    if isinstance(v, list) and len(v) == 1 and isinstance(v[0], list):
        v = v[0]
    if not _numbers(v):
        raise BadInputError(f"field {field!r} must hold one row of numbers ([x, ...] or [[x, ...]])",
                            field=field or "")
    return [float(x) for x in v]


def served_class(doc: Any, field: str) -> int:
    """The class a served answer names at ``field``: an integer label (or ``[label]``), or the argmax of a row of
    scores (or of ``[[scores]]``)."""
    v = pick(doc, field)
    if isinstance(v, list) and len(v) == 1 and isinstance(v[0], (list, int)):
        v = v[0]
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if _numbers(v):
        return max(range(len(v)), key=lambda i: v[i])
    raise BadInputError(f"field {field!r} of the answer must hold a class label or one row of scores",
                        field=field)


def argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: xs[i])
