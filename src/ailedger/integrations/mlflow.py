"""MLflow: a registered model version gets a signed ``model.register`` entry for exactly its artifact bytes.

:func:`register_version` reads the version and its run from an MLflow tracking server (MLflow's public
client, :class:`mlflow.MlflowClient`), downloads the version's artifacts (the bytes anyone who loads
``models:/NAME/VERSION`` gets), registers that folder with provenance's :func:`register_model` (Merkle
manifest root, lineage: the run's dataset inputs, its git commit and its parameters) and tags the MLflow
version with the entry's index and root.  :func:`register_model` is the one-line hook: a drop-in for
``mlflow.register_model`` that does both.

Order, so nothing is half-logged: the server is asked everything first (a server that is down fails before
anything is hashed or logged); the entry is appended; then the tags are set.  If the server goes away
between the last two, the error names the entry, and running the same registration again finds it (same
name, same manifest root, same MLflow version) and only sets the tags.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from typing import Any

from ailedger.errors import AiledgerError, BadInputError, NetworkError, NotFoundError, VerificationError
from ailedger.provenance import MODEL_RECORD, find_dataset, hash_model_dir, register_model
from ailedger.tlog.ledger import Ledger

__all__ = ["TAG_ENTRY", "TAG_LOG", "TAG_ROOT", "register_model_hook", "register_version", "server_ok"]

TAG_ENTRY = "ailedger.entry"
TAG_ROOT = "ailedger.manifest_root"
TAG_LOG = "ailedger.log"


def server_ok(tracking_uri: str, timeout: float = 5.0) -> None:
    """NetworkError unless the MLflow server at ``tracking_uri`` answers its ``/health`` endpoint."""
    if not tracking_uri.startswith(("http://", "https://")):
        raise BadInputError(f"--tracking-uri {tracking_uri!r}: give the MLflow server's http(s):// URL",
                            field="tracking_uri")
    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout) as r:
            if r.status != 200:
                raise NetworkError(f"MLflow server at {tracking_uri} answered /health with {r.status}; nothing "
                                   "was logged", url=tracking_uri)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise NetworkError(f"MLflow server at {tracking_uri} is not reachable ({reason}); nothing was logged",
                           url=tracking_uri) from e


def _client(tracking_uri: str) -> Any:
    # fail fast rather than MLflow's default minutes of retries on a server that is down
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _mlflow_call(what: str, server: str, fn: Any, *a: Any, **kw: Any) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return fn(*a, **kw)
    except MlflowException as e:
        code = getattr(e, "error_code", "")
        msg = str(e.message if hasattr(e, "message") else e).splitlines()[0][:300]
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise NotFoundError(f"MLflow at {server}: {what}: {msg}; nothing was logged", field="model") from e
        raise NetworkError(f"MLflow at {server}: {what} failed: {msg}; nothing was logged", url=server) from e
    except OSError as e:
        raise NetworkError(f"MLflow at {server}: {what} failed: {e}; nothing was logged", url=server) from e


def _lineage(ledger: Any, run: Any) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """(code: repo and commit, ledger dataset refs, metadata) from an MLflow run."""
    tags = dict(run.data.tags) if run is not None else {}
    code = {"code_commit": tags.get("mlflow.source.git.commit"), "code_repo": tags.get("mlflow.source.git.repoURL")}
    refs: list[str] = []
    inputs: list[dict[str, Any]] = []
    for di in (run.inputs.dataset_inputs if run is not None and run.inputs else []):
        d = di.dataset
        ctx = next((t.value for t in di.tags if t.key == "mlflow.data.context"), None)
        item = {"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source}
        if ctx:
            item["context"] = ctx
        try:  # an MLflow dataset input whose name is a dataset committed in this ledger becomes lineage
            idx, _ = find_dataset(ledger, d.name)
            refs.append(f"#{idx}")
            item["ledger_entry"] = idx
        except AiledgerError:
            pass
        inputs.append(item)
    meta: dict[str, Any] = {"dataset_inputs": inputs}
    if run is not None:
        meta.update({"run_id": run.info.run_id, "experiment_id": run.info.experiment_id})
        if tags.get("mlflow.source.name"):
            meta["source_name"] = tags["mlflow.source.name"]
    return code, refs, meta


def _existing(ledger: Any, root: str, name: str, uri: str, version: str) -> int | None:
    """The entry a previous run of this registration made (same name, root, server and version), if any."""
    for i, e in ledger.find(type=MODEL_RECORD):
        b = e.body
        ml = (b.get("metadata") or {}).get("mlflow") or {}
        if (b.get("name") == name and b.get("manifest", {}).get("root") == root and ml.get("tracking_uri") == uri
                and str(ml.get("version")) == version):
            return int(i)
    return None


def register_version(ledger: Any, identity: Any, name: str, version: str | int, tracking_uri: str, *,
                     ledger_name: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Register MLflow model version ``name``/``version`` in ``ledger`` (signed by ``identity``) and tag it."""
    version = str(version)
    lname = ledger_name or name
    server_ok(tracking_uri)
    client = _client(tracking_uri)
    mv = _mlflow_call(f"model version {name}/{version}", tracking_uri, client.get_model_version, name, version)
    run = _mlflow_call(f"run {mv.run_id}", tracking_uri, client.get_run, mv.run_id) if mv.run_id else None
    code, refs, meta = _lineage(ledger, run)
    params = dict(run.data.params) if run is not None else {}
    import mlflow
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="ailedger-mlflow-") as tmp:
        # models:/ URIs resolve through MLflow's process-wide registry URI: point it at this server meanwhile
        before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        try:
            local = _mlflow_call(f"download of models:/{name}/{version}", tracking_uri,
                                 mlflow.artifacts.download_artifacts, artifact_uri=f"models:/{name}/{version}",
                                 dst_path=tmp)
        finally:
            mlflow.set_tracking_uri(before[0])
            mlflow.set_registry_uri(before[1])
        root = hash_model_dir(local).root.hex()
        meta_all = {"mlflow": {"tracking_uri": tracking_uri, "name": name, "version": version, "source": mv.source,
                               **meta}}
        idx = _existing(ledger, root, lname, tracking_uri, version)
        reused = idx is not None
        if idx is None:
            server_ok(tracking_uri)  # still there: the tags will most likely land right after the append
            res = register_model(ledger, local, lname, identity, datasets=refs, hyperparameters=params,
                                 metadata=meta_all, progress=progress,
                                 **{k: v for k, v in code.items() if v})
            idx = int(res["index"])
            root = str(res["manifest_root"])
    tags = {TAG_ENTRY: str(idx), TAG_ROOT: root, TAG_LOG: str(ledger.origin)}
    try:
        for k, v in tags.items():
            client.set_model_version_tag(name, version, k, v)
    except Exception as e:
        raise NetworkError(f"logged entry #{idx} for {name}/{version}, but setting its MLflow tags failed ({e}); "
                           "run the same registration again to set them (it reuses the entry)",
                           url=tracking_uri, entry=idx) from e
    return {"ok": True, "entry": idx, "manifest_root": root, "model": lname, "mlflow": {"name": name,
            "version": version, "tracking_uri": tracking_uri, "run_id": mv.run_id}, "tags": tags,
            "reused_entry": reused, "lineage": {"datasets": refs, "dataset_inputs": meta["dataset_inputs"],
                                                "params": params, **{k: v for k, v in code.items() if v}}}


