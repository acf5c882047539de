"""Dataset commitments ("dataset.commit"): a sparse Merkle root over the dataset's records, and
membership / absence proofs a third party checks offline holding only the candidate record.

Pipeline, memory bounded whatever the dataset size:

1. *hash*: the inputs are cut into work units (byte ranges of JSONL files cut at line ends, CSV
   files, Parquet row groups, slices of a folder's files); worker processes turn each record into
   its 32-byte key and append it to one of 2^P partition files chosen by the key's first P bits
   (the keys of one partition are exactly one subtree of the sparse Merkle tree);
2. *build*: each partition is sorted and de-duplicated alone (in parallel), its subtree hashed
   bottom-up, and written as one shard of the proof index (its sorted keys and its stored levels);
   the 2^P partition roots combine into the root in the top P levels (``top.bin``);
3. the index stays on disk under the ledger directory, sharded like the tree (:class:`DatasetIndex`):
   a proof reads the top levels and the one shard on the key's path, D stored siblings in all, and
   recomputes the rest from one bucket of a few keys.

Inputs are local paths or ``s3://`` objects and prefixes (:mod:`ailedger.provenance.s3input`).

Units could equally be hashed on other machines: their partition files are all that step 2 needs.
"""

from __future__ import annotations

import base64
import csv
import glob
import hashlib
import hmac
import io
import json
import mmap
import os
import re
import secrets
import shutil
import sys
import time
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.encoding.fasthash import sha256_many
from ailedger.encoding.records import parse_entry
from ailedger.encoding.refs import entry_ref
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    NetworkError,
    NotFoundError,
    ProofError,
)
from ailedger.provenance import s3input, smt
from ailedger.provenance.dataset_rule import (
    FORM_BYTES,
    FORM_CSV,
    FORM_JSON,
    FORM_OF_KIND,
    FORM_PARQUET,
    Reading,
    Rule,
    readings,
    rule_body,
    rule_of,
)
from ailedger.provenance.entries import (
    DATASET_RECORD,
    artifacts_dir,
    entries_named,
    entry_status,
)
from ailedger.provenance.hashing import cpu_workers, scan_dir
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import parse_vkey
from ailedger.tlog.proofbundle import verify_proof_bundle

__all__ = [
    "DATASET_PROOF",
    "SMT_FORMAT",
    "DatasetIndex",
    "commit_dataset",
    "current_dataset",
    "dataset_owner",
    "dataset_versions",
    "find_dataset",
    "normalise_candidate",
    "prove_dataset",
    "record_key",
    "verify_dataset_proof_file",
    "version_chain",
]

DATASET_PROOF = "ailedger-dataset-proof/v2"
SMT_FORMAT = "ailedger-smt/v1"
UNIT_BYTES = 8 << 20  # per work unit: bounds a hashing worker's memory (~10x this at peak)
PARTITION_TARGET = 16 << 20  # bytes of keys per partition (bounds the memory of one sort)
_FLOATISH = re.compile(r"[0-9][.eE]")
_HIGH = re.compile("[\ud800-\U0010ffff]")
_FLOATISH_B = re.compile(rb"[0-9][.eE]")
_HIGH_B = re.compile(rb"[\xed-\xf4]")  # UTF-8 lead bytes of U+D000 and up (a superset of U+D800 and up)



def _orjson() -> tuple[Any, Any, int]:
    try:
        import orjson
    except ImportError:  # pragma: no cover - optional speed-up
        return None, None, 0
    return orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
_ENCODING = {"jsonl": "application/jsonlines", "csv": "text/csv", "parquet": "application/x-parquet",
             "files": "application/octet-stream", "arrow": "application/vnd.apache.arrow.stream"}


# -- leaves ------------------------------------------------------------------------------------

def record_key(normalised: bytes, secret: bytes | None = None) -> bytes:
    """The record's 256-bit key: SHA-256 of its normalised bytes, or HMAC-SHA256 under the
    curator's secret in private mode."""
    if secret is not None:
        return hmac.digest(secret, normalised, "sha256")
    return hashlib.sha256(normalised).digest()


def _json_value(v: Any) -> Any:
    """Parquet cell -> JSON value (documented in docs/provenance.md)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def normalise_candidate(candidate: bytes, normalisation: str) -> bytes:
    """The v1 proof files' reading of a candidate (``normalisation`` "bytes" or "json": the RFC 8785
    form of a JSON value, or of a CSV header line plus one row).  Kept to check v1 files against the
    readings of :mod:`dataset_rule`; new code uses :func:`dataset_rule.readings`."""
    if normalisation == "bytes":
        return candidate
    if normalisation != "json":
        raise BadInputError(f"unknown normalisation {normalisation!r}", field="normalisation")
    text = candidate.strip()
    try:
        return canonical_json(parse_json(text, what="candidate"))
    except BadInputError:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8", "replace"))))
        if len(rows) == 2 and len(rows[0]) == len(rows[1]) and len(set(rows[0])) == len(rows[0]):
            return canonical_json(dict(zip(rows[0], rows[1])))
        raise


# -- work units --------------------------------------------------------------------------------

def _kind_of_name(name: str, shown: str) -> str:
    s = name.lower()
    if s.endswith((".jsonl", ".ndjson", ".jsonl.txt")):
        return "jsonl"
    if s.endswith(".csv"):
        return "csv"
    if s.endswith(".parquet"):
        return "parquet"
    raise BadInputError(f"{shown}: unknown record format (use a folder, .jsonl, .csv or .parquet)", field="path")


def _kind_of(p: Path) -> str:
    if p.is_dir():
        return "arrow" if hf_arrow_files(p) else "files"
    return _kind_of_name(p.name, str(p))


def hf_arrow_files(folder: Path) -> list[Path]:
    """The Arrow files of a Hugging Face ``datasets`` folder written by ``save_to_disk`` (a Dataset:
    ``state.json`` naming its ``_data_files``; a DatasetDict: ``dataset_dict.json`` naming its splits,
    each such a folder), in split then file order; [] when ``folder`` is not one.  Its rows are records
    read like a Parquet export's rows (same keys for the same records); the other files (state,
    dataset_info) are metadata, not records."""
    dd = folder / "dataset_dict.json"
    if dd.is_file():
        try:
            splits = parse_json(dd.read_bytes(), what=str(dd)).get("splits")
        except AttributeError:
            splits = None
        if not isinstance(splits, list) or not all(isinstance(x, str) and x and "/" not in x and x not in (".", "..")
                                                     for x in splits):
            raise BadInputError(f"{dd}: 'splits' must be a list of split folder names", field="path")
        out: list[Path] = []
        for sp in splits:
            files = hf_arrow_files(folder / sp)
            if not files:
                raise BadInputError(f"{folder / sp}: split {sp!r} of {dd} is not a saved dataset folder", field="path")
            out += files
        return out
    st = folder / "state.json"
    if not st.is_file():
        return []
    obj = parse_json(st.read_bytes(), what=str(st))
    data_files = obj.get("_data_files") if isinstance(obj, dict) else None
    if not isinstance(data_files, list) or not data_files:
        return []
    out = []
    for d in data_files:
        fn = d.get("filename") if isinstance(d, dict) else None
        if not isinstance(fn, str) or not fn or "/" in fn or fn in (".", ".."):
            raise BadInputError(f"{st}: a _data_files entry has no plain file name", field="path")
        f = folder / fn
        if not f.is_file():
            raise BadInputError(f"{st} names {fn}, which is missing; nothing was logged", field="path")
        out.append(f)
    return out


def _resolve_s3(ps: str) -> tuple[str, s3input.S3Path, list[tuple[s3input.S3Path, str]]]:
    """(kind, the object or prefix, its objects when a folder) of an ``s3://`` input: the key names an
    object (``.jsonl``/``.csv``/``.parquet``) or, when there is no object by that name, a folder."""
    sp = ps if isinstance(ps, s3input.S3Path) else s3input.S3Path(ps)
    _, key = s3input.parse(sp)
    if key and not key.endswith("/"):
        st = s3input.stat_object(sp)
        if st is not None:
            obj = s3input.S3Path(str(sp), sp.endpoint, st[0], st[1])
            return _kind_of_name(key.rsplit("/", 1)[-1], ps), obj, []
    objs = s3input.list_folder(sp)
    if not objs:
        raise BadInputError(f"{ps}: no object by that key and none under it as a folder; nothing was logged",
                            field="path")
    return "files", sp, objs


def _plan_units(paths: Sequence[str], follow_symlinks: bool, unit_bytes: int = UNIT_BYTES
                ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], int, list[str]]:
    """Work units, sources, total bytes, and each input as read (a local path, or an
    :class:`s3input.S3Path` with the size and ETag the planning saw)."""
    units: list[tuple[Any, ...]] = []
    sources: list[dict[str, Any]] = []
    inputs: list[str] = []
    total = 0
    for si, ps in enumerate(paths):
        files: list[tuple[str, str, int]] = []
        src: str
        if s3input.is_s3(ps):
            kind, sp, objs = _resolve_s3(ps)
            _, key = s3input.parse(sp)
            name = key.rstrip("/").rsplit("/", 1)[-1] or sp.bucket
            files = [(o, rel, o.size or 0) for o, rel in objs]
            src, n = sp, sp.size or 0
        else:
            p = Path(ps)
            if not p.exists():
                raise BadInputError(f"{ps} does not exist", field="path")
            kind, name, src = _kind_of(p), p.name or str(p), str(p)
            if kind == "files":
                files = [(f.path, f.rel, f.st.st_size)
                         for f in scan_dir(p, follow_external_symlinks=follow_symlinks, ignore=())]
            n = 0 if kind == "files" else p.stat().st_size
        sources.append({"name": name, "kind": kind})
        inputs.append(src)
        if kind == "files":
            batch: list[tuple[str, str]] = []
            size = 0
            for fp, rel, fsize in files:
                batch.append((fp, rel))
                size += fsize
                total += fsize
                if size >= unit_bytes or len(batch) >= 20000:
                    units.append(("files", si, batch, size))
                    batch, size = [], 0
            if batch:
                units.append(("files", si, batch, size))
        elif kind == "jsonl":
            total += n
            with s3input.open_binary(src, 64 << 10) as fh:
                start = 0
                while start < n:
                    end = min(n, start + unit_bytes)
                    if end < n:
                        fh.seek(end)
                        rest = fh.readline()
                        end += len(rest)
                    units.append(("jsonl", si, src, start, end))
                    start = end
        elif kind == "csv":
            total += n
            units.append(("csv", si, src, n))
        elif kind == "arrow":
            for f in hf_arrow_files(Path(src)):
                size = f.stat().st_size
                total += size
                units.append(("arrow", si, str(f), size))
        else:
            import pyarrow.parquet as pq

            try:
                with s3input.open_binary(src) as fh:
                    md = pq.ParquetFile(fh).metadata
            except AiledgerError:
                raise
            except Exception as e:
                raise BadInputError(f"{ps}: not a readable Parquet file ({e})", field="path") from e
            total += n
            for rg in range(md.num_row_groups):
                units.append(("parquet", si, src, rg, md.row_group(rg).total_byte_size))
    return units, sources, total, inputs


# -- worker side ---------------------------------------------------------------------------------

_PART_FDS: dict[tuple[int, str, int, str], int] = {}


def _part_fd(tmp: str, p: int, tag: str) -> int:
    """This process's append-only file for partition ``p`` of shard ``tmp``, opened once: creating a
    file per partition per work unit cost more than hashing the unit's records on ext4 here."""
    key = (os.getpid(), tmp, p, tag)
    fd = _PART_FDS.get(key)
    if fd is None:
        if not _PART_FDS:
            open_file_limit()  # 2^P files: raise the soft limit to the hard one
        name = os.path.join(tmp, f"part-{p:05d}-{tag}-{os.getpid()}.bin")
        fd = _PART_FDS[key] = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                                      0o600)
    return fd


