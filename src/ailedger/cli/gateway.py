"""``ailedger gateway``: API keys and the audited HTTP proxy in front of a model server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import (
    INDEX,
    deadline_options,
    emit,
    json_option,
    ledger_option,
    open_ledger,
    with_hint,
)
from ailedger.errors import BadInputError


def register(main: click.Group) -> None:
    @main.group("gateway")
    def gateway() -> None:
        """Guarded, audited access to a model server."""

    @gateway.group("key")
    def key() -> None:
        """API keys bound to identities."""

    @key.command("new")
    @click.option("--as", "identity", required=True, help="Identity the key is bound to.")
    @click.option("--rate", default=None, help="Rate limit like 5/s, 120/m, 1000/h.")
    @click.option("--daily", type=int, default=None, help="Daily quota (UTC days).")
    @ledger_option
    @json_option
    def key_new(identity: str, rate: str | None, daily: int | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Make an API key and print it (it is stored only as a hash)."""
        from ailedger.inference.gateway import GatewayKeys, parse_rate

        r = parse_rate(rate)
        with open_ledger(ledger_dir) as ledger:
            keys = GatewayKeys(ledger.path)
            try:
                info = keys.new_key(identity, rate=r, daily=daily)
            finally:
                keys.close()
        emit(as_json, {"ok": True, **info}, info["key"])

    @key.command("list")
    @ledger_option
    @json_option
    def key_list(ledger_dir: Path | None, as_json: bool) -> None:
        """List keys (ids and identities; never the keys)."""
        from ailedger.inference.gateway import GatewayKeys

        with open_ledger(ledger_dir) as ledger:
            keys = GatewayKeys(ledger.path)
            rows = keys.list()
            keys.close()
        emit(as_json, {"ok": True, "keys": rows}, lambda: "\n".join(
            f"{k['key_id']}  {k['identity']}  rate={k['rate_per_s']}/s daily={k['daily']}"
            f"{'  REVOKED' if k['revoked'] else ''}" for k in rows) or "no keys")

    @key.command("revoke")
    @click.argument("key_id")
    @ledger_option
    @json_option
    def key_revoke(key_id: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Revoke a key by its id (`key list`) or by the key itself (`key new`); takes effect within 5 s in a
        running gateway."""
        import hashlib

        from ailedger.errors import NotFoundError
        from ailedger.inference.gateway import GatewayKeys

        if key_id.startswith("ailk_"):  # the key itself, as `key new` printed it: revoke it by its id
            key_id = hashlib.sha256(key_id.encode()).hexdigest()[:12]
        with open_ledger(ledger_dir) as ledger:
            keys = GatewayKeys(ledger.path)
            n = keys.revoke(key_id)
            keys.close()
        if not n:
            raise with_hint(NotFoundError(f"no API key with id {key_id}", field="key_id"),
                            "`ailedger gateway key list` shows the key ids")
        emit(as_json, {"ok": True, "key_id": key_id}, f"revoked {key_id}")

    @gateway.command("serve")
    @click.option("--upstream", required=True, help="Model server base URL, e.g. http://127.0.0.1:9000")
    @click.option("--model", required=True, help="Registered model name the upstream serves.")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=8080, show_default=True)
    @click.option("--mode", type=click.Choice(["fast", "durable"]), default="fast", show_default=True,
                  help="durable: answer only after the record is committed.")
    @click.option("--operator", default="inference", show_default=True,
                  help="Ledger identity that signs the inference batches ($AILEDGER_PASSPHRASE if protected).")
    @click.option("--timeout", type=float, default=30.0, show_default=True, help="Upstream timeout, seconds.")
    @click.option("--detect", is_flag=True, help="Run the extraction detector (PRADA) on /predict calls; an alarm "
                  "is a signed entry that shrinks the identity's budget (docs/private-ai.md).")
    @click.option("--delta", type=float, default=None, help="Detector threshold on Shapiro-Wilk W (default 0.93).")
    @click.option("--top1", is_flag=True, help="Answer the label only (drop the probabilities).")
    @click.option("--round", "decimals", type=int, default=None, help="Round probabilities to this many places.")
    @click.option("--zk-setup", default=None, metavar="ENTRY", help="Log, for each call, the commitments of the "
                  "model's bound ZK circuit (#INDEX of its model.zk, or the model name) so that sampled calls can be "
                  "proven later (`inference zk-prove-sampled`, docs/zk.md).")
    @click.option("--zk-input", default="features", show_default=True, metavar="FIELD",
                  help="With --zk-setup: dotted path of the circuit's input in the request JSON ('' = the whole "
                  "body).")
    @click.option("--zk-output", default=None, metavar="FIELD", help="With --zk-setup (required): dotted path of "
                  "the class label or scores in the upstream's answer, held to the circuit's output.")
    @click.option("--zk-check", is_flag=True, help="With --zk-setup: also refuse (503, no record) a call whose "
                  "answer's class is not the circuit's.")
    @deadline_options
    @ledger_option
    @json_option
    def serve_cmd(upstream: str, model: str, host: str, port: int, mode: str, operator: str, timeout: float,
                  detect: bool, delta: float | None, top1: bool, decimals: int | None,
                  zk_setup: str | None, zk_input: str, zk_output: str | None, zk_check: bool,
                  head_timeout: float, body_timeout: float, min_body_rate: int,
                  ledger_dir: Path | None, as_json: bool) -> None:
        """Serve the audited proxy until SIGINT/SIGTERM."""
        import os

        from ailedger.inference.gateway import serve
        from ailedger.server.guard import Deadlines

        extraction = None
        if detect or top1 or decimals is not None or delta is not None:
            from ailedger.inference.extraction import DetectorConfig, ExtractionGuard, Hardening

            cfg = DetectorConfig() if delta is None else DetectorConfig(delta=delta)
            hard = Hardening(top1=top1, decimals=decimals)

            def extraction(gw: Any) -> Any:
                return ExtractionGuard(gw.ledger, model, gw.trail.operator, detect=detect, config=cfg, hardening=hard)

        def ready(h: str, p: int) -> None:
            emit(as_json, {"ok": True, "listening": f"http://{h}:{p}", "model": model, "upstream": upstream,
                           "mode": mode}, f"gateway for {model} on http://{h}:{p} -> {upstream} ({mode} mode)")
            sys.stdout.flush()

        if zk_setup is None and (zk_output is not None or zk_check):
            raise BadInputError("--zk-output and --zk-check need --zk-setup", field="zk_setup")
        if zk_setup is not None and not zk_output:
            raise BadInputError("--zk-setup needs --zk-output FIELD: where the answer names the class",
                                field="zk_output")
        with open_ledger(ledger_dir) as ledger:
            hook = None
            if zk_setup is not None:
                from ailedger.verifiable.gatewayzk import GatewayCommitter

                hook = GatewayCommitter(ledger, zk_setup, model, input_field=zk_input or None,
                                        output_field=str(zk_output), check_served=zk_check)
            serve(ledger, upstream, model, host=host, port=port, mode=mode, operator=operator,
                  passphrase=os.environ.get("AILEDGER_PASSPHRASE"), timeout=timeout, ready=ready,
                  deadlines=Deadlines(head=head_timeout, body=body_timeout, min_rate=min_body_rate),
                  extraction=extraction, call_hook=hook)

    @gateway.command("alarms")
    @click.option("--as", "identity", default=None, help="Only this identity's standing.")
    @click.option("--operator", default="inference", show_default=True,
                  help="The gateway's operator identity: only its alarms count there.")
    @ledger_option
    @json_option
    def alarms_cmd(identity: str | None, operator: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Extraction alarms and what they do to each identity's budget at this gateway."""
        from ailedger.inference.extraction import alarms, ignored_alarms, standing

        with open_ledger(ledger_dir) as ledger:
            op = ledger.identities.load(operator).did
            every = alarms(ledger)
            names = [identity] if identity else sorted({a.identity for a in every if a.signer == op})
            rows = [standing(ledger, op, n).to_dict() for n in names]
            ignored: list[dict[str, Any]] = [{"entry": a.index, "reason": f"signed by {a.signer}, not by the gateway operator {operator}"}
                       for a in every if a.signer != op]
            ignored += [{"entry": i, "reason": why} for i, why in ignored_alarms(ledger)]
        lines = [(f"{r['identity']}: {'SUSPENDED' if r['suspended'] else 'budget x' + format(r['factor'], 'g')}"
                  f"  alarms {r['alarms']}" + (f"  until {r['until']}" if r['until'] else "")) for r in rows]
        lines += [f"ignored: entry {g['entry']}: {g['reason']}" for g in sorted(ignored, key=lambda g: g["entry"])]
        emit(as_json, {"ok": True, "operator": op, "identities": rows, "ignored": ignored},
             "\n".join(lines) or "no extraction alarms")

    @gateway.command("check-alarm")
    @click.argument("index", type=INDEX)
    @ledger_option
    @json_option
    def check_alarm_cmd(index: int, ledger_dir: Path | None, as_json: bool) -> None:
        """Recompute an alarm's normality test from the evidence it carries (exit 1 if it does not hold)."""
        from ailedger.errors import NotFoundError
        from ailedger.inference.extraction import check_alarm

        with open_ledger(ledger_dir) as ledger:
            if not 0 <= index < ledger.size:
                raise NotFoundError(f"no entry {index} in this ledger (size {ledger.size})", field="index")
            out = check_alarm(ledger.entry(index))
        emit(as_json, {**out, "entry": index}, f"alarm {index} holds: W={out['w']} < delta={out['delta']} on "
             f"{out['n']} distances of {out['identity']}")

    @gateway.command("extraction-test")
    @click.option("--gateway", "url", required=True, help="Gateway (or model server) URL, e.g. http://127.0.0.1:8080")
    @click.option("--key", required=True, help="The attacker's API key.")
    @click.option("--eval-key", required=True,
                  help="An honest client's key: it replays the digits test set (agreement is measured on it).")
    @click.option("--attack", type=click.Choice(["jbda", "rnd", "random"]), default="jbda", show_default=True)
    @click.option("--queries", type=click.IntRange(10, 100000), default=1000, show_default=True,
                  help="Query budget of the attack.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @json_option
    def extraction_test(url: str, key: str, eval_key: str, attack: str, queries: int, seed: int,
                        as_json: bool) -> None:
        """Attack a digits classifier behind a gateway with a substitute model; print agreement vs queries."""
        from ailedger.cli._common import progress
        from ailedger.inference.extraction_attack import (
            Blocked,
            HttpOracle,
            digits_split,
            honest_replay,
            run_attack,
        )

        d = digits_split(seed)
        Xs = d["test"][0]
        honest = HttpOracle(url, eval_key)
        try:
            test_labels = honest_replay(honest, Xs, seed)
        except Blocked as exc:
            raise BadInputError(f"the honest client's key was refused: {exc.status} {exc.message}",
                                field="eval-key") from None
        finally:
            honest.close()
        oracle = HttpOracle(url, key)
        with progress(queries, f"{attack} attack", enabled=not as_json) as bar:
            res = run_attack(oracle, attack, queries, d["pool"], Xs, test_labels, seed=seed, progress=bar.update)
        oracle.close()
        out = res.to_dict()
        emit(as_json, {"ok": True, **out}, lambda: "\n".join(
            [f"{q:6d} queries  agreement {a:.3f}" for q, a in res.curve]
            + [f"stopped: {res.stopped}" if res.stopped else f"spent the whole budget ({res.queries} queries)"]))
