"""UnixFS v1 files over dag-pb, byte-for-byte as the IPFS importers build them.

What is reproduced (from the UnixFS and dag-pb specs, and IPIP-499 for the profiles):

* fixed-size chunking; an empty file is one empty chunk;
* raw leaves (codec 0x55) for every chunk;
* a file of one chunk is that raw leaf itself (its CID is the raw CID of the bytes);
* otherwise a *balanced* layout: leaves are taken ``max_links`` at a time, each group becomes
  a dag-pb node; the nodes are grouped again the same way until one root remains;
* a dag-pb node is ``PBNode{Links, Data}`` encoded Links first (field 2, repeated) then
  Data (field 1), each link ``PBLink{Hash=1, Name=2 (empty string, present), Tsize=3}``;
* the node's Data is UnixFS ``Data{Type=File(2), filesize=3, blocksizes=4 (one per link)}``;
* a link's Tsize is the byte size of the whole sub-DAG (block bytes plus children's Tsize).

Profiles: ``unixfs-v1-2025`` (IPIP-499: CIDv1, raw leaves, 1 MiB chunks, 1024 links per node) and
``kubo-v1-legacy`` (kubo's long-standing ``--cid-version=1`` result: raw leaves, 256 KiB chunks,
174 links per node).

Pure: the importer is fed bytes and hands back blocks; it never reads a file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ailedger.blobs.cid import CID, DAG_PB, RAW, SHA2_256, decode_varint, encode_varint, verify_block
from ailedger.errors import BadInputError, VerificationError

__all__ = [
    "DEFAULT_PROFILE",
    "MAX_DAG_DEPTH",
    "PROFILES",
    "Block",
    "FileImporter",
    "PBLink",
    "PBNode",
    "Profile",
    "UnixFSData",
    "decode_pbnode",
    "decode_unixfs",
    "encode_pbnode",
    "encode_unixfs_file",
    "file_cid",
    "read_file",
]


@dataclass(frozen=True)
class Profile:
    name: str
    chunk_size: int
    max_links: int
    raw_leaves: bool = True
    cid_version: int = 1


PROFILES: dict[str, Profile] = {
    "unixfs-v1-2025": Profile("unixfs-v1-2025", 1 << 20, 1024),
    "kubo-v1-legacy": Profile("kubo-v1-legacy", 256 << 10, 174),
}
DEFAULT_PROFILE = "unixfs-v1-2025"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise BadInputError(
            f"unknown profile {name!r} (known: {', '.join(PROFILES)})", field="profile"
        ) from None


@dataclass(frozen=True)
class Block:
    cid: CID
    data: bytes


# --- dag-pb -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PBLink:
    hash: CID
    name: str | None = ""
    tsize: int | None = None


@dataclass(frozen=True)
class PBNode:
    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + encode_varint(len(payload)) + payload


def encode_pbnode(node: PBNode) -> bytes:
    """dag-pb canonical encoding: links first, then data (the order every IPFS implementation emits)."""
    out = bytearray()
    for link in node.links:
        lb = bytearray(_field(0x0A, link.hash.bytes))
        if link.name is not None:
            lb += _field(0x12, link.name.encode("utf-8"))
        if link.tsize is not None:
            lb += b"\x18" + encode_varint(link.tsize)
        out += _field(0x12, bytes(lb))
    if node.data is not None:
        out += _field(0x0A, node.data)
    return bytes(out)


def _read_fields(buf: bytes, what: str) -> Iterator[tuple[int, int, int | bytes]]:
    i = 0
    while i < len(buf):
        key, i = decode_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = decode_varint(buf, i)
            yield num, wt, v
        elif wt == 2:
            n, i = decode_varint(buf, i)
            if i + n > len(buf):
                raise BadInputError(f"truncated {what}", field=what)
            yield num, wt, buf[i : i + n]
            i += n
        else:
            raise BadInputError(f"unsupported protobuf wire type {wt} in {what}", field=what)


def decode_pbnode(buf: bytes) -> PBNode:
    """Strict dag-pb decoding (links before data, known fields only)."""
    links: list[PBLink] = []
    data: bytes | None = None
    for num, wt, v in _read_fields(buf, "dag-pb"):
        if num == 2 and wt == 2 and isinstance(v, bytes):
            if data is not None:
                raise BadInputError("dag-pb: link after data", field="dag-pb")
            h: CID | None = None
            name: str | None = None
            tsize: int | None = None
            for ln, lwt, lv in _read_fields(v, "dag-pb link"):
                if ln == 1 and lwt == 2 and isinstance(lv, bytes):
                    h, end = CID.from_bytes(lv)
                    if end != len(lv):
                        raise BadInputError("dag-pb: trailing bytes in link hash", field="dag-pb")
                elif ln == 2 and lwt == 2 and isinstance(lv, bytes):
                    try:
                        name = lv.decode("utf-8")
                    except UnicodeDecodeError:
                        raise BadInputError("dag-pb: link name is not UTF-8", field="dag-pb") from None
                elif ln == 3 and lwt == 0 and isinstance(lv, int):
                    tsize = lv
                else:
                    raise BadInputError(f"dag-pb: unexpected link field {ln}", field="dag-pb")
            if h is None:
                raise BadInputError("dag-pb: link without hash", field="dag-pb")
            links.append(PBLink(h, name, tsize))
        elif num == 1 and wt == 2 and isinstance(v, bytes):
            data = v
        else:
            raise BadInputError(f"dag-pb: unexpected field {num}", field="dag-pb")
    return PBNode(tuple(links), data)


# --- UnixFS Data --------------------------------------------------------------------------------

FILE_TYPE = 2
RAW_TYPE = 0


@dataclass(frozen=True)
class UnixFSData:
    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default=())


def encode_unixfs_file(filesize: int, blocksizes: list[int] | tuple[int, ...]) -> bytes:
    out = bytearray(b"\x08" + encode_varint(FILE_TYPE))
    out += b"\x18" + encode_varint(filesize)
    for b in blocksizes:
        out += b"\x20" + encode_varint(b)
    return bytes(out)


def decode_unixfs(buf: bytes) -> UnixFSData:
    t: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    sizes: list[int] = []
    for num, wt, v in _read_fields(buf, "unixfs"):
        if num == 1 and isinstance(v, int):
            t = v
        elif num == 2 and isinstance(v, bytes):
            data = v
        elif num == 3 and isinstance(v, int):
            filesize = v
        elif num == 4 and isinstance(v, int):
            sizes.append(v)
        elif num == 4 and isinstance(v, bytes):  # tolerate packed encoding when reading
            j = 0
            while j < len(v):
                s, j = decode_varint(v, j)
                sizes.append(s)
        # other fields (hashType, fanout, mode, mtime) are ignored for files
    if t is None:
        raise BadInputError("unixfs: missing Type", field="unixfs")
    return UnixFSData(t, data, filesize, tuple(sizes))


# --- importer -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    cid: CID
    tsize: int  # bytes of the whole sub-DAG
    filesize: int  # file bytes under it


class FileImporter:
    """Streaming UnixFS file importer. ``update`` returns the leaf blocks completed so far;
    ``finish`` returns the root CID and the remaining blocks (last leaf, then interior nodes
    bottom-up). Keep every block returned to get the complete DAG (e.g. for a CAR file)."""

    def __init__(self, profile: Profile | str = DEFAULT_PROFILE, *, keep_leaves: bool = True) -> None:
        """``keep_leaves=False``: only the CID is wanted, so leaf blocks are hashed in place and not
        returned (interior nodes still are; they are small)."""
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self._keep = keep_leaves
        self._buf = bytearray()
        self._leaves: list[_Entry] = []
        self._size = 0
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    def _leaf(self, chunk: bytes | memoryview, out: list[Block]) -> None:
        cid = CID(1, RAW, SHA2_256, hashlib.sha256(chunk).digest())
        self._leaves.append(_Entry(cid, len(chunk), len(chunk)))
        if self._keep:
            out.append(Block(cid, bytes(chunk)))

    def update(self, data: bytes | bytearray | memoryview) -> list[Block]:
        if self._done:
            raise BadInputError("importer already finished", field="importer")
        cs = self.profile.chunk_size
        out: list[Block] = []
        self._size += len(data)
        mv = memoryview(data)
        if self._buf:
            need = cs - len(self._buf)
            self._buf += mv[:need]
            mv = mv[need:]
            if len(self._buf) < cs:
                return out
            self._leaf(bytes(self._buf), out)
            self._buf = bytearray()
        while len(mv) >= cs:
            self._leaf(mv[:cs], out)
            mv = mv[cs:]
        if len(mv):
            self._buf += mv
        return out

    def _node(self, children: list[_Entry]) -> tuple[_Entry, Block]:
        kept = [c for c in children if c.filesize > 0]
        data = encode_unixfs_file(sum(c.filesize for c in kept), [c.filesize for c in kept])
        node = PBNode(tuple(PBLink(c.cid, "", c.tsize) for c in kept), data)
        raw = encode_pbnode(node)
        cid = CID(self.profile.cid_version, DAG_PB, SHA2_256, hashlib.sha256(raw).digest())
        return _Entry(cid, len(raw) + sum(c.tsize for c in kept), sum(c.filesize for c in kept)), Block(cid, raw)

    def finish(self) -> tuple[CID, list[Block]]:
        if self._done:
            raise BadInputError("importer already finished", field="importer")
        self._done = True
        out: list[Block] = []
        if self._buf or not self._leaves:
            self._leaf(bytes(self._buf), out)
            self._buf = bytearray()
        if len(self._leaves) == 1:
            return self._leaves[0].cid, out
        level = self._leaves
        m = self.profile.max_links
        while True:
            roots: list[_Entry] = []
            for i in range(0, len(level), m):
                entry, block = self._node(level[i : i + m])
                roots.append(entry)
                out.append(block)
            if len(roots) == 1:
                return roots[0].cid, out
            level = roots


def file_cid(data: bytes, profile: Profile | str = DEFAULT_PROFILE) -> CID:
    """CID of a whole in-memory file (convenience for small inputs)."""
    imp = FileImporter(profile)
    imp.update(data)
    return imp.finish()[0]


def file_node(cid: CID, data: bytes, *, root: bool = False) -> tuple[PBNode, UnixFSData, int]:
    """A non-raw block (``data``, already checked against ``cid``) that must be a UnixFS file node: its dag-pb
    node, its UnixFS data and the file size its inline data and children's sizes add up to, checked against
    its ``filesize``.  Errors name it as the ``root`` or as a node."""
    what = "root" if root else "node"
    if cid.codec != DAG_PB:
        raise BadInputError(f"{'root ' if root else ''}block {cid} is neither raw nor dag-pb", field="cid")
    node = decode_pbnode(data)
    if node.data is None:
        raise BadInputError(f"dag-pb node {cid} has no UnixFS data", field="unixfs")
    u = decode_unixfs(node.data)
    if u.type not in (FILE_TYPE, RAW_TYPE):
        raise BadInputError(f"{what} {cid} is not a UnixFS file (type {u.type})", field="unixfs")
    total = len(u.data or b"") + sum(u.blocksizes)
    if u.filesize is not None and u.filesize != total:
        raise VerificationError(f"{what} {cid}: filesize disagrees with blocksizes", expected=u.filesize, found=total)
    return node, u, total


MAX_DAG_DEPTH = 64  # balanced and trickle DAGs of any real file are far shallower


def read_file(root: CID, get_block: Callable[[CID], bytes]) -> Iterator[bytes]:
    """Walk a UnixFS file DAG in order, yielding its bytes. Every block fetched through
    ``get_block`` is checked against its CID and every node's sizes against its links.
    A DAG deeper than ``MAX_DAG_DEPTH`` is refused (a chain of one-link nodes would otherwise
    exhaust the interpreter's stack)."""

    def walk(cid: CID, expect_size: int | None, depth: int = 0) -> Iterator[bytes]:
        if depth > MAX_DAG_DEPTH:
            raise BadInputError(f"UnixFS DAG is deeper than {MAX_DAG_DEPTH} levels at block {cid}", field="unixfs")
        data = get_block(cid)
        verify_block(cid, data)
        if cid.codec == RAW:
            if expect_size is not None and len(data) != expect_size:
                raise VerificationError(
                    f"leaf {cid} has {len(data)} bytes, its parent says {expect_size}",
                    expected=expect_size, found=len(data),
                )
            yield data
            return
        node, u, total = file_node(cid, data)
        if expect_size is not None and total != expect_size:
            raise VerificationError(f"node {cid}: size disagrees with parent", expected=expect_size, found=total)
        if len(u.blocksizes) != len(node.links):
            raise VerificationError(f"node {cid}: {len(node.links)} links but {len(u.blocksizes)} blocksizes",
                                    expected=len(node.links), found=len(u.blocksizes))
        if u.data:
            yield u.data
        for link, size in zip(node.links, u.blocksizes):
            yield from walk(link.hash, size, depth + 1)

    yield from walk(root, None)