def _close_part_fds(tmp: str) -> None:
    for key in [k for k in _PART_FDS if k[1] == tmp]:
        os.close(_PART_FDS.pop(key))


class _Sink:
    """Collects keys and spills them into partition files by their first P bits."""

    def __init__(self, tmp: str, P: int, tag: str) -> None:
        self.tmp, self.P, self.tag = tmp, P, tag
        self.buf = bytearray()
        self.n = 0

    def add(self, k: bytes) -> None:
        self.buf += k
        self.n += 1
        if len(self.buf) >= 8 << 20:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        import numpy as np

        arr = np.frombuffer(bytes(self.buf), dtype=np.uint8).reshape(-1, 32)
        # partition = the key's first P bits (P <= 16); uint16 so the stable argsort is a radix sort
        part = ((arr[:, 0].astype(np.uint16) << 8 | arr[:, 1]) >> (16 - self.P)).astype(np.uint16) if self.P \
            else np.zeros(len(arr), np.uint16)
        order = np.argsort(part, kind="stable")
        arr, part = arr[order], part[order]
        bounds = np.searchsorted(part, np.arange((1 << self.P) + 1))
        for p in range(1 << self.P):
            a, b = int(bounds[p]), int(bounds[p + 1])
            if b > a:
                data = memoryview(arr[a:b].tobytes())
                fd = _part_fd(self.tmp, p, self.tag)
                while data:
                    data = data[os.write(fd, data):]
        self.buf = bytearray()


def _encode_fast() -> Any:
    from json.encoder import c_make_encoder  # type: ignore[attr-defined]

    if c_make_encoder is None:  # pragma: no cover
        return None
    from json.encoder import encode_basestring

    return c_make_encoder(None, None, encode_basestring, None, ":", ",", True, False, False)


_LUT: Any = None


def _flag_table() -> bytes:
    t = bytearray(b" " * 256)
    for c in b"0123456789":
        t[c] = ord("0")
    for c in b".eE":
        t[c] = ord(".")
    t[ord("\\")] = ord("\\")
    t[ord("u")] = ord("u")
    t[10] = 10
    for c in range(0xED, 0x100):
        t[c] = ord("!")
    return bytes(t)


_FLAG_TABLE = _flag_table()
_SLICE = 2048  # lines canonicalised per batch SHA-256 call
_FLOAT_T = re.compile(rb"0\.")  # in the folded text: a digit followed by . e or E


def _flag_lines(block: bytes) -> tuple[set[int], Any]:
    """Indexes of the lines that need the exact canonicalisation path (a digit followed by . e E,
    a run of 19+ digits, a \\u escape, or a UTF-8 lead byte of U+D000 and up); and the positions
    of the newlines (None when no line is flagged: computed only when needed).

    A quick pass first: one ``bytes.translate`` folds every byte into its class and four searches
    on that say whether any line is flagged at all (the common case: none); only then are the
    exact positions found, with numpy through one byte-class lookup."""
    t = block.translate(_FLAG_TABLE)
    # (a backslash is rare and one memchr finds that; isascii() is one pass: both spare a slower search of t)
    if not (_FLOAT_T.search(t) or (not block.isascii() and b"!" in t) or (b"\\" in block and b"\\u" in block)
            or b"0000000000000000000" in t):
        return set(), None
    import numpy as np

    global _LUT
    if _LUT is None:
        lut = np.zeros(256, np.uint8)
        lut[48:58] = 1  # digit
        lut[[46, 101, 69]] = 2  # . e E
        lut[92] = 4  # backslash
        lut[117] |= 8  # u
        lut[0xED:0x100] = 16  # lead bytes of U+D000.. (and invalid bytes): exact path
        lut[10] = 32  # newline
        _LUT = lut
    arr = np.frombuffer(block, dtype=np.uint8)
    cls = _LUT[arr]
    nl = np.flatnonzero(cls == 32)
    if len(arr) < 2:
        return ({0} if len(arr) and cls[0] & 16 else set()), nl
    # bit 0: digit then . e E; bit 2: backslash then u
    pos = np.flatnonzero((cls[:-1] & (cls[1:] >> 1)) & 5)
    if not block.isascii():
        pos = np.concatenate((pos, np.flatnonzero(cls & 16)))
    # runs of 19+ digits: orjson would turn integers beyond 64 bits into floats
    edges = np.diff((cls & 1).view(np.int8), prepend=np.int8(0), append=np.int8(0))
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long_runs = run_starts[(run_ends - run_starts) >= 19]
    if len(long_runs):
        pos = np.concatenate((pos, long_runs))
    return set(np.searchsorted(nl, pos, side="left").tolist()), nl


def _newlines(block: bytes) -> Any:
    import numpy as np

    return np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)


def _jsonl_block(block: bytes, start: int, path: str, secret: bytes | None, sink: _Sink) -> dict[str, Any] | None:
    """Keys of the JSON lines of ``block`` into ``sink``; or the first bad line as an error dict.

    Fast lines (see _flag_lines) are parsed and dumped compact with sorted keys by orjson, in one
    comprehension: for them that output is exactly RFC 8785 (tested against canonical_json).  Every
    other line, and every line of a block where anything failed, takes canonical_json."""
    lines = block.split(b"\n")
    oj_loads, oj_dumps, opt = _orjson()
    careful: Any = range(len(lines))
    flagged, nl = _flag_lines(block)
    if oj_loads is not None:
        try:
            if secret is None:
                # one sha256_many call (C, SHA extensions) per slice of lines instead of one hashlib call a
                # line; slices, because orjson's output keeps a few KiB of capacity while it is alive
                got, n_got = bytearray(), 0  # into the sink only once every line went through
                for a in range(0, len(lines), _SLICE):
                    if flagged:
                        cans = [oj_dumps(oj_loads(ln), option=opt)
                                for i, ln in enumerate(lines[a:a + _SLICE], a) if ln and i not in flagged]
                    else:
                        cans = [oj_dumps(oj_loads(ln), option=opt) for ln in lines[a:a + _SLICE] if ln]
                    got += sha256_many(cans)
                    n_got += len(cans)
                sink.buf += got
                sink.n += n_got
            else:
                keys = [hmac.digest(secret, oj_dumps(oj_loads(ln), option=opt), "sha256")
                        for i, ln in enumerate(lines) if ln and i not in flagged]
                sink.buf += b"".join(keys)
                sink.n += len(keys)
            careful = sorted(flagged)
        except Exception:  # noqa: BLE001 - a bad or unusual line: the careful loop says which
            careful = range(len(lines))
    for i in careful:
        if i >= len(lines):
            continue
        ln = lines[i]
        if not ln or ln.isspace():
            continue
        try:
            s = canonical_json(json.loads(ln.decode("utf-8")))
        except (ValueError, UnicodeDecodeError, AiledgerError) as e:
            msg = getattr(e, "message", None) or str(e)
            if nl is None:
                nl = _newlines(block)
            return {"error": "bad_json", "path": path, "offset": start + (int(nl[i - 1]) + 1 if i else 0),
                    "reason": msg[:200]}
        sink.add(record_key(s, secret))
    sink.flush()
    return None


