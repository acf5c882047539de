import os
import struct

import pytest

from ailedger.errors import BadInputError, NotFoundError, VerificationError
from ailedger.provenance import (
    HashStats,
    hash_model_dir,
    lineage_graph,
    lineage_svg,
    lineage_text,
    prove_model_part,
    register_model,
    verify_model,
    verify_model_part,
)
from ailedger.provenance.manifest import Manifest

CS = 4096  # small chunks so the test model has many


def test_register_and_verify_exact(ledger, alice, model_dir):
    res = register_model(ledger, model_dir, "tiny", alice, chunk_size=CS, hyperparameters={"lr": "3e-4", "epochs": 2},
                         code_repo="https://example.org/train.git", code_commit="a" * 40)
    assert res["index"] >= 0 and res["files"] == 4
    e = ledger.entry(res["index"])
    assert e.type == "model.register" and e.body["manifest"]["root"] == res["manifest_root"]
    assert e.body["lineage"]["code"]["commit"] == "a" * 40
    rep = verify_model(ledger, model_dir)
    assert rep["ok"] and rep["name"] == "tiny"
    assert rep["record"]["signer"] == alice.did and rep["record"]["checkpoint"]["inclusion"] == "verified"
    assert rep["record"]["checkpoint"]["size"] > res["index"]


def test_tensor_change_is_located(ledger, alice, model_dir):
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    p = model_dir / "model.safetensors"
    data = bytearray(p.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    # flip one byte inside layer.0.weight (the last tensor)
    data[-10] ^= 0xFF
    p.write_bytes(bytes(data))
    rep = verify_model(ledger, model_dir)
    assert not rep["ok"]
    kinds = {(d["kind"], d.get("tensor")) for d in rep["differences"]}
    assert ("tensor", "layer.0.weight") in kinds
    assert ("tensor", "embed.weight") not in kinds
    chunks = [d for d in rep["differences"] if d["kind"] == "chunk"]
    assert len(chunks) == 1 and chunks[0]["path"] == "model.safetensors"
    assert n > 0


def test_missing_and_extra_files(ledger, alice, model_dir):
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    (model_dir / "config.json").unlink()
    (model_dir / "new.bin").write_bytes(b"x")
    rep = verify_model(ledger, model_dir, name="tiny")
    assert not rep["ok"]
    kinds = {(d["kind"], d["path"]) for d in rep["differences"]}
    assert ("missing", "config.json") in kinds and ("extra", "new.bin") in kinds


def test_incremental_rehash_only_changed_file(ledger, alice, model_dir):
    import time

    from ailedger.provenance.hashing import RACY_NS

    time.sleep(2 * RACY_NS / 1e9)  # files written within a timestamp tick of hashing are never cached
    s1 = HashStats()
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS, stats=s1)
    assert s1.files_hashed == 4
    (model_dir / "config.json").write_text('{"hidden": 33}\n')
    s2 = HashStats()
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS, stats=s2)
    assert s2.files_hashed == 1 and s2.bytes_hashed == len('{"hidden": 33}\n')
    # config.json was hashed right after it was written ("racy"): not cached, so read again
    s3 = HashStats()
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS, stats=s3)
    assert s3.files_hashed == 1 and s3.bytes_hashed == len('{"hidden": 33}\n')


def test_tensor_roots_and_manifest_roundtrip(model_dir):
    m = hash_model_dir(model_dir, chunk_size=CS)
    f = next(x for x in m.files if x.path == "model.safetensors")
    assert [t.name for t in f.tensors] == ["embed.weight", "layer.0.bias", "layer.0.weight"]
    # every tensor starts on a chunk boundary and is covered by its chunks exactly
    for t in f.tensors:
        cs = f.chunks[t.first_chunk:t.first_chunk + t.n_chunks]
        assert cs[0].offset == t.begin and cs[-1].offset + cs[-1].length == t.end
    m2 = Manifest.from_bytes(m.to_bytes())
    assert m2.root == m.root
    # chunk size changes the root, nothing else does
    assert hash_model_dir(model_dir, chunk_size=CS).root == m.root
    assert hash_model_dir(model_dir, chunk_size=CS * 2).root != m.root


