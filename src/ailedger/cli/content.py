"""`ailedger content ...`: register media, find it again, attach C2PA credentials."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import INDEX, json_option, ledger_option
from ailedger.cli._common import emit_lines as _emit
from ailedger.errors import BadInputError


def _open(ledger_dir: Path | None) -> Any:
    from ailedger.content.service import ContentService
    from ailedger.tlog.ledger import Ledger

    ledger = Ledger.open(ledger_dir)
    return ledger, ContentService(ledger)


def register(main: click.Group) -> None:
    @main.group("content")
    def content() -> None:
        """Content authenticity: register media, watermark it, find it again."""

    @content.command("register")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--as", "identity", required=True, help="identity name that signs the registration")
    @click.option("--generator", help="model name, when the content is AI output")
    @click.option("-o", "--output", "marked", type=click.Path(dir_okay=False),
                  help="write a watermarked copy here (.png/.jpg/.webp); publish that copy")
    @click.option("--c2pa-manifest", type=click.Path(exists=True, dir_okay=False),
                  help="sidecar C2PA manifest of FILE to read into the record")
    @ledger_option
    @json_option
    def register_cmd(file: str, identity: str, generator: str | None, marked: str | None,
                     c2pa_manifest: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Register FILE (image, text, audio, video) under identity ID."""
        ledger, svc = _open(ledger_dir)
        try:
            ident = ledger.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
            sidecar = Path(c2pa_manifest).read_bytes() if c2pa_manifest else None
            res = svc.register(file, ident, generator=generator, marked_out=marked, sidecar=sidecar)
        finally:
            svc.close()
            ledger.close()
        rec = res["record"]
        lines = [f"registered {file} as entry #{res['entry']} ({rec['kind']}, sha256 {rec['sha256'][:16]}...)",
                 f"  signed by {identity} [{res['signer']}]"]
        if rec.get("generator"):
            g = rec["generator"]
            lines.append(f"  generator: {g['model']}" + (f" (model record #{g['model_record']})"
                                                         if g.get("model_record") is not None else
                                                         " (no model.register record found)"))
        if rec.get("watermark"):
            w = rec["watermark"]
            q = (f"PSNR {w['psnr_centi_db'] / 100:.1f} dB" if "psnr_centi_db" in w
                 else f"SNR {w['snr_centi_db'] / 100:.1f} dB")
            lines.append(f"  watermarked copy: {marked} (id {w['id']}, {q}, "
                         f"self-check {'ok' if w['selfcheck'] else 'FAILED'})")
        if rec.get("c2pa"):
            lines.append(f"  C2PA manifest read: {rec['c2pa'].get('state')}")
        _emit(res, as_json, lines)

    @content.command("verify")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--c2pa-manifest", type=click.Path(exists=True, dir_okay=False),
                  help="sidecar C2PA manifest (default: FILE with suffix .c2pa, if present)")
    @click.option("--trust-anchors", type=click.Path(exists=True, dir_okay=False),
                  help="PEM file of C2PA trust anchors")
    @ledger_option
    @json_option
    @click.pass_context
    def verify_cmd(ctx: click.Context, file: str, c2pa_manifest: str | None, trust_anchors: str | None,
                   ledger_dir: Path | None, as_json: bool) -> None:
        """Look FILE up: exact, watermark or near-duplicate; who registered it, when, with which model."""
        side = Path(c2pa_manifest) if c2pa_manifest else Path(file).with_suffix(".c2pa")
        sidecar = side.read_bytes() if side.is_file() and side != Path(file) else None
        anchors = Path(trust_anchors).read_text() if trust_anchors else None
        ledger, svc = _open(ledger_dir)
        try:
            res = svc.verify(file, sidecar=sidecar, trust_anchors_pem=anchors)
        finally:
            svc.close()
            ledger.close()
        _emit(res, as_json, res["summary"])
        if not res["matches"]:
            ctx.exit(1)

    @content.command("c2pa-test-cert")
    @click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
                  help="folder to write chain.pem, key.pem (0600) and ca.pem into (must not hold them yet)")
    @click.option("--days", type=int, default=30, show_default=True, help="validity of both certificates")
    @json_option
    def c2pa_test_cert_cmd(out_dir: str, days: int, as_json: bool) -> None:
        """Make a throw-away CA and signing certificate to TRY C2PA signing (not for publishing content).

        Use chain.pem and key.pem with `content c2pa-sign --cert --key`, and ca.pem with
        `content verify --trust-anchors` to see the manifest as trusted. Real content needs a certificate
        from a C2PA-trusted certification authority.
        """
        from ailedger.content.c2pa_io import make_test_chain

        out = Path(out_dir)
        names = {"chain": out / "chain.pem", "key": out / "key.pem", "ca": out / "ca.pem"}
        taken = [str(p) for p in names.values() if p.exists()]
        if taken:
            raise BadInputError(f"{', '.join(taken)} already exist(s): pick another --out folder", field="--out")
        c = make_test_chain(days=days)
        out.mkdir(parents=True, exist_ok=True)
        names["chain"].write_bytes(c.chain_pem)
        names["ca"].write_bytes(c.ca_pem)
        fd = os.open(names["key"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(c.key_pem)
        res = {k: str(v) for k, v in names.items()} | {"days": days, "throw_away": True}
        _emit(res, as_json, [f"throw-away C2PA test chain (valid {days} days, for trying only):",
                             f"  --cert {names['chain']}  --key {names['key']}  --trust-anchors {names['ca']}"])

    @content.command("c2pa-sign")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--entry", type=INDEX, required=True, help="the content.register entry to point at (N or #N)")
    @click.option("--cert", type=click.Path(exists=True, dir_okay=False), required=True,
                  help="PEM certificate chain, leaf first")
    @click.option("--key", type=click.Path(exists=True, dir_okay=False), required=True, help="PEM private key")
    @click.option("--alg", default="es256", show_default=True)
    @click.option("--embed", "embed_out", type=click.Path(dir_okay=False),
                  help="write a copy with the manifest embedded here (default: sidecar FILE.c2pa)")
    @click.option("--sidecar", "sidecar_out", type=click.Path(dir_okay=False), help="sidecar path")
    @ledger_option
    @json_option
    def c2pa_sign_cmd(file: str, entry: int, cert: str, key: str, alg: str, embed_out: str | None,
                      sidecar_out: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Write a C2PA manifest for FILE that points at ledger entry ENTRY."""
        from ailedger.content.c2pa_io import C2paSigningKey

        if embed_out and sidecar_out:
            raise BadInputError("give --embed or --sidecar, not both", field="--embed")
        k = C2paSigningKey(Path(cert).read_bytes(), Path(key).read_bytes(), alg)
        ledger, svc = _open(ledger_dir)
        try:
            res = svc.c2pa_sign(file, entry, k, embed_out=embed_out, sidecar_out=sidecar_out)
        finally:
            svc.close()
            ledger.close()
        where = res.get("embedded") or res.get("sidecar")
        _emit(res, as_json, [f"C2PA manifest pointing at entry #{entry} written to {where}"])
