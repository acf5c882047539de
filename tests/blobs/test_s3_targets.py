"""Blobs on S3 targets, against a real SeaweedFS (tests/seaweed.py): put/get across buckets, audit names a
deleted or flipped shard and repair restores it, bad endpoint / credentials / bucket = exit 2, nothing logged."""

import json
import os

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.tlog.ledger import Ledger
from tests.seaweed import SeaweedS3

pytestmark = pytest.mark.seaweed


@pytest.fixture(scope="module")
def s3():
    with SeaweedS3(buckets=["bkt-a", "bkt-b", "bkt-c", "bkt-d"]) as store:
        yield store


@pytest.fixture
def env(s3, tmp_path, monkeypatch):
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    led = Ledger.init(tmp_path / "ledger", origin="test.example/s3-blobs")
    for name in ("alice", "bob"):
        led.new_identity(name)
    led.close()
    monkeypatch.setenv("AILEDGER_LEDGER", str(tmp_path / "ledger"))
    return tmp_path


def run(*args, code=0):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == code, (r.exit_code, r.output)
    return r


def size_of(tmp_path):
    with Ledger.open(tmp_path / "ledger") as led:
        return led.size


def put3(tmp_path, data, prefix="run"):
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    targets = [f"s3://bkt-a/{prefix}", f"s3://bkt-b/{prefix}", f"s3://bkt-c/{prefix}"]
    args = [a for t in targets for a in ("--target", t)]
    r = json.loads(run("blob", "put", f, *args, "--readers", "bob", "--as", "alice", "--json").output)
    return f, r


def test_put_get_across_three_buckets(env, s3):
    data = os.urandom(300_000)
    _, r = put3(env, data, "t1")
    assert r["k"] == 2 and r["n"] == 3
    assert sorted(r["placement"].values()) == ["s3://bkt-a/t1", "s3://bkt-b/t1", "s3://bkt-c/t1"]
    # each bucket holds exactly one shard (plus its leaf hashes), and it is ciphertext
    c = s3.client()
    for b in ("bkt-a", "bkt-b", "bkt-c"):
        keys = sorted(o["Key"] for o in c.list_objects_v2(Bucket=b, Prefix="t1/").get("Contents", []))
        assert len(keys) == 2 and keys[1] == keys[0] + ".leaves"
        body = c.get_object(Bucket=b, Key=keys[0])["Body"].read()
        assert data[:64] not in body
    run("blob", "get", r["cid"], "-o", env / "out", "--as", "bob")
    assert (env / "out").read_bytes() == data
    assert "3 shards" not in run("blob", "audit", r["cid"]).output
    # one bucket's shard gone: still readable from the other two (k=2)
    key = next(o["Key"] for o in c.list_objects_v2(Bucket="bkt-a", Prefix="t1/")["Contents"])
    c.delete_object(Bucket="bkt-a", Key=key)
    run("blob", "get", r["cid"], "-o", env / "out2", "--as", "alice")
    assert (env / "out2").read_bytes() == data


def _shard_key(c, bucket, prefix):
    return next(o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
                if not o["Key"].endswith(".leaves"))


@pytest.mark.parametrize("fault", ["delete", "flip"])
def test_audit_names_bad_shard_and_repair_restores_it(env, s3, fault):
    data = os.urandom(20_000)  # shards of one 16 KiB segment: any challenge reads the flipped byte
    _, r = put3(env, data, f"t2{fault}")
    c = s3.client()
    key = _shard_key(c, "bkt-b", f"t2{fault}/")
    good = c.get_object(Bucket="bkt-b", Key=key)["Body"].read()
    if fault == "delete":
        c.delete_object(Bucket="bkt-b", Key=key)
    else:
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 1
        c.put_object(Bucket="bkt-b", Key=key, Body=bytes(bad))
    res = CliRunner().invoke(main, ["blob", "audit", r["cid"], "--json"])
    assert res.exit_code == 1, res.output
    rep = json.JSONDecoder().raw_decode(res.output)[0]
    assert rep["failed"] == [next(int(i) for i, u in r["placement"].items() if u == f"s3://bkt-b/t2{fault}")]
    assert rep["shards"][str(rep["failed"][0])]["node"] == f"s3://bkt-b/t2{fault}"
    n = size_of(env)
    out = json.loads(run("blob", "repair", r["cid"], "--as", "bob", "--json").output)
    assert list(out["rebuilt"]) == [str(rep["failed"][0])] and size_of(env) == n + 1
    run("blob", "audit", r["cid"])  # all shards prove again
    assert c.get_object(Bucket="bkt-b", Key=key)["Body"].read() == good
    run("blob", "get", r["cid"], "-o", env / "out", "--as", "bob")
    assert (env / "out").read_bytes() == data


