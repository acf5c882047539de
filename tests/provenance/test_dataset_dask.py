"""`dataset commit --engine dask`: shards hashed on real Dask workers (a LocalCluster the tests start)
give exactly the root, index files and proofs of a single-process commit of the same data."""

from __future__ import annotations

import csv
import functools
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from ailedger.errors import BadInputError
from ailedger.provenance import prove_dataset, verify_dataset_proof_file
from ailedger.provenance.datasets import commit_dataset, find_dataset, open_index
from ailedger.provenance.distributed import DaskEngine
from ailedger.provenance.entries import artifacts_dir
from tests.cli.clirun import run

# -- data: each kind cut into exactly k shards ------------------------------------------------------

N = 210  # records per dataset (divisible by 1, 2 and 7)


def _row(i: int) -> dict:
    j = i % (N - 3)
    return {"id": f"{j:05d}", "text": f"record number {j:05d}", "score": j % 7}


def make_data(tmp: Path, kind: str, k: int) -> tuple[list[str], int | None]:
    """(paths, unit_bytes) giving exactly k shards; the last 3 records repeat earlier ones."""
    if kind == "jsonl":
        p = tmp / "d.jsonl"
        lines = [json.dumps(_row(i), sort_keys=True) for i in range(N)]
        assert len({len(x) for x in lines}) == 1
        p.write_text("".join(x + "\n" for x in lines))
        return [str(p)], (N // k) * (len(lines[0]) + 1) - 1
    if kind == "csv":
        paths = []
        for s in range(k):
            p = tmp / f"d{s}.csv"
            with open(p, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["id", "text", "score"])
                for i in range(s * N // k, (s + 1) * N // k):
                    r = _row(i)
                    w.writerow([r["id"], r["text"], r["score"]])
            paths.append(str(p))
        return paths, None
    if kind == "files":
        d = tmp / "folder"
        d.mkdir()
        for i in range(N):
            (d / f"f{i:05d}.txt").write_text(json.dumps(_row(i), sort_keys=True))
        size = (d / "f00000.txt").stat().st_size
        return [str(d)], (N // k) * size
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = tmp / "d.parquet"
        rows = [_row(i) for i in range(N)]
        pq.write_table(pa.Table.from_pylist(rows), p, row_group_size=N // k)
        return [str(p)], None
    raise AssertionError(kind)


def candidates(kind: str) -> tuple[bytes, bytes]:
    """(a member, a non-member) candidate under the kind's normal form."""
    if kind == "csv":
        return b"id,text,score\n00005,record number 00005,5\n", b"id,text,score\n99999,nobody,1\n"
    return (json.dumps(_row(5), sort_keys=True).encode(),
            json.dumps({"id": "99999", "text": "nobody", "score": 1}, sort_keys=True).encode())


def _smt_parts(data: bytes) -> list:
    doc = json.loads(data.split(b"\n", 1)[1])
    return [(p["key"], p["result"], p["smt_proof"]) for p in doc["proofs"]]


@pytest.mark.parametrize("k", [1, 2, 7])
@pytest.mark.parametrize("kind", ["jsonl", "csv", "files", "parquet"])
def test_same_root_index_and_proofs(tmp_path, ledger, alice, engine, kind, k):
    paths, unit = make_data(tmp_path, kind, k)
    local = commit_dataset(ledger, paths, "single", alice, workers=1)
    local_files = {str(f.relative_to(local["index_dir"])): f.read_bytes()
                   for f in Path(local["index_dir"]).rglob("*.bin")}
    assert {"top.bin", "counts.bin", "shards/keys-00000.bin", "shards/levels-00000.bin"} <= set(local_files)
    builder = functools.partial(engine.build_index, unit_bytes=unit) if unit else engine.build_index
    dask = commit_dataset(ledger, paths, "distributed", alice, builder=builder)
    assert dask["engine"] == "dask" and dask["units"] == k and len(dask["shards"]) == k
    assert {s["worker_pid"] for s in dask["shards"]} <= set(engine.client.run(os.getpid).values())
    assert dask["root"] == local["root"]
    assert (dask["records"], dask["records_in"], dask["duplicates"]) == (N - 3, N, 3) == (
        local["records"], local["records_in"], local["duplicates"])
    assert {str(f.relative_to(dask["index_dir"])) for f in Path(dask["index_dir"]).rglob("*.bin")} == set(local_files)
    for f, b in local_files.items():
        assert (Path(dask["index_dir"]) / f).read_bytes() == b, f
    # the signed entries state the same rule and sources (digests, headers, counts)
    e1, e2 = ledger.entry(local["index"]).body, ledger.entry(dask["index"]).body
    assert {k2: v for k2, v in e1.items() if k2 != "name"} == {k2: v for k2, v in e2.items() if k2 != "name"}
    member, absent = candidates(kind)
    for cand, want in ((member, "member"), (absent, "absent")):
        d1, i1 = prove_dataset(ledger, "single", cand)
        d2, i2 = prove_dataset(ledger, "distributed", cand)
        assert i1["result"] == i2["result"] == want
        assert _smt_parts(d1) == _smt_parts(d2)
        assert verify_dataset_proof_file(d2, cand, ledger.vkey)["result"] == want


def test_private_mode_same_root_under_one_secret(tmp_path, ledger, alice, engine):
    paths, unit = make_data(tmp_path, "jsonl", 7)
    secret = b"s" * 32
    a = commit_dataset(ledger, paths, "p1", alice, private=True, secret=secret, workers=1)
    b = commit_dataset(ledger, paths, "p2", alice, private=True, secret=secret,
                       builder=functools.partial(engine.build_index, unit_bytes=unit))
    assert a["root"] == b["root"] and a["leaf"] == b["leaf"] == "hmac-sha256"


def test_bad_record_names_file_and_line_nothing_logged(tmp_path, ledger, alice, engine):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n' * 50 + "{not json\n" + '{"a": 2}\n' * 50)
    size = ledger.size
    with pytest.raises(BadInputError, match="line 51"):
        commit_dataset(ledger, [str(p)], "bad", alice, builder=functools.partial(engine.build_index, unit_bytes=100))
    assert ledger.size == size
    assert not [x for x in (artifacts_dir(ledger) / "datasets").glob("*") if x.name.startswith("staging")]


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    with pytest.raises(BadInputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:18801"), \
            DaskEngine("tcp://127.0.0.1:18801", connect_timeout=2):
        pass


def test_worker_killed_mid_commit_resumes_with_the_same_root(tmp_path, ledger, alice, cluster):
    """One of the two workers is SIGKILLed while shards are being hashed: Dask's nanny restarts it and
    the lost shards run again; the commit gives the single-process root, and nothing half-made is left."""
    p = tmp_path / "big.jsonl"
    with open(p, "w") as fh:
        fh.writelines(json.dumps({"i": i, "t": "y" * (i % 90)}) + "\n" for i in range(120_000))
    local = commit_dataset(ledger, [str(p)], "whole", alice, workers=1)
    size = ledger.size
    box: dict = {}
    with DaskEngine(cluster.scheduler_address) as eng:
        pids = sorted(eng.client.run(os.getpid).values())

        def go():
            try:
                box["res"] = commit_dataset(ledger, [str(p)], "killed", alice,
                                            builder=functools.partial(eng.build_index, unit_bytes=64 << 10))
            except Exception as e:  # noqa: BLE001 - reported below
                box["err"] = e

        t = threading.Thread(target=go)
        t.start()
        dsdir = artifacts_dir(ledger) / "datasets"
        deadline = time.time() + 60
        while time.time() < deadline and not list(dsdir.glob("staging-*.tmp/part-*")):
            time.sleep(0.01)
        time.sleep(0.2)
        assert "res" not in box, "the commit finished before a worker could be killed: make the data bigger"
        os.kill(pids[0], signal.SIGKILL)
        t.join(180)
        assert not t.is_alive()
        assert "err" not in box, box.get("err")
        new_pids = sorted(eng.client.run(os.getpid).values())
    assert pids[0] not in new_pids  # the worker really died (and its nanny started another)
    res = box["res"]
    assert res["root"] == local["root"] and res["records"] == local["records"]
    assert res["records_in"] == local["records_in"] == 120_000
    assert ledger.size == size + 1
    assert not list(dsdir.glob("staging-*"))
    idx, e = find_dataset(ledger, "killed")
    ix = open_index(ledger, idx, e.body)
    try:
        assert ix.root.hex() == local["root"] and ix.n == local["records"]
    finally:
        ix.close()


def test_worker_killed_while_partitions_build_gives_the_same_index(tmp_path, ledger, alice, cluster):
    """One worker is SIGKILLed while the partitions are being built (phase 2, inputs consumed as they are
    built): the tasks it ran or held run again and must give the same shards, so the logged root, the
    index files and the proofs are those of a single-process commit."""
    p = tmp_path / "big.jsonl"
    with open(p, "w") as fh:
        fh.writelines(json.dumps({"i": i, "t": "z" * (i % 50)}) + "\n" for i in range(150_000))
    local = commit_dataset(ledger, [str(p)], "whole", alice, workers=1, partitions_log2=8)
    a = Path(local["index_dir"])  # the same root: the Dask commit's index replaces this folder, so copy it now
    want = {str(f.relative_to(a)): f.read_bytes() for f in a.rglob("*") if f.is_file() and f.name != "entry"}
    assert len([f for f in want if f.startswith("shards/keys-")]) == 256
    box: dict = {}
    with DaskEngine(cluster.scheduler_address) as eng:
        pids = sorted(eng.client.run(os.getpid).values())

        def go():
            try:
                box["res"] = commit_dataset(ledger, [str(p)], "killed-in-build", alice, partitions_log2=8,
                                            builder=eng.build_index)
            except Exception as e:  # noqa: BLE001 - reported below
                box["err"] = e

        t = threading.Thread(target=go)
        t.start()
        dsdir = artifacts_dir(ledger) / "datasets"
        deadline = time.time() + 120
        while time.time() < deadline and len(list(dsdir.glob("staging-*.tmp/shards/keys-*.bin"))) < 8:
            time.sleep(0.005)
        assert "res" not in box, "the commit finished before a worker could be killed: make the data bigger"
        os.kill(pids[0], signal.SIGKILL)
        t.join(240)
        assert not t.is_alive()
        assert "err" not in box, box.get("err")
        assert pids[0] not in sorted(eng.client.run(os.getpid).values())
    res = box["res"]
    assert (res["root"], res["records"], res["records_in"]) == (local["root"], local["records"], local["records_in"])
    b = Path(res["index_dir"])
    got = {str(f.relative_to(b)): f.read_bytes() for f in b.rglob("*") if f.is_file() and f.name != "entry"}
    assert sorted(got) == sorted(want)  # no marker, no partial file, no input left behind
    for f, data in want.items():
        if f.endswith(".bin"):
            assert got[f] == data, f
    cand = json.dumps({"i": 77, "t": "z" * 27}).encode()
    data, info = prove_dataset(ledger, "killed-in-build", cand)
    assert info["result"] == "member" and verify_dataset_proof_file(data, cand, ledger.vkey)["result"] == "member"


def test_cli_dask_engine_local_cluster_and_errors(tmp_path):
    paths, _ = make_data(tmp_path, "jsonl", 2)
    from ailedger.tlog.ledger import Ledger

    def size() -> int:
        with Ledger.open(tmp_path / "lg", read_only=True) as lg:
            return int(lg.size)

    lg = Ledger.init(tmp_path / "lg", origin="test.example/dask")
    lg.identities.create("alice")
    lg.close()
    env = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "lg")}
    one = json.loads(run("dataset", "commit", *paths, "--name", "one", "--as", "alice", "--workers", "1",
                         "--json", env=env).stdout)
    two = json.loads(run("dataset", "commit", *paths, "--name", "two", "--as", "alice", "--engine", "dask",
                         "--workers", "2", "--json", env=env, timeout=180).stdout)
    assert two["root"] == one["root"] and two["engine"] == "dask" and two["workers"] == 2
    before = size()
    bad = run("dataset", "commit", *paths, "--name", "three", "--as", "alice", "--engine", "dask", "--scheduler",
              "tcp://127.0.0.1:18802", env=env, check=False, timeout=120)
    assert bad.returncode == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:18802" in bad.stderr
    wrong = run("dataset", "commit", *paths, "--name", "three", "--as", "alice", "--scheduler", "tcp://x:1",
                env=env, check=False)
    assert wrong.returncode == 2 and "--scheduler needs --engine dask" in wrong.stderr
    assert size() == before


def test_worker_killed_with_no_retries_left_fails_cleanly(tmp_path, ledger, alice):
    """With Dask allowed no retries, killing the only worker mid-hash stops the commit with a clear error
    before anything is signed: the log is unchanged and no staging folder is left."""
    import dask

    from ailedger.provenance.distributed import EngineError

    p = tmp_path / "big.jsonl"
    with open(p, "w") as fh:
        fh.writelines(json.dumps({"i": i, "t": "z" * (i % 90)}) + "\n" for i in range(120_000))
    size = ledger.size
    dsdir = artifacts_dir(ledger) / "datasets"
    box: dict = {}
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        c = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     host="127.0.0.1", silence_logs=40)
    try:
        with DaskEngine(c.scheduler_address) as eng:
            pid = next(iter(eng.client.run(os.getpid).values()))

            def go():
                try:
                    box["res"] = commit_dataset(ledger, [str(p)], "fails", alice,
                                                builder=functools.partial(eng.build_index, unit_bytes=64 << 10))
                except Exception as e:  # noqa: BLE001 - checked below
                    box["err"] = e

            t = threading.Thread(target=go)
            t.start()
            deadline = time.time() + 60
            while time.time() < deadline and not list(dsdir.glob("staging-*.tmp/part-*")):
                time.sleep(0.01)
            assert "res" not in box, "the commit finished before the worker could be killed"
            os.kill(pid, signal.SIGKILL)
            t.join(120)
            assert not t.is_alive()
    finally:
        c.close()
    assert isinstance(box.get("err"), EngineError), box
    assert "nothing was logged" in box["err"].message and "KilledWorker" in box["err"].message
    assert ledger.size == size
    assert not list(dsdir.glob("staging-*"))