def register_model_hook(model_uri: str, name: str, *, ledger: str | None = None, identity: str | None = None,
                        **kw: Any) -> Any:
    """``mlflow.register_model`` that also logs the new version in ailedger (the one-line hook).

    The ledger and the signing identity come from ``$AILEDGER_LEDGER`` and ``$AILEDGER_IDENTITY`` (its
    passphrase from ``$AILEDGER_PASSPHRASE``) unless given.  Returns MLflow's ModelVersion, re-read so it
    carries the ailedger tags."""
    import mlflow

    ident_name = identity or os.environ.get("AILEDGER_IDENTITY")
    if not ident_name:
        raise BadInputError("set AILEDGER_IDENTITY (the identity that signs the ledger entry)", field="identity")
    uri = mlflow.get_registry_uri() or mlflow.get_tracking_uri()
    with Ledger.open(ledger) as led:
        ident = led.identities.load(ident_name, os.environ.get("AILEDGER_PASSPHRASE"))
        server_ok(uri)
        mv = mlflow.register_model(model_uri, name, **kw)
        register_version(led, ident, name, mv.version, uri)
    return _client(uri).get_model_version(name, mv.version)


# -- MLflow webhooks: registration logged with no code at all ------------------------------------------

WEBHOOK_MAX_AGE = 300  # seconds: an older signed delivery is refused (replay)


