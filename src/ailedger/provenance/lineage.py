"""Lineage graphs (dataset -> model -> fine-tune) read from the log, as text, SVG and PNG."""

from __future__ import annotations

from html import escape
from typing import Any

from ailedger.authority.service import is_effective_registration
from ailedger.provenance.models import DATASET_RECORD, MODEL_RECORD, find_model

__all__ = ["lineage_graph", "lineage_png", "lineage_svg", "lineage_text"]


def _node(idx: int, e: Any) -> dict[str, Any]:
    kind = "dataset" if e.type == DATASET_RECORD else "model"
    root = e.body.get("root") if kind == "dataset" else e.body.get("manifest", {}).get("root")
    return {"id": f"#{idx}", "kind": kind, "name": e.body.get("name"), "index": idx, "signer": e.signer,
            "time": e.time, "root": root}


def lineage_graph(ledger: Any, ref: str, max_nodes: int = 200) -> dict[str, Any]:
    """Ancestors (base models and their datasets) and descendants (fine-tunes) of a model."""
    idx0, e0 = find_model(ledger, ref)
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    seen_edges: set[tuple[str, str]] = set()

    def add_edge(a: str, b: str, rel: str) -> None:
        if (a, b) not in seen_edges:
            seen_edges.add((a, b))
            edges.append({"from": a, "to": b, "relation": rel})

    def add_model(idx: int, e: Any) -> None:
        nid = f"#{idx}"
        if nid in nodes or len(nodes) >= max_nodes:
            return
        nodes[nid] = _node(idx, e)
        lin = e.body.get("lineage") or {}
        for d in lin.get("datasets") or []:
            di = d.get("index")
            if isinstance(di, int) and di < ledger.size:
                de = ledger.entry(di)
                if de.type == DATASET_RECORD:
                    nodes.setdefault(f"#{di}", _node(di, de))
                    add_edge(f"#{di}", nid, "trained on")
        b = lin.get("base_model")
        if b and isinstance(b.get("index"), int) and b["index"] < ledger.size:
            be = ledger.entry(b["index"])
            if be.type == MODEL_RECORD:
                add_model(b["index"], be)
                add_edge(f"#{b['index']}", nid, "fine-tuned from")

    add_model(idx0, e0)
    # descendants: models whose base is one of ours
    frontier = [n for n in list(nodes.values()) if n["kind"] == "model"]
    while frontier and len(nodes) < max_nodes:
        nxt = []
        for n in frontier:
            for ci, ce in ledger.find(type=MODEL_RECORD, term=f"base:{n['name']}"):
                b = (ce.body.get("lineage") or {}).get("base_model") or {}
                if b.get("index") != n["index"] or f"#{ci}" in nodes or not is_effective_registration(ledger, ci):
                    continue  # a model.register the authority rules ignore is no descendant
                add_model(ci, ce)
                nxt.append(nodes[f"#{ci}"])
        frontier = nxt
    return {"model": f"#{idx0}", "nodes": list(nodes.values()), "edges": edges}


def _layers(g: dict[str, Any]) -> dict[str, int]:
    depth = {n["id"]: 0 for n in g["nodes"]}
    for _ in range(len(g["nodes"])):
        changed = False
        for e in g["edges"]:
            if depth[e["to"]] < depth[e["from"]] + 1:
                depth[e["to"]] = depth[e["from"]] + 1
                changed = True
        if not changed:
            break
    # a dataset sits just before the first model trained on it
    for n in g["nodes"]:
        outs = [depth[e["to"]] for e in g["edges"] if e["from"] == n["id"]]
        if n["kind"] == "dataset" and outs:
            depth[n["id"]] = max(0, min(outs) - 1)
    return depth


def _label(n: dict[str, Any]) -> str:
    return f"{n['kind']} {n['name']} ({n['id']})"


def lineage_text(g: dict[str, Any]) -> str:
    by = {n["id"]: n for n in g["nodes"]}
    depth = _layers(g)
    lines = [f"lineage of {_label(by[g['model']])}"]
    for n in sorted(g["nodes"], key=lambda n: (depth[n["id"]], n["index"])):
        mark = "*" if n["id"] == g["model"] else " "
        lines.append(f"{mark} {'  ' * depth[n['id']]}{_label(n)} root {str(n['root'])[:16]}... "
                     f"signed by {n['signer']} at {n['time']}")
    for e in g["edges"]:
        arrow = "--trained-->" if e["relation"] == "trained on" else "--fine-tuned-->"
        lines.append(f"  {_label(by[e['from']])} {arrow} {_label(by[e['to']])}")
    return "\n".join(lines)


