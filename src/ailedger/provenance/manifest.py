"""Model manifests: a two-level RFC 6962 Merkle tree over files and their chunks.

A model directory is described by its files (sorted by POSIX relative path).  Each file is cut
into chunks: fixed-size pieces of ``chunk_size`` bytes; in a safetensors file the cut points also
fall on the header and on every tensor's byte range, so each tensor is a whole number of chunks
and gets its own Merkle root (a change is then located to one tensor exactly, in one pass).

* chunk digest  ``c = SHA-256(chunk bytes)``   (plain SHA-256, as OpenSSF Model Signing shards use)
* file root     ``MTH(leaf_hash(c_0), leaf_hash(c_1), ...)``  (RFC 6962; an empty file has the
  empty-tree root SHA-256(""))
* tensor root   the same tree over the tensor's own chunks
* file leaf     ``canonical_json({"chunks": n, "path": p, "root": hex, "size": s})``
* manifest root ``MTH(leaf_hash(file leaf_0), ...)`` over files sorted by path

So one chunk is proved with two RFC 6962 audit paths (chunk in file, file in manifest): O(log n).
Pure: no I/O; the service layer reads files and feeds digests in.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.errors import BadInputError, ProofError
from ailedger.tlog.merkle import (
    inclusion_plan,
    leaf_hash,
    rehash_plan,
    root_from_leaf_hashes,
    verify_inclusion,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MANIFEST_FORMAT",
    "Chunk",
    "Difference",
    "FileEntry",
    "Manifest",
    "SafetensorsHeader",
    "Tensor",
    "check_part_proof",
    "diff_manifests",
    "file_leaf_bytes",
    "inclusion_proof",
    "parse_safetensors_header",
    "plan_chunks",
    "verify_chunk_digest",
    "verify_chunk_proof",
]

MANIFEST_FORMAT = "ailedger-manifest/v1"
DEFAULT_CHUNK_SIZE = 4 << 20
MAX_SAFETENSORS_HEADER = 100 << 20
MAX_SAFETENSORS_OFFSET = 1 << 53  # larger "offsets" in a damaged header are refused, not planned


def _hex32(s: Any, what: str) -> bytes:
    if not isinstance(s, str) or len(s) != 64:
        raise BadInputError(f"{what} must be 64 hex digits", field=what)
    try:
        return bytes.fromhex(s)
    except ValueError as exc:
        raise BadInputError(f"{what} is not hex", field=what) from exc


def _int(v: Any, what: str, lo: int = 0, hi: int = MAX_SAFETENSORS_OFFSET) -> int:
    """An integer field of a manifest or proof document (JSON true/false are not integers)."""
    if type(v) is not int or not lo <= v <= hi:
        raise BadInputError(f"{what} must be an integer in {lo}..{hi}", field=what)
    return v


def _str(v: Any, what: str, max_len: int = 4096) -> str:
    if not isinstance(v, str) or len(v) > max_len:
        raise BadInputError(f"{what} must be a string (at most {max_len} characters)", field=what)
    return v


def _obj(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise BadInputError(f"{what} must be a JSON object", field=what)
    return v


def _list(v: Any, what: str, max_len: int | None = None) -> list[Any]:
    if not isinstance(v, list) or (max_len is not None and len(v) > max_len):
        raise BadInputError(f"{what} must be a list" + (f" of at most {max_len} items" if max_len else ""),
                            field=what)
    return v


MAX_PROOF_PATH = 64  # an RFC 6962 audit path of a tree below 2^64 leaves


@dataclass(frozen=True)
class Chunk:
    offset: int
    length: int
    digest: bytes  # SHA-256 of the chunk's bytes

    @property
    def leaf(self) -> bytes:
        return leaf_hash(self.digest)


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute byte offsets in the file, [begin, end)
    end: int
    first_chunk: int = 0
    n_chunks: int = 0


@dataclass(frozen=True)
class SafetensorsHeader:
    header_len: int  # N: the JSON header is bytes [8, 8 + N)
    tensors: tuple[Tensor, ...]
    metadata: dict[str, str] | None

    @property
    def data_start(self) -> int:
        return 8 + self.header_len


def parse_safetensors_header(prefix8: bytes, header: bytes, file_size: int, *, what: str = "file",
                             truncated_ok: bool = False) -> SafetensorsHeader:
    """Parse a safetensors header: u64 little-endian N, then N bytes of JSON
    ``{name: {"dtype", "shape", "data_offsets": [b, e]}, "__metadata__": {...}}`` (offsets relative
    to the data section). Raises BadInputError naming ``what`` on anything malformed.

    ``truncated_ok``: tensors may end past the end of the file (a file cut short whose header is
    intact); they are returned with the offsets the header states, so a verifier can say which
    tensors the file lost.  Registering never allows it."""
    if len(prefix8) != 8:
        raise BadInputError(f"{what}: safetensors file shorter than 8 bytes", field="file")
    (n,) = struct.unpack("<Q", prefix8)
    if n > MAX_SAFETENSORS_HEADER or 8 + n > file_size:
        raise BadInputError(f"{what}: safetensors header length {n} does not fit the file", field="file")
    if len(header) != n:
        raise BadInputError(f"{what}: safetensors header truncated", field="file")
    obj = parse_json(header, what=f"{what} safetensors header")
    if not isinstance(obj, dict):
        raise BadInputError(f"{what}: safetensors header is not a JSON object", field="file")
    data_len = file_size - 8 - n
    meta = obj.pop("__metadata__", None)
    tensors: list[Tensor] = []
    for name, info in obj.items():
        if not isinstance(info, dict) or not isinstance(info.get("data_offsets"), list):
            raise BadInputError(f"{what}: tensor {name!r} has no data_offsets", field="file")
        offs = info["data_offsets"]
        shape = info.get("shape")
        if (len(offs) != 2 or not all(type(o) is int for o in offs) or not 0 <= offs[0] <= offs[1]
                or (offs[1] > data_len and not truncated_ok) or offs[1] > MAX_SAFETENSORS_OFFSET
                or not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape)
                or not isinstance(info.get("dtype"), str)):
            raise BadInputError(f"{what}: tensor {name!r} has bad dtype, shape or data_offsets", field="file")
        base = 8 + n
        tensors.append(Tensor(name, info["dtype"], tuple(shape), base + offs[0], base + offs[1]))
    tensors.sort(key=lambda t: (t.begin, t.end))
    for a, b in pairwise(tensors):
        if b.begin < a.end:
            raise BadInputError(f"{what}: tensors {a.name!r} and {b.name!r} overlap", field="file")
    return SafetensorsHeader(n, tuple(tensors), meta if isinstance(meta, dict) else None)


def plan_chunks(size: int, chunk_size: int, cuts: Iterable[int] = ()) -> list[tuple[int, int]]:
    """(offset, length) of each chunk: fixed ``chunk_size`` pieces restarted at every cut point."""
    if chunk_size <= 0:
        raise BadInputError("chunk size must be positive", field="chunk_size")
    points = sorted({c for c in cuts if 0 < c < size} | {0, size})
    out: list[tuple[int, int]] = []
    for a, b in pairwise(points):
        off = a
        while off < b:
            ln = min(chunk_size, b - off)
            out.append((off, ln))
            off += ln
    return out


def _check_tree(hashes: Sequence[bytes], index: int) -> list[bytes]:
    plan = inclusion_plan(index, len(hashes))
    return rehash_plan(plan, lambda nid: root_from_leaf_hashes(hashes[nid[1] << nid[0]:(nid[1] + 1) << nid[0]]))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 audit path for ``index`` computed from the whole list of leaf hashes."""
    return _check_tree(leaf_hashes, index)


