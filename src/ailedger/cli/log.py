"""Core ledger commands: init, identity, append, checkpoint, vkey, entry, prove, verify,
consistency, audit, tiles export."""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import (
    INDEX,
    emit,
    json_option,
    ledger_option,
    log_verifier,
    open_ledger,
    progress,
    read_input_file,
    read_vkey,
    with_hint,
)
from ailedger.cli.witness import collect_for_cli, cosign_options
from ailedger.encoding.canonical import parse_json
from ailedger.encoding.records import parse_entry
from ailedger.errors import AiledgerError, BadInputError, NotFoundError, ProofError, VerificationError
from ailedger.tlog.checkpoint import open_checkpoint, parse_checkpoint_text
from ailedger.tlog.merkle import leaf_hash, verify_consistency
from ailedger.tlog.note import parse_note


def _write_exact(data: bytes) -> None:
    """Print bytes exactly as signed (no added or stripped newline)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _passphrase(prompt: bool) -> str | None:
    if prompt:
        return click.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    return os.environ.get("AILEDGER_PASSPHRASE") or None


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--origin", required=True, help="Log origin, e.g. example.org/ai-ledger (also the key name).")
@click.option("--store", "store_kind", type=click.Choice(["sqlite", "postgres"]), default="sqlite",
              show_default=True, help="Where entries live.")
@click.option("--dsn", help="PostgreSQL connection string (with --store postgres).")
@click.option("--founder", "founders", multiple=True, metavar="DID",
              help="A key (did:key) that may found the DAO besides the operator; stated in a log.genesis entry.")
@json_option
def init(path: Path, origin: str, store_kind: str, dsn: str | None, founders: tuple[str, ...],
         as_json: bool) -> None:
    """Create a new ledger (SQLite store by default, and the log signing key) in PATH.

    The log key is the operator's key: only it, or a founder it names (--founder, or later once with
    `ailedger gov founders`), may found the ledger's DAO (docs/authority.md)."""
    from ailedger.tlog.ledger import Ledger

    store: dict[str, Any] = {"store": "sqlite"}
    if store_kind == "postgres":
        if not dsn:
            raise BadInputError("--store postgres needs --dsn, e.g. postgresql://postgres@127.0.0.1:5432/test",
                                field="dsn")
        import secrets

        # each ledger gets its own schema, so several ledgers can share one database
        store = {"store": "postgres", "dsn": dsn, "schema": "ailedger_" + secrets.token_hex(6)}
    elif dsn:
        raise BadInputError("--dsn applies to --store postgres", field="dsn")
    with Ledger.init(path, origin, store=store, founders=list(founders) or None) as led:
        emit(as_json, {"ledger": str(path), "origin": origin, "vkey": led.vkey},
             f"created ledger {path}\norigin {origin}\nverifier key {led.vkey}\n"
             f"tip: export AILEDGER_LEDGER={path}")


@click.group()
def identity() -> None:
    """Ed25519 identities (did:key), kept in the ledger directory with file mode 0600."""


@identity.command("new")
@click.argument("name")
@click.option("--passphrase", "ask", is_flag=True, help="Protect the key with a passphrase (asked for).")
@ledger_option
@json_option
def identity_new(name: str, ask: bool, ledger_dir: Path | None, as_json: bool) -> None:
    """Create identity NAME and log its self-signed registration."""
    with open_ledger(ledger_dir) as led:
        ident, res = led.new_identity(name, _passphrase(ask))
        emit(as_json, {"name": name, "did": ident.did, "index": res.index},
             f"{name} {ident.did}\nregistered at index {res.index}")


@identity.command("list")
@ledger_option
@json_option
def identity_list(ledger_dir: Path | None, as_json: bool) -> None:
    """List the identities whose keys this ledger directory holds."""
    with open_ledger(ledger_dir) as led:
        rows = [{"name": n, "did": led.identities.did_of(n)} for n in led.identities.names()]
        emit(as_json, {"identities": rows}, lambda: "\n".join(f"{r['name']} {r['did']}" for r in rows) or "(none)")


@identity.command("rotate")
@click.argument("name")
@ledger_option
@json_option
def identity_rotate(name: str, ledger_dir: Path | None, as_json: bool) -> None:
    """Replace NAME's key; the old key signs the hand-over record."""
    with open_ledger(ledger_dir) as led:
        new, res = led.rotate_identity(name)
        emit(as_json, {"name": name, "did": new.did, "index": res.index},
             f"{name} now {new.did} (rotation logged at index {res.index})")