def test_part_proofs_chunk_and_stream(ledger, alice, model_dir, tmp_path):
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    proof = prove_model_part(ledger, "tiny", "model.safetensors", chunk=2)
    assert proof.startswith(b"ailedger-model-part-proof/v1\n")
    rep = verify_model_part(proof, model_dir / "model.safetensors", ledger.vkey)
    assert rep["ok"] and rep["chunk"] == 2
    fproof = prove_model_part(ledger, "tiny", "model.safetensors")
    assert verify_model_part(fproof, model_dir / "model.safetensors", ledger.vkey)["ok"]
    data = bytearray((model_dir / "model.safetensors").read_bytes())
    data[3 * CS + 5] ^= 1
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(VerificationError) as ei:
        verify_model_part(fproof, bad, ledger.vkey)
    assert "chunk" in ei.value.message
    k = ei.value.details["chunk"]
    with pytest.raises(VerificationError):
        verify_model_part(prove_model_part(ledger, "tiny", "model.safetensors", chunk=k), bad, ledger.vkey)
    # the neighbouring chunk still verifies from the modified file
    assert verify_model_part(prove_model_part(ledger, "tiny", "model.safetensors", chunk=k + 1), bad,
                             ledger.vkey)["ok"]
    # a proof checked under another log's key fails
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ailedger.tlog.note import Signer
    other = Signer("test.example/ledger", Ed25519PrivateKey.generate()).vkey
    with pytest.raises(VerificationError):
        verify_model_part(proof, model_dir / "model.safetensors", other)


def test_lineage_chain(ledger, alice, model_dir, tmp_path):
    register_model(ledger, model_dir, "base", alice, chunk_size=CS)
    (model_dir / "adapter.bin").write_bytes(b"lora")
    register_model(ledger, model_dir, "chat", alice, chunk_size=CS, base="base")
    g = lineage_graph(ledger, "base")
    names = {n["name"] for n in g["nodes"]}
    assert names == {"base", "chat"}
    assert g["edges"][0]["relation"] == "fine-tuned from"
    assert "--fine-tuned-->" in lineage_text(g)
    svg = lineage_svg(g)
    assert svg.startswith("<svg") and "chat" in svg
    with pytest.raises(NotFoundError):
        register_model(ledger, model_dir, "x", alice, base="nope")


def _size(ledger):
    return ledger.size


def test_bad_inputs_log_nothing(ledger, alice, tmp_path, model_dir):
    n0 = _size(ledger)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInputError, match="no files"):
        register_model(ledger, empty, "e", alice)
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    os.symlink(outside, model_dir / "link.txt")
    with pytest.raises(BadInputError, match="link.txt.*leaving"):
        register_model(ledger, model_dir, "m", alice)
    # asked for: allowed
    register_model(ledger, model_dir, "m", alice, follow_external_symlinks=True)
    n1 = _size(ledger)
    assert n1 == n0 + 1
    os.unlink(model_dir / "link.txt")
    os.symlink(tmp_path / "nothing", model_dir / "dangling")
    with pytest.raises(BadInputError, match="dangling"):
        register_model(ledger, model_dir, "m", alice)
    os.unlink(model_dir / "dangling")
    os.mkfifo(model_dir / "fifo")
    with pytest.raises(BadInputError, match="fifo.*regular"):
        register_model(ledger, model_dir, "m", alice)
    os.unlink(model_dir / "fifo")
    # a broken safetensors header names the file
    (model_dir / "broken.safetensors").write_bytes(struct.pack("<Q", 10) + b"{not json}")
    with pytest.raises(BadInputError, match="broken.safetensors"):
        register_model(ledger, model_dir, "m", alice)
    os.unlink(model_dir / "broken.safetensors")
    assert _size(ledger) == n1