def file_leaf_bytes(path: str, size: int, n_chunks: int, root: bytes) -> bytes:
    return canonical_json({"chunks": n_chunks, "path": path, "root": root.hex(), "size": size})


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    chunks: tuple[Chunk, ...]
    tensors: tuple[Tensor, ...] | None = None

    @property
    def root(self) -> bytes:
        return root_from_leaf_hashes([c.leaf for c in self.chunks])

    @property
    def leaf_bytes(self) -> bytes:
        return file_leaf_bytes(self.path, self.size, len(self.chunks), self.root)

    def tensor_root(self, t: Tensor) -> bytes:
        return root_from_leaf_hashes([c.leaf for c in self.chunks[t.first_chunk:t.first_chunk + t.n_chunks]])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "root": self.root.hex(),
            "chunks": [[c.offset, c.length, c.digest.hex()] for c in self.chunks],
        }
        if self.tensors is not None:
            d["tensors"] = [
                {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "begin": t.begin, "end": t.end,
                 "first_chunk": t.first_chunk, "n_chunks": t.n_chunks, "root": self.tensor_root(t).hex()}
                for t in self.tensors
            ]
        return d

    @staticmethod
    def from_dict(d: Any) -> FileEntry:
        """A file entry of a manifest document; BadInputError (naming the field) for anything malformed,
        ProofError when its stated root is not its chunks'."""
        if not isinstance(d, dict) or not isinstance(d.get("path"), str) or type(d.get("size")) is not int:
            raise BadInputError("manifest file entry needs path and size", field="files")
        path = _str(d["path"], "files.path")
        size = _int(d["size"], "files.size")
        chunks = []
        pos = 0
        for c in _list(d.get("chunks", []), "files.chunks"):
            if not (isinstance(c, list) and len(c) == 3 and type(c[0]) is int and type(c[1]) is int):
                raise BadInputError(f"manifest chunk of {path} is malformed", field="chunks")
            if c[0] != pos or c[1] <= 0:
                raise BadInputError(f"manifest chunks of {path} do not tile the file", field="chunks")
            chunks.append(Chunk(c[0], c[1], _hex32(c[2], "chunk digest")))
            pos += c[1]
        if pos != size:
            raise BadInputError(f"manifest chunks of {path} do not cover its size", field="chunks")
        tensors = None
        if d.get("tensors") is not None:
            ts = []
            for t in _list(d["tensors"], "files.tensors"):
                t = _obj(t, "files.tensors")
                shape = _list(t.get("shape"), "tensors.shape", 64)
                begin, end = _int(t.get("begin"), "tensors.begin"), _int(t.get("end"), "tensors.end")
                first, n = _int(t.get("first_chunk"), "tensors.first_chunk"), _int(t.get("n_chunks"), "tensors.n_chunks")
                if not begin <= end <= size or first + n > len(chunks):
                    raise BadInputError(f"manifest tensor of {path} lies outside the file or its chunks",
                                        field="tensors")
                ts.append(Tensor(_str(t.get("name"), "tensors.name"), _str(t.get("dtype"), "tensors.dtype", 64),
                                 tuple(_int(x, "tensors.shape") for x in shape), begin, end, first, n))
            tensors = tuple(ts)
        fe = FileEntry(path, size, tuple(chunks), tensors)
        if "root" in d and d["root"] != fe.root.hex():
            raise ProofError(f"manifest file root of {path} does not match its chunks",
                             expected=d["root"], found=fe.root.hex())
        return fe


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]
    chunk_size: int
    _root: list[bytes] = field(default_factory=list, compare=False, repr=False)

    @staticmethod
    def build(files: Iterable[FileEntry], chunk_size: int) -> Manifest:
        fs = tuple(sorted(files, key=lambda f: f.path))
        for a, b in pairwise(fs):
            if a.path == b.path:
                raise BadInputError(f"duplicate path {a.path!r} in manifest", field="files")
        return Manifest(fs, chunk_size)

    def file_leaf_hashes(self) -> list[bytes]:
        return [leaf_hash(f.leaf_bytes) for f in self.files]

    @property
    def root(self) -> bytes:
        if not self._root:
            self._root.append(root_from_leaf_hashes(self.file_leaf_hashes()))
        return self._root[0]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> tuple[int, FileEntry]:
        for i, f in enumerate(self.files):
            if f.path == path:
                return i, f
        raise BadInputError(f"no file {path!r} in the manifest", field="path")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "chunk_size": self.chunk_size,
            "root": self.root.hex(),
            "files": [f.to_dict() for f in self.files],
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @staticmethod
    def from_dict(d: Any) -> Manifest:
        if not isinstance(d, dict) or d.get("format") != MANIFEST_FORMAT:
            raise BadInputError(f"not an {MANIFEST_FORMAT} document", field="format")
        chunk_size = _int(d.get("chunk_size"), "chunk_size", 1)
        m = Manifest.build((FileEntry.from_dict(f) for f in _list(d.get("files", []), "files")), chunk_size)
        if "root" in d and d["root"] != m.root.hex():
            raise ProofError("manifest root does not match its files", expected=d["root"], found=m.root.hex())
        return m

    @staticmethod
    def from_bytes(data: bytes) -> Manifest:
        return Manifest.from_dict(parse_json(data, what="manifest"))

    # -- proofs -------------------------------------------------------------------
    def file_proof(self, path: str) -> dict[str, Any]:
        i, f = self.file(path)
        return {
            "manifest_root": self.root.hex(),
            "file_index": i,
            "files": len(self.files),
            "file": {"path": f.path, "size": f.size, "chunks": len(f.chunks), "root": f.root.hex()},
            "file_path": [h.hex() for h in inclusion_proof(self.file_leaf_hashes(), i)],
            "chunk_digests": [c.digest.hex() for c in f.chunks],
            "chunk_offsets": [c.offset for c in f.chunks],
        }

    def chunk_proof(self, path: str, chunk_index: int) -> dict[str, Any]:
        fp = self.file_proof(path)
        _, f = self.file(path)
        if not 0 <= chunk_index < len(f.chunks):
            raise BadInputError(f"{path} has {len(f.chunks)} chunks; no chunk {chunk_index}", field="chunk")
        c = f.chunks[chunk_index]
        del fp["chunk_digests"], fp["chunk_offsets"]
        fp["chunk"] = {"index": chunk_index, "offset": c.offset, "length": c.length, "digest": c.digest.hex()}
        fp["chunk_path"] = [h.hex() for h in inclusion_proof([x.leaf for x in f.chunks], chunk_index)]
        return fp


