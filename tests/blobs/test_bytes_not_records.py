"""Blobs answer from bytes re-read, not from a cache or a file's presence (issue 17 sweep):
`model push` re-reads the local copy (the hash cache once passed a byte flipped with its mtime put
back), and a node vouches for a shard it already holds only if that copy still hashes to its name."""

import os
import shutil
import subprocess
import time

import pytest

from ailedger.blobs.artifacts import push_model
from ailedger.errors import VerificationError
from ailedger.provenance import register_model


def test_push_refuses_a_copy_changed_in_place_with_its_mtime_put_back(ledger, people, make_nodes, tmp_path):
    nodes = [n.url for n in make_nodes(3)]
    m = tmp_path / "m"
    m.mkdir()
    (m / "config.json").write_text('{"layers": 2}')
    (m / "weights.bin").write_bytes(os.urandom(300_000))
    time.sleep(0.1)  # past the "racy" window: registering fills the hash cache
    register_model(ledger, m, "tiny", people["alice"])
    w = m / "weights.bin"
    shutil.copy2(w, tmp_path / "ref")
    with open(w, "r+b") as f:
        f.seek(1234)
        b = f.read(1)
        f.seek(1234)
        f.write(bytes([b[0] ^ 0xFF]))
    subprocess.run(["touch", "-r", str(tmp_path / "ref"), str(w)], check=True)
    n0 = ledger.size
    with pytest.raises(VerificationError, match="is not model tiny"):
        push_model(ledger, "tiny", str(m), nodes, people["alice"], k=2, n=3)
    assert ledger.size == n0  # no blob.put, no blob.attach


def test_a_second_upload_replaces_a_copy_that_rotted_on_the_node(make_nodes, writer, tmp_path):
    """A node answers an upload of a shard it already has with "existing" only if its copy still
    hashes to the shard's name; otherwise (bit rot, a damaged disk) the upload replaces it.  Before,
    the file's presence stood in for its bytes, so re-placing a rebuilt shard (repair) on the node
    that held a rotten copy recorded that copy as healthy."""
    import hashlib
    import io

    from ailedger.blobs.client import NodeClient

    (node,) = make_nodes(1)
    c = NodeClient(node.url, signer=writer)
    data = os.urandom(40_000)
    name = hashlib.sha256(data).hexdigest()
    up = tmp_path / "up"
    up.write_bytes(data)
    c.put_shard(name, up)
    stored = node.dir / name
    raw = bytearray(stored.read_bytes())
    raw[777] ^= 1
    stored.write_bytes(bytes(raw))
    with pytest.raises(VerificationError):
        c.get_shard(name, len(data), io.BytesIO())
    c.put_shard(name, up)  # the repair's upload
    buf = io.BytesIO()
    c.get_shard(name, len(data), buf)
    assert buf.getvalue() == data
