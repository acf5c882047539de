"""MLflow: a registered model version gets a signed ledger entry for exactly its artifact bytes, tagged back.

Against a real `mlflow server` (SQLite backend, local artifact root, 127.0.0.1:19510) started here."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integrations.conftest import cli

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("flask")  # the server (full `mlflow`, not only mlflow-skinny)

PORT = 19510
URI = f"http://127.0.0.1:{PORT}"
DOWN = "http://127.0.0.1:19599"  # nothing listens there (this lane's range)


def _healthy() -> bool:
    try:
        with urllib.request.urlopen(URI + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlflow")
    exe = Path(sys.executable).with_name("mlflow")
    with open(d / "server.log", "wb") as log:
        p = subprocess.Popen([str(exe), "server", "--backend-store-uri", f"sqlite:///{d / 'mlflow.db'}",
                              "--artifacts-destination", str(d / "artifacts"), "--host", "127.0.0.1", "--port",
                              str(PORT), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                             # webhooks to the test's listener on 127.0.0.1 over http, the cache of hooks short
                             env={**os.environ, "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                                  "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_CACHE_TTL": "1"})
        try:
            deadline = time.time() + 180
            while not _healthy():
                if p.poll() is not None or time.time() > deadline:
                    raise RuntimeError("mlflow server did not start: " + (d / "server.log").read_text()[-2000:])
                time.sleep(0.5)
            yield URI
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)


COMMIT = "3f2a9c1d5e7b8a6c4d2e0f1a3b5c7d9e1f2a3b4c"


def train_and_log(uri, c=0.5):
    """A team's training script: params, the dataset input, the model; MLflow records the git commit tag."""
    import mlflow.data
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    df = load_breast_cancer(as_frame=True).frame
    with mlflow.start_run():
        mlflow.set_tag("mlflow.source.git.commit", COMMIT)  # what MLflow sets when the script runs from a git checkout
        mlflow.log_params({"C": c, "max_iter": 300})
        mlflow.log_input(mlflow.data.from_pandas(df, name="breast-cancer"), context="training")
        X, y = df.drop(columns="target"), df["target"]
        model = LogisticRegression(C=c, max_iter=300).fit(X, y)
        # explicit requirements: MLflow would otherwise infer them in a subprocess (seconds, nothing to test here)
        return mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])


def download(uri, name, version, dst):
    import mlflow.artifacts

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(dst)))


def size(led):
    from ailedger.tlog.ledger import Ledger

    with Ledger.open(led, read_only=True) as lg:
        return lg.size


def test_a_registered_version_is_logged_with_its_run_lineage_tagged_and_verifies(server, led, tmp_path, monkeypatch):
    # the dataset, committed in the ledger under the name the run logs it with
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    from ailedger.integrations.mlflow import register_model_hook
    from ailedger.tlog.ledger import Ledger

    pq = tmp_path / "bc.parquet"
    pd.DataFrame(load_breast_cancer(as_frame=True).frame).to_parquet(pq)
    code, ds, out = cli(led, "dataset", "commit", str(pq), "--name", "breast-cancer", "--as", "alice")
    assert code == 0, out

    info = train_and_log(server)
    monkeypatch.setenv("AILEDGER_LEDGER", str(led))
    monkeypatch.setenv("AILEDGER_IDENTITY", "alice")
    monkeypatch.setenv("AILEDGER_PASSPHRASE", "")
    mv = register_model_hook(info.model_uri, "bc-clf")  # the one-line hook in place of mlflow.register_model
    tags = mv.tags
    idx, root = int(tags["ailedger.entry"]), tags["ailedger.manifest_root"]
    assert tags["ailedger.log"] == "test.example/integrations"

    with Ledger.open(led, read_only=True) as lg:
        e = lg.entry(idx)
    b = e.body
    assert e.type == "model.register" and b["name"] == "bc-clf" and b["manifest"]["root"] == root
    lin = b["lineage"]
    assert lin["code"]["commit"] == COMMIT
    assert lin["hyperparameters"] == {"C": "0.5", "max_iter": "300"}
    assert [d["root"] for d in lin["datasets"]] == [ds["root"]]
    ml = b["metadata"]["mlflow"]
    assert ml["version"] == str(mv.version) and ml["run_id"] == mv.run_id and ml["tracking_uri"] == server
    (di,) = ml["dataset_inputs"]
    assert di["name"] == "breast-cancer" and di["context"] == "training" and di["ledger_entry"] == ds["index"]

    # someone downloads the model from MLflow: `ailedger model verify` finds exactly this entry
    got = download(server, "bc-clf", mv.version, tmp_path / "dl")
    code, rep, out = cli(led, "model", "verify", str(got))
    assert code == 0 and rep["ok"] and rep["name"] == "bc-clf" and rep["manifest_root"] == root, out
    assert rep["record"]["index"] == idx
    # one changed byte in the pickled model: exit 1, the file named
    f = next(p for p in got.iterdir() if p.suffix in (".pkl", ".skops"))
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    code, rep, out = cli(led, "model", "verify", str(got), "--name", "bc-clf")
    assert code == 1 and not rep["ok"] and any(f.name in d["detail"] for d in rep["differences"]), out