def check_part_proof(proof: Any) -> dict[str, Any]:
    """The fields of a file or chunk proof (what :meth:`Manifest.file_proof` / :meth:`Manifest.chunk_proof`
    write), checked for form only: BadInputError naming the first field that is missing or of the wrong kind
    (a document that is not such a proof at all).  Whether the proof holds is for the verify functions."""
    p = _obj(proof, "proof")
    _hex32(p.get("manifest_root"), "manifest_root")
    _int(p.get("file_index"), "file_index", 0, 2**63)
    _int(p.get("files"), "files", 0, 2**63)
    f = _obj(p.get("file"), "file")
    _str(f.get("path"), "file.path")
    size = _int(f.get("size"), "file.size")
    n = _int(f.get("chunks"), "file.chunks", 0, 2**63)
    _hex32(f.get("root"), "file.root")
    for h in _list(p.get("file_path"), "file_path", MAX_PROOF_PATH):
        _hex32(h, "file_path")
    if "chunk" in p:
        c = _obj(p["chunk"], "chunk")
        _int(c.get("index"), "chunk.index", 0, 2**63)
        _int(c.get("offset"), "chunk.offset")
        _int(c.get("length"), "chunk.length")
        _hex32(c.get("digest"), "chunk.digest")
        for h in _list(p.get("chunk_path"), "chunk_path", MAX_PROOF_PATH):
            _hex32(h, "chunk_path")
        return p
    ds = _list(p.get("chunk_digests"), "chunk_digests")
    offs = _list(p.get("chunk_offsets"), "chunk_offsets")
    if len(ds) != n or len(offs) != n:
        raise BadInputError(f"a file proof lists one digest and one offset per chunk: file.chunks is {n}, "
                            f"chunk_digests has {len(ds)}, chunk_offsets {len(offs)}", field="chunk_offsets")
    prev = -1
    for o in offs:  # the reader cuts the file at these: in order, from 0, inside the file
        if type(o) is not int or o <= prev or o >= size or (prev < 0 and o != 0):
            raise BadInputError("chunk_offsets must rise from 0 and stay inside the file", field="chunk_offsets")
        prev = o
    return p


