"""The import rules of src/ailedger (docs/ARCHITECTURE.md), read from the source with ``ast``.

Every module's ``import`` and ``from ... import`` statements are parsed (nothing is imported or run).
Each edge records where it is (file, line), whether it sits inside a function (a lazy import) and
whether it is only for type checkers (``if TYPE_CHECKING:``).  The rules:

1. no upward import: a folder imports only folders in lower layers, its own folder, and the peers
   listed in PEERS (type-only imports too: they are a dependency all the same);
2. no circle between folders (the folder graph is acyclic) and no circle between modules;
3. no import inside a function of another folder, except in the shells (cli, http) and the package's
   own wiring (``ailedger/__init__``, ``_registry``, ``__main__``).  Lazy imports of third-party
   packages are fine anywhere (they keep start-up light).

    python tools/importgraph.py                 # the report; exit 1 on any violation
    python tools/importgraph.py --svg docs/img/layers.svg
    python tools/importgraph.py --ascii         # the layer picture as text
    python tools/importgraph.py --edges         # every edge between folders, with its place

The test tests/test_architecture.py runs the same checks.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"

# Bottom to top.  A folder may import every folder in a lower layer.
LAYERS: list[tuple[str, str, list[str]]] = [
    ("errors", "the one error tree; lazy names", ["errors", "_lazy"]),
    ("encoding", "canonical JSON, entries, did:key, Ed25519", ["encoding"]),
    ("kit", "HTTP kit: limits, deadlines, auth", ["server"]),
    ("kernel", "the log a verifier needs alone", ["tlog"]),
    ("rules", "who may sign what; a model's status", ["authority"]),
    ("capabilities", "one folder per capability",
     ["provenance", "governance", "anchoring", "inference", "blobs", "screening", "content", "federated",
      "subnets", "verifiable", "private", "compute", "defi", "contractaudit", "supplychain", "reports", "monitor", "integrations", "daoai", "rwa"]),
    ("shells", "HTTP app and explorer; the command line", ["http", "cli"]),
    ("wiring", "who answers the kernel's questions", ["_registry"]),
    ("package", "the public surface", ["ailedger", "__main__"]),
]

# Imports allowed inside one layer (importer -> imported).  Must stay acyclic.
PEERS: dict[str, set[str]] = {
    "blobs": {"provenance"},       # stored copies of model and dataset records
    "screening": {"provenance"},   # screening and removal act on dataset commitments
    "content": {"governance"},     # a claim's reputation comes from staking
    "subnets": {"governance"},     # a validator's stake is its governance reputation
    "supplychain": {"provenance", "inference"},  # an inspection model's files checked against its registration; its inference records
    "federated": {"blobs"},        # a run's updates kept in the blob store (--store blob:URL)
    "verifiable": {"inference"},   # ZK proofs of logged calls: records, payloads, the trail
    "private": {"inference", "provenance"},  # records of private inference; the registered model folder
    "contractaudit": {"provenance"},  # the learned layer's root is its folder's model manifest root
    "daoai": {"governance", "provenance"},  # whale simulation on a proposal; the analyst folder's manifest root
    "rwa": {"defi", "provenance"},  # the vault's manager is defi's guard, its decisions agent.action; the policy folder's root
    "reports": {"provenance"},     # the lineage graph of a model in its technical documentation
    "integrations": {"provenance"},  # MLflow versions and Hugging Face cards register and prove model records
    "cli": {"http"},               # `ailedger serve` starts the HTTP app
}

# Folders whose functions may import other folders lazily (commands load their capability on use).
LAZY_OK = {"cli", "http", "ailedger", "_registry", "__main__"}

LAYER_OF: dict[str, int] = {f: i for i, (_n, _d, fs) in enumerate(LAYERS) for f in fs}


@dataclass(frozen=True)
class Edge:
    src: str        # importing module, e.g. ailedger.tlog.verify
    dst: str        # imported module
    path: str       # file, relative to the repo
    line: int
    lazy: bool      # inside a function
    typing: bool    # under `if TYPE_CHECKING:`
    names: tuple[str, ...] = ()  # what `from ... import` takes

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def folder_of(module: str) -> str:
    """ailedger.tlog.verify -> tlog; ailedger.errors -> errors; ailedger -> ailedger."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def modules(src: Path = SRC, package: str = "ailedger") -> dict[str, Path]:
    out: dict[str, Path] = {}
    root = src / package
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    found: list[tuple[ast.Import | ast.ImportFrom, bool, bool]] = []

    def visit(node: ast.AST, lazy: bool, typing: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, lazy, typing))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for c in child.body:
                    visit_one(c, lazy, True)
                for c in child.orelse:
                    visit_one(c, lazy, typing)
            else:
                visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
                      typing)

    def visit_one(node: ast.AST, lazy: bool, typing: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, lazy, typing))
        else:
            visit(node, lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)), typing)

    visit(tree, False, False)
    return found