def _hash_unit(unit: tuple[Any, ...], tmp: str, P: int, secret: bytes | None, tag: str) -> dict[str, Any]:
    """Hash one work unit into partition files. Returns counts, or the first error (file, line)."""
    sink = _Sink(tmp, P, tag)
    kind, si = unit[0], unit[1]
    try:
        if kind == "files":
            for path, rel in unit[2]:
                try:
                    with s3input.open_binary(path) as fh:
                        if secret is None:
                            h = hashlib.file_digest(fh, "sha256").digest()
                        else:
                            h = hmac.digest(secret, fh.read(), "sha256")
                except OSError as e:
                    return {"error": f"cannot read {rel}: {e.strerror}", "where": rel}
                sink.add(h)
        elif kind == "jsonl":
            path, start, end = unit[2], unit[3], unit[4]
            with s3input.open_binary(path, 64 << 10) as fh:
                fh.seek(start)
                block = fh.read(end - start)
            err = _jsonl_block(block, start, path, secret, sink)
            if err is not None:
                return err
        elif kind == "csv":
            path = unit[2]
            with io.TextIOWrapper(s3input.open_binary(path, 8 << 20), encoding="utf-8", newline="") as fh:
                rd = csv.reader(fh)
                try:
                    header = next(rd)
                except StopIteration:
                    return {"error": f"{path}: empty CSV file (no header line)", "where": path}
                except (csv.Error, UnicodeDecodeError) as e:
                    return {"error": f"{path} line 1: {e}", "where": path}
                if len(set(header)) != len(header):
                    return {"error": f"{path} line 1: duplicate column names in the header", "where": path}
                while True:
                    try:
                        row = next(rd)
                    except StopIteration:
                        break
                    except (csv.Error, UnicodeDecodeError) as e:
                        return {"error": f"{path} line {rd.line_num}: does not parse ({e})", "where": path}
                    if not row:
                        continue
                    if len(row) != len(header):
                        return {"error": f"{path} line {rd.line_num}: {len(row)} fields, the header has "
                                         f"{len(header)}", "where": path}
                    sink.add(record_key(canonical_json(dict(zip(header, row))), secret))
            sink.flush()
            return {"n": sink.n, "source": si, "header": header}
        elif kind == "arrow":
            import pyarrow as pa

            path = unit[2]
            try:
                with pa.memory_map(path) as src_, pa.ipc.open_stream(src_) as reader:
                    for batch in reader:
                        for row in batch.to_pylist():
                            sink.add(record_key(canonical_json(_json_value(row)), secret))
            except AiledgerError as e:
                return {"error": f"{path}: {e.message}", "where": path}
            except Exception as e:  # noqa: BLE001
                return {"error": f"{path}: not a readable Arrow stream of a saved dataset ({e})", "where": path}
        elif kind == "parquet":
            import pyarrow.parquet as pq

            path, rg = unit[2], unit[3]
            try:
                with s3input.open_binary(path) as fh:
                    table = pq.ParquetFile(fh).read_row_group(rg)
            except AiledgerError as e:
                return {"error": e.message, "where": str(path)}
            except Exception as e:  # noqa: BLE001
                return {"error": f"{path} row group {rg}: does not parse ({e})", "where": path}
            for row in table.to_pylist():
                try:
                    sink.add(record_key(canonical_json(_json_value(row)), secret))
                except AiledgerError as e:
                    return {"error": f"{path} row group {rg}: {e.message}", "where": path}
        sink.flush()
    except OSError as e:
        return {"error": f"cannot read {e.filename}: {e.strerror}", "where": str(e.filename)}
    except AiledgerError as e:  # an object store's error (s3input), already worded for the user
        return {"error": e.message.removesuffix("; nothing was logged"), "where": str(unit[2]), "code": e.code}
    return {"n": sink.n, "source": si}


def unit_error(r: dict[str, Any]) -> AiledgerError:
    """The error a failed work unit's result describes: a store's failure stays a NetworkError."""
    cls = NetworkError if r.get("code") == NetworkError.code else BadInputError
    return cls(r["error"] + "; nothing was logged", field="record", file=r.get("where"))


def _worker_init() -> None:
    pass


def _hash_unit_star(args: tuple[Any, ...]) -> dict[str, Any]:
    return _hash_unit(*args)


def _build_partition(args: tuple[list[str], str, int, int, int, str, bool]) -> dict[str, Any]:
    """Sort, de-duplicate and hash one partition; write its shard of the proof index: its sorted keys
    (``shards/keys-PPPPP.bin``) and its subtree's node hashes of depths P+1..D (``shards/levels-PPPPP.bin``);
    its root (depth P) is returned for the top levels.

    Idempotent, so a task run again (its worker killed) gives the same answer: the outputs are written
    under temporary names and renamed, then a ``built-PPPPP.json`` marker with the result, and only then
    are the consumed inputs removed; a run that finds the marker returns it."""
    import numpy as np

    dirs, tmp, p, P, D, _, consume = args
    parts = sorted(f for d in dirs for f in glob.glob(os.path.join(d, f"part-{p:05d}-*.bin")))
    marker = os.path.join(tmp, SHARDS, f"built-{p:05d}.json")
    if os.path.exists(marker):
        with open(marker) as fh:
            done = json.load(fh)
        _unlink_all(parts if consume else [])
        return {**done, "root": bytes.fromhex(done["root"])}
    chunks = [np.fromfile(f, dtype=np.uint8) for f in parts]
    raw = np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)
    del chunks
    arr = raw.reshape(-1, 32)
    n_in = len(arr)
    if n_in:
        cols = arr.view(">u8").reshape(-1, 4)
        order = np.lexsort((cols[:, 3], cols[:, 2], cols[:, 1], cols[:, 0]))
        arr = arr[order]
        if len(arr) > 1:
            keep = np.ones(len(arr), bool)
            keep[1:] = np.any(arr[1:] != arr[:-1], axis=1)
            arr = arr[keep]
    data = arr.tobytes()
    keys_path = os.path.join(tmp, SHARDS, f"keys-{p:05d}.bin")
    with open(keys_path + ".part", "wb") as fh:
        fh.write(data)
    os.replace(keys_path + ".part", keys_path)
    m = len(arr)
    keys = [data[i:i + 32] for i in range(0, len(data), 32)]
    width = D - P
    nb = 1 << width
    if m:
        top = arr[:, :8].copy().view(">u8").reshape(-1).astype(np.uint64)
        bucket = (top >> np.uint64(64 - D)).astype(np.int64) if D else np.zeros(m, np.int64)
        bounds = np.searchsorted(bucket, np.arange(p << width, (p << width) + nb + 1)).tolist()
    else:
        bounds = [0] * (nb + 1)
    level = bytearray()
    counts = bytearray()
    sub = smt.subtree_root
    leaf = smt.leaf_node
    Z = smt.Z
    for b in range(nb):
        lo, hi = bounds[b], bounds[b + 1]
        c = hi - lo
        if c == 0:
            level += Z
        elif c == 1:
            level += leaf(keys[lo])
        else:
            level += sub(keys, D, lo, hi)
        counts.append(min(c, 2))
    lv, ct = bytes(level), bytes(counts)
    levels_path = os.path.join(tmp, SHARDS, f"levels-{p:05d}.bin")
    with open(levels_path + ".part", "wb") as fh:
        fh.truncate(_shard_levels_offset(D - P + 1))
        for d in range(D, P, -1):
            fh.seek(_shard_levels_offset(d - P))
            fh.write(lv)
            lv, ct = smt.parent_level(lv, ct)
    os.replace(levels_path + ".part", levels_path)
    res = {"p": p, "n_in": n_in, "n": m, "root": lv, "count": ct[0] if ct else 0}
    with open(marker + ".part", "w") as fh:
        json.dump({**res, "root": lv.hex()}, fh)
    os.replace(marker + ".part", marker)
    _unlink_all(parts if consume else [])
    return res


def _unlink_all(files: Sequence[str]) -> None:
    for f in files:
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass


# -- index ---------------------------------------------------------------------------------------

SHARDS = "shards"
INDEX_LAYOUT = "sharded/v1"


def _shard_levels_offset(j: int) -> int:
    """Byte offset of local depth ``j`` (1..D-P) in a partition's levels file: 2 + 4 + ... nodes before it."""
    return ((1 << j) - 2) * 32


class _KeyFile(Sequence[bytes]):
    def __init__(self, mm: Any, n: int) -> None:
        self.mm, self.n = mm, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            raise TypeError("no slices")
        return self.mm[i * 32:i * 32 + 32]


