"""The sparse-tree proof index written as shards (one pair of files per partition) and proofs that
read only the shard on the key's path."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import NotFoundError, ProofError
from ailedger.provenance import commit_dataset, prove_dataset, smt, verify_dataset_proof_file
from ailedger.provenance.datasets import INDEX_LAYOUT, DatasetIndex, build_index, open_index, record_key

N = 3000
P = 4

_OPENED: list[str] = []
_WATCH: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _WATCH and isinstance(args[0], (str, bytes, os.PathLike)):
        p = os.fsdecode(args[0])
        if p.startswith(_WATCH[0]):
            _OPENED.append(os.path.relpath(p, _WATCH[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only while _WATCH names a folder


class watch_opens:
    """Files opened under ``folder`` (any way: open, mmap of an opened file, numpy) while active."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)

    def __enter__(self) -> list[str]:
        _OPENED.clear()
        _WATCH[:] = [self.folder]
        return _OPENED

    def __exit__(self, *exc: object) -> None:
        _WATCH.clear()


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "corpus.jsonl"
    p.write_text("".join(json.dumps({"id": i, "text": f"record {i}"}) + "\n" for i in range(N)))
    return p


def _keys(i_range) -> list[bytes]:
    return [record_key(canonical_json({"id": i, "text": f"record {i}"})) for i in i_range]


def _reference(sorted_keys: list[bytes], key: bytes) -> smt.SmtProof:
    """Today's proof, from all sorted keys in memory (no index at all)."""
    sibs, d, kind, other = smt.prove_in_sorted(sorted_keys, key)
    return smt.SmtProof(kind, d, tuple(sibs), other)


def _old_layout(ix_dir: Path, out: Path) -> None:
    """The same index in the layout written before it was sharded: keys.bin + levels.bin (depths 0..D)."""
    meta = json.loads((ix_dir / "meta.json").read_text())
    p_, d_ = meta["P"], meta["D"]
    out.mkdir()
    with open(out / "keys.bin", "wb") as fh:
        fh.writelines((ix_dir / "shards" / f"keys-{p:05d}.bin").read_bytes() for p in range(1 << p_))
    levels = bytearray((ix_dir / "top.bin").read_bytes())
    levels += bytes(((1 << (d_ + 1)) - 1) * 32 - len(levels))
    for p in range(1 << p_):
        lv = (ix_dir / "shards" / f"levels-{p:05d}.bin").read_bytes()
        for j in range(1, d_ - p_ + 1):
            w = 1 << j
            chunk = lv[((1 << j) - 2) * 32:((1 << j) - 2 + w) * 32]
            o = ((1 << (p_ + j)) - 1 + (p << j)) * 32
            levels[o:o + w * 32] = chunk
    (out / "levels.bin").write_bytes(bytes(levels))
    (out / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "layout"}))


def test_index_is_sharded_and_proofs_equal_todays(tmp_path, corpus):
    info = build_index([str(corpus)], tmp_path / "ix", partitions_log2=P, workers=2)
    ix_dir = tmp_path / "ix"
    meta = json.loads((ix_dir / "meta.json").read_text())
    assert meta["layout"] == INDEX_LAYOUT and meta["P"] == P
    assert sorted(f.name for f in (ix_dir / "shards").iterdir()) == sorted(
        [f"keys-{p:05d}.bin" for p in range(1 << P)] + [f"levels-{p:05d}.bin" for p in range(1 << P)])
    assert not (ix_dir / "keys.bin").exists() and not (ix_dir / "levels.bin").exists()
    counts = np.fromfile(ix_dir / "counts.bin", dtype="<u8")
    assert int(counts.sum()) == N and (counts > 0).all()

    members = _keys(range(N))
    every = sorted(members)
    assert smt.subtree_root(every).hex() == info["root"]
    absent = [hashlib.sha256(b"absent %d" % i).digest() for i in range(300)]
    _old_layout(ix_dir, tmp_path / "old")
    ix, old = DatasetIndex(ix_dir), DatasetIndex(tmp_path / "old")
    try:
        assert ix.sharded and not old.sharded and ix.root == old.root == bytes.fromhex(info["root"])
        for key in members[::7] + absent:
            want = _reference(every, key)
            got = ix.prove(key)
            assert got == want == old.prove(key)
            assert smt.verify_proof(ix.root, key, got) is (key in set(members[::7]))
    finally:
        ix.close()
        old.close()