def edges(src: Path = SRC, package: str = "ailedger") -> list[Edge]:
    mods = modules(src, package)
    out: list[Edge] = []
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(src.parent)) if src.parent in path.parents else str(path)
        for node, lazy, typing in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                for a in node.names:  # `from ailedger import provenance` imports the module ailedger.provenance
                    sub = f"{mod}.{a.name}"
                    targets.append(sub if sub in mods else mod)
            names = tuple(a.name for a in node.names) if isinstance(node, ast.ImportFrom) else ()
            seen: set[str] = set()
            for t in targets:
                if t == package or t.startswith(package + "."):
                    while t not in mods and "." in t:  # `import ailedger.x.y` where y is an attribute
                        t = t.rsplit(".", 1)[0]
                    if t not in seen:
                        seen.add(t)
                        out.append(Edge(name, t, rel, node.lineno, lazy, typing, names))
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative enough for this size)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def allowed(a: str, b: str) -> bool:
    """May folder ``a`` import folder ``b``?"""
    if a == b:
        return True
    if a not in LAYER_OF or b not in LAYER_OF:
        return False
    return LAYER_OF[b] < LAYER_OF[a] or b in PEERS.get(a, set())


def violations(es: list[Edge]) -> dict[str, list[str]]:
    """Every breach of the rules, by rule; empty lists when the tree keeps them."""
    found: dict[str, list[str]] = {"unknown folder": [], "upward import": [], "lazy import between folders": [],
                                   "folder circle": [], "module circle": [], "peer circle": []}
    for e in es:
        a, b = folder_of(e.src), folder_of(e.dst)
        if e.dst == "ailedger" and set(e.names) <= {"__version__"}:
            continue  # the version string: every part may say which release it is
        for f in (a, b):
            if f not in LAYER_OF:
                found["unknown folder"].append(f"{f} ({e.where()}): add it to a layer in tools/importgraph.py")
        if a in LAYER_OF and b in LAYER_OF and not allowed(a, b):
            found["upward import"].append(f"{e.src} -> {e.dst} ({e.where()}): {a} may not import {b}")
        if e.lazy and a != b and a not in LAZY_OK:
            found["lazy import between folders"].append(f"{e.src} -> {e.dst} ({e.where()})")
    fg: dict[str, set[str]] = defaultdict(set)
    mg: dict[str, set[str]] = defaultdict(set)
    for e in es:
        if e.typing:
            continue  # never run: it cannot close a circle at import time
        if folder_of(e.src) != folder_of(e.dst):
            fg[folder_of(e.src)].add(folder_of(e.dst))
        if e.src != e.dst and not e.dst.startswith(e.src + ".") and not e.src.startswith(e.dst + "."):
            mg[e.src].add(e.dst)  # a package and its own submodules are one unit here
    for comp in _cycles(fg):
        found["folder circle"].append(" <-> ".join(comp))
    for comp in _cycles(mg):
        where = [f"{e.src} -> {e.dst} ({e.where()})" for e in es
                 if e.src in comp and e.dst in comp and not e.typing]
        found["module circle"].append(" <-> ".join(comp) + ": " + "; ".join(where))
    for comp in _cycles({k: set(v) for k, v in PEERS.items()}):
        found["peer circle"].append(" <-> ".join(comp))
    return found


def folder_edges(es: list[Edge]) -> dict[tuple[str, str], int]:
    count: dict[tuple[str, str], int] = defaultdict(int)
    for e in es:
        a, b = folder_of(e.src), folder_of(e.dst)
        if a != b:
            count[(a, b)] += 1
    return dict(count)


# -- pictures -------------------------------------------------------------------------------------------------

def ascii_picture() -> str:
    lines = []
    for i in reversed(range(len(LAYERS))):
        name, desc, folders = LAYERS[i]
        boxes = "  ".join(f"[{f}/]" if f not in ("ailedger", "errors", "_lazy", "_registry", "__main__") else
                          {"ailedger": "[__init__]", "errors": "[errors.py]", "_lazy": "[_lazy.py]",
                           "_registry": "[_registry]", "__main__": "[__main__]"}[f] for f in folders)
        lines.append(f"{name:>12} | {boxes}")
        lines.append(f"{'':>12} | {desc}")
        peers = [f"{a} -> {', '.join(sorted(b))}" for a, b in PEERS.items() if a in folders]
        if peers:
            lines.append(f"{'':>12} | peers: " + "; ".join(peers))
        if i:
            lines.append(f"{'':>12} |{'':>4}| may import everything below")
            lines.append(f"{'':>12} |{'':>4}v")
    return "\n".join(lines)


