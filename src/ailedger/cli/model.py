"""`ailedger model ...`: register, verify, prove and verify parts, lineage, OpenSSF model signing."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from ailedger.encoding.canonical import parse_json
from ailedger.errors import BadInputError


def open_ledger(path: str | None) -> Any:
    from ailedger.tlog.ledger import Ledger

    return Ledger.open(path)


def load_identity(ledger: Any, name: str) -> Any:
    return ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))


def vkey_text(value: str | None) -> str | None:
    """A verifier key given inline or as a file holding one."""
    if value and "+" not in value or (value and Path(value).exists()):
        p = Path(value)
        if not p.exists():
            raise BadInputError(f"verifier key file {value} does not exist", field="vkey")
        return p.read_text().strip()
    return value


def show_progress(as_json: bool) -> bool:
    return not as_json and sys.stderr.isatty()


def emit(obj: Any, as_json: bool, text: str) -> None:
    if as_json:
        click.echo(json.dumps(obj, indent=1, sort_keys=True))
    else:
        click.echo(text)


def parse_kv(items: tuple[str, ...], what: str) -> dict[str, Any]:
    """KEY=VALUE pairs; integers become ints, everything else stays a string (no floats in records)."""
    out: dict[str, Any] = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise BadInputError(f"{what} must look like KEY=VALUE, got {it!r}", field=what)
        # an integer is ASCII digits with at most one leading "-" ("²" and "--5" stay strings)
        out[k] = int(v) if re.fullmatch(r"-?[0-9]{1,17}", v) else v
    return out


def read_json_file(path: str | None, what: str) -> dict[str, Any]:
    if not path:
        return {}
    obj = parse_json(Path(path).read_bytes(), what=path)
    if not isinstance(obj, dict):
        raise BadInputError(f"{what} file {path} must hold a JSON object", field=what)
    return obj


ledger_option = click.option("--ledger", "ledger_path", envvar="AILEDGER_LEDGER", default=None,
                             help="Ledger directory (default $AILEDGER_LEDGER).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _status_lines(st: dict[str, Any]) -> list[str]:
    who = st["signer"] + (f" ({st['signer_name']})" if st.get("signer_name") else "")
    cp = st["checkpoint"]
    return [
        f"record:     #{st['index']} ({st['type']})",
        f"signed by:  {who}, signature valid",
        f"logged at:  {st['time']}",
        f"checkpoint: {cp['origin']} size {cp['size']} root {cp['root'][:16]}... (inclusion verified)",
    ]


def _host_roots(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for it in items:
        host, sep, path = it.partition("=")
        if not sep or not host or not path:
            raise BadInputError(f"--host-root must look like HOST=PATH, got {it!r}", field="host_root")
        if not os.path.isabs(path):
            raise BadInputError(f"--host-root {it!r}: the path must be absolute (it is read on that host)",
                                field="host_root")
        out[host] = path
    return out


def _names(paths: list[str], n: int) -> str:
    shown = paths[:8]
    return ", ".join(shown) + (f" and {n - len(shown)} more" if n > len(shown) else "")


def _incremental_lines(inc: dict[str, Any], seconds: float) -> list[str]:
    """Which files this register read and which it took from the hash cache; what changed since the
    previous version."""
    out = [f"re-hashed {inc['rehashed_files']} file(s), {inc['rehashed_bytes']} bytes in {seconds:.2f}s"
           + (f": {_names(inc['rehashed'], inc['rehashed_files'])}" if inc["rehashed_files"] else "")]
    if inc["reused_files"]:
        out.append(f"reused {inc['reused_files']} file(s), {inc['reused_bytes']} bytes, from the hash cache "
                   f"(unchanged since this ledger hashed them: same real path, size, mtime, ctime, inode): "
                   f"{_names(inc['reused'], inc['reused_files'])}")
    p = inc.get("previous")
    if p:
        out.append(f"previous version: {p['name']} #{p['index']} (manifest {str(p['manifest_root'])[:16]}...)")
        if "note" in p:
            out.append("  " + p["note"])
        for k in ("changed", "added", "removed"):
            if p.get(k + "_files"):
                out.append(f"  {k}: {_names(p[k], p[k + '_files'])}")
        if "unchanged_files" in p:
            out.append(f"  unchanged: {p['unchanged_files']} file(s)")
    return out


def register(main: click.Group) -> None:
    @main.group("model")
    def model() -> None:
        """Model provenance: Merkle manifests of files, chunks and tensors, with lineage."""

    @model.command("register")
    @click.argument("directory", type=click.Path(file_okay=False))
    @click.option("--name", required=True, help="Model name.")
    @click.option("--as", "identity", required=True, help="Identity that signs the record.")
    @click.option("--dataset", "datasets", multiple=True, help="Dataset it was trained on (name or #INDEX).")
    @click.option("--base", default=None, help="Base model it was fine-tuned from (name or #INDEX).")
    @click.option("--code-repo", default=None, help="Training code repository.")
    @click.option("--code-commit", default=None, help="Training code git commit.")
    @click.option("--hp", "hps", multiple=True, help="Hyper-parameter KEY=VALUE (repeatable).")
    @click.option("--hyperparameters", "hp_file", default=None, help="JSON file of hyper-parameters.")
    @click.option("--meta", "metas", multiple=True, help="Free metadata KEY=VALUE (repeatable).")
    @click.option("--metadata", "meta_file", default=None, help="JSON file of free metadata.")
    @click.option("--chunk-size", type=int, default=None, help="Chunk size in bytes (default 4 MiB).")
    @click.option("--workers", type=int, default=None, help="Hashing threads (default: all cores); with --engine dask "
                  "and no --scheduler, the worker processes of the local Dask cluster started for this register.")
    @click.option("--follow-symlinks", is_flag=True, help="Follow symlinks that leave the folder.")
    @click.option("--ignore", "ignores", multiple=True, help="Relative path to leave out (repeatable).")
    @click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                  help="Hash on this host, or on the workers of a Dask cluster (each host hashes the files or "
                       "byte ranges it holds; the manifest root is the same).")
    @click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                  help="With --engine dask: a running Dask scheduler (default: a LocalCluster started here).")
    @click.option("--host-root", "host_roots", multiple=True, metavar="HOST=PATH",
                  help="With --engine dask: the folder holding the model on that worker host, where it is not "
                       "DIRECTORY (repeatable).")
    @click.option("--previous", default=None, metavar="NAME[@N]|#INDEX",
                  help="The version this one follows (default: the current registration of --name, if any): the "
                       "answer says which files changed since it.")
    @ledger_option
    @json_option
    def model_register(directory: str, name: str, identity: str, datasets: tuple[str, ...], base: str | None,
                       code_repo: str | None, code_commit: str | None, hps: tuple[str, ...], hp_file: str | None,
                       metas: tuple[str, ...], meta_file: str | None, chunk_size: int | None, workers: int | None,
                       follow_symlinks: bool, ignores: tuple[str, ...], engine: str, scheduler: str | None,
                       host_roots: tuple[str, ...], previous: str | None, ledger_path: str | None,
                       as_json: bool) -> None:
        """Hash DIRECTORY, sign its manifest and log it with its lineage.

        Files this ledger hashed before and whose real path, size, mtime, ctime, inode and device have not
        moved since are taken from its hash cache; the answer names the files re-hashed and the files
        reused, and what changed since the previous version.  `model verify` never uses that cache."""
        from ailedger.provenance import HashStats, register_model
        from ailedger.provenance.manifest import DEFAULT_CHUNK_SIZE

        if (scheduler or host_roots) and engine != "dask":
            raise BadInputError("--scheduler and --host-root need --engine dask", field="engine")
        if workers is not None and workers < 1:
            raise BadInputError("--workers must be at least 1", field="workers")
        roots = _host_roots(host_roots)
        hp = {**read_json_file(hp_file, "hyperparameters"), **parse_kv(hps, "hp")}
        meta = {**read_json_file(meta_file, "metadata"), **parse_kv(metas, "meta")}
        with open_ledger(ledger_path) as ledger:
            ident = load_identity(ledger, identity)
            stats = HashStats()
            kw: dict[str, Any] = {"datasets": datasets, "base": base, "code_repo": code_repo, "code_commit": code_commit,
                                      "hyperparameters": hp, "metadata": meta, "chunk_size": chunk_size or DEFAULT_CHUNK_SIZE,
                                      "workers": workers, "progress": show_progress(as_json),
                                      "follow_external_symlinks": follow_symlinks, "ignore": ignores, "stats": stats,
                                      "previous": previous}
            engine_info = None
            if engine == "dask":
                from ailedger.provenance.distributed import DaskEngine
                from ailedger.provenance.model_distributed import DaskModelHasher

                with DaskEngine(scheduler, workers) as eng:
                    hasher = DaskModelHasher(eng, roots=roots)
                    res = register_model(ledger, directory, name, ident, hasher=hasher.hash_model_dir, **kw)
                    engine_info = hasher.last
            else:
                res = register_model(ledger, directory, name, ident, **kw)
        res["hashing"] = stats.to_dict()
        if engine_info is not None:
            res["engine"] = engine_info
        lines = [f"registered model {name} as entry #{res['index']}",
                 f"manifest root {res['manifest_root']} ({res['files']} files, {res['bytes']} bytes)"]
        if engine_info is not None:
            lines.append(f"engine: dask, {engine_info['tasks']} tasks on {engine_info['workers']} workers "
                         f"({len(engine_info['hosts'])} host(s))")
        lines += _incremental_lines(res["incremental"], stats.seconds)
        emit(res, as_json, "\n".join(lines))

    @model.command("verify")
    @click.argument("directory", type=click.Path(file_okay=False))
    @click.option("--name", default=None, help="Compare with this model (name or #INDEX).")
    @click.option("--oms", "oms_sig", default=None, help="Also/only verify an OpenSSF model signing signature file.")
    @click.option("--public-key", "public_key", default=None, help="PEM public key for --oms.")
    @click.option("--workers", type=int, default=None)
    @click.option("--follow-symlinks", is_flag=True)
    @click.option("--ignore", "ignores", multiple=True)
    @click.option("--trust-cache", is_flag=True,
                  help="Take digests of files unchanged since they were last hashed here (same path, size, "
                       "mtime, ctime, inode) from the ledger's hash cache instead of re-reading them. The "
                       "answer then says how much came from the cache. Default: every byte is re-read.")
    @click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                  help="Re-hash on this host, or on the workers of a Dask cluster (every byte either way).")
    @click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                  help="With --engine dask: a running Dask scheduler (default: a LocalCluster started here).")
    @ledger_option
    @json_option
    def model_verify(directory: str, name: str | None, oms_sig: str | None, public_key: str | None,
                     workers: int | None, follow_symlinks: bool, ignores: tuple[str, ...], trust_cache: bool,
                     engine: str, scheduler: str | None, ledger_path: str | None, as_json: bool) -> None:
        """Re-hash every byte of DIRECTORY and say which record it matches, or exactly what changed."""
        if oms_sig:
            from ailedger.provenance import oms_verify

            if not public_key:
                raise BadInputError("--oms needs --public-key PUB.pem", field="public_key")
            rep = oms_verify(directory, oms_sig, public_key, progress=show_progress(as_json))
            lines = [f"OpenSSF model signature {oms_sig}: " + ("VALID" if rep["ok"] else "DOES NOT MATCH"),
                     (f"model name {rep['model_name']}, {rep['resources']} resources, "
                     f"method {rep['serialization']['method']}, key {rep['key_curve']}")]
            lines += ["  " + d["detail"] for d in rep["differences"]]
            emit(rep, as_json, "\n".join(lines))
            if not rep["ok"]:
                sys.exit(1)
            return
        from ailedger.provenance import verify_model

        if scheduler and engine != "dask":
            raise BadInputError("--scheduler needs --engine dask", field="engine")
        vkw: dict[str, Any] = {"name": name, "workers": workers, "progress": show_progress(as_json),
                                   "follow_external_symlinks": follow_symlinks, "ignore": ignores, "trust_cache": trust_cache}
        with open_ledger(ledger_path) as ledger:
            if engine == "dask":
                from ailedger.provenance.distributed import DaskEngine
                from ailedger.provenance.model_distributed import DaskModelHasher

                with DaskEngine(scheduler, workers) as eng:
                    rep = verify_model(ledger, directory, hasher=DaskModelHasher(eng).hash_model_dir, **vkw)
            else:
                rep = verify_model(ledger, directory, **vkw)
        if rep["ok"]:
            lines = [(f"OK: {directory} is exactly model {rep['name']} (manifest {rep['manifest_root'][:16]}..., "
                     f"{rep['files']} files, {rep['bytes']} bytes)")]
        else:
            lines = [(f"MISMATCH: {directory} differs from model {rep['name']} "
                     f"(expected manifest {rep['expected_root'][:16]}..., found {rep['manifest_root'][:16]}...)")]
        lines += _status_lines(rep["record"])
        fc = rep["hashing"].get("from_cache")
        if fc is not None:
            lines.append(f"from cache: {fc['files']} of {rep['files']} files ({fc['bytes']} bytes) were NOT re-read: "
                         "their digests came from the hash cache (--trust-cache)" if fc["files"] else
                         "from cache: nothing (every file was re-read)")
        for d in rep["differences"]:
            lines.append("  changed: " + d["detail"])
        emit(rep, as_json, "\n".join(lines))
        if not rep["ok"]:
            sys.exit(1)

    @model.command("prove")
    @click.argument("model_ref")
    @click.argument("file_path")
    @click.option("--chunk", type=int, default=None, help="Prove one chunk (index) instead of the whole file.")
    @click.option("-o", "--output", required=True, help="Proof file to write.")
    @ledger_option
    @json_option
    def model_prove(model_ref: str, file_path: str, chunk: int | None, output: str, ledger_path: str | None,
                    as_json: bool) -> None:
        """Write an O(log n) proof for one FILE_PATH (or one chunk of it) of a registered model."""
        from ailedger.provenance import prove_model_part

        with open_ledger(ledger_path) as ledger:
            data = prove_model_part(ledger, model_ref, file_path, chunk)
        Path(output).write_bytes(data)
        emit({"output": output, "bytes": len(data)}, as_json, f"wrote {output} ({len(data)} bytes)")

    @model.command("verify-part")
    @click.argument("proof_file", type=click.Path(dir_okay=False, exists=True))
    @click.argument("content", type=click.Path(dir_okay=False, exists=True))
    @click.option("--vkey", default=None, help="Log verifier key (default: the local ledger's).")
    @ledger_option
    @json_option
    def model_verify_part(proof_file: str, content: str, vkey: str | None, ledger_path: str | None,
                          as_json: bool) -> None:
        """Verify CONTENT (one chunk, or the whole file, streamed) against a part proof, offline."""
        from ailedger.cli._common import log_verifier
        from ailedger.errors import VerificationError
        from ailedger.provenance import verify_model_part

        vkey = log_verifier(vkey, ledger_path).vkey  # --vkey KEY|FILE, else the ledger's; else "no --vkey given"
        try:
            rep = verify_model_part(Path(proof_file).read_bytes(), content, vkey)
        except VerificationError as e:
            emit({"ok": False, "error": e.to_dict()}, as_json, f"FAILED: {e.message}")
            sys.exit(1)
        what = f"chunk {rep['chunk']} of {rep['file']}" if "chunk" in rep else f"file {rep['file']}"
        emit(rep, as_json, f"OK: {what} belongs to model {rep['model']} (entry #{rep['index']}, signed by "
                           f"{rep['signer']} at {rep['time']}, checkpoint size {rep['checkpoint']['size']})")

    @model.command("lineage")
    @click.argument("model_ref")
    @click.option("--svg", "svg_out", default=None, help="Write the lineage picture as SVG.")
    @click.option("--png", "png_out", default=None, help="Write the lineage picture as PNG (matplotlib).")
    @ledger_option
    @json_option
    def model_lineage(model_ref: str, svg_out: str | None, png_out: str | None, ledger_path: str | None,
                      as_json: bool) -> None:
        """Show the chain dataset -> model -> fine-tune around MODEL_REF, as text and a picture."""
        from ailedger.provenance import lineage_graph, lineage_png, lineage_svg, lineage_text

        with open_ledger(ledger_path) as ledger:
            g = lineage_graph(ledger, model_ref)
        if svg_out:
            Path(svg_out).write_text(lineage_svg(g))
        if png_out:
            lineage_png(g, png_out)
        emit(g, as_json, lineage_text(g))

    @model.command("sign")
    @click.argument("directory", type=click.Path(file_okay=False))
    @click.option("--format", "fmt", type=click.Choice(["oms"]), default="oms", help="Signature format.")
    @click.option("--key", "key_pem", required=True, help="EC private key PEM (P-256, P-384 or P-521).")
    @click.option("-o", "--output", required=True, help="Signature file (e.g. model.sig).")
    @click.option("--method", type=click.Choice(["files", "shards"]), default="files",
                  help="OMS serialization: whole files (default: the form the model_signing 1.1 CLI verifies) "
                       "or fixed shards (verifies with model_signing's Python API and `model verify --oms`, "
                       "not with its 1.1 CLI).")
    @click.option("--shard-size", type=int, default=None, help="Shard size for --method shards.")
    @click.option("--workers", type=int, default=None)
    @ledger_option
    @json_option
    def model_sign(directory: str, fmt: str, key_pem: str, output: str, method: str, shard_size: int | None,
                   workers: int | None, ledger_path: str | None, as_json: bool) -> None:
        """Write an OpenSSF Model Signing (v1.0 predicate, DSSE in a Sigstore bundle) signature."""
        from ailedger.provenance import oms_sign

        cache = None
        try:
            from ailedger.provenance import cache_for

            ledger = open_ledger(ledger_path) if (ledger_path or os.environ.get("AILEDGER_LEDGER")) else None
            if ledger is not None:
                cache = cache_for(ledger)
                ledger.close()
        except Exception:  # noqa: BLE001 - the cache is optional here
            cache = None
        rep = oms_sign(directory, key_pem, output, method=method, shard_size=shard_size, workers=workers,
                       cache=cache, progress=show_progress(as_json))
        if cache is not None:
            cache.close()
        text = (f"wrote OpenSSF model signature {output} ({rep['resources']} resources, "
                f"method {method}, root {rep['root'][:16]}...)")
        if method == "shards":
            rep["note"] = ("a shards signature verifies with model_signing's Python API and `ailedger model verify "
                           "--oms`; the model_signing 1.1 CLI re-hashes by files and refuses it")
            text += "\nnote: " + rep["note"]
        emit(rep, as_json, text)