def test_prove_opens_only_the_shard_on_the_path(tmp_path, corpus, ledger, alice):
    res = commit_dataset(ledger, [str(corpus)], "sharded", alice, partitions_log2=P, workers=1)
    ix_dir = Path(res["index_dir"])
    member = json.dumps({"id": 17, "text": "record 17"}).encode()
    absent = json.dumps({"id": -1, "text": "nope"}).encode()
    for cand, want in ((member, "member"), (absent, "absent")):
        key = record_key(canonical_json(json.loads(cand)))
        p = key[0] >> (8 - P)
        with watch_opens(ix_dir) as opened:
            data, info = prove_dataset(ledger, "sharded", cand)
        assert info["result"] == want
        shard_files = {f for f in opened if f.startswith("shards")}
        assert shard_files == {f"shards/keys-{p:05d}.bin", f"shards/levels-{p:05d}.bin"}, opened
        assert set(opened) - shard_files <= {"meta.json", "counts.bin", "top.bin", "secret"}
        assert verify_dataset_proof_file(data, cand, ledger.vkey)["result"] == want
    # and with every other shard gone, the proof is still made: nothing else is read
    key = record_key(canonical_json(json.loads(member)))
    p = key[0] >> (8 - P)
    for f in (ix_dir / "shards").iterdir():
        if not f.name.endswith(f"-{p:05d}.bin"):
            f.unlink()
    data, info = prove_dataset(ledger, "sharded", member)
    assert info["result"] == "member" and verify_dataset_proof_file(data, member, ledger.vkey)["ok"]
    # the shard a proof needs, gone: a clear error naming it, no proof
    (ix_dir / "shards" / f"levels-{p:05d}.bin").unlink()
    with pytest.raises(NotFoundError, match=f"lacks shard {p} .*levels-{p:05d}.bin"):
        prove_dataset(ledger, "sharded", member)


def test_damaged_counts_are_refused(tmp_path, corpus, ledger, alice):
    res = commit_dataset(ledger, [str(corpus)], "damaged", alice, partitions_log2=P, workers=1)
    ix_dir = Path(res["index_dir"])
    counts = np.fromfile(ix_dir / "counts.bin", dtype="<u8")
    counts[0] += 1
    counts.tofile(ix_dir / "counts.bin")
    with pytest.raises(ProofError, match="damaged"):
        open_index(ledger, res["index"], ledger.entry(res["index"]).body)


def test_partition_build_run_again_gives_the_same_shard(tmp_path, corpus):
    """A partition build whose worker died after it finished runs again (Dask retries the task): it must
    give the same root and files, though its inputs were consumed by the first run."""
    from ailedger.provenance import datasets as ds

    sh = ds.hash_shard([str(corpus)], tmp_path / "st", partitions_log2=2, workers=1)
    (tmp_path / "st" / ds.SHARDS).mkdir()
    D = max(2, (sh["records_in"] // 8).bit_length())
    args = ([str(tmp_path / "st")], str(tmp_path / "st"), 1, 2, D, "", True)
    first = ds._build_partition(args)
    files = {f.name: f.read_bytes() for f in (tmp_path / "st" / ds.SHARDS).glob("*-00001.bin")}
    assert first["n"] > 100 and not list((tmp_path / "st").glob("part-00001-*"))  # inputs consumed
    again = ds._build_partition(args)
    assert again == first
    assert {f.name: f.read_bytes() for f in (tmp_path / "st" / ds.SHARDS).glob("*-00001.bin")} == files


def test_cli_partitions_log2_sets_the_shard_count(tmp_path, corpus):
    import subprocess

    from ailedger.tlog.ledger import Ledger

    lg = Ledger.init(tmp_path / "lg", origin="test.example/shards")
    lg.identities.create("alice")
    lg.close()
    env = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "lg")}

    def run(*a):
        return subprocess.run([sys.executable, "-m", "ailedger", "dataset", "commit", str(corpus), "--as", "alice",
                               "--json", *a], capture_output=True, text=True, env=env, timeout=300, check=False)

    auto = run("--name", "auto")
    six = run("--name", "six", "--partitions-log2", "6")
    assert auto.returncode == 0 and six.returncode == 0, six.stderr
    a, b = json.loads(auto.stdout), json.loads(six.stdout)
    assert a["root"] == b["root"] and b["P"] == 6 and a["P"] != 6
    assert len(list(Path(b["index_dir"]).glob("shards/keys-*.bin"))) == 64
    bad = run("--name", "bad", "--partitions-log2", "17")
    assert bad.returncode == 2 and "--partitions-log2" in bad.stderr


def test_partition_count_follows_size_and_open_file_limit():
    from ailedger.provenance.datasets import choose_partitions

    assert choose_partitions(1000, open_files=20000) == 1
    assert choose_partitions(1_821_496_850, open_files=20000) == 8  # the 10^7-record bench file
    ten_tb = 10 * 10**12
    assert [choose_partitions(ten_tb, open_files=n) for n in (1 << 20, 20000, 1024, 256)] == [16, 14, 9, 7]


def test_hashing_raises_a_low_open_file_limit(tmp_path):
    """1,024 partitions need 1,024 files open per hashing process: a soft limit of 600 is raised to the
    hard limit (this fails with 'Too many open files' if it is not)."""
    import resource
    import subprocess

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard open-file limit ({hard}) is below what 1,024 partitions need")
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(20000)))
    code = ("import resource, json, sys; from pathlib import Path\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (600, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
            "from ailedger.provenance.datasets import build_index\n"
            f"r = build_index([{str(p)!r}], Path({str(tmp_path / 'ix')!r}), partitions_log2=10, workers=1)\n"
            "print(json.dumps({'root': r['root'], 'soft': resource.getrlimit(resource.RLIMIT_NOFILE)[0]}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["soft"] > 1024
    assert got["root"] == smt.subtree_root(sorted(record_key(canonical_json({"id": i})) for i in range(20000))).hex()