def svg_picture(es: list[Edge]) -> str:
    fe = folder_edges([e for e in es if not e.typing])
    box_w, box_h, gap, band_h, left = 118, 34, 14, 64, 250
    width = left + 7 * (box_w + gap) + 10
    height = len(LAYERS) * band_h + 70
    pos: dict[str, tuple[float, float]] = {}
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">'),
           ('<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'),
           f'<rect width="{width}" height="{height}" fill="white"/>',
           ('<text x="12" y="24" font-size="16" font-weight="bold">src/ailedger: layers and imports '
            '(arrows: importer -> imported)</text>')]
    for i, (name, desc, folders) in enumerate(LAYERS):
        row = len(LAYERS) - 1 - i
        y = 44 + row * band_h
        shade = "#f4f6fb" if i % 2 else "#eaeef7"
        out.append(f'<rect x="6" y="{y}" width="{width - 12}" height="{band_h - 6}" fill="{shade}" rx="6"/>')
        out.append(f'<text x="16" y="{y + 24}" font-weight="bold">{name}</text>')
        out.append(f'<text x="16" y="{y + 42}" font-size="10" fill="#444">{_esc(desc[:40])}</text>')
        for j, f in enumerate(folders):
            x = left + (7 - len(folders)) * (box_w + gap) / 2 + j * (box_w + gap)
            by = y + (band_h - 6 - box_h) / 2
            label = {"ailedger": "__init__.py", "errors": "errors.py", "_lazy": "_lazy.py",
                     "_registry": "_registry.py", "__main__": "__main__.py"}.get(f, f + "/")
            out.append(f'<rect x="{x}" y="{by}" width="{box_w}" height="{box_h}" rx="5" fill="white" '
                       f'stroke="#3b5998" stroke-width="1.5"/>')
            out.append(f'<text x="{x + box_w / 2}" y="{by + 22}" text-anchor="middle">{label}</text>')
            pos[f] = (x + box_w / 2, by + box_h / 2)
    for (a, b), n in sorted(fe.items()):
        if a not in pos or b not in pos or b in ("errors", "_lazy", "ailedger"):
            continue  # everything raises our errors, loads names lazily (and may read __version__): not drawn
        (x1, y1), (x2, y2) = pos[a], pos[b]
        if abs(y1 - y2) < 1:  # a peer: a curve above the boxes
            y1 = y2 = y1 - box_h / 2
            mid = ((x1 + x2) / 2, y1 - 18)
        else:
            down = y2 > y1
            y1 += box_h / 2 if down else -box_h / 2
            y2 -= box_h / 2 if down else -box_h / 2
            mid = ((x1 + x2) / 2 + (x2 - x1) * 0.1, (y1 + y2) / 2)
        colour = "#c0392b" if not allowed(a, b) else "#555"
        w = 1.2
        out.append(f'<path d="M{x1:.0f},{y1:.0f} Q{mid[0]:.0f},{mid[1]:.0f} {x2:.0f},{y2:.0f}" fill="none" '
                   f'stroke="{colour}" stroke-opacity="0.55" stroke-width="{w:.1f}" marker-end="url(#a)"/>')
    out.append(f'<text x="12" y="{height - 12}" font-size="11" fill="#444">Every folder may import errors.py '
               f'and _lazy.py (not drawn). A folder imports only lower layers and the peers named in '
               f'tools/importgraph.py; '
               f'made by: python tools/importgraph.py --svg docs/img/layers.svg</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--svg", metavar="FILE", help="write the layer picture as SVG")
    ap.add_argument("--ascii", action="store_true", help="print the layer picture as text")
    ap.add_argument("--edges", action="store_true", help="list every import between folders")
    args = ap.parse_args(argv)
    es = edges()
    if args.svg:
        Path(args.svg).write_text(svg_picture(es), encoding="utf-8")
        print(f"wrote {args.svg}")
    if args.ascii:
        print(ascii_picture())
    if args.edges:
        for e in sorted(es, key=lambda e: (folder_of(e.src), folder_of(e.dst), e.src, e.line)):
            if folder_of(e.src) != folder_of(e.dst):
                print(f"{folder_of(e.src):>11} -> {folder_of(e.dst):<11} {'lazy' if e.lazy else '    '} "
                      f"{'type' if e.typing else '    '} {e.src} -> {e.dst} ({e.where()})")
    bad = violations(es)
    total = sum(len(v) for v in bad.values())
    for rule, items in bad.items():
        for it in items:
            print(f"{rule}: {it}")
    print(f"{len(modules())} modules, {len(es)} imports of ailedger modules, "
          f"{len(folder_edges(es))} folder pairs; {total} violation(s)")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
