"""A blob record names the endpoint of each S3 target it was written through (optional ``endpoint`` beside
``node``), so `blob get`, `audit` and `repair` need no --s3-endpoint later; the caller's endpoint still wins,
records without the field read as before, and only the blob's owner says where AWS-signed requests go.
Against a real SeaweedFS (tests/seaweed.py)."""

import json
import os

import pytest
from click.testing import CliRunner

from ailedger.blobs.s3 import recordable_endpoint
from ailedger.blobs.service import BlobService
from ailedger.cli.main import main
from ailedger.tlog.ledger import Ledger
from tests.seaweed import SeaweedS3

pytestmark = pytest.mark.seaweed

NOBODY = "http://127.0.0.1:18599"  # in this lane's port range; nothing listens there


@pytest.fixture(scope="module")
def s3():
    with SeaweedS3(buckets=["ep-a", "ep-b", "ep-c", "ep-d"]) as store:
        yield store


@pytest.fixture
def env(s3, tmp_path, monkeypatch):
    """Credentials in the environment, but no endpoint: only --s3-endpoint or the record can name the store."""
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(k, raising=False)
    led = Ledger.init(tmp_path / "ledger", origin="test.example/s3-endpoint")
    for name in ("alice", "bob"):
        led.new_identity(name)
    led.close()
    monkeypatch.setenv("AILEDGER_LEDGER", str(tmp_path / "ledger"))
    return tmp_path


def run(*args, code=0):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == code, (r.exit_code, r.output)
    return r


def put3(tmp_path, s3, prefix, data):
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    args = [a for b in ("ep-a", "ep-b", "ep-c") for a in ("--target", f"s3://{b}/{prefix}")]
    return json.loads(run("blob", "put", f, *args, "--s3-endpoint", s3.endpoint, "--readers", "bob", "--as",
                          "alice", "--json").output)


def record(tmp_path, index):
    with Ledger.open(tmp_path / "ledger") as led:
        return led.entry(index)


def test_get_audit_repair_without_endpoint_use_the_recorded_one(env, s3):
    data = os.urandom(120_000)
    r = put3(env, s3, "e1", data)
    put = record(env, r["index"])
    assert [s.get("endpoint") for s in put.body["shards"]] == [s3.endpoint] * 3
    st = json.loads(run("blob", "status", r["cid"], "--json").output)
    assert {s["endpoint"] for s in st["shards"]} == {s3.endpoint}

    run("blob", "get", r["cid"], "-o", env / "out", "--as", "bob")  # no --s3-endpoint, no $AWS_ENDPOINT_URL
    assert (env / "out").read_bytes() == data
    run("blob", "audit", r["cid"])
    # a shard lost: repair (by the owner) onto a new bucket, still without naming the endpoint
    c = s3.client()
    for o in c.list_objects_v2(Bucket="ep-c", Prefix="e1/")["Contents"]:
        c.delete_object(Bucket="ep-c", Key=o["Key"])
    out = json.loads(run("blob", "repair", r["cid"], "--target", "s3://ep-d/e1", "--s3-endpoint", f"ep-d={s3.endpoint}",
                         "--as", "alice", "--json").output)
    assert list(out["rebuilt"].values()) == ["s3://ep-d/e1"]
    assert record(env, out["index"]).body["shards"][0]["endpoint"] == s3.endpoint
    run("blob", "audit", r["cid"])
    run("blob", "get", r["cid"], "-o", env / "out2", "--as", "alice")
    assert (env / "out2").read_bytes() == data


def test_the_callers_endpoint_wins_over_the_record(env, s3):
    r = put3(env, s3, "e2", os.urandom(30_000))
    res = CliRunner().invoke(main, ["blob", "get", r["cid"], "-o", str(env / "out"), "--as", "bob",
                                    "--s3-endpoint", NOBODY])
    assert res.exit_code != 0 and "cannot connect" in res.output, res.output
    assert not (env / "out").exists()
    # one bucket pointed elsewhere: the other two still come from the recorded endpoint (k = 2)
    run("blob", "get", r["cid"], "-o", env / "out", "--as", "bob", "--s3-endpoint", f"ep-a={NOBODY}")


class _OldService(BlobService):
    """Writes records as before the field existed (no ``endpoint``)."""

    def _endpoint_field(self, url):
        return {}


def test_a_record_without_endpoint_reads_as_before(env, s3):
    f = env / "in.bin"
    data = os.urandom(40_000)
    f.write_bytes(data)
    with Ledger.open(env / "ledger") as led:
        alice = led.identities.load("alice")
        targets = ["s3://ep-a/e3", "s3://ep-b/e3"]
        res = _OldService(led, s3_endpoint=s3.endpoint).put(f, targets, alice, readers=["bob"])
        assert all("endpoint" not in s for s in led.entry(res.index).body["shards"])
        assert BlobService(led).state(res.cid).endpoints == {}
    run("blob", "get", res.cid, "-o", env / "out", "--as", "bob", "--s3-endpoint", s3.endpoint)
    assert (env / "out").read_bytes() == data
    assert all("endpoint" not in s for s in json.loads(run("blob", "status", res.cid, "--json").output)["shards"])


def test_only_the_owner_says_where_requests_go(env, s3):
    """A repair by someone else adds its location, but not its endpoint: readers would send AWS-signed requests
    to a host only the repairer chose."""
    r = put3(env, s3, "e4", os.urandom(20_000))
    c = s3.client()
    for o in c.list_objects_v2(Bucket="ep-b", Prefix="e4/")["Contents"]:
        c.delete_object(Bucket="ep-b", Key=o["Key"])
    out = json.loads(run("blob", "repair", r["cid"], "--target", "s3://ep-d/e4", "--s3-endpoint", s3.endpoint,
                         "--as", "bob", "--json").output)
    assert record(env, out["index"]).body["shards"][0]["endpoint"] == s3.endpoint  # bob wrote it down...
    with Ledger.open(env / "ledger") as led:
        st = BlobService(led).state(r["cid"])
    assert "s3://ep-d/e4" in [loc for s in st.shards for loc in s.locations]
    assert "s3://ep-d/e4" not in st.endpoints  # ...but it is not followed
    assert set(st.endpoints) == {"s3://ep-a/e4", "s3://ep-b/e4", "s3://ep-c/e4"}


@pytest.mark.parametrize("url,kept", [
    ("http://127.0.0.1:8333", True), ("https://s3.example.org/base", True), (None, False), ("", False),
    ("http://user:secret@127.0.0.1:8333", False), ("http://:secret@127.0.0.1:8333", False),
    ("http://127.0.0.1:8333/?X-Amz-Credential=k", False), ("ftp://127.0.0.1", False), ("http://", False),
])
def test_what_a_record_may_name(url, kept):
    assert recordable_endpoint(url) == (url if kept else None)
