"""CLI commands given a malformed entry reference, or a KEY=VALUE whose value only looks numeric,
answer with one clear error line and exit 2 (they used to end in a ValueError traceback)."""

from __future__ import annotations

import json
import os

import pytest
from clirun import run  # tests/cli/clirun.py
from tests.provenance.conftest import write_safetensors

from ailedger.tlog.ledger import Ledger


@pytest.fixture(scope="module")
def led(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("refs")
    d = tmp / "l"
    with Ledger.init(d, origin="test.example/refs") as lg:
        lg.new_identity("alice")
    m = tmp / "model"
    m.mkdir()
    write_safetensors(m / "model.safetensors", {"w": ("F32", (4, 4), os.urandom(64))})
    src = tmp / "a.jsonl"
    src.write_text('{"i": 1}\n')
    return d, m, src


def _refused(p, field):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and p.stderr.startswith("error: "), p.stderr
    err = json.loads(p.stdout)["error"]
    assert err["field"] == field and "is not an entry reference" in err["message"], err


@pytest.mark.parametrize("ref", ["#²", "#" + "9" * 5000])
def test_dataset_and_model_refs(led, ref):
    d, m, _ = led
    _refused(run("dataset", "show", ref, "--ledger", str(d), "--json", check=False), "dataset")
    _refused(run("model", "lineage", ref, "--ledger", str(d), "--json", check=False), "model")
    _refused(run("model", "register", str(m), "--name", "m", "--as", "alice", "--dataset", ref, "--ledger", str(d),
                 "--json", check=False), "dataset")


def test_blob_ref_with_thousands_of_digits(led):
    d, _, _ = led
    _refused(run("blob", "status", "#" + "9" * 5000, "--ledger", str(d), "--json", check=False), "cid")


def test_hyperparameters_that_only_look_numeric_stay_strings(led):
    d, m, _ = led
    p = run("model", "register", str(m), "--name", "hp", "--as", "alice", "--hp", "a=--5", "--hp", "b=²",
            "--hp", "c=-12", "--meta", "d=\u0663", "--ledger", str(d), "--json", check=False)
    assert p.returncode == 0, p.stderr
    with Ledger.open(d, read_only=True) as lg:
        body = lg.entry(json.loads(p.stdout)["index"]).body
    assert body["lineage"]["hyperparameters"] == {"a": "--5", "b": "²", "c": -12}
    assert body["metadata"] == {"d": "\u0663"}
