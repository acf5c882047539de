"""`dataset commit s3://bucket/prefix`: inputs read from a real SeaweedFS S3 gateway (tests/seaweed.py),
on the single-process engine and on a real Dask LocalCluster; the same root (and proofs) as the same
data committed from local files; bad credentials, a missing bucket, an unreachable endpoint: a clear
error and nothing logged."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from ailedger.errors import BadInputError, NetworkError
from ailedger.provenance import commit_dataset, prove_dataset, verify_dataset_proof_file
from ailedger.provenance.s3input import S3Path
from tests.seaweed import SeaweedS3

pytest.importorskip("boto3")
N = 400
UNREACHABLE = "http://127.0.0.1:18299"  # this lane's port range: nothing listens there


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SeaweedFS for the module, its credentials in the environment (as a user would set them),
    and the same data in a local folder and in bucket ``data``."""
    local = tmp_path_factory.mktemp("local")
    (local / "files" / "sub").mkdir(parents=True)
    for i in range(25):
        (local / "files" / ("sub" if i % 3 else "") / f"doc-{i}.txt").write_bytes(b"document %d\n" % i * (i + 1))
    (local / "files" / "doc-dup.txt").write_bytes(b"document 0\n")  # a duplicate record
    lines = [json.dumps({"id": i, "text": f"record {i}", "x": i * 0.5}) + "\n" for i in range(N)]
    (local / "records.jsonl").write_text("".join(lines + lines[:3]))
    (local / "table.csv").write_text("id,name\n" + "".join(f"{i},name {i}\n" for i in range(N)))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": list(range(N)), "name": [f"n{i}" for i in range(N)]}), local / "rows.parquet",
                   row_group_size=150)
    with SeaweedS3(buckets=["data"]) as s3, pytest.MonkeyPatch.context() as mp:
        for k, v in s3.env().items():
            mp.setenv(k, v)
        mp.delenv("AWS_PROFILE", raising=False)
        c = s3.client()
        for f in local.rglob("*"):
            if f.is_file():
                c.put_object(Bucket="data", Key="corpus/" + f.relative_to(local).as_posix(), Body=f.read_bytes())
        yield s3, local


CASES = [("files", "s3://data/corpus/files"), ("jsonl", "s3://data/corpus/records.jsonl"),
         ("csv", "s3://data/corpus/table.csv"), ("parquet", "s3://data/corpus/rows.parquet")]
LOCAL = {"files": "files", "jsonl": "records.jsonl", "csv": "table.csv", "parquet": "rows.parquet"}
MEMBER = {"files": b"document 4\n" * 5, "jsonl": json.dumps({"id": 7, "text": "record 7", "x": 3.5}).encode(),
          "csv": b"id,name\n7,name 7\n", "parquet": json.dumps({"id": 7, "name": "n7"}).encode()}


def _same(a: dict, b: dict, ledger) -> None:
    assert a["root"] == b["root"]
    assert (a["records"], a["records_in"], a["duplicates"]) == (b["records"], b["records_in"], b["duplicates"])
    sa, sb = ledger.entry(a["index"]).body["sources"], ledger.entry(b["index"]).body["sources"]
    assert [{k: v for k, v in s.items() if k != "name"} for s in sa] == [
        {k: v for k, v in s.items() if k != "name"} for s in sb]


@pytest.mark.parametrize(("kind", "uri"), CASES)
def test_s3_input_same_root_as_local(store, ledger, alice, kind, uri):
    _, local = store
    loc = commit_dataset(ledger, [str(local / LOCAL[kind])], f"local-{kind}", alice, workers=2)
    rem = commit_dataset(ledger, [uri], f"s3-{kind}", alice, workers=2)
    _same(loc, rem, ledger)
    src = ledger.entry(rem["index"]).body["sources"][0]
    assert src["name"] == uri.rsplit("/", 1)[-1]
    if kind != "files":
        assert src["sha256"] and src["size"] == (local / LOCAL[kind]).stat().st_size
    data, info = prove_dataset(ledger, f"s3-{kind}", MEMBER[kind])
    assert info["result"] == "member"
    assert verify_dataset_proof_file(data, MEMBER[kind], ledger.vkey)["result"] == "member"


def test_s3_input_on_a_dask_local_cluster(store, ledger, alice, tmp_path):
    """Dask workers (started with the AWS variables in their environment, as any worker host would have
    them) read their own byte ranges: a JSONL object cut into many ranged shards, a folder, Parquet."""
    distributed = pytest.importorskip("distributed")
    from ailedger.provenance.distributed import DaskEngine

    s3, local = store
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       host="127.0.0.1", silence_logs=40)
    try:
        with DaskEngine(cluster.scheduler_address) as eng:
            for kind, uri, unit in (("jsonl", "s3://data/corpus/records.jsonl", 2048), ("files", CASES[0][1], 300),
                                    ("parquet", CASES[3][1], None), ("csv", CASES[2][1], None)):
                loc = commit_dataset(ledger, [str(local / LOCAL[kind])], f"dl-{kind}", alice, workers=1)
                b = functools.partial(eng.build_index, unit_bytes=unit) if unit else eng.build_index
                rem = commit_dataset(ledger, [S3Path(uri, s3.endpoint)], f"ds-{kind}", alice, builder=b)
                _same(loc, rem, ledger)
                if unit:
                    assert rem["units"] > 3, rem["units"]  # many ranged reads, cut at line ends
                assert {s["worker_pid"] for s in rem["shards"]} <= set(eng.client.run(os.getpid).values())
    finally:
        cluster.close()