class _ShardedKeys(Sequence[bytes]):
    """All sorted keys of a sharded index as one sequence; a partition's file is opened when one of its
    keys is read (a proof reads the keys of the partition on its path only)."""

    def __init__(self, index: DatasetIndex) -> None:
        self.ix = index

    def __len__(self) -> int:
        return self.ix.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            raise TypeError("no slices")
        cum = self.ix.cum
        p = bisect_right(cum, i) - 1
        o = (i - cum[p]) * 32
        return self.ix.shard(p)[0][o:o + 32]


class DatasetIndex:
    """The on-disk proof index of one committed dataset.

    Sharded layout (``meta.json`` ``layout`` = ``sharded/v1``, written since the index became sharded):
    ``top.bin`` holds the node hashes of depths 0..P (heap order, 2^(P+1)-1 nodes), ``counts.bin`` the
    number of keys of each of the 2^P partitions (u64 little-endian), and ``shards/keys-PPPPP.bin`` /
    ``shards/levels-PPPPP.bin`` one partition's sorted keys and its subtree's node hashes of depths
    P+1..D.  A proof walks the top P levels from ``top.bin`` and the counts, then opens the one
    partition on the key's path (or, when the walk ends above it on a subtree of a single key, the
    partition holding that key): ``opened`` lists the shards it read.  The older layout (one
    ``keys.bin`` and one ``levels.bin`` of depths 0..D) is still read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta = json.loads((path / "meta.json").read_text())
        self.D = self.meta["D"]
        self.n = self.meta["records"]
        self.secret = (path / "secret").read_bytes() if (path / "secret").exists() else None
        self.sharded = self.meta.get("layout") == INDEX_LAYOUT
        self.opened: list[int] = []
        self._shards: dict[int, tuple[Any, Any]] = {}
        self._files: list[Any] = []
        if self.sharded:
            import numpy as np

            self.P = self.meta["P"]
            counts = np.fromfile(path / "counts.bin", dtype="<u8")
            if len(counts) != 1 << self.P or int(counts.sum()) != self.n:
                raise ProofError(f"the proof index at {path} is damaged (counts.bin does not match meta.json)")
            self.cum = [0, *np.cumsum(counts).tolist()]
            self._top = self._map(path / "top.bin")
            self.keys: Sequence[bytes] = _ShardedKeys(self)
        else:
            self._mk = self._map(path / "keys.bin") if self.n else b""
            self._ml = self._map(path / "levels.bin")
            self.keys = _KeyFile(self._mk, self.n)

    def _map(self, f: Path) -> Any:
        fh = open(f, "rb")  # noqa: SIM115 - kept open for the mmap, closed by close()
        self._files.append(fh)
        if os.fstat(fh.fileno()).st_size == 0:
            return b""
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._files.append(mm)
        return mm

    def shard(self, p: int) -> tuple[Any, Any]:
        """(keys, levels) of partition ``p``, memory-mapped on first use."""
        got = self._shards.get(p)
        if got is None:
            d = self.path / SHARDS
            try:
                got = (self._map(d / f"keys-{p:05d}.bin"), self._map(d / f"levels-{p:05d}.bin"))
            except OSError as e:
                raise NotFoundError(f"the proof index at {self.path} lacks shard {p} ({e.strerror}: {e.filename}); "
                                    "no proof was made", field="dataset") from e
            self._shards[p] = got
            self.opened.append(p)
        return got

    def node_at(self, d: int, prefix: int) -> bytes:
        if not self.sharded:
            o = ((1 << d) - 1 + prefix) * 32
            return bytes(self._ml[o:o + 32])
        if d <= self.P:
            o = ((1 << d) - 1 + prefix) * 32
            return bytes(self._top[o:o + 32])
        j = d - self.P
        o = _shard_levels_offset(j) + (prefix & ((1 << j) - 1)) * 32
        return bytes(self.shard(prefix >> j)[1][o:o + 32])

    @property
    def root(self) -> bytes:
        return self.node_at(0, 0)

    def prove(self, key: bytes) -> smt.SmtProof:
        if not self.sharded:
            return smt.prove_with_levels(key, self.D, self.node_at, self.keys)
        if len(key) != smt.KEY_SIZE:
            raise BadInputError("key must be 32 bytes", field="key")
        # the top P levels: each subtree's key range comes from the partition counts, not from key reads
        k = int.from_bytes(key, "big")
        P, cum = self.P, self.cum
        lo, hi, d = 0, self.n, 0
        sibs: list[bytes] = []
        while d < P and hi - lo > 1:
            child = k >> (255 - d)
            sibs.append(self.node_at(d + 1, child ^ 1))
            span = 1 << (P - d - 1)
            lo, hi = cum[child * span], cum[(child + 1) * span]
            d += 1
        return smt.prove_with_levels(key, self.D, self.node_at, self.keys, start=(d, lo, hi, sibs))

    def close(self) -> None:
        for x in reversed(self._files):
            x.close()
        self._files = []
        self._shards = {}


def _datasets_dir(ledger: Any) -> Path:
    p = artifacts_dir(ledger) / "datasets"
    p.mkdir(parents=True, exist_ok=True)
    return p


def _line_of(path: str, offset: int) -> int:
    n = 1
    with s3input.open_binary(path) as fh:
        left = offset
        while left > 0:
            b = fh.read(min(left, 1 << 20))
            if not b:
                break
            n += b.count(b"\n")
            left -= len(b)
    return n


def _cpu_seconds() -> float:
    """User+system CPU time of this process and its reaped children (the worker pools)."""
    import resource

    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


SHARD_FORMAT = "ailedger-dataset-shard/v1"


def _stat_sig(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _signature(path: str) -> tuple[Any, ...]:
    """What must not change while a source is hashed: a file's size, mtime, ctime and inode; an
    object's size and ETag."""
    if s3input.is_s3(path):
        sp = path if isinstance(path, s3input.S3Path) else s3input.S3Path(path)
        return tuple(s3input.stat_object(sp) or ())
    return _stat_sig(os.stat(path))


def _file_sha256(path: str) -> tuple[str, int, tuple[Any, ...]]:
    """SHA-256 and size of a file's (object's) bytes, with its signature before reading (compared
    after hashing)."""
    if s3input.is_s3(path):
        sp = path if isinstance(path, s3input.S3Path) else s3input.S3Path(path)
        st0: tuple[Any, ...] = (sp.size, sp.etag) if sp.etag else _signature(sp)
        with s3input.open_binary(s3input.S3Path(str(sp), sp.endpoint, *st0), 8 << 20) as fh:
            h = hashlib.sha256()
            size = 0
            while b := fh.read(8 << 20):
                h.update(b)
                size += len(b)
        return h.hexdigest(), size, st0
    with open(path, "rb") as fh:
        st0 = _stat_sig(os.fstat(fh.fileno()))
        h = hashlib.sha256()
        size = 0
        while True:
            b = fh.read(1 << 20)
            if not b:
                break
            h.update(b)
            size += len(b)
    return h.hexdigest(), size, st0