def verify_file_in_manifest(proof: dict[str, Any], manifest_root: bytes) -> None:
    """Check that proof['file'] is the file leaf at file_index under ``manifest_root``."""
    check_part_proof(proof)
    f = proof["file"]
    leaf = leaf_hash(file_leaf_bytes(f["path"], f["size"], f["chunks"], _hex32(f["root"], "file root")))
    verify_inclusion(proof["file_index"], proof["files"], leaf,
                     [_hex32(h, "proof hash") for h in proof["file_path"]], manifest_root)


def verify_chunk_proof(proof: dict[str, Any], chunk: bytes, manifest_root: bytes) -> None:
    """Raise ProofError unless ``chunk`` is the proved chunk of the proved file under ``manifest_root``."""
    import hashlib

    verify_chunk_digest(proof, hashlib.sha256(chunk).digest(), len(chunk), manifest_root)


def verify_chunk_digest(proof: dict[str, Any], digest: bytes, length: int, manifest_root: bytes) -> None:
    """:func:`verify_chunk_proof` for a chunk already hashed (``length`` bytes with SHA-256 ``digest``), so a
    reader can stream it."""
    verify_file_in_manifest(proof, manifest_root)
    if "chunk" not in proof:
        raise BadInputError("this is a file proof, not a chunk proof", field="chunk")
    c = proof["chunk"]
    d = digest
    if length != c["length"] or d.hex() != c["digest"]:
        raise ProofError(f"chunk {c['index']} of {proof['file']['path']} differs",
                         expected=c["digest"], found=d.hex())
    verify_inclusion(c["index"], proof["file"]["chunks"], leaf_hash(d),
                     [_hex32(h, "proof hash") for h in proof["chunk_path"]], _hex32(proof["file"]["root"], "root"))