def _refused(ledger, alice, uri, exc, match, **kw):
    n0 = ledger.size
    with pytest.raises(exc, match=match):
        commit_dataset(ledger, [uri], "refused", alice, workers=1, **kw)
    assert ledger.size == n0
    assert not any(x.name.startswith("staging") for x in (ledger.path / "artifacts" / "datasets").iterdir())


def test_wrong_credentials_missing_bucket_unreachable_endpoint(store, ledger, alice, monkeypatch):
    _refused(ledger, alice, "s3://nobucket/corpus/records.jsonl", BadInputError, "the bucket does not exist")
    _refused(ledger, alice, "s3://data/corpus/nothing-here", BadInputError, "no object by that key and none under it")
    _refused(ledger, alice, S3Path("s3://data/corpus/records.jsonl", UNREACHABLE), NetworkError,
             "cannot connect to the S3 endpoint")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    _refused(ledger, alice, "s3://data/corpus/records.jsonl", BadInputError, "access denied")
    _refused(ledger, alice, "s3://data/corpus/files", BadInputError, "access denied")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _refused(ledger, alice, "s3://data/corpus/records.jsonl", BadInputError, "no usable AWS credentials")


def test_cli_s3_commit_and_errors(store, tmp_path):
    from ailedger.tlog.ledger import Ledger

    s3, local = store
    lg = Ledger.init(tmp_path / "lg", origin="test.example/s3")
    lg.identities.create("alice")
    lg.close()
    env = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "lg")}
    env.pop("AWS_ENDPOINT_URL")  # the endpoint from --s3-endpoint only

    def run(*a):
        return subprocess.run([sys.executable, "-m", "ailedger", *a], capture_output=True, text=True, env=env,
                              timeout=300, check=False)

    def size() -> int:
        with Ledger.open(tmp_path / "lg", read_only=True) as lg:
            return int(lg.size)

    ok = run("dataset", "commit", "s3://data/corpus/records.jsonl", "--name", "remote", "--as", "alice",
             "--s3-endpoint", s3.endpoint, "--json")
    assert ok.returncode == 0, ok.stderr
    loc = run("dataset", "commit", str(local / "records.jsonl"), "--name", "local", "--as", "alice", "--json")
    assert json.loads(ok.stdout)["root"] == json.loads(loc.stdout)["root"]
    dk = run("dataset", "commit", "s3://data/corpus/records.jsonl", "--name", "remote-dask", "--as", "alice",
             "--s3-endpoint", s3.endpoint, "--engine", "dask", "--workers", "1", "--json")
    assert dk.returncode == 0 and json.loads(dk.stdout)["root"] == json.loads(loc.stdout)["root"], dk.stderr
    assert json.loads(dk.stdout)["engine"] == "dask"
    shard = run("dataset", "hash-shard", "s3://data/corpus/records.jsonl", "-o", str(tmp_path / "shard"),
                "--partitions-log2", "2", "--s3-endpoint", s3.endpoint, "--json")
    assert shard.returncode == 0, shard.stderr
    fs = run("dataset", "commit", "--from-shard", str(tmp_path / "shard"), "--name", "sharded", "--as", "alice",
             "--json")
    assert fs.returncode == 0 and json.loads(fs.stdout)["root"] == json.loads(loc.stdout)["root"], fs.stderr
    before = size()
    for args, code, msg in (
            (["s3://data/corpus/records.jsonl", "--s3-endpoint", UNREACHABLE], None, "cannot connect to the S3 endpoint"),
            (["s3://nobucket/x.jsonl", "--s3-endpoint", s3.endpoint], 2, "the bucket does not exist"),
            (["s3://Bad_Bucket/x.jsonl"], 2, "valid bucket name"),
            ([str(local / "records.jsonl"), "--s3-endpoint", s3.endpoint], 2, "--s3-endpoint is for s3:// PATHS")):
        bad = run("dataset", "commit", *args, "--name", "x", "--as", "alice")
        assert bad.returncode != 0 and (code is None or bad.returncode == code), (bad.returncode, bad.stderr)
        assert msg in bad.stderr, bad.stderr
    assert size() == before


