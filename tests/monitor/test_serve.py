"""The monitor against a real `ailedger serve`, and the /metrics of serve and of the monitor, read with
prometheus_client's own parser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from ailedger.cli.main import main
from ailedger.monitor import Monitor, parse_watch
from ailedger.monitor.metrics import MonitorMetrics
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import parse_vkey
from tests.http.helpers import Key
from tests.monitor.conftest import lane_port, notes

ROOT = Path(__file__).resolve().parents[2]


def _metrics(url: str) -> dict[str, float]:
    text = httpx.get(url, timeout=5).text
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
            out[key] = s.value
    return out


@pytest.fixture
def served(tmp_path):
    led = Ledger.init(tmp_path / "led", "example.org/served")
    led.close()
    port = lane_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-c", "from ailedger.cli.main import main; main()", "serve", "--ledger",
                             str(tmp_path / "led"), "--port", str(port), "--open-registration"],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError((tmp_path / "serve.log").read_text())
        time.sleep(0.1)
    vkey = httpx.get(url + "/v1/log").json()["vkey"]
    yield url, vkey
    proc.terminate()
    proc.wait(10)
    log.close()


def test_monitor_follows_ailedger_serve_and_serve_exposes_metrics(served, tmp_path):
    url, vkey = served
    k = Key("trainer")
    assert httpx.post(url + "/v1/identities", json=k.registration()).status_code == 201
    r = httpx.post(url + "/v1/entries/batch", json={"entries": [k.entry("note", {"i": i}) for i in range(30)]})
    assert r.status_code == 201
    model = k.entry("model.register", {"name": "digits-mlp", "manifest": {"root": "ab" * 32}})
    assert httpx.post(url + "/v1/entries", json=model).status_code == 201
    got: list[dict] = []
    mon = Monitor(url, parse_vkey(vkey), [parse_watch("model=digits-mlp"), parse_watch("hash=" + "ab" * 32)],
                  state_path=tmp_path / "st.json", on_match=got.append)
    res = mon.poll()
    assert res["size"] >= 32 and [m["type"] for m in got] == ["model.register"]
    assert {h["watch"] for h in got[0]["matched"]} == {"model=digits-mlp", "hash=" + "ab" * 32}
    # a bad request is counted by its error code
    assert httpx.post(url + "/v1/entries", content=b"{not json").status_code == 400
    m = _metrics(url + "/metrics")
    assert m["ailedger_tree_size{service=serve}"] == res["size"]
    assert m["ailedger_appends_total{service=serve}"] >= 32
    assert m["ailedger_commit_group_entries_count{service=serve}"] >= 2
    assert m["ailedger_commit_group_entries_sum{service=serve}"] >= 32
    assert m["ailedger_commit_seconds_count{service=serve}"] >= 2
    assert any(k.startswith("ailedger_errors_total{code=malformed_json") or "status=400" in k
               for k in m if k.startswith("ailedger_errors_total"))
    assert "ailedger_checkpoint_seconds_behind{service=serve}" in m
    # more entries: the monitor reads only those
    r = httpx.post(url + "/v1/entries/batch", json={"entries": [k.entry("note", {"i": i}) for i in range(30, 40)]})
    assert r.status_code == 201
    assert mon.poll()["entries_read"] == 10


def test_monitor_metrics_endpoint(ledger, mirror, tmp_path):
    led, who = ledger
    notes(led, who, 0, 50)
    mirror.publish(led)
    metrics = MonitorMetrics()
    port = lane_port()
    server = metrics.serve("127.0.0.1", port)
    try:
        mon = Monitor(mirror.url, parse_vkey(led.vkey), [parse_watch(f"signer={who.did}")], metrics=metrics)
        mon.poll()
        metrics.error("verification_failed")
        m = _metrics(f"http://127.0.0.1:{port}/metrics")
        assert m["ailedger_monitor_entries_total"] == 50 and m["ailedger_monitor_matches_total"] == 50
        assert m["ailedger_monitor_tree_size"] == 50
        assert m["ailedger_monitor_errors_total{code=verification_failed}"] == 1
        assert 0 <= m["ailedger_monitor_checkpoint_seconds_behind"] < 60
        assert m["ailedger_monitor_fetched_bytes_total"] > 50 * 32
    finally:
        server.shutdown()


def test_cli_webhook_json_lines_and_exit_codes(ledger, mirror, webhook, tmp_path):
    led, who = ledger
    notes(led, who, 0, 5)
    led.append_record("note", {"name": "my-dataset"}, who)
    mirror.publish(led)
    run = CliRunner().invoke
    args = ["monitor", mirror.url, "--vkey", led.vkey, "--state", str(tmp_path / "s.json"), "--once", "--json"]
    r = run(main, [*args, "--watch", "name=my-dataset", "--webhook", webhook.url])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert [x["event"] for x in lines] == ["match", "checkpoint"]
    assert webhook.got == [lines[0]] and lines[0]["body"]["name"] == "my-dataset"
    shutil.copytree(mirror.site, tmp_path / "old-site")  # the log at size 6, kept to replay it later
    # a webhook that fails: the match is not lost, the state does not move, the next round delivers it
    led.append_record("note", {"name": "my-dataset", "v": 2}, who)
    mirror.publish(led)
    webhook.fail = True
    r = run(main, [*args, "--watch", "name=my-dataset", "--webhook", webhook.url])
    assert r.exit_code == 2 and "webhook" in r.output
    webhook.fail = False
    r = run(main, [*args, "--watch", "name=my-dataset", "--webhook", webhook.url])
    assert r.exit_code == 0 and webhook.got[-1]["body"] == {"name": "my-dataset", "v": 2}
    # bad input: exit 2, naming what is wrong
    r = run(main, [*args, "--watch", "colour=red"])
    assert r.exit_code == 2 and "colour" in r.output
    r = run(main, [*args, "--webhook", "ftp://x"])
    assert r.exit_code == 2 and "--webhook" in r.output
    # a malformed checkpoint: reported, the follower keeps going (two rounds, no crash); --once: exit 1
    good = (mirror.site / "checkpoint").read_bytes()
    (mirror.site / "checkpoint").write_bytes(good[:20])
    r = run(main, [*args[:-2], "--rounds", "2", "--interval", "0.05", "--json"])
    assert r.exit_code == 1 and [json.loads(x)["event"] for x in r.output.splitlines()[:1]] == ["error"]
    r = run(main, args)
    assert r.exit_code == 1 and "malformed" in r.output
    # a rollback (the log's own older tree served again): exit 1, both signed checkpoints in the JSON error
    (mirror.site / "checkpoint").write_bytes(good)
    assert run(main, args).exit_code == 0
    mirror.publish_dir(tmp_path / "old-site")
    r = run(main, args)
    assert r.exit_code == 1 and "smaller tree" in r.output
    err = next(json.loads(ln) for ln in r.output.splitlines() if ln.startswith("{"))["error"]
    assert err["code"] == "log_fork" and err["kind"] == "rollback"
    assert (err["seen"]["size"], err["new"]["size"]) == (7, 6) and err["seen"]["note"] != err["new"]["note"]
    # a hand-edited state no longer gives its root: refused, not followed from a wrong place
    st = tmp_path / "s.json"
    st.write_text(st.read_text().replace('"size": 7', '"size": 9'))
    r = run(main, args)
    assert r.exit_code == 2 and "damaged" in r.output