def test_repair_onto_a_new_target(env, s3):
    data = os.urandom(50_000)
    _, r = put3(env, data, "t3")
    # bucket c is emptied of this blob; the repair puts the shard on a fresh target
    c = s3.client()
    for o in c.list_objects_v2(Bucket="bkt-c", Prefix="t3/")["Contents"]:
        c.delete_object(Bucket="bkt-c", Key=o["Key"])
    out = json.loads(run("blob", "repair", r["cid"], "--target", "s3://bkt-d/t3", "--as", "alice", "--json").output)
    assert list(out["rebuilt"].values()) == ["s3://bkt-d/t3"]
    st = json.loads(run("blob", "status", r["cid"], "--json").output)
    assert "s3://bkt-d/t3" in [s["node"] for s in st["shards"]]
    run("blob", "audit", r["cid"])
    run("blob", "get", r["cid"], "-o", env / "out", "--as", "bob")
    assert (env / "out").read_bytes() == data


@pytest.mark.parametrize("case", ["unreachable", "credentials", "bucket", "malformed"])
def test_bad_target_exit_2_nothing_logged(env, s3, monkeypatch, case):
    f = env / "in.bin"
    f.write_bytes(os.urandom(10_000))
    targets = ["s3://bkt-a/x", "s3://bkt-b/x"]
    if case == "unreachable":
        from tests.devchain import free_port

        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
        want = "cannot connect"
    elif case == "credentials":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        want = "access denied"
    elif case == "bucket":
        targets.append("s3://no-such-bucket/x")
        want = "s3://no-such-bucket/x"
    else:
        targets.append("s3://A_B")
        want = "valid bucket name"
    n = size_of(env)
    args = [a for t in targets for a in ("--target", t)]
    r = CliRunner().invoke(main, ["blob", "put", str(f), *args, "--as", "alice"])
    assert r.exit_code == 2, r.output
    assert want in r.output, r.output
    assert size_of(env) == n
    # nothing was uploaded either (the check comes before any shard is written)
    c = s3.client()
    assert not c.list_objects_v2(Bucket="bkt-a", Prefix="x/").get("Contents")


def test_mixed_with_storage_nodes(env, s3, make_nodes, allow_file):
    from tests.blobs.conftest import admit

    with Ledger.open(env / "ledger") as led:
        admit(allow_file, led.did_for("alice"))
    nodes = make_nodes(2)
    f = env / "in.bin"
    data = os.urandom(100_000)
    f.write_bytes(data)
    r = json.loads(run("blob", "put", f, "--nodes", ",".join(n.url for n in nodes), "--target", "s3://bkt-a/mix",
                       "--target", "s3://bkt-b/mix", "--as", "alice", "--json").output)
    assert r["n"] == 4 and len(set(r["placement"].values())) == 4
    run("blob", "audit", r["cid"])
    run("blob", "get", r["cid"], "-o", env / "out", "--as", "alice")
    assert (env / "out").read_bytes() == data


