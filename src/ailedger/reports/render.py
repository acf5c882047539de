"""A report for people: HTML made from report.json alone (so ``report verify`` re-renders and compares it),
pictures with matplotlib (the model's life time line, inference volume per day; the lineage graph is the
provenance SVG, inline) and PDF with WeasyPrint."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError
from ailedger.provenance.lineage import lineage_svg

__all__ = ["PICTURES", "render_html", "render_pdf", "write_pictures"]

PICTURES = {"timeline": "timeline.png", "volume": "volume.png"}

_CSS = """body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}
li{margin:.3em 0}.ref{font-size:.8em;color:#555}.gap{color:#a04000}.status{padding:.5em;border:1px solid #999}
.revoked,.suspended{background:#fbe9e7;border-color:#c0392b}img,svg{max-width:100%}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:.9em}"""


def _statements(rep: dict[str, Any], section: str) -> list[str]:
    out = []
    for s in rep.get("statements", []):
        if s["section"] != section:
            continue
        out.append(f'<li id="{escape(s["id"])}">{escape(s["claim"])} <span class="ref">[{escape(s["id"])}: entry '
                   f'{s["entry"]}, <a href="{escape(s["entry_file"])}">entry</a>, '
                   f'<a href="{escape(s["proof"])}">proof</a>]</span></li>')
    return out


def render_html(rep: dict[str, Any]) -> str:
    kind = rep.get("kind")
    title = ("Technical documentation (EU AI Act Annex IV structure)" if kind == "technical-doc"
             else "Record-keeping (EU AI Act Article 12 style)")
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>{escape(title)}: {escape(str(rep.get('model')))}</title><style>{_CSS}</style></head><body>",
         f"<h1>{escape(title)}: model {escape(str(rep.get('model')))}</h1>",
         (f'<p class="ref">Generated {escape(str(rep.get("generated_at")))} from a log of {rep.get("log_size")} entries '
         f'(checkpoint in <a href="checkpoint">checkpoint</a>, key in <a href="log.vkey">log.vkey</a>). Every '
         "statement names its entry and an offline proof; check them all with <code>ailedger report verify "
         "DIR</code>.</p>")]
    st = rep.get("status")
    if st:
        h.append(f'<p class="status {escape(str(st.get("state")))}">Status: {escape(str(st.get("text")))}</p>')
    if kind == "record-keeping":
        s = rep["summary"]
        rg = rep["range"]
        h.append(f"<p>Period {escape(s['from'])} to {escape(s['to'])}: {s['inference_records']} inference records "
                 f"in {s['inference_batches']} batches, {len(s['erasures'])} erasures, {len(s['events'])} "
                 f"kill-switch or governance events, {len(s['timeline_gaps'])} gaps of more than "
                 f"{s['gap_hours']} h in the time line. The log range [{rg['opening_size']}, {rg['closing_size']}) "
                 "between two signed checkpoints holds the whole period; all its entries are in "
                 '<a href="range.jsonl">range.jsonl</a>, and consistency proofs show none was removed since.</p>')
        if s["per_day"]:
            h.append('<table><tr><th>day</th><th>inference records</th></tr>' + "".join(
                f"<tr><td>{escape(d)}</td><td>{n}</td></tr>" for d, n in s["per_day"].items()) + "</table>")
        if s["timeline_gaps"]:
            h.append("<p>Gaps in the time line: " + ", ".join(
                f"{escape(g['from'])} to {escape(g['to'])} ({g['hours']} h)" for g in s["timeline_gaps"]) + "</p>")
        h.append(f'<p><img src="{PICTURES["volume"]}" alt="inference volume per day"></p>')
    for sec in rep.get("sections", []):
        h.append(f"<h2>{escape(sec['title'])} <span class=\"ref\">({escape(sec['annex'])})</span></h2>")
        if sec["id"] == "development" and rep.get("lineage"):
            h.append('<div class="lineage">' + lineage_svg(rep["lineage"]) + "</div>")
        if sec["id"] == "risk" and kind == "technical-doc":
            h.append(f'<p><img src="{PICTURES["timeline"]}" alt="time line of the model\'s life"></p>')
        items = _statements(rep, sec["id"])
        h.append("<ul>" + "".join(items) + "</ul>" if items else "<p>No statement from the ledger.</p>")
        gaps = [g for g in rep.get("gaps", []) if g["section"] == sec["id"]]
        if gaps:
            h.append("<p>Gaps (the ledger cannot evidence these):</p><ul>" + "".join(
                f'<li class="gap">{escape(g["gap"])}</li>' for g in gaps) + "</ul>")
    h.append("</body></html>")
    return "\n".join(h) + "\n"


def write_pictures(rep: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import datetime as _dt

    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num

    made = []
    if rep.get("kind") == "technical-doc":
        tl = rep.get("timeline", [])
        fig, ax = plt.subplots(figsize=(9, 2.8))
        ts = [_dt.datetime.fromisoformat(str(x["time"]).replace("Z", "+00:00")) for x in tl]
        colours = {"revoked": "#c0392b", "suspended": "#e67e22", "approved": "#27ae60"}
        for i, (t, x) in enumerate(zip(ts, tl)):
            ax.plot([date2num(t)], [0], "o", color=colours.get(x["label"], "#2c6fbb"))
            ax.annotate(f"{x['label']} (#{x['entry']})", (date2num(t), 0), xytext=(0, 12 + 14 * (i % 4)),
                        textcoords="offset points", rotation=20, fontsize=8)
        ax.axhline(0, color="#999", lw=1)
        ax.xaxis_date()
        ax.set_yticks([])
        ax.set_title(f"life of model {rep.get('model')}")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(out / PICTURES["timeline"], dpi=90)
        plt.close(fig)
        made.append(PICTURES["timeline"])
    else:
        per = rep["summary"]["per_day"]
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(list(per.keys()) or ["(none)"], list(per.values()) or [0], color="#2c6fbb")
        ax.set_ylabel("inference records")
        ax.set_title(f"inference volume per day: {rep.get('model')}")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(out / PICTURES["volume"], dpi=90)
        plt.close(fig)
        made.append(PICTURES["volume"])
    return made


def render_pdf(out: Path) -> Path:
    """report.pdf from report.html (WeasyPrint: HTML and CSS to PDF with pango, no browser)."""
    try:
        from weasyprint import HTML
    except OSError as exc:  # the pango libraries are missing
        raise BadInputError(f"PDF export needs pango for WeasyPrint (apt-get install libpango-1.0-0 "
                            f"libpangoft2-1.0-0): {exc}", field="pdf") from None
    pdf = out / "report.pdf"
    HTML(filename=str(out / "report.html"), base_url=str(out)).write_pdf(str(pdf))
    return pdf
