"""CAR v1 files on disk: read one back checking every block, and extract its root file within a size cap.

A CAR is small evidence of possibly large content: a UnixFS DAG may link one block many times, so a
CAR of a few kilobytes can declare a file of terabytes (three levels of 1,000 links to one 1 KiB leaf
is 1 TB).  Extraction therefore reads the size the root node declares (checked against every node below
it as the DAG is walked) and refuses, before it writes anything, a file larger than the cap: the size
the caller allows (``--max-size``, default :data:`DEFAULT_MAX_EXTRACT`) and never more than the free
space where the file goes.  See docs/storage.md.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from ailedger.blobs.cid import CID, verify_block
from ailedger.errors import BadInputError, VerificationError

__all__ = ["DEFAULT_MAX_EXTRACT", "declared_size", "import_car", "parse_size"]

DEFAULT_MAX_EXTRACT = 8 << 30  # 8 GiB: one shard of a large model (Hugging Face cuts at 5 GB) fits
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, field: str = "max_size") -> int:
    """``1048576``, ``512K``, ``64M``, ``8G``, ``2T`` (powers of 1024; ``KiB``/``KB``/``k`` alike)."""
    m = re.fullmatch(r"\s*([0-9]{1,15})\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text or "")
    if m is None:
        raise BadInputError(f"{field}: {text[:40]!r} is not a size (a number of bytes, or with K, M, G or T: "
                            "8G)", field=field)
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def _human(n: int) -> str:
    for unit, f in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= f:
            return f"{n / f:.1f} {unit}"
    return f"{n} bytes"


def declared_size(root: CID, data: bytes) -> int:
    """The size of the file whose root block is ``data`` (checked against ``root``): a raw leaf's length, or
    a UnixFS file node's inline data plus its children's sizes.  Extraction then checks every node below
    against this figure, so the file written is exactly this long or nothing is written."""
    from ailedger.blobs.cid import RAW
    from ailedger.blobs.unixfs import file_node

    verify_block(root, data)
    if root.codec == RAW:
        return len(data)
    return file_node(root, data, root=True)[2]


def import_car(car: str | os.PathLike[str], out: str | os.PathLike[str] | None, *,
               max_size: int | None = None) -> dict[str, Any]:
    """Read a CAR v1 file checking every block against its CID; with ``out``, extract the root file.

    The file is written only if its declared size is within ``max_size`` (default
    :data:`DEFAULT_MAX_EXTRACT`) and the free space of ``out``'s file system; beyond either, BadInputError
    before anything is written.  A block that does not match its CID, or a DAG whose sizes disagree, is a
    VerificationError and leaves no output."""
    from ailedger.blobs.car import decode_header, iter_sections
    from ailedger.blobs.unixfs import read_file

    limit = DEFAULT_MAX_EXTRACT if max_size is None else max_size
    if limit < 0:
        raise BadInputError("max_size must not be negative", field="max_size")
    index: dict[CID, tuple[int, int]] = {}
    with open(car, "rb") as f:
        roots = decode_header(f.read)
        count = 0
        for block in iter_sections(f.read):
            end = f.tell()
            index[block.cid] = (end - len(block.data), len(block.data))
            count += 1
    result: dict[str, Any] = {"car": str(car), "roots": [str(r) for r in roots], "blocks": count, "verified": count}
    missing = [str(r) for r in roots if r not in index]
    if missing:
        raise VerificationError(f"CAR root block(s) missing: {', '.join(missing)}", expected="root blocks present",
                                found="missing")
    if out is None:
        return result
    if len(roots) != 1:
        raise BadInputError("extracting needs a CAR with exactly one root", field="car")
    out = Path(out)
    with open(car, "rb") as f:
        def get(cid: CID) -> bytes:
            if cid not in index:
                raise VerificationError(f"block {cid} is linked from the DAG but not in the CAR",
                                        expected=str(cid), found="missing")
            off, n = index[cid]
            f.seek(off)
            return f.read(n)

        size = declared_size(roots[0], get(roots[0]))
        if size > limit:
            raise BadInputError(f"the CAR's file is {size} bytes ({_human(size)}), over the extraction limit of "
                                f"{limit} bytes ({_human(limit)}); nothing was written. If you expect a file this "
                                f"large, pass --max-size {size}", field="max_size", size=size, limit=limit)
        free = shutil.disk_usage(out.resolve().parent).free
        if size > free:
            raise BadInputError(f"the CAR's file is {size} bytes ({_human(size)}) but {out.resolve().parent} has "
                                f"{free} bytes free; nothing was written", field="out", size=size, free=free)
        tmp = out.with_name(out.name + ".part")
        written = 0
        try:
            with open(tmp, "wb") as w:
                for piece in read_file(roots[0], get):
                    written += len(piece)
                    if written > size:  # read_file checks every size; this only keeps the promise above
                        raise VerificationError("the DAG holds more bytes than its root declares", expected=size,
                                                found=written)
                    w.write(piece)
            if written != size:
                raise VerificationError("the DAG holds fewer bytes than its root declares", expected=size,
                                        found=written)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    result.update({"output": str(out), "size": size, "max_size": limit})
    return result