def open_file_limit() -> int:
    """This process's open-file limit, raised first to its hard limit (each hashing process holds one
    file per partition open: 2^P of them)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


def choose_partitions(total_bytes: int, open_files: int | None = None) -> int:
    """log2 of the partition count: about PARTITION_TARGET bytes of keys per partition (so a build
    task's memory stays bounded whatever the size), assuming records of at least 24 bytes; at most 16,
    and at most what the open-file limit allows (2^P partition files per hashing process, with a
    quarter of the limit, at most 1,024, to spare: 14 under a limit of 20,000, 9 under 1,024)."""
    limit = open_files if open_files is not None else open_file_limit()
    cap = max(1, min(16, max(2, limit - min(1024, limit // 4)).bit_length() - 1))
    est = max(1, total_bytes // 24)
    return max(1, min(cap, (est * 32 // PARTITION_TARGET).bit_length()))


def hash_shard(paths: Sequence[str], shard_dir: Path, *, partitions_log2: int | None = None,
               secret: bytes | None = None, workers: int | None = None, progress: bool = False,
               follow_symlinks: bool = False) -> dict[str, Any]:
    """Phase 1 alone: hash the records of ``paths`` into partition files in ``shard_dir`` (new).

    Shards hashed anywhere (other processes, other machines) with the same partition count and
    leaf mode combine into one commitment: see :func:`build_index_from_shards`."""
    t0 = time.perf_counter()
    c0 = _cpu_seconds()
    units, sources, total, inputs = _plan_units(paths, follow_symlinks)
    workers = workers or cpu_workers()
    P = partitions_log2 if partitions_log2 is not None else choose_partitions(total)
    if not 0 <= P <= 16:
        raise BadInputError("partitions_log2 must be 0..16", field="partitions")
    shard_dir.mkdir(parents=True, exist_ok=False)
    tag = secrets.token_hex(4)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, disable=not progress,
               desc="hashing records", leave=False, mininterval=0.0, miniters=1)
    jobs = [(u, str(shard_dir), P, secret, tag) for u in units]
    counts = [0] * len(sources)
    # a file source's SHA-256 (its Croissant digest, signed with the commitment) is taken from the same
    # bytes the keys are: read alongside the workers, and the file's stat must not change meanwhile
    from concurrent.futures import ThreadPoolExecutor

    digester = ThreadPoolExecutor(1)
    digests = {si: digester.submit(_file_sha256, inputs[si]) for si, s in enumerate(sources)
               if s["kind"] not in ("files", "arrow")}
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(jobs) > 1 else None
    try:
        results = pool.map(_hash_unit_star, jobs) if pool else map(_hash_unit_star, jobs)
        t_bar, done = time.perf_counter(), 0
        for i, (u, r) in enumerate(zip(units, results)):
            if "n" in r:
                done += r["n"]
                bar.set_postfix_str(f"shard {i + 1}/{len(units)}: {r['n']:,} records; all: "
                                    f"{done / max(1e-9, time.perf_counter() - t_bar):,.0f} records/s", refresh=False)
            bar.update(u[-1] if u[0] != "jsonl" else u[4] - u[3])
            if "error" in r:
                if r["error"] == "bad_json":
                    line = _line_of(r["path"], r["offset"])
                    raise BadInputError(f"{r['path']} line {line}: record does not parse ({r['reason']}); "
                                        "nothing was logged", field="record", file=r["path"], line=line)
                raise unit_error(r)
            counts[r["source"]] += r["n"]
            if "header" in r:
                sources[r["source"]]["header"] = r["header"]
        for si, fut in digests.items():
            try:
                sha, size, st0 = fut.result()
                changed = _signature(inputs[si]) != st0
            except AiledgerError:
                raise
            except OSError as e:
                raise BadInputError(f"cannot read {paths[si]}: {e.strerror}; nothing was logged", field="path",
                                    file=str(paths[si])) from e
            if changed:
                raise BadInputError(f"{paths[si]} changed while it was being hashed; nothing was logged",
                                    field="path", file=str(paths[si]))
            sources[si]["sha256"], sources[si]["size"] = sha, size
    finally:
        bar.close()
        digester.shutdown(wait=False, cancel_futures=True)
        if pool:
            pool.shutdown(cancel_futures=True)
        _close_part_fds(str(shard_dir))
    for src, c in zip(sources, counts):
        src["records"] = c
    meta = {"format": SHARD_FORMAT, "P": P, "leaf": "hmac-sha256" if secret is not None else "sha256",
            "secret_id": hashlib.sha256(b"ailedger-secret-id" + secret).hexdigest() if secret is not None else None,
            "records_in": sum(counts), "bytes": total, "units": len(units), "sources": sources}
    (shard_dir / "shard.json").write_text(json.dumps(meta, indent=1))
    return {**meta, "seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds() - c0, "workers": workers}


def _build(shard_dirs: Sequence[Path], tmp: Path, P: int, n_in: int, workers: int, consume: bool,
           progress: bool = False, mapper: Any = None) -> dict[str, Any]:
    """Phase 2: sort, dedup and hash every partition; the sharded proof index into ``tmp`` (see
    :class:`DatasetIndex`).
    ``mapper(fn, jobs)`` (an iterator of results in job order) runs the partitions elsewhere, e.g. on
    Dask workers (provenance/distributed.py); by default a process pool here."""
    D = max(P, min(28, max(0, (n_in // 8).bit_length())))
    (tmp / SHARDS).mkdir(exist_ok=True)
    dirs = [str(d) for d in shard_dirs]
    bjobs = [(dirs, str(tmp), p, P, D, "", consume) for p in range(1 << P)]
    from tqdm import tqdm

    with tqdm(total=len(bjobs), unit="partition", file=sys.stderr, disable=not progress, desc="building tree",
              leave=False) as bar:
        if mapper is not None:
            parts = []
            for x in mapper(_build_partition, bjobs):
                parts.append(x)
                bar.update(1)
        elif workers > 1 and len(bjobs) > 1:
            with ProcessPoolExecutor(workers) as bpool:
                parts = []
                for x in bpool.map(_build_partition, bjobs):
                    parts.append(x)
                    bar.update(1)
        else:
            parts = []
            for j in bjobs:
                parts.append(_build_partition(j))
                bar.update(1)
    import numpy as np

    for f in (tmp / SHARDS).glob("built-*.json"):
        f.unlink()
    np.array([x["n"] for x in parts], dtype="<u8").tofile(tmp / "counts.bin")
    level = b"".join(x["root"] for x in parts)
    cts = bytes(x["count"] for x in parts)
    with open(tmp / "top.bin", "wb") as fh:  # depths 0..P, heap order
        fh.truncate(((1 << (P + 1)) - 1) * 32)
        fh.seek(((1 << P) - 1) * 32)
        fh.write(level)
        for d in range(P, 0, -1):
            level, cts = smt.parent_level(level, cts)
            fh.seek(((1 << (d - 1)) - 1) * 32)
            fh.write(level)
    return {"root": level[:32], "n": sum(x["n"] for x in parts), "D": D}


def _finish(tmp: Path, out_dir: Path, meta: dict[str, Any], secret: bytes | None) -> None:
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if secret is not None:
        fd2 = os.open(tmp / "secret", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd2, secret)
        os.close(fd2)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)


def build_index(paths: Sequence[str], out_dir: Path, *, private: bool = False, workers: int | None = None,
                progress: bool = False, follow_symlinks: bool = False,
                partitions_log2: int | None = None, secret: bytes | None = None) -> dict[str, Any]:
    """Hash the records of ``paths`` and build the proof index in ``out_dir``.
    Raises BadInputError naming the file and line of the first bad record; then nothing is kept."""
    t0 = time.perf_counter()
    c0 = _cpu_seconds()
    workers = workers or cpu_workers()
    tmp = Path(str(out_dir) + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    if private and secret is None:
        secret = secrets.token_bytes(32)
    ok = False
    try:
        sh = hash_shard(paths, tmp, partitions_log2=partitions_log2, secret=secret, workers=workers,
                        progress=progress, follow_symlinks=follow_symlinks)
        t_hash = time.perf_counter() - t0
        cpu_hash = _cpu_seconds() - c0
        if sh["records_in"] == 0:
            raise BadInputError("the dataset holds no records; nothing was logged", field="path")
        t1 = time.perf_counter()
        b = _build([tmp], tmp, sh["P"], sh["records_in"], workers, consume=True, progress=progress)
        (tmp / "shard.json").unlink()
        t_build = time.perf_counter() - t1
        cpu_build = _cpu_seconds() - c0 - cpu_hash
        meta = {"format": SMT_FORMAT, "root": b["root"].hex(), "records": b["n"], "records_in": sh["records_in"],
                "duplicates": sh["records_in"] - b["n"], "P": sh["P"], "D": b["D"], "leaf": sh["leaf"],
                "sources": sh["sources"], "layout": INDEX_LAYOUT}
        _finish(tmp, out_dir, meta, secret)
        ok = True
        return {**meta, "seconds_hash": t_hash, "seconds_build": t_build, "seconds": time.perf_counter() - t0,
                "cpu_seconds_hash": cpu_hash, "cpu_seconds_build": cpu_build,
                "bytes": sh["bytes"], "units": sh["units"], "workers": workers}
    finally:
        if not ok and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def build_index_from_shards(shard_dirs: Sequence[Path], out_dir: Path, *, secret: bytes | None = None,
                            workers: int | None = None) -> dict[str, Any]:
    """Phase 2 over shards hashed elsewhere (their partition files are read, not changed)."""
    t0 = time.perf_counter()
    c0 = _cpu_seconds()
    workers = workers or cpu_workers()
    metas = []
    for d in shard_dirs:
        f = Path(d) / "shard.json"
        if not f.exists():
            raise BadInputError(f"{d} is not a dataset shard (no shard.json)", field="shard")
        m = json.loads(f.read_text())
        if m.get("format") != SHARD_FORMAT:
            raise BadInputError(f"{d}: not an {SHARD_FORMAT} shard", field="shard")
        for src in m.get("sources", []):  # what the signed rule and the Croissant digests need
            if (src.get("kind") == "csv" and not src.get("header")) or (src.get("kind") != "files"
                                                                         and not src.get("sha256")):
                raise BadInputError(f"{d}: shard made by an older version (source {src.get('name')} has no header "
                                    "or digest); hash it again", field="shard")
        metas.append(m)
    if not metas:
        raise BadInputError("give at least one shard", field="shard")
    if len({m["P"] for m in metas}) != 1 or len({m["leaf"] for m in metas}) != 1 or len(
            {m.get("secret_id") for m in metas}) != 1:
        raise BadInputError("shards differ in partition count or leaf mode (or secret); hash them alike",
                            field="shard")
    leaf = metas[0]["leaf"]
    if leaf != "sha256":
        if secret is None:
            raise BadInputError("private shards need the curator secret", field="secret")
        if hashlib.sha256(b"ailedger-secret-id" + secret).hexdigest() != metas[0]["secret_id"]:
            raise BadInputError("this secret is not the one the shards were hashed with", field="secret")
    n_in = sum(m["records_in"] for m in metas)
    if n_in == 0:
        raise BadInputError("the shards hold no records; nothing was logged", field="shard")
    tmp = Path(str(out_dir) + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    ok = False
    try:
        P = metas[0]["P"]
        b = _build([Path(d) for d in shard_dirs], tmp, P, n_in, workers, consume=False)
        sources = [s for m in metas for s in m["sources"]]
        meta = {"format": SMT_FORMAT, "root": b["root"].hex(), "records": b["n"], "records_in": n_in,
                "duplicates": n_in - b["n"], "P": P, "D": b["D"], "leaf": leaf, "sources": sources,
                "layout": INDEX_LAYOUT}
        _finish(tmp, out_dir, meta, secret if leaf != "sha256" else None)
        ok = True
        return {**meta, "seconds_hash": 0.0, "seconds_build": time.perf_counter() - t0,
                "seconds": time.perf_counter() - t0, "cpu_seconds_hash": 0.0,
                "cpu_seconds_build": _cpu_seconds() - c0, "bytes": sum(m["bytes"] for m in metas),
                "units": sum(m["units"] for m in metas), "workers": workers}
    finally:
        if not ok and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


CROISSANT_FIELDS = ("name", "description", "license", "url", "citeAs", "creator", "datePublished", "version",
                    "sameAs", "consent", "rai:dataCollection", "rai:personalSensitiveInformation",
                    "rai:dataUseCases")


def commit_dataset(ledger: Any, paths: Sequence[str], name: str, identity: Any, *,
                   source_meta: Sequence[dict[str, Any]] | None = None, description: str | None = None,
                   private: bool = False, workers: int | None = None, progress: bool = False,
                   follow_symlinks: bool = False, partitions_log2: int | None = None,
                   shards: Sequence[str | os.PathLike[str]] = (), secret: bytes | None = None,
                   supersedes: str | None = None, builder: Any = None) -> dict[str, Any]:
    """Commit a dataset: build its index (from PATHS, or from shards hashed elsewhere with
    :func:`hash_shard`), then sign and log its root with per-source metadata and the leaf rule.

    A name already committed is refused (ConflictError) unless ``supersedes`` names its current
    version (the name, ``#INDEX`` or the root): the new entry then records which commitment it
    supersedes, and only :func:`dataset_owner` of the name may do that.  ``builder`` replaces
    :func:`build_index` (same arguments and result), e.g. ``DaskEngine.build_index``."""
    if not name or len(name) > 200 or any(c.isspace() for c in name) or name.startswith("#"):
        raise BadInputError("dataset name must be a non-empty word without spaces", field="name")
    if not paths and not shards:
        raise BadInputError("give at least one PATH of records (or shards)", field="path")
    if paths and shards:
        raise BadInputError("give PATHS or shards, not both", field="path")
    source_meta = list(source_meta or [])
    if len(source_meta) > 1 and paths and len(source_meta) != len(paths):
        raise BadInputError("give one metadata object per PATH (or one for all)", field="sources")
    for sm in source_meta:
        for k in sm:
            if k not in CROISSANT_FIELDS:
                raise BadInputError(f"unknown source metadata field {k!r} (use Croissant names: "
                                    f"{', '.join(CROISSANT_FIELDS)})", field=k)
    _version_claim(ledger, name, identity.did, supersedes)  # refuse early, before hours of hashing
    staging = _datasets_dir(ledger) / f"staging-{secrets.token_hex(6)}"
    if shards:
        info = build_index_from_shards([Path(x) for x in shards], staging, secret=secret, workers=workers)
        private = info["leaf"] != "sha256"
    else:
        info = (builder or build_index)(paths, staging, private=private, workers=workers, progress=progress,
                           follow_symlinks=follow_symlinks, partitions_log2=partitions_log2, secret=secret)
    if len(source_meta) > 1 and len(source_meta) != len(info["sources"]):
        shutil.rmtree(staging, ignore_errors=True)
        raise BadInputError("give one metadata object per source (or one for all)", field="sources")
    try:
        sources = []
        for i, s in enumerate(info["sources"]):
            meta = source_meta[i] if len(source_meta) > 1 else (source_meta[0] if source_meta else {})
            src: dict[str, Any] = {k: v for k, v in meta.items() if k != "name"}
            src.update({"name": s["name"], "encodingFormat": _ENCODING[s["kind"]], "records": s["records"],
                        "form": FORM_OF_KIND[s["kind"]]})
            for k in ("header", "sha256", "size"):
                if k in s:
                    src[k] = s[k]
            sources.append(src)
        body: dict[str, Any] = {
            "name": name,
            "root": info["root"],
            "records": info["records"],
            "duplicates": info["duplicates"],
            "smt": SMT_FORMAT,
            "leaf": info["leaf"],
            "rule": rule_body([s["kind"] for s in info["sources"]], info["leaf"]),
            "sources": sources,
        }
        if description:
            body["description"] = description
        sup = _version_claim(ledger, name, identity.did, supersedes)  # again: someone may have committed meanwhile
        if sup is not None:
            body["supersedes"] = sup
        rule_of(body)  # the rule we sign must be one a verifier can read
        canonical_json(body)
        res = ledger.append_record(DATASET_RECORD, body, identity)  # its terms come from the body (entry_terms)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    final = _datasets_dir(ledger) / info["root"]
    if final.exists():
        if private:  # a new secret: keep both indexes apart
            final = _datasets_dir(ledger) / f"{info['root']}-{res.index}"
        else:
            shutil.rmtree(final)
    os.replace(staging, final)
    (final / "entry").write_text(str(res.index))
    return {"index": res.index, "name": name, **{k: info[k] for k in (
        "root", "records", "records_in", "duplicates", "P", "D", "leaf", "seconds", "seconds_hash", "seconds_build",
        "bytes", "units", "workers")}, **{k: info[k] for k in ("engine", "shards") if k in info}, "index_dir": str(final), "supersedes": body.get("supersedes"),
        "forms": body["rule"]["forms"]}


# -- names and versions ----------------------------------------------------------------------------

def version_chain(commits: Iterable[tuple[int, str, dict[str, Any]]]) -> dict[str, Any]:
    """Pure: the versions of one dataset name from its ``dataset.commit`` entries ``(index, signer,
    body)`` in log order.  The first entry is the original and its signer the owner; a later entry is
    the next version only if the owner signed it and its ``supersedes`` names the current version
    (index and root); an entry made before versions were recorded (no ``rule``) by the owner counts
    as a new version, as it did then.  Every other entry is rejected, with the reason."""
    owner: str | None = None
    chain: list[int] = []
    roots: dict[int, Any] = {}
    rejected: list[dict[str, Any]] = []
    for idx, signer, body in commits:
        roots[idx] = body.get("root")
        if owner is None:
            owner = signer
            chain.append(idx)
            continue
        if signer != owner:
            rejected.append({"index": idx, "signer": signer,
                             "reason": f"signed by {signer}, not by the owner {owner} (who signed #{chain[0]})"})
            continue
        sup = body.get("supersedes")
        cur = chain[-1]
        if (sup is None and "rule" not in body) or sup == {"index": cur, "root": roots[cur]}:
            chain.append(idx)
        else:
            rejected.append({"index": idx, "signer": signer,
                             "reason": f"does not supersede the current version #{cur} (it names {sup})"})
    return {"owner": owner, "versions": chain, "rejected": rejected}


def _commits_named(ledger: Any, name: str) -> list[tuple[int, Any]]:
    """Every ``dataset.commit`` whose signed body is named ``name``, whichever path logged it (the service,
    `POST /v1/entries`, `ailedger append`): the ``name:`` term every write path indexes, and ``dataset:``,
    which ledgers indexed before names were carry; each candidate confirmed against its body."""
    return entries_named(ledger, DATASET_RECORD, name, legacy_term=f"dataset:{name}")


def dataset_versions(ledger: Any, name: str) -> dict[str, Any]:
    """``{name, owner, versions: [index...], rejected: [...], entries: {index: entry}}`` for ``name``."""
    commits = _commits_named(ledger, name)
    out = version_chain((i, e.signer, e.body) for i, e in commits)
    return {"name": name, **out, "entries": dict(commits)}


def dataset_owner(ledger: Any, name: str) -> str | None:
    """THE rule for who controls a dataset name: the DID that signed the first ``dataset.commit``
    entry named ``name`` in the log.  Only that identity may commit a new version (``supersedes``) of
    the name; None when the name was never committed.  (docs/provenance.md, "Names and versions".)"""
    owner: str | None = dataset_versions(ledger, name)["owner"]
    return owner


def current_dataset(ledger: Any, name: str) -> tuple[int, Any] | None:
    """The current version of dataset ``name`` (the end of its version chain), or None."""
    v = dataset_versions(ledger, name)
    if not v["versions"]:
        return None
    idx = v["versions"][-1]
    return idx, v["entries"][idx]


def _version_claim(ledger: Any, name: str, did: str, supersedes: str | None) -> dict[str, Any] | None:
    """Refuse a commit under a name already taken unless it supersedes the current version and is
    signed by the owner; return the ``supersedes`` object to record."""
    v = dataset_versions(ledger, name)
    if not v["versions"]:
        if supersedes is not None:
            raise NotFoundError(f"no dataset named {name!r} to supersede; nothing was logged", field="supersedes")
        return None
    cur = v["versions"][-1]
    root = v["entries"][cur].body.get("root")
    if supersedes is None:
        raise ConflictError(f"dataset {name} is already committed (current version: entry #{cur}, root {root}, "
                            f"owner {v['owner']}); to commit a new version, name the one it replaces: "
                            f"--supersedes {name}; nothing was logged", field="name", current_index=cur)
    ref = supersedes
    idx = entry_ref(ref, "supersedes")
    if idx is not None:
        want = idx
    elif ref in (name, root):
        want = cur
    else:
        raise BadInputError(f"--supersedes must name dataset {name} (its name, #INDEX or root), not {ref!r}",
                            field="supersedes")
    if want != cur:
        raise ConflictError(f"#{want} is not the current version of dataset {name} (#{cur} is); nothing was logged",
                            field="supersedes", current_index=cur)
    if did != v["owner"]:
        raise ConflictError(f"only {v['owner']}, who signed the original commit #{v['versions'][0]}, may commit a "
                            f"new version of dataset {name} (not {did}); nothing was logged", field="identity")
    return {"index": cur, "root": root}


def open_index(ledger: Any, idx: int, body: dict[str, Any]) -> DatasetIndex:
    base = _datasets_dir(ledger)
    for cand in (base / f"{body['root']}-{idx}", base / body["root"]):
        if (cand / "meta.json").exists():
            return DatasetIndex(cand)
    raise NotFoundError(f"the proof index of dataset {body.get('name')} is not in this ledger "
                        "(only the curator who committed it can answer queries)", field="dataset")


def _part(ledger: Any, idx: int) -> dict[str, str]:
    return {"entry": base64.b64encode(ledger.entry_bytes(idx)).decode(), "tlog_proof": ledger.prove(idx).decode()}


def prove_dataset(ledger: Any, ref: str, candidate: bytes) -> tuple[bytes, dict[str, Any]]:
    """The curator's side: a self-describing proof file that ``candidate`` is, or is not, in the set.

    The candidate is read under every normal form the commitment states (:func:`readings`): one
    reading in the set makes a membership proof; otherwise the file proves every reading absent."""
    idx, e = find_dataset(ledger, ref)
    name = e.body.get("name")
    v = dataset_versions(ledger, name)
    if idx not in v["versions"]:
        why = next((r["reason"] for r in v["rejected"] if r["index"] == idx), "not in the version chain")
        raise ConflictError(f"entry #{idx} is not a version of dataset {name}: {why}", field="dataset")
    rule = rule_of(e.body)
    reads = readings(candidate, rule)
    if not reads:
        raise BadInputError(f"the candidate is not a record under any normal form dataset {name} states "
                            f"({', '.join(rule.forms)}): " + _no_reading_hint(rule), field="candidate")
    ix = open_index(ledger, idx, e.body)
    try:
        if ix.root.hex() != e.body["root"]:
            raise ProofError("the local index does not match the logged root", expected=e.body["root"],
                             found=ix.root.hex())
        t0 = time.perf_counter()
        done = []
        for i, r in enumerate(reads):
            key = record_key(r.normal, ix.secret)
            p = ix.prove(key)
            done.append((i, r, key, p, smt.verify_proof(ix.root, key, p)))
        t_prove = time.perf_counter() - t0
    finally:
        ix.close()
    members = [x for x in done if x[4]]
    chosen = members[:1] or done
    proofs: list[dict[str, Any]] = [
        {"reading": i, "forms": list(r.forms), "key": key.hex(), "result": "member" if m else "absent",
         "smt_proof": base64.b64encode(smt.encode_proof(p)).decode()} for i, r, key, p, m in chosen]
    doc: dict[str, Any] = {"type": DATASET_PROOF, "dataset": name, "index": idx, **_part(ledger, idx),
                           "result": "member" if members else "absent", "proofs": proofs}
    if len(v["versions"]) > 1:
        doc["versions"] = [_part(ledger, j) for j in v["versions"] if j != idx]
    data = (DATASET_PROOF + "\n").encode() + canonical_json(doc) + b"\n"
    enc_bytes = sum(len(base64.b64decode(x["smt_proof"])) for x in proofs)
    later = [j for j in v["versions"] if j > idx]
    return data, {"result": doc["result"], "dataset": name, "index": idx, "smt_proof_bytes": enc_bytes,
                  "file_bytes": len(data), "prove_ms": round(t_prove * 1000, 3),
                  "depth": max(x[3].depth for x in chosen),
                  "readings": [{"forms": x["forms"], "key": x["key"], "result": x["result"]} for x in proofs],
                  "superseded_by": later[0] if later else None, "current_version": v["versions"][-1]}


def _no_reading_hint(rule: Rule) -> str:
    hints = {FORM_BYTES: "any file", FORM_JSON: "a JSON text", FORM_PARQUET: "a JSON object (one row)",
             FORM_CSV: "a CSV line (under the committed header" + ("" if rule.csv_headers else ": give the header "
                                                                   "line first") + "), or a JSON object of its cells"}
    return "give " + "; or ".join(hints[f] for f in rule.forms)


_V1 = "ailedger-dataset-proof/v1"
_V1_FIELDS = {"type", "dataset", "index", "entry", "tlog_proof", "normalisation", "leaf", "result", "smt_proof", "key"}
_V2_FIELDS = {"type", "dataset", "index", "entry", "tlog_proof", "result", "proofs", "versions"}
_PROOF_FIELDS = {"reading", "forms", "key", "result", "smt_proof"}


def _b64(doc: dict[str, Any], k: str, what: str) -> bytes:
    try:
        return base64.b64decode(doc[k], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"dataset proof lacks a valid {what}", field="proof") from exc


def _checked_entry(part: dict[str, Any], verifier: Any, what: str) -> tuple[int, Any, Any]:
    """(log index, entry, checkpoint) of an embedded entry: its signature and its inclusion verified."""
    if not isinstance(part, dict) or not isinstance(part.get("tlog_proof"), str):
        raise BadInputError(f"dataset proof lacks the {what}'s tlog proof", field="proof")
    eb = _b64(part, "entry", f"{what} entry")
    e = parse_entry(eb, verify=True)
    bundle, cp = verify_proof_bundle(part["tlog_proof"].encode(), verifier, entry=eb)
    if e.type != DATASET_RECORD:
        raise ProofError(f"the logged {what} entry is a {e.type}, not a {DATASET_RECORD}", expected=DATASET_RECORD,
                         found=e.type)
    return bundle.index, e, cp


def verify_dataset_proof_file(data: bytes, candidate: bytes, vkey: Any) -> dict[str, Any]:
    """Third party's check, offline: the log's signature on the checkpoint, the dataset.commit
    entry's inclusion and signature, the leaf rule that entry states, every reading of the candidate
    under that rule, and the sparse Merkle proof(s) for them.  Every field shown is one of these.
    Raises VerificationError (or subclasses) if anything does not hold.  ``vkey`` is the log's
    verifier key text, a parsed ``Verifier``, or None for the local ledger's."""
    first = data.split(b"\n", 1)[0]
    if first not in (DATASET_PROOF.encode(), _V1.encode()):
        raise BadInputError(f"not an {DATASET_PROOF} file", field="proof")
    version = first.decode()
    if vkey is None:
        try:
            with Ledger.open(None, read_only=True) as lg:
                vkey = lg.vkey
        except AiledgerError as exc:
            raise BadInputError("the log's verifier key is needed (--vkey)", field="vkey") from exc
    doc = parse_json(data[len(first) + 1:], what="dataset proof")
    if not isinstance(doc, dict) or doc.get("type") != version:
        raise BadInputError("dataset proof body is malformed", field="proof")
    extra = set(doc) - (_V1_FIELDS if version == _V1 else _V2_FIELDS)
    if extra:
        raise ProofError("the proof file carries fields this verifier does not check", expected=[],
                         found=sorted(extra))
    verifier = parse_vkey(vkey) if isinstance(vkey, str) else vkey
    idx, e, cp = _checked_entry(doc, verifier, "dataset.commit")
    if type(doc.get("index")) is not int or doc.get("index") != idx:
        raise ProofError("the proof file's record index is not the index its inclusion proof shows",
                         expected=idx, found=doc.get("index"))
    name = e.body.get("name")
    if doc.get("dataset") != name:
        raise ProofError("the proof file's dataset name is not the one the signed entry states", expected=name,
                         found=doc.get("dataset"))
    rule = rule_of(e.body)
    if version == _V1 and doc.get("leaf") != e.body.get("leaf"):
        raise ProofError("the proof file's leaf mode is not the one the signed entry states",
                         expected=e.body.get("leaf"), found=doc.get("leaf"))
    reads = readings(candidate, rule)
    if not reads:
        raise ProofError("the candidate cannot be read under any normal form the signed commitment states, so no "
                         "proof can be about it", expected=list(rule.forms), found="no reading applies")
    claims = _v1_claims(doc, candidate, reads) if version == _V1 else doc.get("proofs")
    if not isinstance(claims, list) or not claims:
        raise BadInputError("dataset proof lists no proofs", field="proof")
    root_hex = e.body.get("root")
    if not isinstance(root_hex, str) or not re.fullmatch(r"[0-9a-f]{64}", root_hex):
        raise ProofError("the dataset.commit entry states no valid root", expected="64 hex digits", found=root_hex)
    root = bytes.fromhex(root_hex)
    private = rule.key != "sha256"
    checked: dict[int, dict[str, Any]] = {}
    sizes, depth = 0, 0
    for c in claims:
        if not isinstance(c, dict) or set(c) - _PROOF_FIELDS:
            raise ProofError("a proof entry carries fields this verifier does not check", expected=sorted(_PROOF_FIELDS),
                             found=sorted(c) if isinstance(c, dict) else c)
        i = c.get("reading")
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(reads) or i in checked:
            raise ProofError("a proof entry names no reading of this candidate (or one twice)",
                             expected=f"0..{len(reads) - 1}, each once", found=i)
        r = reads[i]
        if c.get("forms") != list(r.forms):
            raise ProofError(f"proof entry {i} was made under another rule than the signed commitment states for this "
                             "reading of the candidate", expected=list(r.forms), found=c.get("forms"))
        if private:
            try:
                key = bytes.fromhex(c["key"])
            except (KeyError, TypeError, ValueError):
                key = b""
            if len(key) != 32:
                raise BadInputError("private-mode proof entries must state their 32-byte key", field="proof")
        else:
            key = record_key(r.normal)
            if c.get("key") is not None and c.get("key") != key.hex():
                raise ProofError(f"proof entry {i} states another key than this candidate's", expected=key.hex(),
                                 found=c.get("key"))
        enc = _b64(c, "smt_proof", "sparse Merkle proof")
        p = smt.decode_proof(enc)
        member = smt.verify_proof(root, key, p)
        res = "member" if member else "absent"
        if c.get("result") != res:
            raise ProofError(f"proof entry {i} shows the opposite of what it claims", expected=c.get("result"),
                             found=res)
        sizes += len(enc)
        depth = max(depth, p.depth)
        checked[i] = {"reading": i, "forms": list(r.forms), "key": key.hex(), "result": res, "how": list(r.how),
                      "normal_bytes": len(r.normal)}
    members = [x for x in checked.values() if x["result"] == "member"]
    result = "member" if members else "absent"
    if result != doc.get("result"):
        raise ProofError("the proof shows the opposite of what the file claims", expected=doc.get("result"),
                         found=result)
    if result == "absent":
        missing = [i for i in range(len(reads)) if i not in checked]
        if missing:
            raise ProofError("absence is not shown for every reading of the candidate under the signed rule",
                             expected=[list(reads[i].forms) for i in range(len(reads))],
                             found=[list(reads[i].forms) for i in sorted(checked)])
    shown = members[:1] if members else [checked[i] for i in sorted(checked)]
    out: dict[str, Any] = {
        "ok": True, "result": result, "dataset": name, "index": idx, "records": e.body.get("records"),
        "root": e.body["root"], "signer": e.signer, "time": e.time,
        "checkpoint": {"origin": cp.origin, "size": cp.size, "root": cp.root.hex()},
        "rule": rule.to_dict(), "readings": shown, "key": shown[0]["key"], "forms": shown[0]["forms"],
        "readings_of_candidate": len(reads), "smt_proof_bytes": sizes, "depth": depth,
        "version": _check_versions(doc.get("versions"), idx, e, verifier),
    }
    if private:
        out["note"] = ("private dataset: each key is an HMAC under the curator's secret, so that it belongs to this "
                       "candidate rests on the curator's word; the proof for that key is checked")
    out["summary"] = describe_dataset_result(out)
    return out


def _v1_claims(doc: dict[str, Any], candidate: bytes, reads: list[Reading]) -> list[dict[str, Any]]:
    """A v1 file (one normalisation named by the file) as one proof entry: it must be one of the
    readings the signed rule gives this candidate, so an absence answer from it stands only when the
    candidate has no other reading."""
    norm = doc.get("normalisation", "bytes")
    try:
        normal = normalise_candidate(candidate, norm)
    except BadInputError as exc:
        raise ProofError("the proof file's normalisation does not apply to the candidate",
                         expected=[list(r.forms) for r in reads], found=norm) from exc
    hit = [i for i, r in enumerate(reads) if r.normal == normal]
    if not hit:
        raise ProofError("the proof file was made under a normalisation the signed commitment does not state for this "
                         "candidate", expected=[list(r.forms) for r in reads], found=norm)
    return [{"reading": hit[0], "forms": list(reads[hit[0]].forms), "key": doc.get("key"), "result": doc.get("result"),
             "smt_proof": doc.get("smt_proof")}]


def _check_versions(parts: Any, idx: int, e: Any, verifier: Any) -> dict[str, Any]:
    """The version chain the proof carries (every other version of the name, each signed and
    included): it must link up under the :func:`version_chain` rule with the proven entry in it."""
    own = e.body.get("supersedes")
    info: dict[str, Any] = {"supersedes": own if isinstance(own, dict) else None, "superseded_by": None,
                            "chain": None}
    if parts is None:
        return info
    if not isinstance(parts, list) or not parts:
        raise BadInputError("dataset proof's versions must be a non-empty list", field="proof")
    entries = {idx: e}
    for k, part in enumerate(parts):
        j, ej, _ = _checked_entry(part, verifier, f"version {k}")
        if j in entries or ej.body.get("name") != e.body.get("name"):
            raise ProofError("the proof's versions are not other entries of the same dataset name",
                             expected=e.body.get("name"), found={"index": j, "name": ej.body.get("name")})
        entries[j] = ej
    order = sorted(entries)
    ch = version_chain((j, entries[j].signer, entries[j].body) for j in order)
    if ch["rejected"]:
        raise ProofError("the proof's versions do not form one version chain", found=ch["rejected"])
    pos = order.index(idx)
    later = order[pos + 1:]
    info["chain"] = [{"index": j, "root": entries[j].body.get("root"), "time": entries[j].time} for j in order]
    info["number"], info["of"] = pos + 1, len(order)
    if later:
        n = later[0]
        info["superseded_by"] = {"index": n, "root": entries[n].body.get("root"), "time": entries[n].time}
        info["current"] = {"index": order[-1], "root": entries[order[-1]].body.get("root")}
    return info


def describe_dataset_result(rep: dict[str, Any]) -> str:
    cp = rep["checkpoint"]
    if rep["result"] == "member":
        head = f"OK: the candidate IS in dataset {rep['dataset']}"
    else:
        head = (f"OK: the candidate is NOT in dataset {rep['dataset']} under any of its {rep['readings_of_candidate']} "
                "reading(s) below")
    lines = [f"{head} ({rep['records']} records, root {rep['root']})",
             f"record:     #{rep['index']} (dataset.commit) signed by {rep['signer']} at {rep['time']}",
             f"checkpoint: {cp['origin']} size {cp['size']} root {cp['root'][:16]}... (signature and inclusion verified)"]
    for r in rep["readings"]:
        word = "member" if r["result"] == "member" else "absent"
        forms = ", ".join(r["forms"])
        lines.append(f"{word} under normal form {forms} (key = {r['key']})")
        for h in r["how"]:
            lines.append(f"            read as {h}")
    rule = rep["rule"]
    lines.append(f"rule:       key {rule['key']}, forms {', '.join(rule['forms'])} ({rule['version']})")
    lines.append(f"proof:      {rep['smt_proof_bytes']} bytes of sparse Merkle proof, depth {rep['depth']}")
    v = rep.get("version") or {}
    if v.get("supersedes"):
        lines.append(f"version:    supersedes #{v['supersedes'].get('index')} (root {v['supersedes'].get('root')})")
    if v.get("chain"):
        lines.append(f"version:    {v['number']} of {v['of']} of dataset {rep['dataset']} (original: #"
                     f"{v['chain'][0]['index']})")
    if v.get("superseded_by"):
        s = v["superseded_by"]
        lines.append(f"WARNING:    this version was superseded by #{s['index']} (root {s['root']}) at {s['time']}; "
                     f"the current version is #{v['current']['index']} (root {v['current']['root']})")
    if rep["result"] != "member":
        lines.append("note:       absence holds for exactly these readings: a copy typed differently (other cell "
                     "text, other JSON numbers, other bytes) has another key and is not covered")
    if rep.get("note"):
        lines.append("note:       " + rep["note"])
    return "\n".join(lines)


def dataset_status(ledger: Any, ref: str) -> dict[str, Any]:
    idx, e = find_dataset(ledger, ref)
    v = dataset_versions(ledger, e.body.get("name"))
    return {"body": e.body, "record": entry_status(ledger, idx),
            "versions": [{"index": j, "root": v["entries"][j].body.get("root"), "time": v["entries"][j].time,
                          "supersedes": v["entries"][j].body.get("supersedes")} for j in v["versions"]],
            "owner": v["owner"], "rejected": v["rejected"],
            "current": idx == (v["versions"][-1] if v["versions"] else None)}


def find_dataset(ledger: Any, ref: str) -> tuple[int, Any]:
    """A dataset by name (the end of its version chain) or ``#INDEX``; BadInputError for a malformed ``#``
    reference, NotFoundError when there is no such dataset."""
    idx = entry_ref(ref, "dataset")
    if idx is not None:
        if idx >= ledger.size:
            raise NotFoundError(f"no entry {ref}", field="dataset")
        e = ledger.entry(idx)
        if e.type != DATASET_RECORD:
            raise NotFoundError(f"entry {ref} is a {e.type}, not a {DATASET_RECORD}", field="dataset")
        return idx, e
    hit = current_dataset(ledger, ref)  # the end of the name's version chain, not merely the latest entry
    if hit is None:
        raise NotFoundError(f"no committed dataset named {ref!r}", field="dataset")
    return hit
