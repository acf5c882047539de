"""`ailedger monitor URL --vkey KEY --watch KIND=VALUE ...`: follow a log and report matching entries."""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import json_option, read_vkey
from ailedger.errors import AiledgerError, BadInputError, NetworkError


def _post(url: str, obj: dict[str, Any], timeout: float) -> None:
    req = urllib.request.Request(url, data=json.dumps(obj, sort_keys=True).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read(1 << 16)
    except urllib.error.HTTPError as e:
        raise NetworkError(f"the webhook {url} answered {e.code}: the match is delivered again next round",
                           url=url, status=e.code) from None
    except (urllib.error.URLError, OSError) as e:
        raise NetworkError(f"cannot reach the webhook {url}: {getattr(e, 'reason', e)}; the match is delivered "
                           "again next round", url=url) from None


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInputError(f"--metrics-listen {value!r} is not HOST:PORT (e.g. 127.0.0.1:9464)", field="metrics")
    return host, int(port)


@click.command("monitor")
@click.argument("url")
@click.option("--vkey", "vkey_value", required=True,
              help="The log's verifier key, inline or a file (`ailedger vkey` prints it).")
@click.option("--origin", default=None, help="The log's origin line, if not the key's name (another C2SP log).")
@click.option("--watch", "watches", multiple=True, metavar="KIND=VALUE",
              help="What to report (repeat): model=, dataset=, trained-on=, base=, signer=, cid=, hash=, type=, "
                   "name=, subject=, term=, leaf=HEX, fingerprint=ALGO:HEX[/DISTANCE].")
@click.option("--webhook", default=None, metavar="URL", help="POST each match as JSON to URL.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keep the last checkpoint here so a restart resumes where it stopped.")
@click.option("--witness-key", "witness_keys", multiple=True, metavar="VKEY",
              help="A witness's cosignature/v1 key (repeat): each checkpoint must carry their cosignatures.")
@click.option("--witness-threshold", type=click.IntRange(min=0), default=None,
              help="How many of the witness keys must cosign (default: all).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=30.0, show_default=True, metavar="SECONDS",
              help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Poll once and exit (a cron job, a CI step).")
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="Stop after this many polls.")
@click.option("--metrics-listen", default=None, metavar="HOST:PORT", help="Serve Prometheus /metrics there.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="Per request (tiles, checkpoint, webhook).")
@json_option
def monitor(url: str, vkey_value: str, origin: str | None, watches: tuple[str, ...], webhook: str | None, state_file: Path | None,
            witness_keys: tuple[str, ...], witness_threshold: int | None, interval: float, once: bool,
            rounds: int | None, metrics_listen: str | None, timeout: float, as_json: bool) -> None:
    """Follow the log at URL (an `ailedger serve`, a static tile mirror, any C2SP tlog-tiles log) from its
    checkpoints and report new entries that match a --watch, as JSON lines (--json) and/or a --webhook POST.

    Each checkpoint must be signed by --vkey (and cosigned, with --witness-key) and extend the last one seen;
    every tile hash is checked against the signed root before use.  A rollback, split view or fork is
    reported with both checkpoints as evidence and exits 1; a malformed tile or checkpoint is reported and
    the round retried (with --once: exit 1)."""
    from ailedger.monitor import Monitor, parse_watch
    from ailedger.monitor.follow import ForkError

    parsed = [parse_watch(w) for w in watches]
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise BadInputError(f"--webhook {webhook!r} is not an http(s) URL", field="webhook")
    verifier = read_vkey(vkey_value)
    wkeys = tuple(read_vkey(k) for k in witness_keys)
    if witness_threshold is not None and witness_threshold > len(wkeys):
        raise BadInputError(f"--witness-threshold {witness_threshold} is more than the {len(wkeys)} --witness-key "
                            "given", field="witness_threshold")
    metrics = None
    server = None
    if metrics_listen is not None:
        host, port = _listen(metrics_listen)
        from ailedger.monitor.metrics import MonitorMetrics

        metrics = MonitorMetrics()
        try:
            server = metrics.serve(host, port)
        except OSError as e:
            raise BadInputError(f"cannot listen on {metrics_listen}: {e.strerror}", field="metrics") from None

    def out(obj: dict[str, Any], line: str) -> None:
        click.echo(json.dumps(obj, sort_keys=True, default=str) if as_json else line)

    def on_match(m: dict[str, Any]) -> None:
        if webhook is not None:
            _post(webhook, m, timeout)
        watched = ", ".join(h["watch"] for h in m["matched"])
        out(m, f"match: entry {m['index']} ({m.get('type', 'opaque entry')}"
               f"{' by ' + m['signer'] if 'signer' in m else ''}) matches {watched}")

    from tqdm import tqdm

    # a progress bar on stderr while a long log is caught up (people at a terminal only)
    bar = tqdm(unit="entry", desc="following", disable=as_json or not sys.stderr.isatty(), leave=False)
    mon = Monitor(url, verifier, parsed, state_path=state_file, witness_keys=wkeys,
                  witness_threshold=witness_threshold, timeout=timeout, on_match=on_match, metrics=metrics,
                  progress=bar.update, origin=origin)
    stop = {"now": False}

    def _stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    n = 0
    try:
        while True:
            n += 1
            try:
                res = mon.poll()
                out(res, f"checkpoint {res['size']} ({res['entries_read']} new entries, {res['matches']} matches, "
                         f"{res['bytes_fetched']} bytes)")
            except ForkError as e:
                if metrics is not None:
                    metrics.error(e.code)
                click.echo(f"ALERT: {e.message}", err=True)
                if not as_json:
                    click.echo(json.dumps(e.details, indent=1, sort_keys=True, default=str), err=True)
                raise
            except AiledgerError as e:
                if metrics is not None:
                    metrics.error(e.code)
                if once or (rounds is not None and n >= rounds):
                    raise
                out({"event": "error", "error": e.to_dict()}, f"error (retried next round): {e.message}")
            except Exception as e:
                if metrics is not None:
                    metrics.error("internal")
                if once or (rounds is not None and n >= rounds):
                    raise
                out({"event": "error", "error": {"code": "internal", "message": repr(e)[:300]}},
                    f"error (retried next round): {e!r}"[:300])
            if once or stop["now"] or (rounds is not None and n >= rounds):
                return
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline and not stop["now"]:
                time.sleep(min(0.2, interval))
            if stop["now"]:
                return
    except KeyboardInterrupt:
        return
    finally:
        bar.close()
        if server is not None:
            server.shutdown()


def register(main: click.Group) -> None:
    main.add_command(monitor)