@identity.command("revoke")
@click.argument("name")
@click.option("--reason", default="", help="Why (logged).")
@ledger_option
@json_option
def identity_revoke(name: str, reason: str, ledger_dir: Path | None, as_json: bool) -> None:
    """Revoke NAME: the ledger refuses its entries from now on."""
    with open_ledger(ledger_dir) as led:
        res = led.revoke_identity(name, reason=reason)
        emit(as_json, {"name": name, "index": res.index}, f"{name} revoked at index {res.index}")


def _load_record(data: bytes, type_opt: str | None) -> tuple[str, dict[str, Any], int]:
    obj = parse_json(data, what="record")
    if not isinstance(obj, dict):
        raise BadInputError("record must be a JSON object")
    if "body" in obj and "type" in obj:
        extra = set(obj) - {"type", "body", "v"}
        if extra:
            raise BadInputError(f"record has unknown field {min(extra)!r}", field=min(extra))
        if not isinstance(obj["body"], dict):
            raise BadInputError("record body must be a JSON object", field="body")
        return str(obj["type"]), obj["body"], int(obj.get("v", 1))
    return type_opt or "record", obj, 1


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--as", "as_name", help="Identity that signs (omit to append entries that are already signed).")
@click.option("--type", "type_opt", help="Record type when FILE is a bare JSON body (default: record).")
@click.option("--jsonl", is_flag=True, help="Each FILE holds one record or signed entry per line (batched).")
@ledger_option
@json_option
def append(files: tuple[Path, ...], as_name: str | None, type_opt: str | None, jsonl: bool,
           ledger_dir: Path | None, as_json: bool) -> None:
    """Sign (with --as) and append records; print index and leaf hash.

    A record file is {"type": T, "body": {...}} or a bare JSON object (type "record").
    Without --as each file must be an entry already signed by its "signer"."""
    with open_ledger(ledger_dir) as led:
        ident = led.identities.load(as_name) if as_name else None
        blobs: list[bytes] = []
        for f in files:
            data = read_input_file(f, "record")
            if jsonl:
                blobs.extend(line for line in data.splitlines() if line.strip())
            else:
                blobs.append(data)
        # check everything before writing anything
        entries = []
        for n, data in enumerate(blobs):
            try:
                if ident is not None:
                    t, body, v = _load_record(data, type_opt)
                    if "sig" in body and "signer" in body:
                        raise BadInputError("this looks like a signed entry; append it without --as")
                    entries.append(led.make_entry(t, body, ident, v=v))
                else:
                    e = parse_entry(data, verify=True)
                    led.check_signer_allowed(e)
                    entries.append(e)
            except AiledgerError as exc:
                where = f"{files[0]} line {n + 1}" if jsonl else str(files[n])
                err = type(exc)(f"{where}: {exc.message}")
                if ident is None and not isinstance(exc, VerificationError):
                    with_hint(err, "to sign a record, append it with `--as NAME`; without --as each file must "
                                   "be an entry already signed by its signer")
                raise err from None
        if ident is not None:
            for e in entries:
                led.check_signer_allowed(e)
        from ailedger.tlog.ledger import entry_terms
        from ailedger.tlog.merkle import leaf_hash as lh
        from ailedger.tlog.stores import LeafRow

        rows = [LeafRow(e.leaf_bytes, lh(e.leaf_bytes), entry_terms(e)) for e in entries]
        # the checks every write path makes: time within the skew, the signer's authority (docs/authority.md)
        logged = led.store.indices_of([r.hash for r in rows])
        for n, err in enumerate(led.admit(entries)):
            if err is not None and rows[n].hash not in logged:
                where = f"{files[0]} line {n + 1}" if jsonl else str(files[min(n, len(files) - 1)])
                raise type(err)(f"{where}: {err.message}", **err.details) from None
        results = led.log.append(rows)
        out = [{"index": r.index, "leaf_hash": r.leaf_hash.hex(), "duplicate": r.duplicate} for r in results]
        emit(as_json, {"entries": out} if len(out) > 1 else out[0],
             lambda: "\n".join(f"index {o['index']} leaf {o['leaf_hash']}" + (" (already logged)" if o["duplicate"]
                                                                               else "") for o in out))