def test_cli_register_tags_a_version_and_a_second_run_reuses_the_entry(server, led, tmp_path):
    from mlflow import MlflowClient

    info = train_and_log(server, c=2.0)
    mlflow.set_registry_uri(server)
    mv = mlflow.register_model(info.model_uri, "bc-cli")  # registered the plain MLflow way (UI, CI...)
    n0 = size(led)
    code, rep, out = cli(led, "mlflow", "register", "bc-cli", str(mv.version), "--as", "alice", "--tracking-uri", server)
    assert code == 0 and rep["reused_entry"] is False, out
    assert size(led) == n0 + 1
    tags = MlflowClient(server, server).get_model_version("bc-cli", mv.version).tags
    assert tags["ailedger.entry"] == str(rep["entry"]) and tags["ailedger.manifest_root"] == rep["manifest_root"]
    # again (e.g. after the tags failed to land): the same entry, nothing new logged
    code, rep2, out = cli(led, "mlflow", "register", "bc-cli", str(mv.version), "--as", "alice", "--tracking-uri", server)
    assert code == 0 and rep2["reused_entry"] is True and rep2["entry"] == rep["entry"], out
    assert size(led) == n0 + 1
    # an unknown version: exit 2, named, nothing logged
    code, obj, out = cli(led, "mlflow", "register", "bc-cli", "99", "--as", "alice", "--tracking-uri", server)
    assert code == 2 and "bc-cli/99" in obj["error"]["message"], out
    assert size(led) == n0 + 1


def test_a_server_that_is_down_fails_clearly_and_nothing_is_logged(led, monkeypatch):
    from ailedger.errors import NetworkError
    from ailedger.integrations.mlflow import register_model_hook

    n0 = size(led)
    code, obj, out = cli(led, "mlflow", "register", "bc-clf", "1", "--as", "alice", "--tracking-uri", DOWN)
    assert code == 2 and obj["error"]["code"] == "network", out
    assert f"MLflow server at {DOWN} is not reachable" in obj["error"]["message"]
    assert "nothing was logged" in obj["error"]["message"]
    monkeypatch.setenv("AILEDGER_LEDGER", str(led))
    monkeypatch.setenv("AILEDGER_IDENTITY", "alice")
    monkeypatch.setenv("AILEDGER_PASSPHRASE", "")
    mlflow.set_tracking_uri(DOWN)
    mlflow.set_registry_uri(DOWN)
    with pytest.raises(NetworkError, match="not reachable"):
        register_model_hook("runs:/0123/model", "bc-clf")
    assert size(led) == n0


