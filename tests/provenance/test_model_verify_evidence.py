"""`model verify` answers from the bytes, never from a cache, an index or a damaged header.

Issue 17: a byte flipped in place with its mtime put back (`touch -r`) verified as OK (the hash
cache answered); a truncated safetensors file stopped verify as bad input (exit 2); a header edit
showed only as "chunk 0 changed"; an exact match rested on the term index alone."""

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import time

import click
import pytest
from click.testing import CliRunner

from ailedger.provenance import HashStats, hashing, register_model, verify_model
from tests.provenance.conftest import write_safetensors

CS = 4096


def _settle():
    """Files written within a timestamp tick of being hashed are never cached: wait that out, so the
    cache is as full as it can be (the attack needs a cache hit)."""
    time.sleep(2 * getattr(hashing, "RACY_NS", 50_000_000) / 1e9)


def _flip_in_place_keep_mtime(path, offset):
    """The attack from the issue: flip one byte in place, then `touch -r` the untouched copy."""
    ref = str(path) + ".ref"
    shutil.copy2(path, ref)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))
    subprocess.run(["touch", "-r", ref, str(path)], check=True)
    assert os.stat(path).st_mtime_ns == os.stat(ref).st_mtime_ns
    os.unlink(ref)


def _cli():
    from ailedger.cli import model as model_cli

    @click.group()
    def main():
        pass

    model_cli.register(main)
    return main


def test_flipped_byte_with_mtime_restored_is_found(ledger, alice, model_dir):
    _settle()
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    p = model_dir / "model.safetensors"
    before = os.stat(p)
    _flip_in_place_keep_mtime(p, p.stat().st_size - 10)  # inside layer.0.weight
    after = os.stat(p)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    rep = verify_model(ledger, model_dir)
    assert not rep["ok"]
    assert ("tensor", "layer.0.weight") in {(d["kind"], d.get("tensor")) for d in rep["differences"]}
    assert rep["hashing"]["files_read"] == 4 and "from_cache" not in rep["hashing"]
    # through the CLI: exit 1, MISMATCH
    r = CliRunner().invoke(_cli(), ["model", "verify", str(model_dir), "--ledger", str(ledger.path)])
    assert r.exit_code == 1, r.output
    assert "MISMATCH" in r.output and "layer.0.weight" in r.output


def test_trust_cache_is_explicit_and_reported(ledger, alice, model_dir):
    _settle()
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    rep = verify_model(ledger, model_dir, trust_cache=True)
    assert rep["ok"] and rep["hashing"]["from_cache"]["files"] == 4 and rep["hashing"]["files_read"] == 0
    r = CliRunner().invoke(_cli(), ["model", "verify", str(model_dir), "--trust-cache", "--ledger",
                                    str(ledger.path)])
    assert r.exit_code == 0 and "4 of 4 files" in r.output and "NOT re-read" in r.output, r.output
    # the cache is keyed on ctime, which `touch -r` cannot put back: even --trust-cache re-reads the file
    _flip_in_place_keep_mtime(model_dir / "model.safetensors", 100)
    rep = verify_model(ledger, model_dir, trust_cache=True)
    assert not rep["ok"]
    assert rep["hashing"]["from_cache"]["files"] == 3 and rep["hashing"]["files_read"] == 1


def test_cache_takes_only_the_users_own_files(ledger, alice, model_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    os.chown(model_dir / "config.json", 65534, 65534)
    _settle()
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    s = HashStats()
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS, stats=s)
    assert s.files_hashed == 1 and s.bytes_hashed == (model_dir / "config.json").stat().st_size


def _header(p):
    data = p.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    return n, json.loads(data[8:8 + n]), data


def test_truncated_safetensors_is_a_mismatch_naming_lost_tensors(ledger, alice, model_dir):
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    p = model_dir / "model.safetensors"
    n, hdr, data = _header(p)
    emb = hdr["embed.weight"]["data_offsets"]
    cut = 8 + n + emb[0] + 1000  # inside embed.weight: it and every later tensor are lost
    os.truncate(p, cut)
    rep = verify_model(ledger, model_dir)
    assert not rep["ok"]
    by_kind = {}
    for d in rep["differences"]:
        by_kind.setdefault(d["kind"], []).append(d)
    assert by_kind["size"][0]["detail"] == f"model.safetensors was {len(data)} bytes, is {cut} bytes " \
                                           f"({len(data) - cut} bytes shorter)"
    beyond = {d["tensor"]: d["detail"] for d in by_kind["tensor"] if d.get("change") == "beyond-end"}
    assert set(beyond) == {"embed.weight", "layer.0.bias", "layer.0.weight"}
    assert "partly beyond the end" in beyond["embed.weight"] and f"(now {cut} bytes)" in beyond["layer.0.bias"]
    # the cut-off chunks are one line, not one per chunk
    assert any("lie beyond the end of the file" in d["detail"] for d in by_kind["chunk"])
    assert len(by_kind["chunk"]) <= 2
    # the CLI says MISMATCH and exits 1 (not 2 with "bad dtype, shape or data_offsets")
    r = CliRunner().invoke(_cli(), ["model", "verify", str(model_dir), "--ledger", str(ledger.path)])
    assert r.exit_code == 1 and "MISMATCH" in r.output and "beyond the end" in r.output, r.output
    # cut inside the header itself: the header cannot be read, every tensor is past the end
    os.truncate(p, 20)
    rep = verify_model(ledger, model_dir)
    assert not rep["ok"]
    changes = {(d["kind"], d.get("change")) for d in rep["differences"]}
    assert ("header", "unreadable") in changes and ("tensor", "beyond-end") in changes