@click.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Also write the checkpoint to this file.")
@click.option("--cosign-with", "cosign", multiple=True, metavar="URL",
              help="Witness URL to collect a cosignature from (repeat).")
@cosign_options
@ledger_option
@json_option
def checkpoint(output: Path | None, cosign: tuple[str, ...], witness_vkeys: tuple[str, ...],
               witness_threshold: int | None, allow_missing: bool, witness_timeout: float, ledger_dir: Path | None,
               as_json: bool) -> None:
    """Print the latest signed checkpoint (C2SP signed note), signing a new one if the log grew.

    With --cosign-with, the witnesses' cosignatures are attached: only those verifying under a
    trusted witness key (--witness-vkey, `witness trust`, configured witnesses); a witness that
    refuses, cannot be reached or answers with an unknown key is named with the reason, and the
    command exits 2 unless --witness-threshold is met or --allow-missing-cosignatures is given."""
    if not cosign and (witness_vkeys or witness_threshold is not None or allow_missing):
        raise BadInputError("--witness-vkey, --witness-threshold and --allow-missing-cosignatures go with "
                            "--cosign-with URL", field="cosign_with")
    with open_ledger(ledger_dir) as led:
        note = led.checkpoint()
        res = None
        if cosign:
            res = collect_for_cli(led, list(cosign), witness_vkeys, witness_threshold, allow_missing,
                                  witness_timeout, as_json)
            note = res.checkpoint
        if output:
            output.write_bytes(note)
        cp = parse_checkpoint_text(parse_note(note).text)
        if as_json:
            emit(True, {"origin": cp.origin, "size": cp.size, "root": base64.b64encode(cp.root).decode(),
                        "checkpoint": note.decode(), **(res.to_dict() if res is not None else {})}, "")
        else:
            _write_exact(note)


@click.command()
@ledger_option
@json_option
def vkey(ledger_dir: Path | None, as_json: bool) -> None:
    """Print the log's verifier key (signed-note vkey form)."""
    with open_ledger(ledger_dir, read_only=True) as led:
        emit(as_json, {"vkey": led.vkey}, led.vkey)


@click.command()
@click.argument("index", type=INDEX)
@click.option("-o", "--out", "--output", "output", type=click.Path(path_type=Path),
              help="Write the exact leaf bytes here.")
@ledger_option
@json_option
def entry(index: int, output: Path | None, ledger_dir: Path | None, as_json: bool) -> None:
    """Show entry INDEX, or write its exact leaf bytes with -o."""
    with open_ledger(ledger_dir, read_only=True) as led:
        data = led.entry_bytes(index)
        if output:
            output.write_bytes(data)
        e = parse_entry(data, verify=False)
        info = {"index": index, "leaf_hash": leaf_hash(data).hex(), "entry": e.to_dict()}
        if output:
            emit(as_json, info, f"wrote entry {index} ({len(data)} bytes) to {output}")
        else:
            emit(as_json, info, lambda: json.dumps(e.to_dict(), indent=2, ensure_ascii=False))


@click.command()
@click.argument("index", type=INDEX)
@click.option("-o", "--out", "--output", "output", type=click.Path(path_type=Path), help="Write the .tlog-proof here.")
@ledger_option
@json_option
def prove(index: int, output: Path | None, ledger_dir: Path | None, as_json: bool) -> None:
    """Make an offline proof bundle (C2SP tlog-proof) for entry INDEX."""
    with open_ledger(ledger_dir) as led:
        bundle = led.prove(index)
        try:  # carry the witnesses' cosignatures collected for this checkpoint, if any
            from ailedger.tlog.witness import attach_cosignatures
        except ImportError:
            pass
        else:
            bundle = attach_cosignatures(led, bundle)
        if output:
            output.write_bytes(bundle)
        if output or as_json:
            emit(as_json, {"index": index, "proof": bundle.decode(), "output": str(output) if output else None},
                 f"wrote proof for entry {index} to {output}")
        else:
            _write_exact(bundle)


