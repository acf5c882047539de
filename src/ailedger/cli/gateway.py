"""``ailedger gateway``: API keys and the audited HTTP proxy in front of a model server."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ailedger.cli._common import deadline_options, emit, json_option, ledger_option, open_ledger, with_hint
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
                  zk_setup: str | None, zk_input: str, zk_output: str | None, zk_check: bool,
                  head_timeout: float, body_timeout: float, min_body_rate: int,
                  ledger_dir: Path | None, as_json: bool) -> None:
        """Serve the audited proxy until SIGINT/SIGTERM."""
        import os

        from ailedger.inference.gateway import serve
        from ailedger.server.guard import Deadlines

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
                  deadlines=Deadlines(head=head_timeout, body=body_timeout, min_rate=min_body_rate), call_hook=hook)
