import hashlib
import http.client
import io
import os
import shutil
import subprocess
from urllib.parse import urlparse

import pytest

from ailedger.blobs.client import NodeClient
from ailedger.blobs.node import StorageNode
from ailedger.errors import NetworkError, VerificationError
from ailedger.provenance.shardproof import ShardHasher, verify_segment
from ailedger.server.auth import signed_headers


def put(client, data, tmp_path, name=None):
    p = tmp_path / "upload"
    p.write_bytes(data)
    client.put_shard(name or hashlib.sha256(data).hexdigest(), p)


def test_put_get_head_delete_and_proofs(make_nodes, writer, tmp_path):
    (node,) = make_nodes(1)
    c = NodeClient(node.url, signer=writer)
    data = os.urandom(50_000)
    name = hashlib.sha256(data).hexdigest()
    put(c, data, tmp_path)
    put(c, data, tmp_path)  # idempotent
    assert c.has_shard(name)
    buf = io.BytesIO()
    c.get_shard(name, len(data), buf)
    assert buf.getvalue() == data
    h = ShardHasher()
    h.update(data)
    _, root = h.finish()
    for i in (0, 1, 3):  # 50,000 bytes = 4 segments of 16 KiB
        seg, proof, size = c.challenge(name, i)
        verify_segment(root, size, i, seg, proof)
    assert c.health()["shards"] == 1
    c.delete_shard(name)
    assert not c.has_shard(name)
    with pytest.raises(NetworkError):
        c.get_shard(name, len(data), io.BytesIO())


def test_node_refuses_bytes_that_do_not_match_the_name(make_nodes, writer, tmp_path):
    (node,) = make_nodes(1)
    c = NodeClient(node.url, signer=writer)
    with pytest.raises(NetworkError) as ei:
        put(c, b"hello", tmp_path, name="00" * 32)
    assert ei.value.details["status"] == 400
    assert list(node.dir.iterdir()) == []


def test_short_body_is_refused(make_nodes, writer):
    (node,) = make_nodes(1)
    u = urlparse(node.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    conn.putrequest("PUT", "/v1/shards/" + "ab" * 32)
    conn.putheader("Content-Length", "100")
    for k, v in signed_headers("PUT", "/v1/shards/" + "ab" * 32, bytes.fromhex("ab" * 32), writer).items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(b"x" * 10)
    conn.sock.shutdown(1)  # half-close: the node sees end of body early
    r = conn.getresponse()
    assert r.status == 400
    assert [p for p in node.dir.iterdir() if not p.name.startswith(".")] == []


def test_capacity_full_answers_507(make_nodes, writer, tmp_path):
    (node,) = make_nodes(1, capacity=1000)
    c = NodeClient(node.url, signer=writer)
    put(c, os.urandom(900), tmp_path)
    with pytest.raises(NetworkError) as ei:
        put(c, os.urandom(200), tmp_path)
    assert ei.value.details["status"] == 507


def _tmpfs(path, size):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False, capture_output=True)
    return r.returncode == 0


def test_real_disk_full_answers_507(tmp_path, make_nodes, writer, allow_file):
    d = tmp_path / "small"
    if not _tmpfs(d, "256k"):
        pytest.skip("cannot mount a small tmpfs here (needs root): disk-full is covered by the capacity test")
    try:
        node = StorageNode(d, allow_file=allow_file).start()
        try:
            c = NodeClient(node.url, signer=writer)
            with pytest.raises(NetworkError) as ei:
                put(c, os.urandom(400_000), tmp_path)
            assert ei.value.details["status"] == 507
            put(c, os.urandom(10_000), tmp_path)  # still serves what fits
        finally:
            node.stop()
    finally:
        subprocess.run(["umount", str(d)], check=False)


def test_faulty_nodes_are_detected(make_nodes, writer, tmp_path):
    corrupt, vanish = make_nodes(1, fault="corrupt")[0], make_nodes(1, fault="vanish")[0]
    data = os.urandom(3 << 20)
    name = hashlib.sha256(data).hexdigest()
    for node in (corrupt, vanish):
        put(NodeClient(node.url, signer=writer), data, tmp_path)
    with pytest.raises(VerificationError):
        NodeClient(corrupt.url).get_shard(name, len(data), io.BytesIO())
    with pytest.raises(NetworkError):
        NodeClient(vanish.url).get_shard(name, len(data), io.BytesIO())
    with pytest.raises(NetworkError):
        NodeClient("http://127.0.0.1:1", timeout=2).health()