@click.command()
@click.argument("proof_file", type=click.Path(path_type=Path))
@click.option("--vkey", "vkey_opt", help="Log verifier key, inline or a file (default: the ledger's).")
@click.option("--entry", "entry_file", type=click.Path(path_type=Path), help="The entry's exact leaf bytes.")
@click.option("--leaf-hash", help="The entry's RFC 6962 leaf hash (hex), instead of --entry.")
@click.option("--candidate", type=click.Path(path_type=Path), help="For dataset proofs: the record to check.")
@click.option("--witness-vkey", multiple=True, help="Witness verifier key (inline or file); repeat.")
@click.option("--witness-threshold", type=int, default=0, help="How many of the witnesses must have cosigned.")
@click.option("--rpc", help="Ethereum RPC URL: also check the checkpoint is anchored.")
@click.option("--contract", help="Anchor contract address (with --rpc).")
@ledger_option
@json_option
def verify(proof_file: Path, vkey_opt: str | None, entry_file: Path | None, leaf_hash: str | None,
           candidate: Path | None, witness_vkey: tuple[str, ...], witness_threshold: int, rpc: str | None,
           contract: str | None, ledger_dir: Path | None, as_json: bool) -> None:
    """Verify a proof file offline: its checkpoint signature and the entry's inclusion."""
    from ailedger.tlog.verify import verify_file

    data = read_input_file(proof_file, "proof")
    verifier = log_verifier(vkey_opt, ledger_dir)
    result = verify_file(
        data, verifier,
        entry=read_input_file(entry_file, "entry") if entry_file else None,
        leaf_hash_hex=leaf_hash,
        candidate=read_input_file(candidate, "candidate") if candidate else None,
        witness_vkeys=[read_vkey(w) for w in witness_vkey], witness_threshold=witness_threshold,
        rpc=rpc, contract=contract, anchor_evidence=_sidecar_evidence(proof_file) if rpc else None,
    )
    emit(as_json, result, lambda: result.get("summary", "OK"))


def _sidecar_evidence(proof_file: Path) -> dict[str, Any] | None:
    """Anchor evidence written beside a proof by `ailedger anchor evidence` (PROOF.anchor.json)."""
    side = proof_file.with_name(proof_file.name + ".anchor.json")
    if not side.exists():
        return None
    obj = parse_json(side.read_bytes(), what=str(side))
    if not isinstance(obj, dict):
        raise BadInputError(f"{side} is not a JSON object")
    return obj


@click.command()
@click.argument("sizes", nargs=-1, type=int)
@click.option("--old", "old_file", type=click.Path(path_type=Path), help="Older signed checkpoint file.")
@click.option("--new", "new_file", type=click.Path(path_type=Path), help="Newer signed checkpoint file.")
@click.option("--proof", "proof_file", type=click.Path(path_type=Path),
              help="Consistency proof file (one base64 hash a line): verify offline, no ledger needed.")
