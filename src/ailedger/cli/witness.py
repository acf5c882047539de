"""`ailedger witness ...`: run a C2SP tlog-witness, and collect/verify cosigned checkpoints."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import deadline_options
from ailedger.cli._common import emit_lines as _emit

LEDGER_OPT = click.option("--ledger", "ledger_dir", envvar="AILEDGER_LEDGER", type=click.Path(),
                          help="ledger directory (default: $AILEDGER_LEDGER)")
WITNESS_OPT = click.option("--witness", "witness_dir", envvar="AILEDGER_WITNESS", required=True,
                           type=click.Path(file_okay=False), help="witness directory (default: $AILEDGER_WITNESS)")
JSON_OPT = click.option("--json", "as_json", is_flag=True, help="print JSON")


def cosign_options(f: Any) -> Any:
    """The options of every command that collects cosignatures (`checkpoint --cosign-with`, `witness cosign`)."""
    for opt in reversed([
        click.option("--witness-vkey", "witness_vkeys", multiple=True, metavar="VKEY",
                     help="a witness key whose cosignatures are kept (inline or a file; repeat); also kept: "
                          "keys added with `witness trust` and configured witnesses' keys"),
        click.option("--witness-threshold", "witness_threshold", type=click.IntRange(min=0), default=None,
                     help="how many witnesses must cosign (default: every one asked)"),
        click.option("--allow-missing-cosignatures", "allow_missing", is_flag=True,
                     help="exit 0 even when witnesses refuse or cannot be reached (they are still reported)"),
        click.option("--timeout", "witness_timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                     help="seconds to wait for each witness"),
    ]):
        f = opt(f)
    return f


def collect_for_cli(ledger: Any, urls: list[str], witness_vkeys: tuple[str, ...], witness_threshold: int | None,
                    allow_missing: bool, witness_timeout: float, as_json: bool) -> Any:
    """Collect cosignatures; report each witness on stderr (text mode); raise when too few cosigned."""
    from ailedger.cli._common import read_vkey
    from ailedger.tlog.witness import cosign_checkpoint, missing_error

    keys = [read_vkey(v) for v in witness_vkeys]
    res = cosign_checkpoint(ledger, urls, timeout=witness_timeout, witness_vkeys=keys, threshold=witness_threshold)
    if not as_json:
        for r in res.replies:
            if r.ok:
                click.echo(f"cosigned by witness {r.label}" + (f" (ignored cosignatures by untrusted keys: "
                                                                f"{', '.join(r.dropped)})" if r.dropped else ""),
                           err=True)
            else:
                click.echo(f"warning: witness {r.label}: {r.error}", err=True)
    if not res.ok and not allow_missing:
        raise missing_error(res)
    return res


def register(main: click.Group) -> None:
    @main.group("witness")
    def witness() -> None:
        """Witnesses: cosign checkpoints that are consistent with what they saw (C2SP tlog-witness)."""

    @witness.command("init")
    @click.argument("directory", type=click.Path(file_okay=False))
    @click.option("--name", required=True, help="witness name, e.g. witness.example.org/w1")
    @JSON_OPT
    def init_cmd(directory: str, name: str, as_json: bool) -> None:
        """Create a witness in DIRECTORY with a new Ed25519 key."""
        from ailedger.tlog.witness import Witness

        w = Witness.init(directory, name)
        try:
            _emit({"witness": directory, "name": name, "vkey": w.vkey}, as_json,
                  [f"witness {name} created in {directory}", f"vkey: {w.vkey}",
                   f"next: ailedger witness add-log --witness {directory} --vkey LOG_VKEY"])
        finally:
            w.close()

    @witness.command("vkey")
    @WITNESS_OPT
    @JSON_OPT
    def vkey_cmd(witness_dir: str, as_json: bool) -> None:
        """Print the witness's cosignature verifier key (type 0x04)."""
        from ailedger.tlog.witness import Witness

        w = Witness.open(witness_dir)
        try:
            _emit({"name": w.name, "vkey": w.vkey}, as_json, [w.vkey])
        finally:
            w.close()

    @witness.command("add-log")
    @WITNESS_OPT
    @click.option("--vkey", required=True, help="the log's Ed25519 signed-note verifier key (`ailedger vkey`)")
    @click.option("--origin", help="checkpoint origin (default: the key name)")
    @JSON_OPT
    def add_log_cmd(witness_dir: str, vkey: str, origin: str | None, as_json: bool) -> None:
        """Accept checkpoints of a log (kept in the witness's witness.json; restart `serve` to apply)."""
        from ailedger.tlog.witness import Witness

        w = Witness.open(witness_dir)
        try:
            o = w.add_log(vkey, origin)
            _emit({"origin": o, "vkey": vkey, "logs": sorted(w.logs)}, as_json, [f"accepting log {o}"])
        finally:
            w.close()

    @witness.command("serve")
    @WITNESS_OPT
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=7380, show_default=True, help="0 picks a free port")
    @click.option("--verbose", is_flag=True, help="log each request to stderr")
    @deadline_options
    @JSON_OPT
    def serve_cmd(witness_dir: str, host: str, port: int, verbose: bool, head_timeout: float, body_timeout: float,
                  min_body_rate: int, as_json: bool) -> None:
        """Serve POST /add-checkpoint (C2SP tlog-witness) until interrupted.

        A checkpoint is taken only if a configured key of its log signed it (403 otherwise, 404 for
        an unknown origin): that signature is the protocol's authentication."""
        from ailedger.server.guard import Deadlines
        from ailedger.tlog.witness import Witness
        from ailedger.tlog.witness_http import make_server

        w = Witness.open(witness_dir)
        srv = make_server(w, host, port, verbose,
                          Deadlines(head=head_timeout, body=body_timeout, min_rate=min_body_rate))

        def _stop(*_a: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        if as_json:
            click.echo(json.dumps({"name": w.name, "url": srv.url, "logs": sorted(w.logs)}))
        else:
            click.echo(f"witness {w.name} listening on {srv.url} (logs: {', '.join(sorted(w.logs)) or 'none'})")
        sys.stdout.flush()
        try:
            srv.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            srv.server_close()
            w.close()

    @witness.command("evidence")
    @WITNESS_OPT
    @click.option("--origin", help="only this log")
    @JSON_OPT
    def evidence_cmd(witness_dir: str, origin: str | None, as_json: bool) -> None:
        """Print the conflicting checkpoints this witness refused: evidence of split views. The evidence is
        documents to hand on, so it is printed as JSON with or without --json."""
        from ailedger.tlog.witness import Witness

        w = Witness.open(witness_dir)
        try:
            click.echo(json.dumps(w.evidence(origin), indent=1))
        finally:
            w.close()

    @witness.command("trust")
    @click.argument("vkeys", nargs=-1)
    @click.option("--remove", is_flag=True, help="stop trusting these keys")
    @LEDGER_OPT
    @JSON_OPT
    def trust_cmd(vkeys: tuple[str, ...], remove: bool, ledger_dir: str | None, as_json: bool) -> None:
        """Trust witness keys (their `ailedger witness vkey`): only cosignatures verifying under a trusted
        key are kept with the log's checkpoints. No VKEY: list the trusted keys."""
        from ailedger.cli._common import read_vkey
        from ailedger.tlog.ledger import Ledger
        from ailedger.tlog.witness import trust_witness_key, trusted_witness_keys

        with Ledger.open(ledger_dir, read_only=True) as ledger:
            for v in vkeys:
                trust_witness_key(ledger, read_vkey(v).vkey, remove=remove)
            keys = trusted_witness_keys(ledger)
        none = ("no witness keys trusted (cosignatures are kept only from keys named with --witness-vkey or "
                "configured witnesses)")
        _emit({"trusted": keys}, as_json, keys or [none])

    @witness.command("configure")
    @click.option("--url", required=True, help="witness URL (its submission prefix)")
    @click.option("--vkey", help="the witness's vkey: for this URL, keep only cosignatures that verify under it")
    @click.option("--remove", is_flag=True, help="stop using this witness")
    @LEDGER_OPT
    @JSON_OPT
    def configure_cmd(url: str, vkey: str | None, remove: bool, ledger_dir: str | None, as_json: bool) -> None:
        """Set the witnesses this log asks for cosignatures by default (kept in LEDGER/witnesses.db)."""
        from ailedger.tlog.ledger import Ledger
        from ailedger.tlog.witness import configure_witness, configured_witnesses, remove_witness

        with Ledger.open(ledger_dir, read_only=True) as ledger:
            if remove:
                remove_witness(ledger, url)
            else:
                configure_witness(ledger, url, vkey)
            conf = configured_witnesses(ledger)
        _emit([{"url": u, "vkey": v} for u, v in conf], as_json,
              [f"{u}" + (f"  {v}" if v else "  (no vkey: cosignatures by trusted keys only)") for u, v in conf]
              or ["no witnesses configured"])

    @witness.command("cosign")
    @click.option("--url", "urls", multiple=True, help="witness URL (repeat; default: the configured ones)")
    @cosign_options
    @click.option("-o", "--output", type=click.Path(dir_okay=False), help="also write the checkpoint here")
    @LEDGER_OPT
    @JSON_OPT
    def cosign_cmd(urls: tuple[str, ...], witness_vkeys: tuple[str, ...], witness_threshold: int | None,
                   allow_missing: bool, witness_timeout: float, output: str | None, ledger_dir: str | None,
                   as_json: bool) -> None:
        """Print the ledger's checkpoint carrying the witnesses' cosignatures (trusted keys only).

        Exits 2 naming each witness that refused, could not be reached or answered with an unknown
        key, unless --witness-threshold is met or --allow-missing-cosignatures is given."""
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            res = collect_for_cli(ledger, list(urls), witness_vkeys, witness_threshold, allow_missing,
                                  witness_timeout, as_json)
        if output:
            Path(output).write_bytes(res.checkpoint)
        if as_json:
            click.echo(json.dumps({"checkpoint": res.checkpoint.decode(), **res.to_dict()}, indent=1))
        else:
            click.echo(res.checkpoint.decode(), nl=False)

    @witness.command("verify")
    @click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
    @click.option("--vkey", "--log-vkey", "log_vkey", required=True,
                  help="the log's verifier key, inline or a file (--log-vkey: the older spelling)")
    @click.option("--witness-vkey", "vkeys", multiple=True, help="a trusted witness key (repeat)")
    @click.option("--witness-threshold", "threshold", type=int, help="how many must cosign (default: all)")
    @JSON_OPT
    def verify_cmd(checkpoint: str, log_vkey: str, vkeys: tuple[str, ...], threshold: int | None,
                   as_json: bool) -> None:
        """Check a cosigned checkpoint (or the checkpoint in a .tlog-proof) against a witness policy."""
        from ailedger.errors import VerificationError
        from ailedger.tlog.cosignature import WitnessPolicy, evaluate_cosigned_checkpoint
        from ailedger.tlog.proofbundle import parse_proof_bundle

        data = Path(checkpoint).read_bytes()
        if data.startswith(b"c2sp.org/tlog-proof@v1\n"):
            data = parse_proof_bundle(data).checkpoint
        policy = WitnessPolicy.from_vkeys(log_vkey, list(vkeys), threshold)
        res = evaluate_cosigned_checkpoint(data, policy)
        lines = [(f"checkpoint {res.checkpoint.origin} size {res.checkpoint.size}: "
                 f"log signature {'ok' if res.log_signature_ok else 'BAD'}, "
                 f"{len(res.cosigners)} of {len(policy.witnesses)} witnesses cosigned (need {policy.threshold})")]
        lines += [f"  cosigned by {n} at {t}" for n, t in res.cosigners]
        lines += [f"  {n}: {r}" for n, r in res.failures]
        _emit(res.to_dict(), as_json, lines)
        if not res.ok:
            raise VerificationError("witness policy not met", expected=policy.threshold, found=len(res.cosigners))