def test_targets_on_three_stores_one_killed_mid_get(env, tmp_path):
    """Three SeaweedFS processes, one bucket each (--s3-endpoint BUCKET=URL); one store is killed while a
    get runs: the blob still comes back from the other two, and repair rebuilds its shard on a new target."""
    import threading

    stores = [SeaweedS3(buckets=[f"store-{x}"]) for x in "abc"]
    try:
        for s in stores:
            s.start()
        eps = [a for s, x in zip(stores, "abc") for a in ("--s3-endpoint", f"store-{x}={s.endpoint}")]
        f = env / "big.bin"
        data = os.urandom(24 << 20)
        f.write_bytes(data)
        r = json.loads(run("blob", "put", f, *[a for x in "abc" for a in ("--target", f"s3://store-{x}/k")], *eps,
                           "--as", "alice", "--json").output)
        assert r["k"] == 2 and r["n"] == 3
        victim = stores["abc".index(r["placement"]["0"][len("s3://store-")])]  # the store of data shard 0
        killer = threading.Timer(0.3, victim.kill)
        killer.start()
        run("blob", "get", r["cid"], "-o", env / "out", "--as", "alice", *eps)
        killer.join()
        assert victim.proc is not None and victim.proc.poll() is not None  # it really died
        assert (env / "out").read_bytes() == data
        dead = next(u for u in r["placement"].values() if u.startswith(f"s3://{victim.buckets[0]}"))
        alive = next(s for s in stores if s is not victim)
        alive.create_bucket("spare")
        res = CliRunner().invoke(main, ["blob", "audit", r["cid"], *eps])
        assert res.exit_code == 1 and dead in res.output
        out = json.loads(run("blob", "repair", r["cid"], "--target", "s3://spare/k", *eps,
                             "--s3-endpoint", f"spare={alive.endpoint}", "--as", "alice", "--json").output)
        assert list(out["rebuilt"].values()) == ["s3://spare/k"]
        run("blob", "audit", r["cid"], *eps, "--s3-endpoint", f"spare={alive.endpoint}")
    finally:
        for s in stores:
            s.stop()


def test_store_killed_while_its_shard_streams_get_finishes_from_the_others(tmp_path, monkeypatch):
    """The store holding data shard 0 is killed once the first MiB of that shard has arrived (a progress
    hook, so the kill is mid-transfer by construction, not by timing): the get still returns the exact
    bytes, from data shard 1 and the parity shard, and reports the broken transfer."""
    from ailedger.blobs.service import BlobService

    stores = [SeaweedS3(buckets=[f"store-{x}"]) for x in "abc"]
    try:
        for s in stores:
            s.start()
        for k, v in stores[0].env().items():
            if k != "AWS_ENDPOINT_URL":
                monkeypatch.setenv(k, v)
        endpoints = {f"store-{x}": s.endpoint for s, x in zip(stores, "abc")}
        led = Ledger.init(tmp_path / "ledger", origin="test.example/s3-kill")
        me = led.new_identity("alice")[0]
        svc = BlobService(led, s3_endpoint=endpoints, timeout=10)
        data = os.urandom(40 << 20)  # shards of 20 MiB: more than loopback socket buffers hold
        (tmp_path / "in.bin").write_bytes(data)
        r = svc.put(tmp_path / "in.bin", [f"s3://store-{x}/k" for x in "abc"], me)
        victim = stores["abc".index(r.placement[0][len("s3://store-")])]
        seen: list[int] = []

        def progress(shard: int, got: int) -> None:
            if shard == 0 and got >= 1 << 20 and not seen:
                seen.append(got)
                victim.kill()

        g = svc.get(r.cid, tmp_path / "out", me, progress=progress)
        assert seen and victim.proc is not None and victim.proc.poll() is not None  # killed mid-transfer
        assert (tmp_path / "out").read_bytes() == data
        assert g.shards_used == [1, 2]
        assert any(f.startswith(f"shard 0 from {r.placement[0]}") for f in g.failures), g.failures
        led.close()
    finally:
        for s in stores:
            s.stop()


