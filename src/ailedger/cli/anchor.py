"""`ailedger anchor ...`: anchor checkpoints on Ethereum and check anchors."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit_lines as _emit

LEDGER_OPT = click.option("--ledger", "ledger_dir", envvar="AILEDGER_LEDGER", type=click.Path(),
                          help="ledger directory (default: $AILEDGER_LEDGER)")
JSON_OPT = click.option("--json", "as_json", is_flag=True, help="print JSON")
KEY_HELP = ("Ethereum private key: hex, a file holding it, or env:VAR "
            "(default: $AILEDGER_ANCHOR_KEY); prefer a file or env: over the command line")


def _service(ledger: Any, rpc: str, key: str, contract: str | None, confirmations: int,
             verbose: bool = True) -> Any:
    from ailedger.anchoring.service import AnchorService, connect, load_key

    log = (lambda m: click.echo(m, err=True)) if verbose else None
    return AnchorService(ledger, connect(rpc), load_key(key), contract, confirmations=confirmations, log=log)


def _receipt_lines(r: dict[str, Any]) -> list[str]:
    return [f"anchored tree size {r['tree_size']} of {r['origin']}",
            f"  chain {r['chain_id']} contract {r['contract']}",
            f"  tx {r['tx_hash']} block {r['block_number']} at {r['block_time_iso']} (gas {r['gas_used']})"]


def register(main: click.Group) -> None:
    @main.group("anchor", invoke_without_command=True)
    @click.option("--rpc", envvar="AILEDGER_RPC", help="Ethereum JSON-RPC URL (default: $AILEDGER_RPC)")
    @click.option("--key", envvar="AILEDGER_ANCHOR_KEY", help=KEY_HELP)
    @click.option("--contract", help="CheckpointAnchor address (default: the one `anchor deploy` saved)")
    @click.option("--every", type=float, help="run as a service: anchor every N seconds (if the log grew)")
    @click.option("--entries", type=int, help="run as a service: anchor every M new entries")
    @click.option("--confirmations", type=int, default=1, show_default=True,
                  help="blocks on top of the anchor before it counts (use 12+ on a public chain)")
    @click.option("--timeout", type=float, default=300.0, show_default=True,
                  help="one-shot mode: how long to wait for confirmation")
    @click.option("--max-seconds", type=float, help="service mode: stop after this long")
    @LEDGER_OPT
    @JSON_OPT
    @click.pass_context
    def anchor(ctx: click.Context, rpc: str | None, key: str | None, contract: str | None, every: float | None,
               entries: int | None, confirmations: int, timeout: float, max_seconds: float | None,
               ledger_dir: str | None, as_json: bool) -> None:
        """Anchor the ledger's current checkpoint on Ethereum (or, with --every/--entries, keep doing it).

        Anchors go through a persisted queue in LEDGER/anchors.db: if the RPC endpoint is down, a
        transaction is dropped or reverted, or the chain reorganises, they are retried and never sent
        twice; a new run resumes where the last one stopped."""
        if ctx.invoked_subcommand is not None:
            return
        from ailedger.errors import BadInputError
        from ailedger.tlog.ledger import Ledger

        if not rpc or not key:
            raise BadInputError("anchoring needs --rpc URL and --key (or $AILEDGER_RPC, $AILEDGER_ANCHOR_KEY)")
        with Ledger.open(ledger_dir) as ledger:
            svc = _service(ledger, rpc, key, contract, confirmations)
            try:
                if every or entries:
                    stop = threading.Event()
                    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
                    click.echo(f"anchoring {ledger.origin} every "
                               + " or ".join(x for x in (f"{every:g} s" if every else "",
                                                          f"{entries} entries" if entries else "") if x), err=True)
                    try:
                        svc.serve(every, entries, stop=stop, max_seconds=max_seconds)
                    except KeyboardInterrupt:
                        pass
                    rs = [r.to_dict() for r in svc.queue.receipts()]
                    _emit({"receipts": rs}, as_json, [f"{len(rs)} confirmed anchors"])
                    return
                rec = svc.anchor_now(timeout=timeout).to_dict()
                _emit(rec, as_json, _receipt_lines(rec))
            finally:
                svc.close()

    @anchor.command("deploy")
    @click.option("--rpc", envvar="AILEDGER_RPC", required=True, help="Ethereum JSON-RPC URL")
    @click.option("--key", envvar="AILEDGER_ANCHOR_KEY", required=True, help=KEY_HELP)
    @LEDGER_OPT
    @JSON_OPT
    def deploy_cmd(rpc: str, key: str, ledger_dir: str | None, as_json: bool) -> None:
        """Deploy the CheckpointAnchor contract and remember its address for this ledger and chain."""
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            svc = _service(ledger, rpc, key, None, 1, verbose=False)
            try:
                addr = svc.deploy()
                out = {"contract": addr, "chain_id": svc.chain.chain_id, "deployer": svc.account.address}
            finally:
                svc.close()
        _emit(out, as_json, [f"CheckpointAnchor deployed at {addr} on chain {out['chain_id']}"])

    @anchor.command("status")
    @LEDGER_OPT
    @JSON_OPT
    def status_cmd(ledger_dir: str | None, as_json: bool) -> None:
        """List the anchor queue: queued, sent, mined, confirmed and superseded anchors."""
        from ailedger.anchoring.service import AnchorQueue
        from ailedger.tlog.ledger import resolve_ledger_dir

        q = AnchorQueue(resolve_ledger_dir(ledger_dir))
        try:
            rows = q.rows()
        finally:
            q.close()
        keep = ("id", "chain_id", "contract", "tree_size", "status", "attempts", "tx_hash", "block_number",
                "block_time", "gas_used", "last_error")
        out = [{k: r[k] for k in keep} for r in rows]
        _emit(out, as_json, [f"#{r['id']} size {r['tree_size']}: {r['status']}"
                             + (f" block {r['block_number']} tx {r['tx_hash']}" if r["block_number"] else "")
                             + (f" ({r['last_error']})" if r["last_error"] and r["status"] != "confirmed" else "")
                             for r in out] or ["no anchors yet"])

    @anchor.command("evidence")
    @click.argument("proof", type=click.Path(exists=True, dir_okay=False))
    @click.option("-o", "--output", type=click.Path(dir_okay=False),
                  help="default: PROOF.anchor.json (with --embed: required, the new .tlog-proof)")
    @click.option("--embed", is_flag=True, help="put the evidence in the proof's tlog-proof `extra` line instead")
    @LEDGER_OPT
    @JSON_OPT
    def evidence_cmd(proof: str, output: str | None, embed: bool, ledger_dir: str | None, as_json: bool) -> None:
        """Write the anchor evidence of a .tlog-proof (receipt + consistency proof): a sidecar file
        PROOF.anchor.json by default, or embedded in the proof's extra line with --embed."""
        from ailedger.anchoring.service import anchor_evidence, embed_evidence, sidecar_path
        from ailedger.errors import BadInputError
        from ailedger.tlog.ledger import Ledger

        data = Path(proof).read_bytes()
        with Ledger.open(ledger_dir, read_only=True) as ledger:
            ev = anchor_evidence(ledger, data)
        if embed:
            if not output:
                raise BadInputError("--embed needs -o OUT.tlog-proof", field="output")
            out = Path(output)
            out.write_bytes(embed_evidence(data, ev))
        else:
            out = Path(output) if output else sidecar_path(proof)
            out.write_text(json.dumps(ev, indent=1, sort_keys=True) + "\n")
        _emit({"output": str(out), **ev}, as_json,
              [f"wrote {out} (anchor of size {ev['tree_size']} in block {ev['block_number']})"])

    @anchor.command("verify")
    @click.argument("proof", type=click.Path(exists=True, dir_okay=False))
    @click.option("--rpc", envvar="AILEDGER_RPC", required=True, help="Ethereum JSON-RPC URL")
    @click.option("--contract", required=True, help="CheckpointAnchor address")
    @click.option("--vkey", "log_vkey", help="the log's verifier key (checks the checkpoint's signature)")
    @click.option("--evidence", type=click.Path(exists=True, dir_okay=False),
                  help="anchor evidence sidecar (default: PROOF.anchor.json if present, else the proof's "
                       "extra line)")
    @click.option("--submitter", help="only count anchors sent by this address")
    @click.option("--confirmations", type=int, default=1, show_default=True)
    @JSON_OPT
    def verify_cmd(proof: str, rpc: str, contract: str, log_vkey: str | None, evidence: str | None,
                   submitter: str | None, confirmations: int, as_json: bool) -> None:
        """Check that the checkpoint of PROOF (a .tlog-proof or a checkpoint) is anchored on chain."""
        from ailedger.anchoring.service import check_anchored, evidence_from_bundle, sidecar_path
        from ailedger.errors import VerificationError
        from ailedger.tlog.proofbundle import parse_proof_bundle

        data = Path(proof).read_bytes()
        ev_path = Path(evidence) if evidence else sidecar_path(proof)
        ev = json.loads(ev_path.read_text()) if ev_path.exists() else None
        if data.startswith(b"c2sp.org/tlog-proof@v1\n"):
            if ev is None:
                ev = evidence_from_bundle(data)
            data = parse_proof_bundle(data).checkpoint
        res = check_anchored(data, rpc, contract, log_vkey=log_vkey, evidence=ev, submitter=submitter,
                             confirmations=confirmations)
        if res["anchored"]:
            lines = [f"anchored: tree size {res['checkpoint_size']} "
                     + ("directly" if res["how"] == "direct" else f"via the anchor of size {res['anchored_size']}"
                        " and a consistency proof"),
                     (f"  block {res['block_number']} at {res['block_time_iso']} ({res['confirmations']} "
                     f"confirmations), tx {res['tx_hash']}")]
        else:
            lines = [f"NOT anchored: {res['reason']}"]
        _emit(res, as_json, lines)
        if not res["anchored"]:
            raise VerificationError(f"checkpoint is not anchored: {res['reason']}")