def verify_chunk_list(proof: dict[str, Any], manifest_root: bytes) -> list[bytes]:
    """Check a file proof's chunk digest list against its file root; return the digests, so a
    streaming reader can compare each chunk as it arrives and stop at the first bad one."""
    verify_file_in_manifest(proof, manifest_root)
    if "chunk" in proof:
        raise BadInputError("this is a chunk proof, not a file proof", field="chunk")
    ds = [_hex32(h, "chunk digest") for h in proof["chunk_digests"]]
    r = root_from_leaf_hashes([leaf_hash(d) for d in ds])
    if r.hex() != proof["file"]["root"] or len(ds) != proof["file"]["chunks"]:
        raise ProofError("chunk digest list does not match the file root", expected=proof["file"]["root"],
                         found=r.hex())
    return ds


@dataclass(frozen=True)
class Difference:
    kind: str  # missing | extra | size | chunk | tensor | header
    path: str
    detail: str
    chunk: int | None = None
    tensor: str | None = None
    change: str | None = None  # header: dtype/shape/offsets/removed/added/layout/unreadable; tensor: changed/beyond-end

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "path": self.path, "detail": self.detail}
        if self.chunk is not None:
            d["chunk"] = self.chunk
        if self.tensor is not None:
            d["tensor"] = self.tensor
        if self.change is not None:
            d["change"] = self.change
        return d


def _describe(t: Tensor) -> str:
    return f"{t.dtype} {list(t.shape)}"


def _header_changes(p: str, e: FileEntry, a: FileEntry) -> list[Difference]:
    """Which tensor entries of a safetensors header changed, and how (the header is its own chunk,
    so without this a dtype or shape edit shows only as "chunk 0 changed")."""
    assert e.tensors is not None
    if a.tensors is None:
        return [Difference("header", p, f"{p}: its safetensors header can no longer be read (registered with "
                                        f"{len(e.tensors)} tensors)", change="unreadable")]
    et, at = {t.name: t for t in e.tensors}, {t.name: t for t in a.tensors}
    out: list[Difference] = []
    for n in sorted(et.keys() - at.keys()):
        out.append(Difference("header", p, f"{p}: tensor {n!r} ({_describe(et[n])}) is no longer in the header",
                              tensor=n, change="removed"))
    for n in sorted(at.keys() - et.keys()):
        out.append(Difference("header", p, f"{p}: the header has a new tensor {n!r} ({_describe(at[n])})",
                              tensor=n, change="added"))
    common = sorted(et.keys() & at.keys())
    # a header that grew or shrank moves every tensor by the same amount: say that once
    shifts = {at[n].begin - et[n].begin for n in common}
    shift = shifts.pop() if len(shifts) == 1 and common else 0
    if shift and all(at[n].end - at[n].begin == et[n].end - et[n].begin for n in common):
        out.append(Difference("header", p, f"{p}: the header is {abs(shift)} bytes {'longer' if shift > 0 else 'shorter'}"
                                           f", so every tensor's data moved by {shift:+d} bytes", change="layout"))
    else:
        shift = 0
    for n in common:
        x, y = et[n], at[n]
        if x.dtype != y.dtype:
            out.append(Difference("header", p, f"{p}: header entry of tensor {n!r} changed: dtype {x.dtype} -> "
                                               f"{y.dtype}", tensor=n, change="dtype"))
        if x.shape != y.shape:
            out.append(Difference("header", p, f"{p}: header entry of tensor {n!r} changed: shape {list(x.shape)} -> "
                                               f"{list(y.shape)}", tensor=n, change="shape"))
        if (x.begin + shift, x.end + shift) != (y.begin, y.end):
            out.append(Difference("header", p, f"{p}: header entry of tensor {n!r} changed: bytes {x.begin}..{x.end} "
                                               f"-> {y.begin}..{y.end}", tensor=n, change="offsets"))
    return out


