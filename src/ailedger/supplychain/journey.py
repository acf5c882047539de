"""An item's journey as a picture: the items reached backward (what went into it, left) and forward (where it
went, right) from a trace, linked by the events that connect them; inspected items coloured by verdict
(red: a defect, or a verdict made suspect by its model's revocation)."""

from __future__ import annotations

from html import escape
from typing import Any

from ailedger.errors import NotFoundError

from .service import trace, verify_logged

__all__ = ["journey", "journey_svg"]

_W, _H, _BOX_W, _BOX_H = 230, 46, 200, 30


def journey(ledger: Any, epc: str) -> dict[str, Any]:
    """Both traces of ``epc`` with their proofs checked: items placed in columns (negative: upstream), the
    events with their verdicts (``proof``: verified against the log key; ``inspection`` when there is one)."""
    reports = []
    for forward in (False, True):
        try:
            reports.append(trace(ledger, epc, forward=forward))
        except NotFoundError:
            if forward:
                raise
    nodes: dict[str, dict[str, Any]] = {}
    events: dict[int, dict[str, Any]] = {}
    for rep in reports:
        verify_logged(ledger, rep)  # raises on the first proof or hash that does not hold
        sign = 1 if rep["direction"] == "forward" else -1
        for it in rep["items"]:
            nodes.setdefault(it["item"], {**it, "col": sign * it["depth"]})
        for e in rep["events"]:
            events.setdefault(e["index"], {**{k: v for k, v in e.items() if k != "proof"}, "proof": "verified"})
    for e in events.values():
        insp = e.get("inspection")
        if not insp:
            continue
        for item in e["items"]:
            n = nodes.get(item)
            if n is not None:
                bad = insp.get("suspect") or insp.get("verdict") == "defect"
                n["verdict"] = "suspect" if insp.get("suspect") else insp.get("verdict")
                n["color"] = "#f8d0d0" if bad else n.get("color", "#d5f0d5")
    return {"item": reports[-1]["item"], "nodes": list(nodes.values()), "events": [events[i] for i in sorted(events)],
            "size": reports[-1]["size"]}


def _label(item: str) -> str:
    return item.removeprefix("https://id.gs1.org/")


def journey_svg(j: dict[str, Any]) -> str:
    """The journey as an SVG picture (no script, no external reference)."""
    cols: dict[int, list[dict[str, Any]]] = {}
    for n in j["nodes"]:
        cols.setdefault(n["col"], []).append(n)
    lo = min(cols)
    pos: dict[str, tuple[int, int]] = {}
    for c, ns in cols.items():
        for r, n in enumerate(ns):
            pos[n["item"]] = (20 + (c - lo) * _W, 30 + r * _H)
    width = 40 + (max(cols) - lo) * _W + _BOX_W
    height = 60 + max(len(v) for v in cols.values()) * _H
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" id="journey" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'),
           f"<title>journey of {escape(j['item'])}: upstream left, downstream right</title>"]
    for n in j["nodes"]:
        src = n.get("from")
        if src in pos:
            (x1, y1), (x2, y2) = pos[src], pos[n["item"]]
            if n["col"] < 0:
                (x1, y1), (x2, y2) = (x2, y2), (x1, y1)
            out.append(f'<line x1="{x1 + _BOX_W}" y1="{y1 + _BOX_H // 2}" x2="{x2}" y2="{y2 + _BOX_H // 2}" '
                       f'stroke="#777" marker-end="url(#arrow)"/>')
            out.append(f'<text x="{(x1 + _BOX_W + x2) // 2 - 8}" y="{(y1 + y2) // 2 + _BOX_H // 2 - 3}" '
                       f'fill="#555">#{int(n["via"])}</text>')
    for n in j["nodes"]:
        x, y = pos[n["item"]]
        fill = n.get("color", "#eef3fb" if n["col"] else "#fff3c4")
        tip = escape(n["item"] + (f" - inspection: {n['verdict']}" if n.get("verdict") else ""))
        out.append(f'<g><title>{tip}</title><rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="5" '
                   f'fill="{fill}" stroke="#456"/><text x="{x + 6}" y="{y + 19}">{escape(_label(n["item"])[:34])}'
                   f"</text></g>")
    out.insert(2, '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
                  '<path d="M0,0 L8,4 L0,8 z" fill="#777"/></marker></defs>')
    out.append(f'<text x="20" y="{height - 10}" fill="#555">upstream (what went in) left, downstream right; '
               "yellow: this item, red: defect or suspect verdict, green: inspected ok</text></svg>")
    return "".join(out)
