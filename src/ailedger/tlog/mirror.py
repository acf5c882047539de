"""Export a log as static C2SP tlog-tiles (checkpoint, hash tiles, entry bundles)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError
from ailedger.tlog.checkpoint import open_checkpoint, parse_checkpoint_text
from ailedger.tlog.note import parse_note
from ailedger.tlog.tiles import TILE_HEIGHT, TILE_WIDTH, entry_bundle, tile_path

__all__ = ["CACHE_CONTROL", "DirectorySink", "TileSink", "entry_bundle_bytes", "export_tiles", "nginx_conf",
           "prune_partial_tiles", "tile_bytes"]


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise BadInputError(f"cannot write {path}: {e.strerror}", field="directory") from e


def tile_bytes(store: Any, level: int, n: int, size: int) -> bytes | None:
    """Hashes of tile (level, n) as it stands at tree size ``size`` (None if empty)."""
    tree_level = level * TILE_HEIGHT
    first = n * TILE_WIDTH
    complete = size >> tree_level  # complete nodes at that tree level
    width = min(TILE_WIDTH, complete - first)
    if width <= 0:
        return None
    if tree_level == 0:
        return b"".join(bytes(h) for h in store.leaf_hashes(first, first + width))
    ids = [(tree_level, i) for i in range(first, first + width)]
    got = store.node_hashes(ids)
    return b"".join(bytes(got[i]) for i in ids)


def entry_bundle_bytes(store: Any, n: int, size: int) -> bytes | None:
    first = n * TILE_WIDTH
    width = min(TILE_WIDTH, size - first)
    if width <= 0:
        return None
    return entry_bundle([bytes(x) for x in store.leaves(first, first + width)])


# Cache-Control for each kind of file, as C2SP tlog-tiles suggests and Tessera's object-store drivers set:
# full tiles and bundles never change; a partial one is replaced when its tile grows; the checkpoint moves
CACHE_CONTROL = {"full": "public, max-age=31536000, immutable", "partial": "public, max-age=60",
                 "checkpoint": "no-cache"}


class _Unreadable(Exception):
    """The target's checkpoint exists but cannot be read (the export then rewrites every file)."""


class TileSink:
    """Where an export writes: a directory here, an S3 bucket in ``tlog.s3mirror``.

    ``put`` may return before the file is stored (an object store uploads in parallel); ``flush`` returns
    once every file put so far is stored, or raises.  The checkpoint is put only after a flush, so no
    reader sees a checkpoint whose tiles are not there yet."""

    location = ""
    # a target that only this exporter writes: at a size already exported, the edge tiles are not put again
    trust_known = False

    def read_checkpoint(self) -> bytes | None:
        raise NotImplementedError

    def has(self, path: str, size: int | None) -> bool:
        raise NotImplementedError

    def put(self, path: str, data: bytes, kind: str) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def prune(self, grace_seconds: float) -> int:
        """Remove partial tiles whose full tile exists and was stored ``grace_seconds`` ago."""
        return 0


class DirectorySink(TileSink):
    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.location = str(out)

    def read_checkpoint(self) -> bytes | None:
        try:
            return (self.out / "checkpoint").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise _Unreadable(e.strerror) from e

    def has(self, path: str, size: int | None) -> bool:
        return _have(self.out / path, size)

    def put(self, path: str, data: bytes, kind: str) -> None:
        _write(self.out / path, data)

    def prune(self, grace_seconds: float) -> int:
        return prune_partial_tiles(self.out, grace_seconds)