def test_file_changing_while_hashed(ledger, alice, model_dir):
    n0 = ledger.size
    target = model_dir / "sub" / "tokenizer.txt"

    def touch(rel, i, n):
        if rel == "sub/tokenizer.txt" and i == 0:
            with open(target, "ab") as f:
                f.write(b"more")

    from ailedger.provenance.hashing import hash_model_dir as h
    with pytest.raises(BadInputError, match="tokenizer.txt changed while"):
        h(model_dir, chunk_size=CS, on_chunk=touch)
    assert ledger.size == n0


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file; covered by the non-root subprocess test")
    d = tmp_path / "m"
    d.mkdir()
    (d / "a.bin").write_bytes(b"a")
    os.chmod(d / "a.bin", 0)
    with pytest.raises(BadInputError, match="a.bin"):
        hash_model_dir(d)


def test_unreadable_file_as_other_user():
    """As root every file is readable, so a forked child drops to 'nobody' and hashes a folder
    holding a file only root may read."""
    import shutil
    import tempfile
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    d = tempfile.mkdtemp(prefix="ailedger-unreadable-")
    try:
        os.chmod(d, 0o755)
        for name, mode in (("ok.bin", 0o644), ("locked.bin", 0o600)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"data")
            os.chmod(os.path.join(d, name), mode)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(r)
                os.setgid(65534)
                os.setuid(65534)
                try:
                    hash_model_dir(d)
                    os.write(w, b"no error")
                except BadInputError as e:
                    os.write(w, e.message.encode())
                    code = 3
            finally:
                os._exit(code)
        os.close(w)
        msg = os.read(r, 4096).decode()
        os.close(r)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 3, msg
        assert "locked.bin" in msg and "permission" in msg
    finally:
        shutil.rmtree(d)


def test_mmap_and_pread_readers_agree(tmp_path, monkeypatch):
    """The mmap reader (large unaligned chunks) gives the piecewise pread reader's digests."""
    import random

    from ailedger.provenance import hashing
    from tests.provenance.conftest import write_safetensors

    rng = random.Random(1)
    d = tmp_path / "m"
    d.mkdir()
    write_safetensors(d / "w.safetensors", {f"t{i}": ("U8", (n,), rng.randbytes(n))
                                            for i, n in enumerate((70001, 200003, 65536, 131071))}, pad_to=1)
    monkeypatch.setattr(hashing, "READ_MODE", "mmap")
    a = hash_model_dir(d, chunk_size=1 << 16)
    monkeypatch.setattr(hashing, "READ_MODE", "pread")
    monkeypatch.setattr(hashing, "PIECE", 5000)  # pieces that do not divide the chunks
    b = hash_model_dir(d, chunk_size=1 << 16)
    assert a.root == b.root
    assert any(c.offset % 4096 and c.length >= 1 << 16 for c in a.files[0].chunks)


def test_unrelated_directory_is_not_matched(ledger, alice, model_dir, tmp_path):
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.bin").write_bytes(b"unrelated")
    with pytest.raises(NotFoundError, match="no registered model matches"):
        verify_model(ledger, other)
    rep = verify_model(ledger, other, name="tiny")
    assert not rep["ok"] and {d["kind"] for d in rep["differences"]} >= {"missing", "extra"}


def test_record_body_golden(ledger, alice, tmp_path):
    """The model.register body is a stable function of the files and the options (schema v1)."""
    import hashlib

    from ailedger.encoding.canonical import canonical_json
    from tests.provenance.conftest import write_safetensors

    d = tmp_path / "golden"
    d.mkdir()
    write_safetensors(d / "m.safetensors", {"w": ("U8", (6000,), bytes(range(250)) * 24),
                                            "b": ("U8", (10,), b"0123456789")})
    (d / "config.json").write_text('{"hidden": 32}\n')
    res = register_model(ledger, d, "tiny", alice, chunk_size=CS, hyperparameters={"epochs": 2},
                         code_repo="https://example.org/t.git", code_commit="c" * 40, metadata={"card": "x"})
    e = ledger.entry(res["index"])
    assert e.type == "model.register" and e.v == 1
    assert sorted(e.body) == ["files", "lineage", "manifest", "metadata", "name"]
    assert e.body["manifest"]["format"] == "ailedger-manifest/v1"
    got = hashlib.sha256(canonical_json(e.body)).hexdigest()
    assert got == GOLDEN_BODY_SHA256


GOLDEN_BODY_SHA256 = "36bf357e25e235598fc963b76be16e6b36461373a79581f1a02a5579060f217b"