def diff_manifests(expected: Manifest, actual: Manifest) -> list[Difference]:
    """Say exactly what differs: files missing or extra, size changes, changed chunks, changed
    safetensors header entries (by tensor: dtype, shape, offsets), changed tensors, and for a
    file cut short the chunks and tensors that now lie beyond its end."""
    out: list[Difference] = []
    exp = {f.path: f for f in expected.files}
    act = {f.path: f for f in actual.files}
    for p in sorted(exp.keys() - act.keys()):
        out.append(Difference("missing", p, f"{p} is in the registered model but missing here"))
    for p in sorted(act.keys() - exp.keys()):
        out.append(Difference("extra", p, f"{p} is here but not in the registered model"))
    for p in sorted(exp.keys() & act.keys()):
        e, a = exp[p], act[p]
        if e.root == a.root and e.size == a.size:
            continue
        if e.size != a.size:
            how = "shorter" if a.size < e.size else "longer"
            out.append(Difference("size", p, f"{p} was {e.size} bytes, is {a.size} bytes "
                                             f"({abs(e.size - a.size)} bytes {how})"))
        by_off = {c.offset: c for c in a.chunks}
        changed: list[Chunk] = []
        cut: list[int] = []  # chunks that end past the end of the (shorter) file
        for i, c in enumerate(e.chunks):
            if c.offset + c.length > a.size:
                cut.append(i)
                continue
            ac = by_off.get(c.offset)
            if ac is None or ac.length != c.length or ac.digest != c.digest:
                changed.append(c)
                out.append(Difference("chunk", p, f"{p} chunk {i} (bytes {c.offset}..{c.offset + c.length}) changed",
                                      chunk=i))
        if cut:
            c0 = e.chunks[cut[0]]
            which = f"chunk {cut[0]}" if len(cut) == 1 else f"chunks {cut[0]}..{cut[-1]}"
            out.append(Difference("chunk", p, f"{p} {which} (bytes {c0.offset}..{e.size}) lie beyond the end of the "
                                              f"file, which now ends at byte {a.size}", chunk=cut[0]))
        if e.tensors is not None:
            first_data = min((t.begin for t in e.tensors), default=e.size)
            hdr = _header_changes(p, e, a)
            if not hdr and any(c.offset < first_data for c in changed):
                hdr = [Difference("header", p, f"{p}: the safetensors header changed outside the tensor entries "
                                               "(__metadata__ or padding)", change="metadata")]
            out += hdr
            for t in e.tensors:
                if t.end > a.size:
                    part = "" if t.begin >= a.size else "partly "
                    out.append(Difference("tensor", p, f"{p} tensor {t.name!r} ({_describe(t)}, bytes {t.begin}.."
                                                       f"{t.end}) lies {part}beyond the end of the file (now "
                                                       f"{a.size} bytes)", tensor=t.name, change="beyond-end"))
                elif any(c.offset < t.end and t.begin < c.offset + c.length for c in changed):
                    out.append(Difference("tensor", p, f"{p} tensor {t.name!r} ({_describe(t)}) changed",
                                          tensor=t.name, change="changed"))
    return out