@pytest.mark.parametrize("case", ["credentials", "bucket", "unreachable"])
def test_repair_to_a_bad_target_exit_2_nothing_logged(env, s3, monkeypatch, case):
    data = os.urandom(30_000)
    _, r = put3(env, data, f"t5{case}")
    c = s3.client()
    c.delete_object(Bucket="bkt-c", Key=_shard_key(c, "bkt-c", f"t5{case}/"))
    n = size_of(env)
    target, eps = "s3://bkt-d/t5", []
    if case == "credentials":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        want = "access denied"
    elif case == "bucket":
        target, want = "s3://no-such-bucket/t5", "does not exist"
    else:
        from tests.devchain import free_port

        eps, want = ["--s3-endpoint", f"bkt-d=http://127.0.0.1:{free_port()}"], "cannot connect"
    res = CliRunner().invoke(main, ["blob", "repair", r["cid"], "--target", target, *eps, "--as", "alice"])
    assert res.exit_code == 2, res.output
    assert want in res.output and target in res.output, res.output
    assert size_of(env) == n  # no blob.repair entry
    assert not c.list_objects_v2(Bucket="bkt-d", Prefix="t5/").get("Contents")


@pytest.mark.parametrize("case", ["credentials", "unreachable"])
def test_get_with_bad_credentials_or_endpoint_is_a_clear_error_and_writes_nothing(env, s3, monkeypatch, case):
    data = os.urandom(30_000)
    _, r = put3(env, data, f"t6{case}")
    if case == "credentials":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        want = "access denied"
    else:
        from tests.devchain import free_port

        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
        want = "cannot connect"
    res = CliRunner().invoke(main, ["blob", "get", r["cid"], "-o", str(env / "out"), "--as", "bob"])
    assert res.exit_code == 2, res.output
    assert want in res.output and "shards needed" in res.output, res.output
    assert not (env / "out").exists() and not (env / "out.part").exists()


@pytest.mark.parametrize("memory", [0, 1 << 30])
def test_spooled_and_in_memory_shards_on_s3(env, s3, memory):
    """memory=0: shards are spooled to disk and uploaded from files (botocore given their SHA-256 as the
    payload hash either way); the objects and the bytes read back are the same kind."""
    from ailedger.blobs.service import BlobService

    data = os.urandom(900_000)
    (env / "in.bin").write_bytes(data)
    with Ledger.open(env / "ledger") as led:
        svc = BlobService(led, spool=env / "spool", memory=memory)
        me = led.identities.load("alice", None)
        r = svc.put(env / "in.bin", [f"s3://bkt-{x}/m{memory}" for x in "abc"], me)
        svc.get(r.cid, env / "out", me)
        assert (env / "out").read_bytes() == data
        assert all(v["ok"] for v in svc.audit(r.cid).values())
    assert list((env / "spool").iterdir()) == []


def test_get_with_a_flipped_data_shard_names_it_and_returns_the_right_bytes(env, s3):
    """A get does not hash the data shards it reads unless an end-to-end check fails; a flipped byte in one
    makes AES-GCM fail, then the shards are hashed, the bad one named (its bucket) and replaced by parity."""
    data = os.urandom(300_000)
    _, r = put3(env, data, "t7")
    g = json.loads(run("blob", "get", r["cid"], "-o", env / "out", "--as", "bob", "--json").output)
    assert (env / "out").read_bytes() == data and g["shards_hashed"] == [] and g["failures"] == []
    c = s3.client()
    bucket, prefix = r["placement"]["0"][len("s3://"):].split("/", 1)
    key = _shard_key(c, bucket, prefix + "/")
    bad = bytearray(c.get_object(Bucket=bucket, Key=key)["Body"].read())
    bad[len(bad) // 2] ^= 1
    c.put_object(Bucket=bucket, Key=key, Body=bytes(bad))
    res = CliRunner().invoke(main, ["blob", "get", r["cid"], "-o", str(env / "out2"), "--as", "bob", "--json"])
    assert res.exit_code == 0, res.output
    g = json.JSONDecoder().raw_decode(res.output[res.output.index("{"):])[0]
    assert (env / "out2").read_bytes() == data
    assert g["shards_used"] == [1, 2] and g["shards_hashed"] == [0, 1]
    assert any(f.startswith(f"shard 0 from {r['placement']['0']}") and "corrupted" in f for f in g["failures"]), g
