"""The screening report: canonical JSON bytes (what the ledger commits to) and an HTML page with charts.

The HTML is rendered from the JSON report alone, so anyone holding the logged JSON can re-render it.
Charts are matplotlib SVG, inlined (no network, no scripts).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
from typing import Any

from ailedger.encoding.canonical import canonical_json

# the report's schema id, logged in every dataset.screening record (here, not in the engine: the offline
# checks of a logged report need it without numpy)
SCHEMA = "ailedger.dataset.screening/v1"


def _jsonable(obj: Any) -> Any:
    """Floats in the report are kept, but as JSON numbers RFC 8785 can serialise (no NaN/inf)."""
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return obj
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def report_bytes(report: dict[str, Any]) -> bytes:
    """RFC 8785 canonical bytes of the report: the bytes whose SHA-256 is logged."""
    return canonical_json(_jsonable(report))


def report_sha256(report: dict[str, Any]) -> str:
    return hashlib.sha256(report_bytes(report)).hexdigest()


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg"):]


VERDICT_COLOURS = {"keep": "#4c9a2a", "review": "#e0a800", "remove": "#c0392b"}


def _charts(report: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: list[tuple[str, str]] = []
    by_reason = report["summary"]["by_reason"]
    if by_reason:
        fig, ax = plt.subplots(figsize=(6, 2.6))
        names = sorted(by_reason)
        ax.barh(names, [by_reason[k] for k in names], color="#34495e")
        ax.set_xlabel("records")
        ax.set_title("Flagged records by reason")
        charts.append(("Flagged records by reason", _svg(fig)))
    sources = report["sources"]
    if sources:
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(sources) + 1.2))
        names = [s["source"] for s in sources]
        ax.barh(names, [100 * s["flag_rate"] for s in sources],
                color=[VERDICT_COLOURS.get(s["verdict"], "#777") for s in sources])
        ax.set_xlabel("% of the source's records with a label problem")
        ax.set_title("Per-source label-problem rate (colour = verdict: green keep, amber review, red remove)")
        ax.invert_yaxis()
        charts.append(("Per-source flag rate", _svg(fig)))
        if any(s["loo_delta_accuracy"] is not None for s in sources):
            fig, ax = plt.subplots(figsize=(7, 0.35 * len(sources) + 1.2))
            d = [100 * (s["loo_delta_accuracy"] or 0.0) for s in sources]
            e = [200 * (s["loo_stderr"] or 0.0) for s in sources]
            ax.barh(names, d, xerr=e, color=[VERDICT_COLOURS.get(s["verdict"], "#777") for s in sources])
            ax.axvline(0, color="black", lw=0.8)
            ax.set_xlabel("change in validation accuracy when left out (points; bars = 2 s.e.)")
            ax.set_title("Leave-one-source-out")
            ax.invert_yaxis()
            charts.append(("Leave-one-source-out", _svg(fig)))
        classes = list(report["dataset"]["class_counts"])
        if len(sources) > 1 and len(classes) <= 40:
            import numpy as np

            fig, ax = plt.subplots(figsize=(7, 0.35 * len(sources) + 1.2))
            left = np.zeros(len(sources))
            cmap = plt.get_cmap("tab20")
            for j, c in enumerate(classes):
                vals = np.array([s["label_counts"].get(c, 0) / max(s["records"], 1) for s in sources])
                ax.barh(names, vals, left=left, color=cmap(j % 20), label=str(c))
                left += vals
            ax.set_xlabel("share of the source's records")
            ax.set_title("Class balance by source")
            ax.invert_yaxis()
            ax.legend(ncol=min(10, len(classes)), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25))
            charts.append(("Class balance by source", _svg(fig)))
    scores = [f["score"] for f in report["flagged"]]
    if scores:
        fig, ax = plt.subplots(figsize=(6, 2.4))
        ax.hist(scores, bins=20, color="#7f8c8d")
        ax.set_xlabel("score (label issue: 1 - self-confidence; duplicates and triggers: 1)")
        ax.set_title("Scores of flagged records")
        charts.append(("Scores of flagged records", _svg(fig)))
    return charts


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _thumbnails(report: dict[str, Any], images: Any, limit: int = 60) -> str:
    """PNG thumbnails (data URIs) of the highest-scoring flagged records, for image data."""
    import base64

    import numpy as np
    from PIL import Image

    cells = []
    for f in sorted(report["flagged"], key=lambda f: -f["score"])[:limit]:
        img = np.clip(np.asarray(images[f["record"]], dtype=np.float32), 0, 1)
        im = Image.fromarray((img * 255).astype(np.uint8)).resize((64, 64), Image.Resampling.NEAREST)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        sugg = f" &rarr; {html.escape(str(f['suggested_label']))}" if "suggested_label" in f else ""
        cells.append(f"<figure style='display:inline-block;margin:4px;text-align:center;font-size:11px'>"
                     f"<img src='{uri}' width='64' height='64' style='image-rendering:pixelated;border:1px solid #999'>"
                     f"<figcaption>#{f['record']} {html.escape(str(f['label']))}{sugg}<br>"
                     f"{html.escape(', '.join(f['reasons']))}</figcaption></figure>")
    return "".join(cells)


def render_html(report: dict[str, Any], *, max_rows: int = 500, images: Any = None) -> str:
    """``images``: optional (n, h, w) grayscale array in [0, 1] of the screened data, to show thumbnails of
    flagged records (they are not in the JSON report, so a re-rendered report has none)."""
    ds = report["dataset"]
    sm = report["summary"]
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ailedger dataset screening</title>",
        ("<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px}"
        "th{background:#eee}.v-pass{color:#4c9a2a}.v-warn{color:#b8860b}.v-fail{color:#c0392b}"
        "svg{max-width:100%;height:auto}</style></head><body>"),
        "<h1>Dataset screening report</h1>",
        (f"<p>Verdict: <b class='v-{e(report['verdict'])}'>{e(report['verdict'].upper())}</b> &mdash; "
        f"{sm['flagged']} of {ds['records']} records flagged ({100 * sm['flagged_fraction']:.2f}%).</p>"),
        (f"<p>File <code>{e(ds['path'])}</code>, sha256 <code>{e(ds['sha256'])}</code>, modality "
        f"<b>{e(ds['modality'])}</b>, label column <code>{e(str(ds['label_column']))}</code>, source column "
        f"<code>{e(str(ds['source_column']))}</code>. Cross-validated accuracy against the given labels: "
        f"{100 * sm['cv_accuracy']:.2f}% ({report['parameters']['folds']} folds, models "
        f"{e(', '.join(report['parameters']['models']))}).</p>"),
        (f"<p>Report schema <code>{e(report['schema'])}</code>; the ledger record carries the SHA-256 of the "
        "RFC 8785 canonical bytes of the JSON report.</p>"),
    ]
    for title, svg in _charts(report):
        parts.append(f"<h2>{e(title)}</h2>{svg}")
    parts.append("<h2>Per-source verdicts</h2>")
    parts.append(_table(
        ["source", "records", "flagged", "label problems", "rate", "others' rate", "p", "LOO delta acc",
         "class JS", "verdict", "reasons"],
        [[s["source"], s["records"], s["flagged"], s["label_flagged"], f"{100 * s['flag_rate']:.1f}%",
          f"{100 * s['others_flag_rate']:.1f}%", f"{s['flag_rate_p']:.1e}",
          "" if s["loo_delta_accuracy"] is None else f"{100 * s['loo_delta_accuracy']:+.2f}",
          f"{s['label_js']:.3f}", s["verdict"], "; ".join(s["reasons"])] for s in report["sources"]]))
    parts.append("<h2>Backdoor signs per class</h2>")
    parts.append(_table(
        ["label", "records", "cluster", "cluster share", "silhouette", "same-class share (excl. reclass.)",
         "trigger features", "spectral max", "suspected", "flagged"],
        [[b["label"], b["records"], b["cluster_size"], b["cluster_share"], b["silhouette"], b["same_class_share"],
          ", ".join(b.get("trigger_feature_names") or map(str, b["trigger_features"])), b["spectral_max"],
          b["suspected"], b["flagged"]]
         for b in report["backdoor"]]))
    if report["duplicates"]:
        parts.append(f"<h2>Duplicate groups ({len(report['duplicates'])})</h2>")
        parts.append(_table(["kind", "records"], [[d["kind"], ", ".join(map(str, d["records"][:20]))]
                                                   for d in report["duplicates"][:max_rows]]))
    if images is not None and report["flagged"]:
        parts.append("<h2>Flagged images (highest scores first)</h2>")
        parts.append(_thumbnails(report, images))
    parts.append(f"<h2>Flagged records ({sm['flagged']}; first {min(max_rows, sm['flagged'])} shown)</h2>")
    parts.append(_table(["record", "reasons", "score", "label", "suggested", "source", "duplicate of"],
                        [[f["record"], ", ".join(f["reasons"]), f"{f['score']:.3f}", f["label"],
                          f.get("suggested_label", ""), f["source"], f.get("duplicate_of", "")]
                         for f in report["flagged"][:max_rows]]))
    if report["notes"]:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in report["notes"]) + "</ul>")
    parts.append("<h2>Parameters</h2><pre>" + e(json.dumps(report["parameters"], indent=1)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
