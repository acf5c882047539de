"""docs/grafana/ailedger.json: a Grafana dashboard whose every query names metrics the code really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ailedger.monitor.metrics import MonitorMetrics
from ailedger.server.metrics import ServiceMetrics

REPO = Path(__file__).resolve().parents[2]


def _exported() -> set[str]:
    names: set[str] = set()
    m = ServiceMetrics("serve")
    m.group(3, 3, 0.01, False)
    m.error("bad_input", 400)
    mm = MonitorMetrics()
    mm.error("log_fork")  # a labelled counter shows samples once a label is used
    for reg in (m.registry, mm.registry):
        for fam in reg.collect():
            names |= {s.name for s in fam.samples}
    # gauges serve reads at scrape time (present once a ledger backs them: test_serve*.py scrape them)
    names |= set(re.findall(r'gauge_fn\("(ailedger_[a-z_]+)"', (REPO / "src/ailedger/http/app.py").read_text()))
    return names


def test_dashboard_queries_only_exported_metrics():
    dash = json.loads((REPO / "docs/grafana/ailedger.json").read_text())
    assert dash["panels"] and dash["__inputs"][0]["pluginId"] == "prometheus"
    exported = _exported()
    used = set()
    for p in dash["panels"]:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            used |= set(re.findall(r"\b(ailedger_[a-z_]+)", t["expr"]))
    assert used and used <= exported, used - exported
    # the list: appends, batch sizes, latency, tree size, seconds behind, errors by code
    for want in ("ailedger_appends_total", "ailedger_commit_group_entries_bucket", "ailedger_commit_seconds_bucket",
                 "ailedger_tree_size", "ailedger_checkpoint_seconds_behind", "ailedger_errors_total"):
        assert want in used
