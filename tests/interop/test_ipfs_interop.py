"""Our CIDs and CAR files against the JavaScript IPFS implementations (ipfs-unixfs-importer,
@ipld/car) pinned in tests/interop/ipfs/package-lock.json."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ailedger.blobs.car import encode_header, encode_section, read_car_bytes
from ailedger.blobs.unixfs import PROFILES, FileImporter, read_file

HERE = Path(__file__).parent / "ipfs"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not installed: IPFS interop not checked")


@pytest.fixture(scope="session")
def ref():
    if not (HERE / "node_modules" / "ipfs-unixfs-importer").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is missing: cannot install the reference IPFS packages")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True)

    def run(*args):
        out = subprocess.run([NODE, str(HERE / "ipfs_ref.mjs"), *map(str, args)], check=True,
                             capture_output=True, text=True, timeout=600)
        return out.stdout.strip()
    return run


def write(tmp_path, name, size):
    p = tmp_path / name
    with open(p, "wb") as f:
        left = size
        while left:
            n = min(left, 8 << 20)
            f.write(os.urandom(n))
            left -= n
    return p


def ours(path, profile):
    imp = FileImporter(profile)
    blocks = []
    with open(path, "rb") as f:
        while chunk := f.read(3 << 20):
            blocks += imp.update(chunk)
    root, rest = imp.finish()
    return root, blocks + rest


def sizes(profile):
    p = PROFILES[profile]
    c, m = p.chunk_size, p.max_links
    out = [0, 1, 1000, c - 1, c, c + 1, 3 * c + 17]
    if profile == "kubo-v1-legacy":
        out += [c * m, c * m + 1]  # one full node (43.5 MiB), then the smallest two-level tree
    return out


@pytest.mark.parametrize("profile", ["unixfs-v1-2025", "kubo-v1-legacy"])
def test_cids_match_js_importer(ref, tmp_path, profile):
    for size in sizes(profile):
        f = write(tmp_path, f"f{size}", size)
        assert str(ours(f, profile)[0]) == ref("cid", f, profile), f"{profile} size {size}"
        f.unlink()


@pytest.mark.slow
def test_multilevel_unixfs_v1_2025(ref, tmp_path):
    p = PROFILES["unixfs-v1-2025"]
    f = write(tmp_path, "big", p.chunk_size * p.max_links + 3 * p.chunk_size + 1)  # just over 1 GiB
    assert str(ours(f, "unixfs-v1-2025")[0]) == ref("cid", f, "unixfs-v1-2025")


def test_js_car_reader_reads_our_car(ref, tmp_path):
    f = write(tmp_path, "f", 3 * (256 << 10) + 99)
    root, blocks = ours(f, "kubo-v1-legacy")
    car = tmp_path / "x.car"
    car.write_bytes(encode_header([root]) + b"".join(encode_section(b) for b in blocks))
    got = json.loads(ref("readcar", car))
    assert got == {"roots": [str(root)], "blocks": len(blocks), "verified": len(blocks)}


def test_we_read_js_car(ref, tmp_path):
    f = write(tmp_path, "f", 5 * (1 << 20) + 3)
    car = tmp_path / "js.car"
    root = ref("writecar", f, "unixfs-v1-2025", car)
    roots, blocks = read_car_bytes(car.read_bytes())
    assert [str(r) for r in roots] == [root]
    store = {b.cid: b.data for b in blocks}
    assert b"".join(read_file(roots[0], store.__getitem__)) == f.read_bytes()


def test_multilevel_car_both_ways(ref, tmp_path):
    p = PROFILES["kubo-v1-legacy"]
    f = write(tmp_path, "f", p.chunk_size * p.max_links + 2 * p.chunk_size + 7)  # two levels, ~44 MiB
    root, blocks = ours(f, "kubo-v1-legacy")
    car = tmp_path / "ours.car"
    with open(car, "wb") as out:
        out.write(encode_header([root]))
        out.writelines(encode_section(b) for b in blocks)
    assert json.loads(ref("readcar", car)) == {"roots": [str(root)], "blocks": len(blocks), "verified": len(blocks)}
    js_car = tmp_path / "js.car"
    assert ref("writecar", f, "kubo-v1-legacy", js_car) == str(root)
    roots, got = read_car_bytes(js_car.read_bytes())
    store = {b.cid: b.data for b in got}
    assert roots == [root] and b"".join(read_file(root, store.__getitem__)) == f.read_bytes()