def _positions(g: dict[str, Any]) -> tuple[dict[str, tuple[float, float]], int, int]:
    depth = _layers(g)
    cols: dict[int, list[dict[str, Any]]] = {}
    for n in sorted(g["nodes"], key=lambda n: n["index"]):
        cols.setdefault(depth[n["id"]], []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    for d, ns in cols.items():
        for i, n in enumerate(ns):
            pos[n["id"]] = (d, i)
    return pos, max(cols) + 1, max(len(v) for v in cols.values())


BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 240, 64, 90, 30, 20


def lineage_svg(g: dict[str, Any]) -> str:
    """A self-contained SVG: columns from data to fine-tunes, arrows labelled by relation."""
    pos, ncols, nrows = _positions(g)
    w = PAD * 2 + ncols * BOX_W + (ncols - 1) * GAP_X
    h = PAD * 2 + nrows * BOX_H + (nrows - 1) * GAP_Y + 20

    def xy(nid: str) -> tuple[float, float]:
        c, r = pos[nid]
        return PAD + c * (BOX_W + GAP_X), PAD + 20 + r * (BOX_H + GAP_Y)

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           'font-family="sans-serif" font-size="12">'),
           ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#444"/></marker></defs>'),
           f'<text x="{PAD}" y="{PAD}" font-size="14" font-weight="bold">ailedger lineage</text>']
    by = {n["id"]: n for n in g["nodes"]}
    for e in g["edges"]:
        x1, y1 = xy(e["from"])
        x2, y2 = xy(e["to"])
        ax, ay, bx, by_ = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        out.append(f'<line x1="{ax}" y1="{ay}" x2="{bx}" y2="{by_}" stroke="#444" stroke-width="1.5" '
                   'marker-end="url(#arrow)"/>')
        out.append(f'<text x="{(ax + bx) / 2}" y="{(ay + by_) / 2 - 4}" text-anchor="middle" fill="#444" '
                   f'font-size="10">{escape(e["relation"])}</text>')
    for nid, n in by.items():
        x, y = xy(nid)
        fill = "#e8f1fb" if n["kind"] == "dataset" else "#eaf7e8"
        stroke = "#c0392b" if nid == g["model"] else "#555"
        out.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="{2 if nid == g["model"] else 1}"/>')
        out.append(f'<text x="{x + 10}" y="{y + 20}" font-weight="bold">{escape(n["kind"])}: '
                   f'{escape(str(n["name"]))}</text>')
        out.append(f'<text x="{x + 10}" y="{y + 38}">entry {escape(nid)}  root {escape(str(n["root"])[:16])}</text>')
        out.append(f'<text x="{x + 10}" y="{y + 54}" font-size="10" fill="#555">{escape(str(n["time"]))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def lineage_png(g: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    pos, ncols, nrows = _positions(g)
    fig, ax = plt.subplots(figsize=(3.2 * ncols + 0.5, 1.2 * nrows + 0.8))
    ax.set_xlim(-0.1, ncols * 1.4)
    ax.set_ylim(-nrows * 1.0 - 0.2, 0.5)
    ax.axis("off")
    by = {n["id"]: n for n in g["nodes"]}

    def xy(nid: str) -> tuple[float, float]:
        c, r = pos[nid]
        return c * 1.4, -r * 1.0

    for e in g["edges"]:
        (x1, y1), (x2, y2) = xy(e["from"]), xy(e["to"])
        ax.annotate("", xy=(x2, y2 - 0.3), xytext=(x1 + 1.0, y1 - 0.3),
                    arrowprops={"arrowstyle": "->", "color": "#444"})
        ax.text((x1 + 1.0 + x2) / 2, (y1 + y2) / 2 - 0.22, e["relation"], ha="center", fontsize=7)
    for nid, n in by.items():
        x, y = xy(nid)
        ax.add_patch(FancyBboxPatch((x, y - 0.6), 1.0, 0.6, boxstyle="round,pad=0.02",
                                    fc="#e8f1fb" if n["kind"] == "dataset" else "#eaf7e8",
                                    ec="#c0392b" if nid == g["model"] else "#555"))
        ax.text(x + 0.05, y - 0.2, f"{n['kind']}: {n['name']}", fontsize=8, weight="bold")
        ax.text(x + 0.05, y - 0.42, f"{nid} {str(n['root'])[:12]}", fontsize=7)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
