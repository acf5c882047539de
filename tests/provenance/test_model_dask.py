"""`model register --engine dask`: a model folder hashed on real Dask workers (a LocalCluster, or a
scheduler and workers on two loopback hosts, all started by the tests) gives exactly the manifest of
a single-host register; a new version re-hashes only the files that changed and says so; `model
verify` re-reads every byte whatever the cache holds (issue 22 part 1, models; issue 17's cache rule)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from ailedger.errors import BadInputError
from ailedger.provenance import HashStats, hashing, register_model, verify_model
from ailedger.provenance.distributed import DaskEngine, EngineError
from ailedger.provenance.hashing import hash_model_dir
from ailedger.provenance.model_distributed import DaskModelHasher, merge_scans, plan_tasks, scan_host
from tests.cli.clirun import run
from tests.provenance.conftest import write_safetensors

CS = 4096


def _settle():
    """Files written within a timestamp tick of being hashed are never cached: wait that out."""
    time.sleep(2 * hashing.RACY_NS / 1e9)


def make_model(d: Path, seed: int = 1, shards: int = 3, tensors: int = 12) -> Path:
    """A sharded checkpoint (safetensors shards of odd-sized tensors), its index, config and README."""
    import random

    rnd = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        ts = {f"layers.{s}.{i}.weight": ("F32", [n // 4], rnd.randbytes(n))
              for i, n in enumerate(4 * rnd.randrange(1, 9000) for _ in range(tensors))}
        write_safetensors(d / f"model-{s + 1:05d}-of-{shards:05d}.safetensors", ts)
    (d / "config.json").write_text(json.dumps({"hidden": 64, "seed": seed}))
    (d / "README.md").write_text("# a model\n")
    (d / "tokenizer").mkdir(exist_ok=True)
    (d / "tokenizer" / "vocab.bin").write_bytes(rnd.randbytes(50_000))
    (d / "empty.txt").write_bytes(b"")
    return d


@pytest.mark.parametrize("chunk_size", [CS, 65536, 1 << 20])
@pytest.mark.parametrize("task_bytes", [1, 20_000, 300_000, 1 << 30])
def test_same_manifest_as_single_host(tmp_path_factory, engine, chunk_size, task_bytes):
    """Whatever the chunking and the task size (one chunk per task .. everything in one task), the
    manifest (root, every chunk digest, every tensor) equals the single-host one; both workers hash."""
    d = tmp_path_factory.getbasetemp() / "same-model"
    if not d.exists():
        make_model(d)
    single = hash_model_dir(d, chunk_size=chunk_size)
    h = DaskModelHasher(engine, task_bytes=task_bytes)
    st = HashStats()
    m = h.hash_model_dir(d, chunk_size=chunk_size, stats=st)
    assert m.root == single.root
    assert m == single  # every file, chunk digest and tensor
    assert st.files_hashed == st.files == len(single.files) and st.bytes_hashed == single.total_bytes
    assert h.last["hosts"] == ["127.0.0.1"] and h.last["workers"] == 2
    if task_bytes == 1:  # one chunk per task: many tasks, spread over both workers
        assert h.last["tasks"] == sum(max(1, len(f.chunks)) for f in single.files)  # an empty file: a task too
        assert len(h.last["by_worker_pid"]) == 2
    if task_bytes == 1 << 30:
        assert h.last["tasks"] == 1


def test_plan_tasks_covers_every_chunk_once(tmp_path):
    make_model(tmp_path / "m")
    s = scan_host(str(tmp_path / "m"), CS, False, (), True)
    files = merge_scans({"h1": s}, str(tmp_path / "m"))
    for tb in (1, CS, 3 * CS + 1, 10**9):
        tasks = plan_tasks(list(enumerate(files)), tb, frozenset({"h1"}))
        seen: dict[int, list[tuple[int, int]]] = {}
        for where, pieces, nbytes in tasks:
            assert where is None  # every host holds every file: no restriction
            assert nbytes == sum(ln for fid, a, b in pieces for _, ln in files[fid].plan[a:b])
            assert nbytes <= max(tb, max((ln for fid, a, b in pieces for _, ln in files[fid].plan[a:b]), default=0))
            for fid, a, b in pieces:
                seen.setdefault(fid, []).append((a, b))
        assert seen[[f.rel for f in files].index("empty.txt")] == [(0, 0)]  # checked by a task, no bytes
        for fid, f in enumerate(files):
            spans = sorted(seen.get(fid, []))
            covered = [i for a, b in spans for i in range(a, b)]
            assert covered == list(range(len(f.plan)))
    with pytest.raises(BadInputError, match="task bytes must be positive"):
        plan_tasks(list(enumerate(files)), 0, frozenset({"h1"}))


def test_two_hosts_holding_different_files_disagreeing_copy_refused(tmp_path):
    """merge_scans from two real folders: files held by one host each are merged; a file held by both
    with different sizes is refused naming it and both hosts."""
    full = make_model(tmp_path / "full")
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(full, a)
    shutil.copytree(full, b)
    (a / "model-00002-of-00003.safetensors").unlink()
    (b / "model-00001-of-00003.safetensors").unlink()
    files = merge_scans({"h1": scan_host(str(a), CS, False, (), True),
                         "h2": scan_host(str(b), CS, False, (), True)}, "x")
    assert [f.rel for f in files] == [f.path for f in hash_model_dir(full, chunk_size=CS).files]
    held = {f.rel: sorted(f.by_host) for f in files}
    assert held["model-00001-of-00003.safetensors"] == ["h1"]
    assert held["model-00002-of-00003.safetensors"] == ["h2"]
    assert held["README.md"] == ["h1", "h2"]
    tasks = plan_tasks(list(enumerate(files)), 10**9, frozenset({"h1", "h2"}))
    assert {where for where, _, _ in tasks} == {frozenset({"h1"}), frozenset({"h2"}), None}
    (b / "README.md").write_text("# another model entirely\n")
    with pytest.raises(BadInputError, match=r"README.md differs between hosts h1 \(10 bytes\) and h2 \(25 bytes\)"):
        merge_scans({"h1": scan_host(str(a), CS, False, (), True), "h2": scan_host(str(b), CS, False, (), True)},
                    "x")
    with pytest.raises(BadInputError, match="holds no files on any host"):
        merge_scans({"h1": scan_host(str(tmp_path / "nowhere"), CS, False, (), True)}, "nowhere")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_hosts(tmp_path):
    """A scheduler and one worker on each of two loopback hosts (127.0.0.1 and 127.0.0.2): Dask sees two
    hosts, as with two machines; the tests give each its own folder with --host-root."""
    port = 18310
    procs = []
    dask_bin = str(Path(sys.executable).parent / "dask")
    try:
        procs.append(subprocess.Popen([dask_bin, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--dashboard-address", ":0"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        for host in ("127.0.0.1", "127.0.0.2"):
            procs.append(subprocess.Popen([dask_bin, "worker", f"tcp://127.0.0.1:{port}", "--host", host,
                                           "--nthreads", "1", "--no-dashboard"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        addr = f"tcp://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                with distributed.Client(addr, timeout=5) as c:
                    c.wait_for_workers(2, timeout=30)
                    break
            except (OSError, TimeoutError):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield addr
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_each_host_hashes_the_files_it_holds(tmp_path, two_hosts):
    """Two hosts, each holding part of the model (and both the small files): each task runs on a host
    holding its file; the root equals a single-host hash of the whole folder."""
    full = make_model(tmp_path / "full")
    a, b = tmp_path / "host1", tmp_path / "host2"
    shutil.copytree(full, a)
    shutil.copytree(full, b)
    (a / "model-00002-of-00003.safetensors").unlink()
    (a / "model-00003-of-00003.safetensors").unlink()
    (b / "model-00001-of-00003.safetensors").unlink()
    single = hash_model_dir(full, chunk_size=CS)
    with DaskEngine(two_hosts) as eng:
        h = DaskModelHasher(eng, task_bytes=64 << 10, roots={"127.0.0.1": str(a), "127.0.0.2": str(b)})
        m = h.hash_model_dir("/nonexistent/on/purpose", chunk_size=CS)
        assert m == single and m.root == single.root
        assert h.last["hosts"] == ["127.0.0.1", "127.0.0.2"]
        assert h.last["hosts_holding"] == {"127.0.0.1": len(single.files) - 2, "127.0.0.2": len(single.files) - 1}
        assert len(h.last["by_worker_pid"]) == 2  # both hosts hashed
        # through the CLI: --scheduler and one --host-root per host, the same root logged
        from ailedger.tlog.ledger import Ledger

        lg = Ledger.init(tmp_path / "lg", origin="test.example/two-hosts")
        lg.identities.create("alice")
        lg.close()
        out = json.loads(run("model", "register", "/nonexistent/on/purpose", "--name", "split", "--as", "alice",
                             "--chunk-size", str(CS), "--engine", "dask", "--scheduler", two_hosts, "--host-root",
                             f"127.0.0.1={a}", "--host-root", f"127.0.0.2={b}", "--json",
                             env={**os.environ, "AILEDGER_LEDGER": str(tmp_path / "lg")}, timeout=180).stdout)
        assert out["manifest_root"] == single.root.hex() and out["engine"]["hosts"] == ["127.0.0.1", "127.0.0.2"]
        # a host named that runs no worker is bad input
        with pytest.raises(BadInputError, match="10.9.9.9, which runs no worker"):
            DaskModelHasher(eng, roots={"10.9.9.9": str(a)}).hash_model_dir(str(full), chunk_size=CS)
        # a copy on one host that is not the same file: refused before any hashing
        (b / "config.json").write_text("{}")
        with pytest.raises(BadInputError, match="config.json differs between hosts 127.0.0.1"):
            DaskModelHasher(eng, roots={"127.0.0.1": str(a), "127.0.0.2": str(b)}).hash_model_dir(
                "/x", chunk_size=CS)


def test_worker_killed_mid_hash_gives_the_same_root(tmp_path, cluster):
    """One of two workers is SIGKILLed while tasks run: Dask's nanny restarts it, the lost tasks run
    again, and the manifest is the single-host one."""
    d = tmp_path / "big"
    d.mkdir()
    for i in range(4):
        (d / f"part{i}.bin").write_bytes(os.urandom(48 << 20))
    single = hash_model_dir(d)
    box: dict = {}
    with DaskEngine(cluster.scheduler_address) as eng:
        pids = sorted(eng.client.run(os.getpid).values())
        h = DaskModelHasher(eng, task_bytes=4 << 20)

        def go():
            try:
                box["m"] = h.hash_model_dir(d)
            except Exception as e:  # noqa: BLE001 - reported below
                box["err"] = e

        t = threading.Thread(target=go)
        t.start()
        deadline = time.time() + 60
        while time.time() < deadline and not any(eng.client.processing().values()):
            time.sleep(0.005)
        time.sleep(0.05)
        assert "m" not in box, "the hashing finished before a worker could be killed: make the model bigger"
        os.kill(pids[0], signal.SIGKILL)
        t.join(180)
        assert not t.is_alive()
        assert "err" not in box, box.get("err")
        new_pids = sorted(eng.client.run(os.getpid).values())
    assert pids[0] not in new_pids
    assert box["m"] == single


def test_worker_killed_with_no_retries_left_fails_cleanly(tmp_path, ledger, alice):
    """With Dask allowed no retries, killing the only worker mid-hash stops the register with a clear
    error before anything is signed: the log is unchanged."""
    import dask

    d = tmp_path / "big"
    d.mkdir()
    for i in range(8):  # 256 MiB in 1 MiB tasks: hashing outlasts the kill even on a quiet machine
        (d / f"part{i}.bin").write_bytes(os.urandom(32 << 20))
    size = ledger.size
    box: dict = {}
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        c = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     host="127.0.0.1", silence_logs=40)
    try:
        with DaskEngine(c.scheduler_address) as eng:
            pid = next(iter(eng.client.run(os.getpid).values()))
            h = DaskModelHasher(eng, task_bytes=1 << 20)

            def go():
                try:
                    box["res"] = register_model(ledger, d, "doomed", alice, hasher=h.hash_model_dir)
                except Exception as e:  # noqa: BLE001 - checked below
                    box["err"] = e

            t = threading.Thread(target=go)
            t.start()
            deadline = time.time() + 60
            while time.time() < deadline and not any(eng.client.processing().values()):
                time.sleep(0.005)
            # kill at once: any task still processing on the only worker is then lost for good
            assert "res" not in box, "the hashing finished before the worker could be killed"
            os.kill(pid, signal.SIGKILL)
            t.join(180)
            assert not t.is_alive()
    finally:
        c.close()
    assert isinstance(box.get("err"), EngineError), box
    assert "nothing was logged" in box["err"].message
    assert ledger.size == size


def test_unreachable_scheduler_and_bad_options_via_cli(tmp_path):
    from ailedger.tlog.ledger import Ledger

    make_model(tmp_path / "m")
    lg = Ledger.init(tmp_path / "lg", origin="test.example/model-dask")
    lg.identities.create("alice")
    lg.close()
    env = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "lg")}

    def size() -> int:
        with Ledger.open(tmp_path / "lg", read_only=True) as x:
            return int(x.size)

    before = size()
    bad = run("model", "register", str(tmp_path / "m"), "--name", "m", "--as", "alice", "--engine", "dask",
              "--scheduler", "tcp://127.0.0.1:18399", env=env, check=False, timeout=120)
    assert bad.returncode == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:18399" in bad.stderr
    for args, msg in ((["--scheduler", "tcp://x:1"], "--scheduler and --host-root need --engine dask"),
                      (["--engine", "dask", "--host-root", "nohost"], "--host-root must look like HOST=PATH"),
                      (["--engine", "dask", "--host-root", "h=rel/path"], "the path must be absolute"),
                      (["--previous", "nosuchmodel"], "no registered model named 'nosuchmodel'")):
        r = run("model", "register", str(tmp_path / "m"), "--name", "m", "--as", "alice", *args, env=env,
                check=False)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    assert size() == before


def test_cli_dask_register_equals_local_and_second_version_is_incremental(tmp_path, cluster):
    """Through the CLI: `--engine dask --workers 2` (a LocalCluster started by the command) logs the
    manifest root a local register gives (later runs use `--scheduler`, the tests' cluster); a second version after a README edit and one replaced shard
    re-hashes exactly those two files, reuses the rest, and says which changed since version 1."""
    from ailedger.tlog.ledger import Ledger

    d = make_model(tmp_path / "m")
    for n in ("lg", "lg2"):
        lg = Ledger.init(tmp_path / n, origin=f"test.example/{n}")
        lg.identities.create("alice")
        lg.close()
    env = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "lg")}
    env2 = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "lg2")}
    _settle()
    local = json.loads(run("model", "register", str(d), "--name", "m", "--as", "alice", "--json", env=env2).stdout)
    one = json.loads(run("model", "register", str(d), "--name", "m", "--as", "alice", "--engine", "dask",
                         "--workers", "2", "--json", env=env, timeout=180).stdout)
    assert one["manifest_root"] == local["manifest_root"]
    assert one["engine"]["engine"] == "dask" and one["engine"]["workers"] == 2
    assert one["incremental"]["rehashed_files"] == one["files"] and one["incremental"]["previous"] is None
    # version 2: README edited, shard 2 replaced (a new file), everything else untouched
    (d / "README.md").write_text("# a model\n\nversion 2\n")
    shard = d / "model-00002-of-00003.safetensors"
    tmp = d / "new.tmp"
    write_safetensors(tmp, {"layers.1.0.weight": ("F32", [300], os.urandom(1200))})
    os.replace(tmp, shard)
    _settle()
    r = run("model", "register", str(d), "--name", "m", "--as", "alice", "--engine", "dask", "--scheduler",
            cluster.scheduler_address, env=env, timeout=180)
    assert "re-hashed 2 file(s)" in r.stdout and "README.md, model-00002-of-00003.safetensors" in r.stdout
    assert f"reused {one['files'] - 2} file(s)" in r.stdout
    assert "changed: README.md, model-00002-of-00003.safetensors" in r.stdout
    assert f"previous version: m #{one['index']}" in r.stdout
    two_root = hash_model_dir(d).root.hex()
    assert two_root in r.stdout
    # the local engine reads the same cache: a third register of the unchanged folder reads nothing
    three = json.loads(run("model", "register", str(d), "--name", "m", "--as", "alice", "--previous", "m@1",
                           "--json", env=env).stdout)
    inc = three["incremental"]
    assert three["manifest_root"] == two_root
    assert inc["rehashed_files"] == 0 and inc["reused_files"] == one["files"]
    assert inc["previous"]["index"] == one["index"]
    assert inc["previous"]["changed"] == ["README.md", "model-00002-of-00003.safetensors"]
    assert inc["previous"]["unchanged_files"] == one["files"] - 2
    # verify, local and on dask: every byte re-read, nothing from the cache
    for extra in ([], ["--engine", "dask", "--scheduler", cluster.scheduler_address]):
        v = json.loads(run("model", "verify", str(d), "--json", *extra, env=env, timeout=180).stdout)
        assert v["ok"] and v["manifest_root"] == two_root
        assert v["hashing"]["files_read"] == one["files"] and "from_cache" not in v["hashing"]


@pytest.mark.parametrize("use_dask", [False, True])
def test_incremental_register_then_flipped_byte_is_caught(tmp_path, ledger, alice, engine, use_dask):
    """A new version re-hashes only the changed files (and its manifest equals a fresh full hash); a
    byte flipped afterwards in a file the cache vouched for, with its size and mtime put back, is
    found by verify (which never reads the cache) and is re-hashed by the next register (ctime moved)."""
    d = make_model(tmp_path / "m")
    hasher = DaskModelHasher(engine, task_bytes=50_000).hash_model_dir if use_dask else hash_model_dir
    _settle()
    r1 = register_model(ledger, d, "m", alice, chunk_size=CS, hasher=hasher)
    n = r1["files"]
    assert r1["incremental"]["rehashed_files"] == n
    (d / "README.md").write_text("# a model, v2\n")
    shard = d / "model-00003-of-00003.safetensors"
    with open(shard, "r+b") as f:  # one tensor's bytes rewritten in place
        f.seek(shard.stat().st_size - 100)
        f.write(os.urandom(50))
    _settle()
    r2 = register_model(ledger, d, "m", alice, chunk_size=CS, hasher=hasher)
    inc = r2["incremental"]
    assert sorted(inc["rehashed"]) == ["README.md", "model-00003-of-00003.safetensors"]
    assert inc["reused_files"] == n - 2 and inc["rehashed_bytes"] == (d / "README.md").stat().st_size + \
        shard.stat().st_size
    assert inc["previous"]["index"] == r1["index"]
    assert inc["previous"]["changed"] == ["README.md", "model-00003-of-00003.safetensors"]
    assert r2["manifest_root"] == hash_model_dir(d, chunk_size=CS).root.hex()
    # the attack of issue 17 on a file the cache vouches for: flip a byte, put size and mtime back
    victim = d / "model-00001-of-00003.safetensors"
    st0 = os.stat(victim)
    with open(victim, "r+b") as f:
        f.seek(st0.st_size - 7)
        b = f.read(1)
        f.seek(st0.st_size - 7)
        f.write(bytes([b[0] ^ 0x20]))
    os.utime(victim, ns=(st0.st_atime_ns, st0.st_mtime_ns))
    st1 = os.stat(victim)
    assert (st1.st_size, st1.st_mtime_ns, st1.st_ino) == (st0.st_size, st0.st_mtime_ns, st0.st_ino)
    rep = verify_model(ledger, d, hasher=hasher)
    assert not rep["ok"] and rep["hashing"]["files_read"] == n
    assert any(x["path"] == victim.name and x["kind"] == "tensor" for x in rep["differences"])
    # and the next register is not fooled either: ctime moved, so the file is read again
    r3 = register_model(ledger, d, "m", alice, chunk_size=CS, hasher=hasher)
    assert r3["incremental"]["rehashed"] == [victim.name]
    assert r3["incremental"]["previous"]["changed"] == [victim.name]
    assert r3["manifest_root"] != r2["manifest_root"]


def test_symlinked_snapshot_reuses_unchanged_blobs(tmp_path, ledger, alice):
    """A Hugging Face cache keeps each revision as a folder of symlinks to content blobs: a new revision
    whose files point at the same blobs is served from the cache (keyed on the real path), and only
    the blob that is new is read."""
    blobs = tmp_path / "blobs"
    src = make_model(tmp_path / "src")
    blobs.mkdir()
    for f in sorted(src.rglob("*")):
        if f.is_file():
            (blobs / f.name).write_bytes(f.read_bytes())
    rev1, rev2 = tmp_path / "snapshots" / "rev1", tmp_path / "snapshots" / "rev2"
    for rev in (rev1, rev2):
        rev.mkdir(parents=True)
        for f in sorted(blobs.iterdir()):
            (rev / f.name).symlink_to(f)
    (blobs / "README.md.v2").write_text("# revision 2\n")
    (rev2 / "README.md").unlink()
    (rev2 / "README.md").symlink_to(blobs / "README.md.v2")
    _settle()
    r1 = register_model(ledger, rev1, "hf", alice, chunk_size=CS, follow_external_symlinks=True)
    r2 = register_model(ledger, rev2, "hf", alice, chunk_size=CS, follow_external_symlinks=True)
    assert r2["incremental"]["rehashed"] == ["README.md"]
    assert r2["incremental"]["reused_files"] == r1["files"] - 1
    assert r2["incremental"]["previous"]["changed"] == ["README.md"]
    assert r2["manifest_root"] == hash_model_dir(rev2, chunk_size=CS, follow_external_symlinks=True).root.hex()


def test_holder_gone_is_a_clear_error(tmp_path, engine):
    """A task only one (now absent) host may run does not wait forever: EngineError naming the file."""
    make_model(tmp_path / "m")
    h = DaskModelHasher(engine, holder_grace=1.0)
    files = merge_scans({"10.9.9.9": scan_host(str(tmp_path / "m"), CS, False, (), True)}, "m")
    pieces = plan_tasks(list(enumerate(files)), 10**9, frozenset({"10.9.9.9", "127.0.0.1"}))
    where, job, _ = pieces[0]
    assert where == frozenset({"10.9.9.9"})
    from ailedger.provenance.model_distributed import _hash_task

    fut = engine.client.submit(_hash_task, [], workers=sorted(where), allow_other_workers=False, pure=False)
    with pytest.raises(EngineError, match="no worker is left on the host"):
        h._collect([(fut, where, job)], files, {}, _NoBar(), [])


class _NoBar:
    def update(self, n: int) -> None:
        pass