def export_tiles(ledger: Any, out: Path | TileSink, progress: Callable[[int], None] | None = None, *,
                 incremental: bool = True, known_size: int = 0) -> dict[str, Any]:
    """Write the log's checkpoint, hash tiles and entry bundles under ``out`` (C2SP tlog-tiles): a
    directory, or a ``TileSink`` (an S3 bucket: ``tlog.s3mirror.S3Sink``).

    Full tiles and full entry bundles never change, so with ``incremental`` (the default) those
    already present are kept and only new ones, the right-edge partial tiles and the checkpoint are
    written.  Files are only kept below the size of the checkpoint the target already holds, and
    only if that checkpoint is this log's (signed by its key, same origin) and this log's tree at
    its size has its root; otherwise (another log's or a forked copy's mirror, an unsigned or
    unreadable checkpoint, tiles left by an export that stopped before its checkpoint) every file is
    written again.  Kept files are not re-read: the mirror is not trusted by its readers, who check
    every tile against the signed checkpoint, so a damaged file can make a proof fail but never
    make a wrong one verify; ``incremental=False`` (``--full``) rewrites them all.  Every file is
    written whole (a temporary name renamed, or one object put), and the checkpoint goes last, after
    every tile is stored, so a reader never sees a checkpoint whose tiles are not there yet.
    ``known_size``: a size this target was already exported at (``--watch`` passes its last one);
    full tiles below it are taken as present without looking.

    The latest stored checkpoint is used when it covers the whole log (a mirror beside a running
    server is then a pure reader); a new one is signed only when the log grew past it."""
    sink = out if isinstance(out, TileSink) else DirectorySink(out)
    store = ledger.store
    note = store.latest_checkpoint()
    if note is None or parse_checkpoint_text(parse_note(note).text).size < store.size():
        note = ledger.checkpoint()
    cp = parse_checkpoint_text(parse_note(note).text)
    size = cp.size
    known_size = known_size if incremental else 0
    res: dict[str, Any] = {"size": size, "tiles": 0, "entry_bundles": 0, "kept": 0}
    if isinstance(out, TileSink):
        res["target"] = sink.location
    else:
        res["directory"] = str(out)
    if sink.trust_known and known_size and size == known_size:
        # nothing new: only a re-signed checkpoint at the same size, if there is one, goes out
        if getattr(sink, "last_checkpoint", None) != note:
            sink.put("checkpoint", note, "checkpoint")
            sink.flush()
        return res
    trusted, why = _mirrored_size(ledger, sink, size) if incremental else (0, "full export asked for")
    n_tiles = n_bundles = kept = 0
    level = 0
    while (size >> (level * TILE_HEIGHT)) > 0:
        complete = size >> (level * TILE_HEIGHT)
        for n in range((complete + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, complete - n * TILE_WIDTH)
            path = tile_path(level, n, width)
            if incremental and width == TILE_WIDTH and (
                    (n + 1) * TILE_WIDTH <= known_size >> (level * TILE_HEIGHT)
                    or ((n + 1) * TILE_WIDTH <= trusted >> (level * TILE_HEIGHT) and sink.has(path, 32 * TILE_WIDTH))):
                kept += 1
                continue
            data = tile_bytes(store, level, n, size)
            if data is None:
                continue
            sink.put(path, data, "full" if width == TILE_WIDTH else "partial")
            n_tiles += 1
        level += 1
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        path = tile_path("entries", n, width)
        if incremental and width == TILE_WIDTH and ((n + 1) * TILE_WIDTH <= known_size or (
                (n + 1) * TILE_WIDTH <= trusted and sink.has(path, None))):
            kept += 1
            if progress:
                progress(width)
            continue
        data = entry_bundle_bytes(store, n, size)
        if data is None:
            continue
        sink.put(path, data, "full" if width == TILE_WIDTH else "partial")
        n_bundles += 1
        if progress:
            progress(width)
    sink.flush()  # every tile stored before the checkpoint that needs it
    sink.put("checkpoint", note, "checkpoint")
    sink.flush()
    res.update(tiles=n_tiles, entry_bundles=n_bundles, kept=kept)
    if why:
        res["rewritten_because"] = why
    return res


def _mirrored_size(ledger: Any, sink: TileSink, size: int) -> tuple[int, str | None]:
    """Below which size may files already in the target be kept?  The size of the checkpoint there, if
    it is this log's: signed by its key for its origin, not ahead of it, and with the root this log's
    tree has at that size (a log restored from an older backup that then grew differently fails
    this).  (0, reason) otherwise."""
    try:
        data = sink.read_checkpoint()
    except _Unreadable as e:
        return 0, f"the directory's checkpoint cannot be read ({e})"
    if data is None:
        return 0, None
    try:
        old = open_checkpoint(data, ledger.verifier, ledger.origin)
    except AiledgerError as e:
        return 0, f"the directory's checkpoint is not this log's ({e.message})"
    if old.size > size:
        return 0, f"the directory's checkpoint is ahead of this log ({old.size} > {size})"
    if ledger.log.root_at(old.size) != old.root:
        return 0, f"this log's tree at size {old.size} does not have the root of the directory's checkpoint"
    return old.size, None


def _have(path: Path, size: int | None) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == size if size is not None else st.st_size > 0


def prune_partial_tiles(out: Path, grace_seconds: float = 600.0) -> int:
    """Remove right-edge partial tiles (``<N>.p/<W>``) whose full tile now exists and that are older
    than ``grace_seconds`` (readers holding an older checkpoint may still ask for them a little
    while).  Returns how many files went."""
    now = time.time()
    gone = 0
    for pdir in out.glob("tile/**/*.p"):
        full = pdir.with_name(pdir.name[:-2])
        if not full.is_file():
            continue
        for f in pdir.iterdir():
            try:
                if now - f.stat().st_mtime >= grace_seconds:
                    f.unlink()
                    gone += 1
            except OSError:
                continue
        try:
            pdir.rmdir()
        except OSError:
            pass
    return gone


NGINX_CONF = """# nginx serving an ailedger static tile mirror (C2SP tlog-tiles), written by `ailedger tiles nginx-conf`.
# Keep the directory current with `ailedger tiles export {root} --watch 1`.
# nginx re-checks open files every second, so the checkpoint it serves lags the exported one by <= 1 s.
{user}worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    access_log off; log_not_found off; server_tokens off;
    # tiles are immutable or short-lived and small: no revalidation, plain reads beat sendfile here
    etag off; if_modified_since off;
    sendfile off; tcp_nodelay on;
    keepalive_requests 1000000; keepalive_timeout 120s;
    open_file_cache max=20000 inactive=60s; open_file_cache_valid 1s;
    client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy; fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen {listen} reuseport;
        root {root};
        add_header Access-Control-Allow-Origin "*";
        location = /checkpoint {{
            default_type "text/plain; charset=utf-8";
            add_header Cache-Control "no-cache";
            add_header Access-Control-Allow-Origin "*";
        }}
        location ~ "^/tile/(entries|[0-9]+)/(x[0-9]{{3}}/)*[0-9]{{3}}\\.p/[0-9]+$" {{
            add_header Cache-Control "public, max-age=60";
            add_header Access-Control-Allow-Origin "*";
        }}
        location ~ "^/tile/(entries|[0-9]+)/(x[0-9]{{3}}/)*[0-9]{{3}}$" {{
            add_header Cache-Control "public, max-age=31536000, immutable";
            add_header Access-Control-Allow-Origin "*";
        }}
        location / {{ return 404; }}
    }}
}}
"""


def nginx_conf(root: Path, listen: str, prefix: Path, workers: int = 1, user: str | None = None) -> str:
    """An nginx configuration serving the tile mirror ``root`` on ``listen`` (e.g. ``127.0.0.1:8080``);
    ``prefix`` holds nginx's pid file, error log and temp directories."""
    if not re.fullmatch(r"[A-Za-z0-9.:\[\]*_-]+", listen):
        raise BadInputError(f"listen address {listen!r} is not host:port", field="listen")
    if workers < 1:
        raise BadInputError("workers must be at least 1", field="workers")
    for what, p in (("directory", root), ("prefix", prefix)):
        if any(c in str(p) for c in ";{}\"'\n"):
            raise BadInputError(f"{what} {str(p)!r} has characters nginx configuration cannot hold", field=what)
    return NGINX_CONF.format(root=Path(root).resolve(), listen=listen, prefix=Path(prefix).resolve(),
                             workers=workers, user=f"user {user};\n" if user else "")
