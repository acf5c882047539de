"""Read a labelled data set into one in-memory shape the screeners share.

Supported inputs (the row index of a record is its position in file order, from 0):

* CSV, JSONL (one JSON object per line), Parquet -- tabular, text or image-path data;
* a folder of class sub-folders holding image files (records in sorted (class, file name) order).

Modality is detected unless given: a directory is ``image``; a table with a string column of image paths
is ``image``; a table with a long free-text column is ``text``; a purely numeric table whose feature
count is a square >= 16 and whose columns share one value range is ``image`` (pixel grid, e.g. digits);
anything else is ``tabular``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ailedger.errors import BadInputError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MODALITIES = ("auto", "tabular", "image", "text")
IMAGE_SIDE = 32  # images are screened as IMAGE_SIDE x IMAGE_SIDE grayscale


@dataclass
class Dataset:
    """A labelled data set, ready for screening."""

    path: str
    modality: str  # tabular | image | text
    labels: np.ndarray  # int codes 0..K-1
    classes: list[str]  # label value (as text) for each code
    sources: np.ndarray  # int codes 0..S-1
    source_names: list[str]
    features: Any  # dense np.ndarray (n, d) or scipy sparse (text)
    content_keys: list[bytes]  # per-record digest of the content (label and source excluded)
    texts: list[str] | None = None
    images: np.ndarray | None = None  # (n, h, w) float32 grayscale in [0, 1]
    label_column: str = "label"
    source_column: str | None = None
    notes: list[str] = field(default_factory=list)
    sha256: str = ""  # digest of the input file(s)
    feature_names: list[str] | None = None  # column names of ``features`` (tabular / pixel tables)

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])


def _bad(msg: str, field_: str | None = None) -> BadInputError:
    return BadInputError(f"cannot screen this: {msg}", field=field_)


def _read_table(path: Path) -> tuple[list[str], dict[str, list[Any]]]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            cols = table.column_names
            return cols, {c: table.column(c).to_pylist() for c in cols}
        if suffix in (".jsonl", ".ndjson", ".json"):
            rows: list[dict[str, Any]] = []
            with open(path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise _bad(f"{path.name} line {lineno} is not JSON ({exc.msg})", "path") from None
                    if not isinstance(obj, dict):
                        raise _bad(f"{path.name} line {lineno} is not a JSON object", "path")
                    rows.append(obj)
            cols = []
            for r in rows:
                for k in r:
                    if k not in cols:
                        cols.append(k)
            return cols, {c: [r.get(c) for r in rows] for c in cols}
        if suffix in (".csv", ".tsv", ".txt"):
            with open(path, encoding="utf-8", newline="") as fh:
                text = fh.read()
            delim = "\t" if suffix == ".tsv" else ","
            reader = csv.reader(io.StringIO(text), delimiter=delim, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise _bad(f"{path.name} is empty", "path") from None
            body = list(reader)
            for i, row in enumerate(body):
                if len(row) != len(header):
                    raise _bad(
                        f"{path.name} row {i} has {len(row)} fields, header has {len(header)}", "path"
                    )
            return header, {c: [row[j] for row in body] for j, c in enumerate(header)}
    except BadInputError:
        raise
    except UnicodeDecodeError:
        raise _bad(f"{path.name} is not UTF-8 text", "path") from None
    except csv.Error as exc:
        raise _bad(f"{path.name} does not parse as CSV ({exc})", "path") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a broken file
        raise _bad(f"{path.name} does not parse ({type(exc).__name__}: {exc})", "path") from None
    raise _bad(f"unsupported file type {suffix!r} (use .csv, .jsonl or .parquet, or a folder)", "path")


def _to_float(values: list[Any]) -> np.ndarray | None:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None or v == "":
            out[i] = np.nan
            continue
        if isinstance(v, bool):
            out[i] = float(v)
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            return None
    return out


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode() + b"\0")
                h.update(hashlib.sha256(p.read_bytes()).digest())
    else:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _load_image(p: Path) -> tuple[np.ndarray, bytes]:
    from PIL import Image, UnidentifiedImageError

    try:
        raw = p.read_bytes()
        with Image.open(io.BytesIO(raw)) as im:
            g = im.convert("L").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR)
            arr = np.asarray(g, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise _bad(f"image file {p} does not exist", "image") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise _bad(f"image file {p} does not decode ({exc})", "image") from None
    return arr, hashlib.sha256(raw).digest()


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    names = sorted(set(values), key=lambda s: (len(s), s) if s.isdigit() else (10**9, s))
    index = {v: i for i, v in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names


def load_dataset(
    path: str | Path,
    *,
    label_column: str | None = None,
    source_column: str | None = None,
    text_column: str | None = None,
    image_column: str | None = None,
    modality: str = "auto",
    ignore_columns: tuple[str, ...] | list[str] = (),
) -> Dataset:
    """Load ``path`` for screening; every problem is a :class:`BadInputError` that names it.
    ``ignore_columns`` (e.g. record ids) are not used as features."""
    if modality not in MODALITIES:
        raise BadInputError(f"modality must be one of {', '.join(MODALITIES)}", field="modality")
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"cannot screen this: {p} does not exist", field="path")
    if p.is_dir():
        return _load_image_folder(p, modality)
    cols, data = _read_table(p)
    n = len(next(iter(data.values()))) if data else 0
    if n == 0:
        raise _bad(f"{p.name} has no records", "path")
    if label_column is None:
        if "label" in cols:
            label_column = "label"
        else:
            raise _bad(f"no label column: {p.name} has no column 'label'; pass --label-column", "label_column")
    if label_column not in cols:
        raise _bad(f"label column {label_column!r} not found (columns: {', '.join(cols[:20])})", "label_column")
    if source_column is None and "source" in cols and label_column != "source":
        source_column = "source"
    if source_column is not None and source_column not in cols:
        raise _bad(f"source column {source_column!r} not found (columns: {', '.join(cols[:20])})", "source_column")
    raw_labels = data[label_column]
    missing = [i for i, v in enumerate(raw_labels) if v is None or (isinstance(v, str) and v.strip() == "")]
    if missing:
        raise _bad(f"label column {label_column!r} is empty in {len(missing)} record(s), first at row {missing[0]}",
                   "label_column")
    labels, classes = _codes([_label_text(v) for v in raw_labels])
    if source_column is not None:
        sources, source_names = _codes([("" if v is None else str(v)) for v in data[source_column]])
    else:
        sources, source_names = np.zeros(n, dtype=np.int64), ["(all)"]
    unknown = [c for c in ignore_columns if c not in cols]
    if unknown:
        raise _bad(f"column(s) to ignore not found: {', '.join(map(repr, unknown))}", "ignore_column")
    feat_cols = [c for c in cols if c not in (label_column, source_column) and c not in ignore_columns]
    if not feat_cols:
        raise _bad("no feature columns besides the label and source", "path")
    notes: list[str] = []
    # detect modality
    if text_column is not None and text_column not in cols:
        raise _bad(f"text column {text_column!r} not found", "text_column")
    if image_column is not None and image_column not in cols:
        raise _bad(f"image column {image_column!r} not found", "image_column")
    numeric: dict[str, np.ndarray] = {}
    strings: list[str] = []
    for c in feat_cols:
        arr = _to_float(data[c])
        if arr is None:
            strings.append(c)
        else:
            numeric[c] = arr
    if image_column is None and modality in ("auto", "image"):
        for c in strings:
            vals = [str(v) for v in data[c] if v is not None]
            if vals and all(Path(v).suffix.lower() in IMAGE_EXTS for v in vals):
                image_column = c
                break
    if text_column is None and modality in ("auto", "text") and image_column is None:
        best, best_len = None, 0.0
        for c in strings:
            vals = [str(v) for v in data[c] if v is not None]
            mean_len = float(np.mean([len(v) for v in vals])) if vals else 0.0
            if mean_len > best_len:
                best, best_len = c, mean_len
        if best is not None and (best_len >= 20 or modality == "text" or best == "text"):
            text_column = best
    digest = _file_digest(p)
    common: dict[str, Any] = {"path": str(p), "labels": labels, "classes": classes, "sources": sources,
                              "source_names": source_names, "label_column": label_column,
                              "source_column": source_column, "sha256": digest}
    if image_column is not None:
        base = p.parent
        imgs, keys = [], []
        for i, v in enumerate(data[image_column]):
            if v is None or str(v) == "":
                raise _bad(f"image column {image_column!r} is empty at row {i}", "image_column")
            ip = Path(str(v))
            arr, key = _load_image(ip if ip.is_absolute() else base / ip)
            imgs.append(arr)
            keys.append(key)
        stacked = np.stack(imgs)
        return Dataset(modality="image", features=stacked.reshape(n, -1).astype(np.float64), images=stacked,
                       content_keys=keys, notes=notes, **common)
    if text_column is not None:
        texts = ["" if v is None else str(v) for v in data[text_column]]
        keys = [hashlib.sha256(_norm_text(t).encode()).digest() for t in texts]
        return Dataset(modality="text", features=None, texts=texts, content_keys=keys, notes=notes, **common)
    if modality == "text":
        raise _bad("no text column found; pass --text-column", "text_column")
    if modality == "image" and not numeric:
        raise _bad("no image column found; pass --image-column", "image_column")
    # tabular / pixel grid
    if strings:
        for c in strings:
            vals = ["" if v is None else str(v) for v in data[c]]
            cats = sorted(set(vals))
            if len(cats) > 50:
                notes.append(f"column {c!r} dropped: {len(cats)} distinct non-numeric values")
                continue
            for cat in cats:
                numeric[f"{c}={cat}"] = np.array([1.0 if v == cat else 0.0 for v in vals])
    if not numeric:
        raise _bad("no usable feature columns", "path")
    X = np.column_stack(list(numeric.values()))
    nan = np.isnan(X)
    if nan.any():
        colmed = np.array([np.nanmedian(X[:, j]) if not nan[:, j].all() else 0.0 for j in range(X.shape[1])])
        X = np.where(nan, colmed[None, :], X)
        notes.append(f"{int(nan.any(1).sum())} record(s) had missing values (filled with the column median)")
    keys = [hashlib.sha256(np.ascontiguousarray(row).tobytes()).digest() for row in X]
    d = X.shape[1]
    side = round(math.sqrt(d))
    images = None
    mod = modality
    if mod == "auto":
        mod = "tabular"
        if side * side == d and d >= 16 and not strings and X.min() >= 0:
            gmax = X.max()
            if gmax > 0 and np.mean(X.max(0) >= 0.5 * gmax) >= 0.25:
                mod = "image"
    if mod == "image":
        if side * side != d:
            raise _bad(f"{d} numeric columns do not form a square pixel grid", "modality")
        gmax = X.max() if X.max() > 0 else 1.0
        images = (X / gmax).reshape(n, side, side).astype(np.float32)
    return Dataset(modality=mod, features=X, images=images, content_keys=keys, notes=notes,
                   feature_names=list(numeric.keys()), **common)


def _label_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _norm_text(t: str) -> str:
    return " ".join(t.lower().split())


def _load_image_folder(p: Path, modality: str) -> Dataset:
    if modality not in ("auto", "image"):
        raise _bad("a folder is read as image data (class sub-folders)", "modality")
    classes_dirs = sorted(d for d in p.iterdir() if d.is_dir())
    files: list[tuple[str, Path]] = []
    for d in classes_dirs:
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                files.append((d.name, f))
    if not files:
        raise _bad(f"{p} holds no class sub-folders with image files", "path")
    imgs, keys = [], []
    for _, f in files:
        arr, key = _load_image(f)
        imgs.append(arr)
        keys.append(key)
    images = np.stack(imgs)
    labels, classes = _codes([c for c, _ in files])
    n = len(files)
    return Dataset(path=str(p), modality="image", labels=labels, classes=classes,
                   sources=np.zeros(n, dtype=np.int64), source_names=["(all)"],
                   features=images.reshape(n, -1).astype(np.float64), images=images, content_keys=keys,
                   label_column="(folder)", source_column=None, sha256=_file_digest(p),
                   notes=["records are the image files in sorted (class folder, file name) order"])