@click.option("--vkey", "vkey_opt", help="Log verifier key, inline or a file (default: the ledger's).")
@ledger_option
@json_option
def consistency(sizes: tuple[int, ...], old_file: Path | None, new_file: Path | None, proof_file: Path | None,
                vkey_opt: str | None, ledger_dir: Path | None, as_json: bool) -> None:
    """Prove the log only grew: between two checkpoint files, or print the proof between two sizes."""
    if sizes:
        if len(sizes) != 2 or old_file or new_file:
            raise BadInputError("give two tree sizes, or --old and --new checkpoint files")
        with open_ledger(ledger_dir, read_only=True) as led:
            old, new = sizes
            if old == 0:
                raise BadInputError("a consistency proof from the empty tree proves nothing; use an old size >= 1")
            proof = led.log.consistency_proof(old, new)
            lines = [base64.b64encode(h).decode() for h in proof]
            emit(as_json, {"old_size": old, "new_size": new, "proof": lines,
                           "old_root": base64.b64encode(led.log.root_at(old)).decode(),
                           "new_root": base64.b64encode(led.log.root_at(new)).decode()},
                 lambda: "\n".join(lines) if lines else "(empty proof: the sizes are equal)")
        return
    if not (old_file and new_file):
        raise BadInputError("give --old and --new checkpoint files (or two tree sizes)")
    old_note = read_input_file(old_file, "old checkpoint")
    new_note = read_input_file(new_file, "new checkpoint")
    led = None
    if vkey_opt or proof_file:  # offline: only the key is needed
        verifier = log_verifier(vkey_opt, ledger_dir)
    else:
        led = open_ledger(ledger_dir, read_only=True)
        verifier = led.verifier
    try:
        old_cp = open_checkpoint(old_note, verifier)
        new_cp = open_checkpoint(new_note, verifier)
        if proof_file:
            lines = read_input_file(proof_file, "proof").decode(errors="replace").split()
            try:
                proof = [base64.b64decode(x, validate=True) for x in lines]
            except ValueError:  # binascii.Error is a ValueError
                raise BadInputError(f"{proof_file} is not one base64 hash a line") from None
        else:
            if led is None:
                led = open_ledger(ledger_dir, read_only=True)
            if old_cp.size == 0:
                raise ProofError("the old checkpoint is of the empty tree, which every log extends")
            if new_cp.size < old_cp.size:
                raise ProofError(f"the new checkpoint (size {new_cp.size}) is older than the old one "
                                 f"(size {old_cp.size})", expected=f">= {old_cp.size}", found=new_cp.size)
            proof = led.log.consistency_proof(old_cp.size, new_cp.size)
        verify_consistency(old_cp.size, new_cp.size, old_cp.root, new_cp.root, proof)
    finally:
        if led is not None:
            led.close()
    emit(as_json, {"ok": True, "old_size": old_cp.size, "new_size": new_cp.size,
                   "proof": [base64.b64encode(h).decode() for h in proof]},
         f"OK: the log at size {new_cp.size} extends the log at size {old_cp.size} "
         f"(consistency proof of {len(proof)} hashes verified)")


@click.command()
@click.option("--no-signatures", is_flag=True, help="Skip re-checking every entry's signature (hashes only).")
@ledger_option
@json_option
def audit(no_signatures: bool, ledger_dir: Path | None, as_json: bool) -> None:
    """Recompute every hash, node, checkpoint root and signature; exit 1 on any tampering."""
    from ailedger.tlog.private import check_private

    with open_ledger(ledger_dir, read_only=True) as led:
        with progress(led.size, "audit", not as_json) as bar:
            rep = led.audit(signatures=not no_signatures, progress=bar.update)
        d = rep.to_dict()
        perms = check_private(led.path)
        d["permissions"] = [p.to_dict() for p in perms]
        for p in perms:  # not tampering (the exit code is unchanged) but a leak: say it, and how to fix it
            click.echo(f"warning: {p.message}", err=True)
        if perms:
            click.echo(f"warning: secrets in {led.path} are readable by other local users; "
                       f"fix them all with: ailedger doctor --ledger {led.path} --fix", err=True)

        def text() -> str:
            lines = [(f"audited {rep.leaves_checked} entries, {rep.nodes_checked} tree nodes, "
                     f"{rep.checkpoints_checked} checkpoints, {rep.signatures_checked} signatures")]
            if rep.ok:
                lines.append("OK: everything recomputes")
            for p in rep.problems:
                s = f"PROBLEM {p.kind}" + (f" at index {p.index}" if p.index is not None else "") + f": {p.message}"
                if p.expected is not None:
                    s += f" (expected {p.expected}, found {p.found})"
                lines.append(s)
            return "\n".join(lines)

        emit(as_json, d, text)
        if not rep.ok:
            sys.exit(1)