def test_object_replaced_during_the_commit_is_refused(store, tmp_path):
    """A read checks the ETag seen when the commit was planned: an object replaced in between stops the
    commit (as a local file whose stat changed does)."""
    from ailedger.provenance import datasets as ds
    from ailedger.provenance.s3input import open_binary

    s3, local = store
    c = s3.client()
    body = (local / "records.jsonl").read_bytes()
    c.put_object(Bucket="data", Key="moving/records.jsonl", Body=body)
    units, _, _, inputs = ds._plan_units(["s3://data/moving/records.jsonl"], False)
    planned = inputs[0]
    assert planned.etag and planned.size == len(body)
    c.put_object(Bucket="data", Key="moving/records.jsonl", Body=body.replace(b"record 1", b"record X"))
    with pytest.raises(BadInputError, match="changed while it was being hashed"), open_binary(planned) as fh:
        fh.read(100)
    r = ds._hash_unit(units[0], str(tmp_path), 1, None, "t")
    assert "changed while it was being hashed" in r["error"]
    with pytest.raises(BadInputError, match="changed while it was being hashed"):
        ds._file_sha256(planned)


def test_folder_forms_and_bucket_root(store, ledger, alice):
    """s3://b/prefix and s3://b/prefix/ are the same folder; s3://b alone is the whole bucket."""
    s3, local = store
    a = commit_dataset(ledger, ["s3://data/corpus/files"], "f1", alice, workers=1)
    b = commit_dataset(ledger, ["s3://data/corpus/files/"], "f2", alice, workers=1)
    assert a["root"] == b["root"] and ledger.entry(b["index"]).body["sources"][0]["name"] == "files"
    c = s3.client()
    c.create_bucket(Bucket="flat")
    for f in (local / "files").rglob("*"):
        if f.is_file():
            c.put_object(Bucket="flat", Key=f.relative_to(local / "files").as_posix(), Body=f.read_bytes())
    c.put_object(Bucket="flat", Key="marker/", Body=b"")  # a "folder" object: not a record
    whole = commit_dataset(ledger, ["s3://flat"], "f3", alice, workers=1)
    assert whole["root"] == a["root"] and ledger.entry(whole["index"]).body["sources"][0]["name"] == "flat"


def test_store_gone_mid_commit_fails_cleanly(tmp_path, ledger, alice, monkeypatch):
    """The S3 endpoint dies while Dask workers are reading shards: a clear error naming the object,
    nothing logged, no staging folder left."""
    distributed = pytest.importorskip("distributed")
    from ailedger.provenance.distributed import DaskEngine
    from ailedger.provenance.entries import artifacts_dir

    body = "".join(json.dumps({"id": i, "text": "w" * (i % 60)}) + "\n" for i in range(150_000)).encode()
    s3 = SeaweedS3(buckets=["gone"]).start()
    box: dict = {}
    n0 = ledger.size
    dsdir = artifacts_dir(ledger) / "datasets"
    try:
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        s3.client().put_object(Bucket="gone", Key="r.jsonl", Body=body)
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", host="127.0.0.1", silence_logs=40)
        try:
            with DaskEngine(cluster.scheduler_address) as eng:
                def go():
                    try:
                        box["res"] = commit_dataset(ledger, [S3Path("s3://gone/r.jsonl", s3.endpoint)], "gone",
                                                    alice, builder=functools.partial(eng.build_index,
                                                                                     unit_bytes=32 << 10))
                    except Exception as e:  # noqa: BLE001 - checked below
                        box["err"] = e

                t = threading.Thread(target=go)
                t.start()
                deadline = time.time() + 120
                while time.time() < deadline and not box and len(list(dsdir.glob("staging-*.tmp/part-*"))) < 1:
                    time.sleep(0.005)
                assert not box, f"the commit ended before the store could be stopped: {box}"
                s3.stop()
                t.join(300)
                assert not t.is_alive()
        finally:
            cluster.close()
    finally:
        s3.stop()
    assert "res" not in box
    err = box["err"]
    # a store going down answers 500s while it stops, then refuses connections: either is a NetworkError
    assert isinstance(err, NetworkError), repr(err)
    assert err.message.startswith("cannot read s3://gone/r.jsonl") and "nothing was logged" in err.message, err.message
    assert "cannot connect to the S3 endpoint" in err.message or "the store failed" in err.message, err.message
    assert ledger.size == n0
    assert not list(dsdir.glob("staging-*"))


def test_a_forked_hashing_process_gets_its_own_s3_client():
    """Hashing processes are forked from the planner, which has already talked to the store: a child that
    reused the parent's client would share its pooled sockets (answers read by the wrong process, reads
    that time out). The client cache is per process."""
    import os

    from ailedger.provenance import s3input

    parent = s3input.client("http://127.0.0.1:9")
    assert s3input.client("http://127.0.0.1:9") is parent
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if it got a client of its own
        os._exit(0 if s3input.client("http://127.0.0.1:9") is not parent else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
