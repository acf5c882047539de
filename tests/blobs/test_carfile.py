"""`blob car --import X.car -o FILE`: a small CAR may declare a huge file (one block linked many times);
extraction refuses, before writing anything, a file over the cap (--max-size, default 8 GiB, never more
than the free space).  The CLI runs in a subprocess whose file-size limit is 64 MiB, so on code that
writes the declared terabyte the test fails (SIGXFSZ) instead of filling the disk."""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys
import time

import pytest

from ailedger.blobs.car import encode_header, encode_section
from ailedger.blobs.cid import CID, DAG_PB, SHA2_256, raw_cid
from ailedger.blobs.unixfs import Block, FileImporter, PBLink, PBNode, encode_pbnode, encode_unixfs_file

LEAF = bytes(range(256)) * 4  # 1 KiB


def _node(child: CID, child_size: int, links: int) -> Block:
    data = encode_pbnode(PBNode(tuple(PBLink(child, "", child_size) for _ in range(links)),
                                encode_unixfs_file(child_size * links, [child_size] * links)))
    return Block(CID(1, DAG_PB, SHA2_256, hashlib.sha256(data).digest()), data)


def bomb(levels: int = 3, links: int = 1024) -> tuple[bytes, int]:
    """A CAR of one 1 KiB leaf and ``levels`` nodes each linking the level below ``links`` times
    (the default: 1 KiB x 1024^3 = 1 TiB from a CAR of about 130 KB)."""
    leaf = Block(raw_cid(LEAF), LEAF)
    blocks, top, size = [leaf], leaf.cid, len(LEAF)
    for _ in range(levels):
        b = _node(top, size, links)
        blocks.append(b)
        top, size = b.cid, size * links
    return encode_header([top]) + b"".join(encode_section(b) for b in reversed(blocks)), size


def _limit_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))


def cli(*args):
    return subprocess.run([sys.executable, "-c", "from ailedger.cli.main import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=120, preexec_fn=_limit_files, check=False)


def test_a_terabyte_declared_by_a_small_car_is_refused_before_writing(tmp_path):
    data, size = bomb()
    assert size == 1024 ** 4 and len(data) < 200_000
    car = tmp_path / "bomb.car"
    car.write_bytes(data)
    t0 = time.perf_counter()
    p = cli("blob", "car", "--import", car, "-o", tmp_path / "out.bin", "--json")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert time.perf_counter() - t0 < 30
    err = json.loads(p.stdout)["error"]
    assert err["field"] == "max_size" and "over the extraction limit" in err["message"]
    assert str(size) in err["message"] and "--max-size" in err["message"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bomb.car"]  # no output, no .part


def test_max_size_is_the_users_cap(tmp_path):
    data, size = bomb(levels=2, links=64)  # 4 MiB declared
    car = tmp_path / "b.car"
    car.write_bytes(data)
    out = tmp_path / "out.bin"
    p = cli("blob", "car", "--import", car, "-o", out, "--max-size", "1M", "--json")
    assert p.returncode == 2 and "over the extraction limit of 1048576 bytes" in p.stderr, p.stderr
    assert not out.exists()
    p = cli("blob", "car", "--import", car, "-o", out, "--max-size", str(size), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["size"] == size and out.read_bytes() == LEAF * (size // len(LEAF))
    p = cli("blob", "car", "--import", car, "-o", out, "--max-size", "lots")
    assert p.returncode == 2 and "is not a size" in p.stderr


def test_service_refuses_and_extracts(tmp_path):
    from ailedger.blobs.carfile import DEFAULT_MAX_EXTRACT, import_car, parse_size
    from ailedger.errors import BadInputError

    assert parse_size("8G") == 8 << 30 and parse_size("512KiB") == 512 << 10 and parse_size("17") == 17
    assert DEFAULT_MAX_EXTRACT == 8 << 30
    data, size = bomb(levels=2, links=64)
    car = tmp_path / "b.car"
    car.write_bytes(data)
    with pytest.raises(BadInputError) as ei:
        import_car(car, tmp_path / "o", max_size=size - 1)
    assert ei.value.details["size"] == size and not (tmp_path / "o").exists()
    assert import_car(car, tmp_path / "o", max_size=size)["size"] == size
    # a normal file's CAR still round-trips under the default cap
    imp = FileImporter("unixfs-v1-2025")
    blob = bytes(range(256)) * 9000
    blocks = imp.update(blob)
    root, rest = imp.finish()
    (tmp_path / "f.car").write_bytes(encode_header([root]) + b"".join(encode_section(b) for b in blocks + rest))
    assert import_car(tmp_path / "f.car", tmp_path / "f")["size"] == len(blob)
    assert (tmp_path / "f").read_bytes() == blob