@click.command()
@click.option("--witness", "witness_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also check this witness folder.")
@click.option("--fix", is_flag=True, help="Take the group and other permissions away (chmod 700 / 600).")
@ledger_option
@json_option
def doctor(witness_dir: Path | None, fix: bool, ledger_dir: Path | None, as_json: bool) -> None:
    """Check that a ledger (and a witness) folder keeps its secrets private; exit 1 if not.

    The folder must be 0700 and every secret-bearing file (log and identity keys, subject keys,
    payloads, API key hashes, witness state, dataset salts, the config) 0600. With --fix the
    wider permissions are removed."""
    from ailedger.tlog.ledger import CONFIG, resolve_ledger_dir
    from ailedger.tlog.private import check_private, fix_private

    roots: list[Path] = []
    if ledger_dir is not None or witness_dir is None:
        led_path = resolve_ledger_dir(ledger_dir)
        if not (led_path / CONFIG).exists():
            raise NotFoundError(f"no ledger at {led_path}", field="ledger")
        roots.append(led_path)
    if witness_dir is not None:
        if not (witness_dir / "witness.json").exists():
            raise NotFoundError(f"no witness at {witness_dir}", field="witness")
        roots.append(witness_dir)
    problems = [p for r in roots for p in check_private(r)]
    fixed = fix_private(problems) if fix else 0
    remaining = [] if fix else problems
    out = {"ok": not remaining, "checked": [str(r) for r in roots], "problems": [p.to_dict() for p in problems],
           "fixed": fixed}

    def text() -> str:
        lines = [("fixed: " if fix else "PROBLEM ") + p.message for p in problems]
        if not problems:
            lines.append(f"OK: {', '.join(map(str, roots))}: private (folders 0700, secret files 0600)")
        elif not fix:
            lines.append("fix them all with: ailedger doctor --fix" + (f" --ledger {roots[0]}" if ledger_dir else "")
                         + (f" --witness {witness_dir}" if witness_dir else ""))
        return "\n".join(lines)

    emit(as_json, out, text)
    if remaining:
        sys.exit(1)


@click.group()
def tiles() -> None:
    """Static C2SP tlog-tiles."""