def test_header_entry_changes_are_named(ledger, alice, model_dir):
    register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    p = model_dir / "model.safetensors"
    n, hdr, data = _header(p)
    # dtype F32 -> I32 of embed.weight, in place (same length)
    hdr["embed.weight"]["dtype"] = "I32"
    # and a shape change of layer.0.bias that keeps its bytes: [32] -> [4, 8]
    hdr["layer.0.bias"]["shape"] = [4, 8]
    new = json.dumps(hdr, separators=(",", ":")).encode()
    assert len(new) <= n
    p.write_bytes(data[:8] + new + b" " * (n - len(new)) + data[8 + n:])
    rep = verify_model(ledger, model_dir)
    assert not rep["ok"]
    hd = {(d.get("tensor"), d.get("change")): d["detail"] for d in rep["differences"] if d["kind"] == "header"}
    assert hd == {("embed.weight", "dtype"): "model.safetensors: header entry of tensor 'embed.weight' changed: "
                                             "dtype F32 -> I32",
                  ("layer.0.bias", "shape"): "model.safetensors: header entry of tensor 'layer.0.bias' changed: "
                                             "shape [32] -> [4, 8]"}
    # no tensor data changed
    assert not [d for d in rep["differences"] if d["kind"] == "tensor"]
    r = CliRunner().invoke(_cli(), ["model", "verify", str(model_dir), "--ledger", str(ledger.path)])
    assert r.exit_code == 1 and "dtype F32 -> I32" in r.output, r.output


def test_header_growth_and_metadata_change_are_said_once(ledger, alice, tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    tensors = {"a": ("U8", (5000,), bytes(range(200)) * 25), "b": ("U8", (300,), b"x" * 300)}
    write_safetensors(d / "w.safetensors", tensors)
    register_model(ledger, d, "m", alice, chunk_size=CS)
    # same tensors, longer __metadata__: the header grows, every tensor moves, no data changes
    n, hdr, data = _header(d / "w.safetensors")
    hdr["__metadata__"]["note"] = "x" * 20
    new = json.dumps(hdr).encode()
    new += b" " * (-len(new) % 8)
    grow = len(new) - n
    (d / "w.safetensors").write_bytes(struct.pack("<Q", len(new)) + new + data[8 + n:])
    rep = verify_model(ledger, d)
    hd = [x for x in rep["differences"] if x["kind"] == "header"]
    assert [x["change"] for x in hd] == ["layout"] and f"every tensor's data moved by +{grow} bytes" in hd[0]["detail"]
    # metadata edited in place (same length): the header changed outside the tensor entries
    new2 = json.dumps({**hdr, "__metadata__": {"format": "tf"}}).encode()
    assert len(new2) <= n
    (d / "w.safetensors").write_bytes(data[:8] + new2 + b" " * (n - len(new2)) + data[8 + n:])
    rep = verify_model(ledger, d)
    hd = [x for x in rep["differences"] if x["kind"] == "header"]
    assert [x["change"] for x in hd] == ["metadata"], rep["differences"]


def test_exact_match_needs_the_signed_body_not_the_term_index(ledger, alice, model_dir, tmp_path):
    """The term index sits beside the log, outside every signature: a row claiming that model
    'tiny' has another directory's manifest root must not make that directory verify as 'tiny'."""
    res = register_model(ledger, model_dir, "tiny", alice, chunk_size=CS)
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.bin").write_bytes(b"not the registered model")
    from ailedger.provenance import hash_model_dir

    fake_root = hash_model_dir(other, chunk_size=CS).root.hex()
    con = sqlite3.connect(ledger.path / "ledger.db")
    con.execute("INSERT INTO terms (term, idx) VALUES (?, ?)", (f"manifest:{fake_root}", res["index"]))
    con.commit()
    con.close()
    rep = verify_model(ledger, other, name="tiny")
    assert not rep["ok"] and rep["expected_root"] == res["manifest_root"]
    # lookups by manifest root are confirmed against the body too
    from ailedger.errors import NotFoundError
    from ailedger.provenance import find_model

    with pytest.raises(NotFoundError):
        find_model(ledger, fake_root)
