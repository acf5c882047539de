"""Schemathesis against the live server: the OpenAPI description is true and no input makes a server error.

Checks: every schemathesis check except ``positive_data_acceptance`` (schema-valid requests may still be
refused: an entry that matches the schema but carries no valid Ed25519 signature, or two sizes out of order,
cannot be told apart by a JSON schema)."""

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.http.helpers import Key, Server

ST = Path(sys.executable).with_name("schemathesis")


@pytest.mark.skipif(not ST.exists() and not shutil.which("schemathesis"), reason="schemathesis not installed")
def test_schemathesis_finds_no_server_error(ledger_dir, tmp_path):
    s = Server(ledger_dir)
    try:
        k = Key("fuzz")
        c = httpx.Client(base_url=s.url)
        assert c.post("/v1/identities", json=k.registration()).status_code == 201
        c.post("/v1/entries/batch", json={"entries": [
            k.entry("model.register", {"name": f"m{i}", "subjects": [f"sha256:{i:064x}"]}) for i in range(300)]})
        cmd = [str(ST if ST.exists() else shutil.which("schemathesis")), "run", s.url + "/openapi.json",
               "--checks", "all", "--exclude-checks", "positive_data_acceptance",
               "--max-examples", "15", "--max-time", "20", "--seed", "7", "--request-timeout", "10",
               "--continue-on-failure", "--report", "junit", "--report-dir", str(tmp_path / "st")]
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-2000:]
        assert s.alive()
        assert "internal error" not in Path(s.log.name).read_text()
    finally:
        s.stop()
