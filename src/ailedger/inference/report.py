"""Replay: list the recorded decisions of a model in a time window, with proofs; HTML report."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from typing import Any

from ailedger.errors import BadInputError
from ailedger.inference.payloads import inference_dir
from ailedger.inference.receipts import RECEIPT_FORMAT, batch_levels, path_from_levels
from ailedger.inference.store import RecordStore
from ailedger.tlog.merkle import leaf_hash

__all__ = ["list_records", "parse_time", "render_html"]


def parse_time(value: str | None, field: str) -> int | None:
    """RFC 3339 / ISO 8601 (date or date-time; UTC if no offset) -> microseconds since the epoch."""
    if value is None or value == "":
        return None
    v = value.strip()
    try:
        if v.endswith("Z"):
            v = v[:-1] + "+00:00"
        d = _dt.datetime.fromisoformat(v)
    except ValueError:
        raise BadInputError(f"{field} must be a date or RFC 3339 time like 2026-01-02T03:04:05Z",
                            field=field, found=value) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return int(d.timestamp() * 1_000_000)


def list_records(ledger: Any, model: str | None = None, t_from: str | None = None, t_to: str | None = None, *,
                 proofs: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
    """Records in time order. With ``proofs`` each carries ``proof``: its receipt proof document."""
    f, t = parse_time(t_from, "from"), parse_time(t_to, "to")
    if f is not None and t is not None and t < f:
        raise BadInputError("--to is before --from", field="to")
    rs = RecordStore(inference_dir(ledger.path))
    out: list[dict[str, Any]] = []
    try:
        batch_cache: dict[int, tuple[list[list[bytes]], dict[str, Any]]] = {}
        tlog_cache: dict[int, str] = {}
        import json

        index_of: dict[int, int | None] = {}
        for rid, bid, pos, _t, data, log_index in rs.query(model, f, t, limit):
            if log_index is None:  # written, index not noted yet (or a crash before the log append)
                if bid not in index_of:
                    got = ledger.store.indices_of([leaf_hash(rs.batch(bid)["entry"])])
                    index_of[bid] = next(iter(got.values())) if got else None
                log_index = index_of[bid]
            rec = json.loads(data)
            item: dict[str, Any] = {"receipt": rid, "record": rec, "batch_index": log_index, "position": pos}
            if proofs and log_index is not None:
                if bid not in batch_cache:
                    if len(batch_cache) > 64:
                        batch_cache.clear()
                    batch_cache[bid] = (batch_levels([leaf_hash(d) for d in rs.batch_records(bid)]), rs.batch(bid))
                levels, b = batch_cache[bid]
                if log_index not in tlog_cache:
                    tlog_cache[log_index] = ledger.prove(log_index).decode()
                item["proof"] = {"format": RECEIPT_FORMAT, "receipt": rid, "record": data.decode(), "position": pos,
                                 "count": len(levels[0]), "batch_root": b["root"].hex(),
                                 "batch_path": [h.hex() for h in path_from_levels(levels, pos)],
                                 "batch_index": log_index, "batch_entry": b["entry"].decode(),
                                 "tlog_proof": tlog_cache[log_index]}
            out.append(item)
    finally:
        rs.close()
    return out


def _chart_png(items: list[dict[str, Any]]) -> bytes:
    import matplotlib.pyplot as plt

    fig = _chart_figure(items)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _chart_figure(items: list[dict[str, Any]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_model: dict[str, list[_dt.datetime]] = {}
    for it in items:
        r = it["record"]
        per_model.setdefault(r["model"], []).append(
            _dt.datetime.fromisoformat(r["time"].replace("Z", "+00:00")))
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    if per_model:
        lo = min(min(v) for v in per_model.values())
        hi = max(max(v) for v in per_model.values())
        span = max((hi - lo).total_seconds(), 1.0)
        bins = 40
        width = span / bins
        for name, times in sorted(per_model.items()):
            counts = [0] * bins
            for tm in times:
                counts[min(int((tm - lo).total_seconds() / width), bins - 1)] += 1
            xs = [lo + _dt.timedelta(seconds=width * (i + 0.5)) for i in range(bins)]
            ax.plot(xs, counts, marker=".", label=name)  # type: ignore[arg-type]  # dates: matplotlib
        ax.legend(loc="upper right")
        ax.set_ylabel(f"decisions per {width:.3g} s")
    ax.set_title("Decisions over time per model")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def render_pdf(items: list[dict[str, Any]], path: str, *, title: str, vkey: str, max_rows: int = 500) -> None:
    """A PDF: the chart and a summary on page one, then the records (first ``max_rows``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    models: dict[str, int] = {}
    for it in items:
        models[it["record"]["model"]] = models.get(it["record"]["model"], 0) + 1
    with PdfPages(path) as pdf:
        fig = _chart_figure(items)
        fig.set_size_inches(8.27, 5.0)
        fig.suptitle(f"{title}: {len(items)} decisions; "
                     + ", ".join(f"{k}: {v}" for k, v in sorted(models.items())), fontsize=9)
        fig.text(0.01, 0.005, f"log verifier key: {vkey}", fontsize=6)
        pdf.savefig(fig, bbox_inches="tight")
        plt.close(fig)
        rows = [f"{it['record']['time']}  {it['record']['model']}  {it['record']['status']:<5}  "
                f"{it['record']['caller'][:24]:<24}  {it['receipt']}  #{it['batch_index']}[{it['position']}]"
                for it in items[:max_rows]]
        for start in range(0, len(rows), 60):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.03, 0.97, "\n".join(rows[start : start + 60]), family="monospace", fontsize=6.5,
                     va="top")
            pdf.savefig(fig)
            plt.close(fig)


def render_html(items: list[dict[str, Any]], *, title: str, vkey: str) -> str:
    png = base64.b64encode(_chart_png(items)).decode()
    models: dict[str, int] = {}
    status: dict[str, int] = {}
    for it in items:
        models[it["record"]["model"]] = models.get(it["record"]["model"], 0) + 1
        status[it["record"]["status"]] = status.get(it["record"]["status"], 0) + 1
    rows = []
    for it in items[:2000]:
        r = it["record"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
            r["time"], r["model"], r["caller"], r["status"], it["receipt"], it["batch_index"], it["position"],
            (r.get("in") or "")[:16] + "…")) + "</tr>")
    esc = html.escape
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}code{{font-size:11px}}</style></head><body>
<h1>{esc(title)}</h1>
<p>{len(items)} decisions; per model: {esc(", ".join(f"{k}: {v}" for k, v in sorted(models.items())))};
per status: {esc(", ".join(f"{k}: {v}" for k, v in sorted(status.items())))}.</p>
<img alt="decisions over time per model" src="data:image/png;base64,{png}">
<p>Every row is a record committed in a signed <code>inference.batch</code> entry of the log
(verifier key <code>{esc(vkey)}</code>); inputs and outputs appear only as salted SHA-256 commitments.
Check one with <code>ailedger inference receipt ID --out r.json</code> and
<code>ailedger inference verify r.json</code>.</p>
<table><tr><th>time (UTC)</th><th>model</th><th>caller</th><th>status</th><th>receipt</th><th>batch entry</th>
<th>position</th><th>input commitment</th></tr>
{"".join(rows)}</table>{"<p>(first 2000 rows shown)</p>" if len(items) > 2000 else ""}
</body></html>
"""