def test_the_webhook_listener_logs_a_version_registered_with_no_ailedger_code(server, led, monkeypatch):
    import json
    import threading

    from mlflow import MlflowClient
    from mlflow.entities.webhook import WebhookEvent

    from ailedger.integrations.mlflow import listen

    monkeypatch.setenv("AILEDGER_PASSPHRASE", "")
    secret = "s3cret-for-the-mlflow-webhook"
    results = []
    srv = listen(str(led), "alice", server, secret, "127.0.0.1", 19511, on_result=results.append)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        client = MlflowClient(server, server)
        client.create_webhook(name="ailedger", url="http://127.0.0.1:19511/",
                              events=[WebhookEvent("model_version", "created")], secret=secret)
        time.sleep(1.5)  # the server caches its list of hooks for MLFLOW_WEBHOOK_CACHE_TTL (1 s here)
        info = train_and_log(server, c=3.0)
        mlflow.set_registry_uri(server)
        mv = mlflow.register_model(info.model_uri, "bc-hook")  # plain MLflow: no ailedger code in the script
        deadline = time.time() + 90
        while not results and time.time() < deadline:
            time.sleep(0.5)
        assert results and results[0]["ok"], results
        tags = client.get_model_version("bc-hook", mv.version).tags
        assert tags["ailedger.entry"] == str(results[0]["entry"])
        # a forged delivery (wrong secret) is refused and logs nothing
        n0 = size(led)
        body = json.dumps({"entity": "model_version", "action": "created",
                           "data": {"name": "bc-hook", "version": mv.version}}).encode()
        req = urllib.request.Request("http://127.0.0.1:19511/", data=body, method="POST", headers={
            "X-MLflow-Signature": "v1,AAAA", "X-MLflow-Timestamp": str(int(time.time())),
            "X-MLflow-Delivery-Id": "forged"})
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=10)
        assert ei.value.code == 401
        time.sleep(1)
        assert size(led) == n0 and len(results) == 1
    finally:
        srv.shutdown()
        srv.server_close()


def test_listen_refuses_a_short_secret_and_a_bad_address_before_starting(led, tmp_path):
    short = tmp_path / "short.secret"
    short.write_text("abc\n")
    code, obj, out = cli(led, "mlflow", "listen", "--tracking-uri", DOWN, "--as", "alice", "--secret-file", str(short))
    assert code == 2 and "at least 16 characters" in obj["error"]["message"], out
    good = tmp_path / "good.secret"
    good.write_text("x" * 32)
    code, obj, out = cli(led, "mlflow", "listen", "--tracking-uri", DOWN, "--as", "alice", "--secret-file", str(good),
                         "--listen", "nowhere")
    assert code == 2 and "HOST:PORT" in obj["error"]["message"], out
    code, obj, out = cli(led, "mlflow", "listen", "--tracking-uri", DOWN, "--as", "alice", "--secret-file", str(good),
                         "--listen", "127.0.0.1:19512")
    assert code == 2 and "not reachable" in obj["error"]["message"], out


def test_a_webhook_signature_is_checked_over_id_timestamp_and_payload():
    import base64
    import hashlib
    import hmac

    from ailedger.errors import VerificationError
    from ailedger.integrations.mlflow import check_webhook

    body = b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": "1"}}'
    sig = "v1," + base64.b64encode(hmac.new(b"k" * 20, b"d1.1000." + body, hashlib.sha256).digest()).decode()
    hdr = {"X-MLflow-Signature": sig, "X-MLflow-Timestamp": "1000", "X-MLflow-Delivery-Id": "d1"}
    assert check_webhook("k" * 20, hdr, body, now=1010)["data"]["name"] == "m"
    with pytest.raises(VerificationError, match="does not match"):
        check_webhook("k" * 20, {**hdr, "X-MLflow-Delivery-Id": "d2"}, body, now=1010)
    with pytest.raises(VerificationError, match="does not match"):
        check_webhook("k" * 20, hdr, body.replace(b'"1"', b'"2"'), now=1010)
    with pytest.raises(VerificationError, match="older than"):
        check_webhook("k" * 20, hdr, body, now=1000 + 301)
