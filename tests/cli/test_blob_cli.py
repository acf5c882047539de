"""The blob and storage commands end to end, with real `ailedger storage node serve` processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from ailedger.blobs.client import NodeClient
from ailedger.cli.main import main
from ailedger.tlog.ledger import Ledger

AILEDGER = [sys.executable, "-m", "ailedger.cli.main"]


def run(*args, code=0):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == code, (r.exit_code, r.output, getattr(r, "stderr", ""))
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def node_procs(tmp_path):
    """Start `ailedger storage node serve` processes; they take writes from the did:keys in
    tmp_path/node-writers (``--allow-file``), which the tests fill with their identities."""
    procs = []
    writers = tmp_path / "node-writers"
    writers.touch()

    def start(count, *extra):
        urls = []
        for _ in range(count):
            port = free_port()
            d = tmp_path / f"node{len(procs)}"
            p = subprocess.Popen(AILEDGER + ["storage", "node", "serve", "--dir", str(d), "--port", str(port),
                                             "--allow-file", str(writers), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(p)
            urls.append(f"http://127.0.0.1:{port}")
        # a node starts in well under a second on an idle machine; a loaded one (CI neighbours) may take
        # many: wait up to 60 s each, failing at once with its stderr if the process exits
        for u, p in zip(urls, procs[-count:]):
            deadline = time.monotonic() + 60
            while True:
                try:
                    NodeClient(u, 1).health()
                    break
                except Exception:  # noqa: BLE001 - still starting
                    if p.poll() is not None:
                        raise RuntimeError(f"node {u} exited: {p.stderr.read().decode(errors='replace')}") from None
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"node {u} did not start within 60 s") from None
                    time.sleep(0.05)
        return urls, procs[-count:]

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def admit(tmp_path, did):
    with open(tmp_path / "node-writers", "a") as f:
        f.write(did + "\n")


def test_cid_and_car(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(bytes(range(256)) * 4096 * 3 + b"tail")
    assert run("blob", "cid", f).output.strip() == "bafybeigukq5tbragg62bski7zxijbvayq2vvaf6wndtuwcialml4c7y7xu"
    out = json.loads(run("blob", "cid", f, "--profile", "kubo-v1-legacy", "--json").output)
    assert out["cid"] == "bafybeiemvelfppncxxnfzfcsey5zcrumcnpe4qkyliogdsit335hoqsw7i"
    car = tmp_path / "f.car"
    run("blob", "car", f, "-o", car)
    r = json.loads(run("blob", "car", "--import", car, "-o", tmp_path / "back", "--json").output)
    assert r["blocks"] == r["verified"] == 5 and (tmp_path / "back").read_bytes() == f.read_bytes()
    # one flipped byte inside a block: refused, exit 1, nothing extracted
    raw = bytearray(car.read_bytes())
    raw[len(raw) // 2] ^= 1
    car.write_bytes(bytes(raw))
    r = CliRunner().invoke(main, ["blob", "car", "--import", str(car), "-o", str(tmp_path / "bad")])
    assert r.exit_code == 1 and "does not match its CID" in r.output
    assert not (tmp_path / "bad").exists()


def test_put_get_revoke_repair(tmp_path, node_procs, monkeypatch):
    led = Ledger.init(tmp_path / "ledger", origin="test.example/blob-cli")
    for name in ("alice", "bob"):
        admit(tmp_path, led.new_identity(name)[0].did)
    led.close()
    monkeypatch.setenv("AILEDGER_LEDGER", str(tmp_path / "ledger"))
    urls, procs = node_procs(5)
    bad_urls, _ = node_procs(1, "--fault", "corrupt")
    f = tmp_path / "in.bin"
    f.write_bytes(os.urandom(700_000))
    r = json.loads(run("blob", "put", f, "--nodes", ",".join(urls + bad_urls), "--k", 3, "--n", 6,
                       "--readers", "bob", "--as", "alice", "--json").output)
    cid = r["cid"]
    assert r["index"] >= 0 and len(r["placement"]) == 6
    run("blob", "get", cid, "-o", tmp_path / "out", "--as", "bob")
    assert (tmp_path / "out").read_bytes() == f.read_bytes()
    # the encrypted object itself: no key needed, and its IPFS CID is the blob's id
    run("blob", "get", cid, "-o", tmp_path / "enc", "--ciphertext")
    assert run("blob", "cid", tmp_path / "enc").output.strip() == cid
    assert f.read_bytes()[:64] not in (tmp_path / "enc").read_bytes()
    st = json.loads(run("blob", "status", cid, "--json").output)
    assert st["coding"]["k"] == 3 and len(st["readers"]) == 2
    # the corrupt node fails its storage challenge: audit exits 1
    r = CliRunner().invoke(main, ["blob", "audit", cid, "--json"])
    assert r.exit_code == 1
    # revoke bob: he is refused with a clear error
    run("blob", "revoke", cid, "bob", "--as", "alice")
    r = CliRunner().invoke(main, ["blob", "get", cid, "-o", str(tmp_path / "out2"), "--as", "bob"])
    assert r.exit_code == 2 and "not a reader" in r.output and not (tmp_path / "out2").exists()
    # two honest nodes go away; repair onto new nodes (the corrupt one is replaced too)
    for p in procs[:2]:
        p.send_signal(signal.SIGTERM)
        p.wait(5)
    spare, _ = node_procs(3)
    r = json.loads(run("blob", "repair", cid, "--nodes", ",".join(spare), "--as", "bob", "--json").output)
    assert len(r["rebuilt"]) == 3
    run("blob", "audit", cid)
    run("blob", "get", cid, "-o", tmp_path / "out3", "--as", "alice")
    assert (tmp_path / "out3").read_bytes() == f.read_bytes()
    # rotate: new key, new CID, old shards deleted; the old CID now points to the new one
    run("blob", "grant", cid, "bob", "--as", "alice")
    r = json.loads(run("blob", "revoke", cid, "bob", "--rotate", "--nodes", ",".join(urls[2:] + spare),
                       "--as", "alice", "--json").output)
    assert r["new"] != cid and r["deleted"] >= 6
    r2 = CliRunner().invoke(main, ["blob", "get", cid, "-o", str(tmp_path / "out4"), "--as", "alice"])
    assert r2.exit_code == 2 and r["new"] in r2.output
    # the old id was right: the hint names the command that fetches the new blob, not "wrong kind of CID"
    assert f"ailedger blob get {r['new']} -o FILE --as READER" in r2.output
    assert "plaintext" not in r2.output
    run("blob", "get", r["new"], "-o", tmp_path / "out4", "--as", "alice")
    assert (tmp_path / "out4").read_bytes() == f.read_bytes()


def test_model_and_dataset_push_pull_commands(tmp_path, node_procs, monkeypatch):
    from ailedger.provenance import commit_dataset, register_model

    led = Ledger.init(tmp_path / "ledger", origin="test.example/blob-cli")
    alice, _ = led.new_identity("alice")
    admit(tmp_path, alice.did)
    m = tmp_path / "m"
    m.mkdir()
    (m / "w.bin").write_bytes(os.urandom(50_000))
    register_model(led, m, "tiny", alice)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"a": 1}\n{"a": 2}\n')
    commit_dataset(led, [str(rows)], "rows", alice, workers=1)
    led.close()
    monkeypatch.setenv("AILEDGER_LEDGER", str(tmp_path / "ledger"))
    urls, _ = node_procs(3)
    nodes = ",".join(urls)
    run("model", "push", "tiny", m, "--nodes", nodes, "--k", 2, "--n", 3, "--as", "alice")
    run("model", "pull", "tiny", "-o", tmp_path / "m2", "--as", "alice")
    assert (tmp_path / "m2" / "w.bin").read_bytes() == (m / "w.bin").read_bytes()
    run("dataset", "push", "rows", rows, "--nodes", nodes, "--k", 2, "--n", 3, "--as", "alice")
    r = json.loads(run("dataset", "pull", "rows", "-o", tmp_path / "d2", "--as", "alice", "--json").output)
    assert r["verified"] and (tmp_path / "d2" / "rows.jsonl").read_bytes() == rows.read_bytes()
    r = CliRunner().invoke(main, ["model", "pull", "tiny", "-o", str(tmp_path / "m2"), "--as", "alice"])
    assert r.exit_code == 2 and "already exists" in r.output


def test_put_defaults_to_the_nodes_given_and_ids_flow_to_get(tmp_path, node_procs, monkeypatch):
    """`blob put` with three nodes and no --k/--n stores 2-of-3 (it used to ask for 30 nodes); what it
    prints (the CID, or its entry #N) is what `blob get` takes; `blob cid`'s plaintext CID is explained."""
    led = Ledger.init(tmp_path / "ledger", origin="test.example/blob-defaults")
    admit(tmp_path, led.new_identity("alice")[0].did)
    led.close()
    monkeypatch.setenv("AILEDGER_LEDGER", str(tmp_path / "ledger"))
    urls, _ = node_procs(3)
    f = tmp_path / "in.bin"
    f.write_bytes(os.urandom(50_000))
    out = run("blob", "put", f, "--nodes", ",".join(urls), "--as", "alice").output.splitlines()
    cid, line = out[0], out[1]
    assert line.startswith("entry #") and "2-of-3 on 3 nodes" in line
    index = int(line.split("#", 1)[1].split(" ", 1)[0])
    st = json.loads(run("blob", "status", f"#{index}", "--json").output)
    assert st["cid"] == cid and (st["coding"]["k"], st["coding"]["n"]) == (2, 3)
    run("blob", "get", f"#{index}", "-o", tmp_path / "a", "--as", "alice")
    got = run("blob", "get", cid, "--out", tmp_path / "b", "--as", "alice").output
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == f.read_bytes()
    plain = run("blob", "cid", f).output.strip()
    assert f"plaintext cid {plain}" in got  # what `blob get` prints after decrypting is what `blob cid` gives
    r = CliRunner().invoke(main, ["blob", "get", plain, "-o", str(tmp_path / "c"), "--as", "alice"])
    assert r.exit_code == 2 and "the CID `blob cid FILE` prints is the plaintext's" in r.output
    assert not (tmp_path / "c").exists()
    # one node given, the old default: refused before any upload, naming the fix
    r = CliRunner().invoke(main, ["blob", "put", str(f), "--nodes", urls[0], "--k", "10", "--n", "30",
                                  "--as", "alice"])
    assert r.exit_code == 2 and "1 storage node given, n = 30 shards need 30" in r.output
    assert "pass --k 1 --n 1" in r.output