class _closing:
    """Close an export target that holds threads and connections (an S3 bucket) when the export ends."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.target, "close", None)
        if close is not None:
            close()


@tiles.command("export")
@click.argument("target", metavar="DIRECTORY|s3://BUCKET[/PREFIX]")
@click.option("--watch", type=click.FloatRange(min=0.05), default=None, metavar="SECONDS",
              help="Keep the mirror current: export again every SECONDS until interrupted.")
@click.option("--full", is_flag=True, help="Rewrite every tile, not only new ones.")
@click.option("--prune-after", type=click.FloatRange(min=0), default=600.0, show_default=True, metavar="SECONDS",
              help="With --watch: remove partial tiles this old once their full tile exists.")
@click.option("--s3-endpoint", default=None, metavar="URL",
              help="S3 API endpoint for an s3:// target (default: $AWS_ENDPOINT_URL, else AWS S3); "
                   "credentials come from the AWS environment variables or profile.")
@click.option("--s3-workers", type=click.IntRange(min=1, max=256), default=16, show_default=True,
              help="Parallel uploads to an s3:// target.")
@ledger_option
@json_option
def tiles_export(target: str, watch: float | None, full: bool, prune_after: float, s3_endpoint: str | None,
                 s3_workers: int, ledger_dir: Path | None, as_json: bool) -> None:
    """Write checkpoint, tile/<L>/<N> and tile/entries/<N> files, servable from any web host, to a
    DIRECTORY or to an S3-compatible bucket (s3://BUCKET/PREFIX, needs ailedger[s3]).

    Full tiles never change, so a second export writes only new tiles, the partial right edge and
    then the checkpoint (last, so readers never see a checkpoint ahead of its tiles).  In a bucket
    every object gets a Cache-Control header: full tiles immutable, partial ones a minute, the
    checkpoint no-cache."""
    import time

    from ailedger.tlog.mirror import TileSink, export_tiles, prune_partial_tiles

    out: Path | TileSink
    if target.startswith("s3://"):
        from ailedger.tlog.s3mirror import S3Sink

        out = S3Sink(target, endpoint=s3_endpoint, workers=s3_workers)
        where = out.location
    else:
        if "://" in target:
            raise BadInputError(f"{target!r}: tiles export writes to a directory or an s3://BUCKET[/PREFIX] "
                                "target", field="target")
        if s3_endpoint:
            raise BadInputError("--s3-endpoint is for an s3://BUCKET[/PREFIX] target", field="s3_endpoint")
        out = Path(target)
        if out.exists() and not out.is_dir():
            raise BadInputError(f"{target} is not a directory", field="directory")
        where = target

    def prune() -> int:
        return out.prune(prune_after) if isinstance(out, TileSink) else prune_partial_tiles(out, prune_after)

    with open_ledger(ledger_dir) as led, _closing(out):
        with progress(led.size, "tiles", not as_json and watch is None) as bar:
            stats = export_tiles(led, out, progress=bar.update, incremental=not full)
        emit(as_json, stats, f"wrote {stats['tiles']} hash tiles and {stats['entry_bundles']} entry bundles "
                             f"for size {stats['size']} to {where} (kept {stats['kept']} unchanged)")
        if watch is None:
            return
        # a long-running mirror: SIGTERM (a service manager stopping it) and Ctrl-C both end it cleanly;
        # a failing round (the store busy, the disk full, the bucket unreachable) is reported once and
        # retried the next round
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        last, failing = stats["size"], ""
        try:
            while True:
                time.sleep(watch)
                try:
                    stats = export_tiles(led, out, known_size=last)
                    stats["pruned"] = prune()
                except AiledgerError as exc:
                    if exc.message != failing:
                        click.echo(f"warning: {exc.message}; retrying every {watch:g} s", err=True)
                    failing = exc.message
                    continue
                failing = ""
                if stats["size"] != last:
                    last = stats["size"]
                    emit(as_json, stats, f"size {stats['size']}: wrote {stats['tiles']} hash tiles, "
                                         f"{stats['entry_bundles']} entry bundles")
        except KeyboardInterrupt:
            return


@tiles.command("nginx-conf")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="host:port nginx listens on.")
@click.option("--prefix", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for nginx's pid file, log and temp files (default: DIRECTORY/../nginx).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--user", default=None, help="User nginx's workers run as (only when started as root).")
@click.option("-o", "--out", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the configuration here (default: print it).")
@json_option
def tiles_nginx_conf(directory: Path, listen: str, prefix: Path | None, workers: int, user: str | None,
                     output: Path | None, as_json: bool) -> None:
    """An nginx configuration serving the static tile mirror DIRECTORY (run: nginx -c FILE).

    Full tiles are sent as immutable, partial tiles for a minute, the checkpoint uncached."""
    from ailedger.tlog.mirror import nginx_conf

    prefix = prefix or directory.resolve().parent / "nginx"
    text = nginx_conf(directory, listen, prefix, workers=workers, user=user)
    try:
        prefix.mkdir(parents=True, exist_ok=True)
        if output is not None:
            output.write_text(text)
    except OSError as e:
        raise BadInputError(f"cannot write {e.filename}: {e.strerror}", field="output") from e
    if as_json:
        emit(True, {"output": str(output) if output else None, "config": text,
                    "start": f"nginx -c {output.resolve()}" if output else None}, "")
    elif output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {output}; start with: nginx -c {output.resolve()}", err=True)


@tiles.command("serve")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--listen", default="127.0.0.1:8080", show_default=True,
              help="host:port to listen on (port 0: any free port, printed when ready).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes sharing the listening socket.")
@click.option("--refresh", type=click.FloatRange(min=0.001), default=1.0, show_default=True, metavar="SECONDS",
              help="Re-read the checkpoint at least this often (inotify makes it immediate where it works).")
@click.option("--cache-mb", type=click.IntRange(min=1), default=256, show_default=True,
              help="Memory for tiles held as ready answers, per worker.")
@click.option("--idle-timeout", type=click.FloatRange(min=0.001), default=60.0, show_default=True,
              metavar="SECONDS", help="Close keep-alive connections idle this long.")
@click.option("--max-conns", type=click.IntRange(min=1), default=10000, show_default=True,
              help="Open connections per worker; more are answered 503 with Retry-After.")
@json_option
def tiles_serve(directory: Path, listen: str, workers: int, refresh: float, cache_mb: int, idle_timeout: float,
                max_conns: int, as_json: bool) -> None:
    """Serve the static tile mirror DIRECTORY over HTTP (read-only, C2SP tlog-tiles paths only).

    Keep DIRECTORY current with `ailedger tiles export DIRECTORY --watch 1`.  Tiles never change, so
    each is read once and answered from memory; the checkpoint follows the directory.  Stops
    cleanly on SIGTERM or Ctrl-C and prints its counters.  The default way to serve a mirror is
    nginx (`ailedger tiles nginx-conf`, docs/mirror.md); this C server is the optional faster one."""
    from ailedger.tlog.tileserver import serve_mirror

    def ready(info: dict) -> None:
        emit(as_json, {"event": "ready", **info},
             f"serving the tile mirror {info['directory']} at {info['url']} ({info['workers']} worker"
             f"{'s' if info['workers'] > 1 else ''}); stop with Ctrl-C or SIGTERM")
        sys.stdout.flush()

    if not (directory / "checkpoint").is_file() and directory.is_dir():
        click.echo(f"warning: {directory} has no checkpoint yet; /checkpoint answers 404 until "
                   f"`ailedger tiles export {directory}` writes one", err=True)
    stats = serve_mirror(directory, listen, workers=workers, refresh=refresh, cache_mb=cache_mb,
                         idle_timeout=idle_timeout, max_conns=max_conns, ready=ready)
    emit(as_json, {"event": "stopped", **stats},
         f"stopped: {stats.get('requests', 0)} requests, {stats.get('ok', 0)} answered 200, "
         f"{stats.get('not_found', 0)} not found, {stats.get('bad_requests', 0)} refused as malformed, "
         f"{stats.get('refused_503', 0)} connections refused with 503")



def _read_mirror(url: str, vkey_value: str, origin: str | None, timeout: float,
                 into: Path | None) -> dict[str, Any]:
    from ailedger.tlog.tileclient import read_tile_mirror

    verifier = read_vkey(vkey_value)
    return read_tile_mirror(url, verifier, into=into, origin=origin, timeout=timeout)


_mirror_options = [
    click.option("--vkey", "vkey_value", required=True,
                 help="The log's verifier key, inline or a file (`ailedger vkey` prints it)."),
    click.option("--origin", default=None, help="The log's origin line, if not the key's name."),
    click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
                 help="Per request."),
]


def _with_mirror_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(_mirror_options):
        f = opt(f)
    return f


@tiles.command("verify")
@click.argument("url")
@_with_mirror_options
@json_option
def tiles_verify(url: str, vkey_value: str, origin: str | None, timeout: float, as_json: bool) -> None:
    """Read the whole tile mirror at URL (nginx, an object store, `tiles serve`, `ailedger serve`) and check
    it: the checkpoint signed by --vkey, every hash tile, the root, every entry.  Exit 1 if it does not hold."""
    res = _read_mirror(url, vkey_value, origin, timeout, None)
    emit(as_json, res, f"verified {res['url']}: {res['origin']} at size {res['size']}, root {res['root']} "
                       f"({res['fetched']} files, {res['bytes_fetched']} bytes)")


@tiles.command("mirror")
@click.argument("url")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_with_mirror_options
@json_option
def tiles_mirror(url: str, directory: Path, vkey_value: str, origin: str | None, timeout: float,
                 as_json: bool) -> None:
    """Copy the tile mirror at URL into DIRECTORY, checked as `tiles verify` checks it (a mirror of a
    mirror, servable by nginx in turn).  Run again to follow the log: full tiles already copied are not
    fetched again, the checkpoint goes last, and one that does not extend the copy's is refused."""
    res = _read_mirror(url, vkey_value, origin, timeout, directory)
    grown = "" if res["previous_size"] is None else f" (was {res['previous_size']})"
    emit(as_json, res, f"mirrored {res['url']} into {directory}: {res['origin']} at size {res['size']}{grown}, "
                       f"{res['fetched']} files fetched, {res['reused']} already there")

@click.command()
@click.option("--type", "type_", help="Record type.")
@click.option("--signer", help="Signer did:key or identity name.")
@click.option("--term", help="Index term, e.g. subject:sha256:...")
@click.option("--limit", type=int, default=100)
@ledger_option
@json_option
def find(type_: str | None, signer: str | None, term: str | None, limit: int, ledger_dir: Path | None,
         as_json: bool) -> None:
    """List entries by type, signer or term."""
    if not (type_ or signer or term):
        raise with_hint(BadInputError("find needs --type, --signer or --term", field="type"),
                        "e.g. `ailedger find --type model.register`, `--signer alice`, `--term dataset:NAME`")
    with open_ledger(ledger_dir, read_only=True) as led:
        did = led.did_for(signer) if signer else None
        rows = [{"index": i, **e.to_dict()} for i, e in led.find(type=type_, signer=did, term=term, limit=limit)]
        emit(as_json, {"entries": rows}, lambda: "\n".join(
            f"{r['index']:>8} {r['time']} {r['type']:<24} {r['signer'][:32]}..." for r in rows) or "(none)")


def register(main: click.Group) -> None:
    for cmd in (init, identity, append, checkpoint, vkey, entry, prove, verify, consistency, audit, doctor, tiles,
                find):
        main.add_command(cmd)
