"""`ailedger mlflow register`, `ailedger model card`, `ailedger model verify-offline`: ailedger where ML
teams already work (docs/mlflow.md, docs/huggingface.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ailedger.cli.model import (
    emit,
    json_option,
    ledger_option,
    load_identity,
    open_ledger,
    show_progress,
    vkey_text,
)
from ailedger.errors import BadInputError, VerificationError


def register(main: click.Group) -> None:
    @main.group("mlflow")
    def mlflow_group() -> None:
        """MLflow: log registered model versions (exact artifact bytes, run lineage) and tag them."""

    @mlflow_group.command("register")
    @click.argument("name")
    @click.argument("version")
    @click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", required=True,
                  help="The MLflow server (default $MLFLOW_TRACKING_URI).")
    @click.option("--as", "identity", required=True, help="Identity that signs the ledger entry.")
    @click.option("--ledger-name", default=None, help="Model name in the ledger (default: the MLflow name).")
    @ledger_option
    @json_option
    def mlflow_register(name: str, version: str, tracking_uri: str, identity: str, ledger_name: str | None,
                        ledger_path: str | None, as_json: bool) -> None:
        """Log MLflow model version NAME/VERSION: its artifact bytes, its run's datasets, git commit and
        parameters; then tag the version with the entry's index and manifest root."""
        from ailedger.integrations.mlflow import register_version

        if not version.isdigit():
            raise BadInputError(f"VERSION must be an MLflow version number, got {version!r}", field="version")
        with open_ledger(ledger_path) as ledger:
            ident = load_identity(ledger, identity)
            rep = register_version(ledger, ident, name, version, tracking_uri, ledger_name=ledger_name,
                                   progress=show_progress(as_json))
        how = "already logged as" if rep["reused_entry"] else "logged as"
        emit(rep, as_json, f"MLflow {name}/{version} {how} entry #{rep['entry']} (manifest root "
                           f"{rep['manifest_root']}); tagged {', '.join(rep['tags'])}")

    @mlflow_group.command("listen")
    @click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", required=True,
                  help="The MLflow server (default $MLFLOW_TRACKING_URI).")
    @click.option("--as", "identity", required=True, help="Identity that signs the ledger entries.")
    @click.option("--secret-file", required=True, type=click.Path(dir_okay=False, exists=True),
                  help="The webhook's shared secret (the one given to MLflow's create_webhook).")
    @click.option("--listen", "listen_addr", default="127.0.0.1:8790", show_default=True, metavar="HOST:PORT")
    @ledger_option
    @json_option
    def mlflow_listen(tracking_uri: str, identity: str, secret_file: str, listen_addr: str, ledger_path: str | None,
                      as_json: bool) -> None:
        """Receive MLflow's model_version.created webhook and log each new version (no code change at all).

        Prints one JSON line per version handled; a delivery with a bad signature gets 401."""
        from ailedger.integrations.mlflow import listen, server_ok

        host, sep, port = listen_addr.rpartition(":")
        if not sep or not port.isdigit():
            raise BadInputError(f"--listen {listen_addr!r}: give HOST:PORT", field="listen")
        secret = Path(secret_file).read_text().strip()
        if len(secret) < 16:
            raise BadInputError("the webhook secret must be at least 16 characters", field="secret_file")
        server_ok(tracking_uri)
        with open_ledger(ledger_path) as ledger:
            load_identity(ledger, identity)  # fail now, not at the first delivery
        srv = listen(ledger_path, identity, tracking_uri, secret, host, int(port))
        click.echo(f"listening on http://{listen_addr}/ for MLflow webhooks from {tracking_uri}", err=True)
        try:
            srv.serve_forever()
        finally:
            srv.server_close()

    model = main.commands["model"]
    assert isinstance(model, click.Group)

    @model.command("card")
    @click.argument("model_ref")
    @click.option("-o", "--output", required=True, help="The card to write (README.md of the Hub repository).")
    @click.option("--proof-out", default=None,
                  help="The offline proof file to ship next to it (default: ailedger-model.proof beside --output).")
    @click.option("--repo-id", default=None, help="Hub repository id for the title (e.g. org/model).")
    @click.option("--log-url", default=None, help="Where the log's tiles are served, stated in the card.")
    @ledger_option
    @json_option
    def model_card(model_ref: str, output: str, proof_out: str | None, repo_id: str | None, log_url: str | None,
                   ledger_path: str | None, as_json: bool) -> None:
        """Write a Hugging Face model card for MODEL_REF (name or #INDEX) that says how to verify it offline,
        and the proof file it refers to. A revoked or suspended model gets a card that says so."""
        from ailedger.integrations.hf import model_card as make_card
        from ailedger.integrations.hf import model_proof

        out = Path(output)
        proof_path = Path(proof_out) if proof_out else out.parent / "ailedger-model.proof"
        with open_ledger(ledger_path) as ledger:
            text, facts = make_card(ledger, model_ref, repo_id=repo_id, proof_name=proof_path.name, log_url=log_url)
            proof = model_proof(ledger, int(facts["entry"]))
        out.parent.mkdir(parents=True, exist_ok=True)
        proof_path.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        proof_path.write_bytes(proof)
        rep = {"output": str(out), "proof": str(proof_path), **facts}
        warn = "" if facts["usable"] else f"\nWARNING: {facts['status_detail']}: the card says so"
        emit(rep, as_json, f"wrote {out} and {proof_path} for model {facts['model']} (entry #{facts['entry']}, "
                           f"status {facts['status']}){warn}")

    @model.command("verify-offline")
    @click.argument("directory", type=click.Path(file_okay=False, exists=True))
    @click.option("--proof", "proof_file", required=True, type=click.Path(dir_okay=False, exists=True),
                  help="The ailedger-model-proof/v1 file (written by `model card`).")
    @click.option("--vkey", required=True, help="The log's verifier key, inline or a file.")
    @click.option("--ignore", "ignores", multiple=True,
                  help="A file or folder name in DIRECTORY that is not part of the model (repeatable); the proof "
                       "file, when inside DIRECTORY, is left out anyway.")
    @json_option
    def model_verify_offline(directory: str, proof_file: str, vkey: str, ignores: tuple[str, ...],
                             as_json: bool) -> None:
        """Check DIRECTORY against a model proof file with the log's key alone: the entry's signature, its
        inclusion in the log, and every byte of every file."""
        from ailedger.integrations.hf import verify_folder_offline

        key = vkey_text(vkey)
        assert key is not None
        skip = list(ignores)
        base = Path(directory).resolve()
        p = Path(proof_file).resolve()
        if p.is_relative_to(base):
            skip.append(p.relative_to(base).as_posix())
        try:
            rep = verify_folder_offline(directory, Path(proof_file).read_bytes(), key, ignore=tuple(skip),
                                        progress=show_progress(as_json))
        except VerificationError as e:
            emit({"ok": False, "error": e.to_dict()}, as_json, f"FAILED: {e.message}")
            sys.exit(1)
        emit(rep, as_json, f"OK: {directory} is exactly model {rep['name']} (entry #{rep['index']}, manifest "
                           f"{rep['manifest_root'][:16]}..., {rep['files']} files, {rep['bytes']} bytes), signed by "
                           f"{rep['signer']} at {rep['time']}; inclusion verified under checkpoint size "
                           f"{rep['checkpoint']['size']}")