def check_webhook(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> dict[str, Any]:
    """The JSON payload of an MLflow webhook delivery, after checking its signature (HMAC-SHA256 over
    ``DELIVERY_ID.TIMESTAMP.PAYLOAD`` with the webhook's secret, ``v1,<base64>`` in ``X-MLflow-Signature``)
    and its age.  VerificationError otherwise."""
    import base64
    import hashlib
    import hmac
    import json
    import time

    h = {k.lower(): v for k, v in headers.items()}
    sig, ts, did = h.get("x-mlflow-signature", ""), h.get("x-mlflow-timestamp", ""), h.get("x-mlflow-delivery-id", "")
    if not sig.startswith("v1,") or not ts.isdigit() or not did:
        raise VerificationError("webhook delivery without a v1 signature, timestamp and delivery id")
    want = hmac.new(secret.encode(), f"{did}.{ts}.".encode() + body, hashlib.sha256).digest()
    try:
        got = base64.b64decode(sig[3:], validate=True)
    except ValueError as e:
        raise VerificationError("webhook signature is not base64") from e
    if not hmac.compare_digest(want, got):
        raise VerificationError("webhook signature does not match the shared secret")
    if abs((now if now is not None else time.time()) - int(ts)) > WEBHOOK_MAX_AGE:
        raise VerificationError(f"webhook delivery is older than {WEBHOOK_MAX_AGE} s (a replay?)")
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise VerificationError("webhook payload is not a JSON object")
    return obj


def listen(ledger_dir: str | None, identity_name: str, tracking_uri: str, secret: str, host: str, port: int,
           *, on_result: Any = None) -> Any:
    """An HTTP server for MLflow's ``model_version.created`` webhook: each signed delivery registers that
    version (one at a time, in order) with :func:`register_version`.  Returns the server (not started:
    call ``serve_forever``); ``on_result(dict)`` sees each outcome."""
    import json
    import queue
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    jobs: queue.Queue[tuple[str, str]] = queue.Queue()

    def worker() -> None:
        while True:
            name, version = jobs.get()
            try:
                with Ledger.open(ledger_dir) as led:
                    ident = led.identities.load(identity_name, os.environ.get("AILEDGER_PASSPHRASE"))
                    res: dict[str, Any] = register_version(led, ident, name, version, tracking_uri)
            except AiledgerError as e:
                res = {"ok": False, "mlflow": {"name": name, "version": version}, "error": e.to_dict()}
            if on_result is not None:
                on_result(res)
            print(json.dumps(res, sort_keys=True, default=str), flush=True)

    threading.Thread(target=worker, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(n, 1 << 20))
            try:
                obj = check_webhook(secret, dict(self.headers.items()), body)
            except (AiledgerError, ValueError) as e:
                self.send_response(401)
                self.end_headers()
                self.wfile.write(str(e).encode())
                return
            data = obj.get("data") or {}
            if obj.get("entity") == "model_version" and obj.get("action") == "created" and data.get("name"):
                jobs.put((str(data["name"]), str(data.get("version"))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ThreadingHTTPServer((host, port), Handler)
