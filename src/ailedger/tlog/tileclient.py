"""Read a static tile mirror (C2SP tlog-tiles) over HTTP and check it against the log's key.

`ailedger tiles verify URL --vkey KEY` and `ailedger tiles mirror URL DIRECTORY --vkey KEY`.  The mirror
is not trusted: the checkpoint must carry the log's signature for its origin, every hash tile must
have its exact size and, at every level, hash to what the level below gives, the leaf hashes must
give the checkpoint's root, and every entry bundle must hold exactly the entries whose leaf hashes
the tiles list.  A copy written by ``mirror`` is the same tree (it can be served again by nginx); it
is refreshed in place: full tiles already in the copy are read from disk rather than fetched (they
are checked like the rest), the checkpoint is written last, and a checkpoint that does not extend the
one the copy holds (a fork, or a log that went back) is refused with nothing written."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError, NetworkError, VerificationError
from ailedger.tlog.checkpoint import Checkpoint, open_checkpoint
from ailedger.tlog.merkle import leaf_hash, root_from_leaf_hashes
from ailedger.tlog.mirror import _write
from ailedger.tlog.note import Verifier
from ailedger.tlog.tiles import TILE_HEIGHT, TILE_WIDTH, split_entry_bundle, tile_path

__all__ = ["read_tile_mirror"]

MAX_CHECKPOINT = 1 << 16
MAX_BUNDLE = TILE_WIDTH * (2 + 0xFFFF)


def _base(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.netloc or u.query or u.fragment:
        raise BadInputError(f"{url!r} is not an http(s) URL of a tile mirror (e.g. http://127.0.0.1:8080)",
                            field="url")
    return url.rstrip("/")


class _Fetcher:
    def __init__(self, base: str, timeout: float, local: Path | None) -> None:
        self.base, self.timeout, self.local = base, timeout, local
        self.fetched = self.reused = self.bytes = 0

    def get(self, path: str, limit: int, *, immutable: bool = False, size: int | None = None) -> bytes:
        """The file at ``path``; a full (immutable) tile already in the local copy with the right size is
        read from there instead (it is checked like a fetched one)."""
        if immutable and self.local is not None:
            try:
                data = (self.local / path).read_bytes()
                if size is None or len(data) == size:
                    self.reused += 1
                    return data
            except OSError:
                pass
        url = f"{self.base}/{path}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept-Encoding": "identity"}),
                                        timeout=self.timeout) as r:
                data = r.read(limit + 1)
        except urllib.error.HTTPError as e:
            if e.code == 404 and path == "checkpoint":
                why = ": no tile mirror there (`ailedger tiles export DIR` writes one; serve DIR at this URL)"
            else:
                why = ": it lacks a file its checkpoint needs" if e.code == 404 else ""
            raise NetworkError(f"the mirror answered {e.code} for {url}{why}", url=url, status=e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise NetworkError(f"cannot read {url}: {reason}", url=url) from None
        if len(data) > limit:
            raise VerificationError(f"{url} is larger than {limit} bytes: not a tile mirror file", url=url)
        self.fetched += 1
        self.bytes += len(data)
        return bytes(data)


def _hashes(data: bytes, path: str, width: int) -> list[bytes]:
    if len(data) != 32 * width:
        raise VerificationError(f"{path} is {len(data)} bytes, a tile of width {width} is {32 * width}",
                                expected=32 * width, found=len(data), path=path)
    return [data[i:i + 32] for i in range(0, len(data), 32)]


def read_tile_mirror(url: str, verifier: Verifier, *, into: Path | None = None, origin: str | None = None,
                     timeout: float = 10.0, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Fetch and check the whole tile mirror at ``url``; with ``into``, keep a checked copy there.

    Returns size, root (hex), origin, how many files were fetched / reused and their bytes.  Raises
    NetworkError when the mirror cannot be read, SignatureError / VerificationError when what it
    serves is not the log ``verifier`` signs, BadInputError for a bad URL or an unwritable directory."""
    base = _base(url)
    fetch = _Fetcher(base, timeout, into)
    cp_bytes = fetch.get("checkpoint", MAX_CHECKPOINT)
    cp = open_checkpoint(cp_bytes, verifier, origin)
    old = _previous(into, verifier, origin) if into is not None else None
    if old is not None and old.size > cp.size:
        raise VerificationError(f"the mirror's checkpoint (size {cp.size}) is behind the copy in {into} "
                                f"(size {old.size}): nothing written", expected=old.size, found=cp.size)
    size = cp.size
    files: dict[str, bytes] = {}  # held for the copy only: written once everything is checked

    def keep(path: str, data: bytes) -> None:
        if into is not None:
            files[path] = data

    # level 0: the leaf hashes, which must give the signed root
    leaves: list[bytes] = []
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        path = tile_path(0, n, width)
        data = fetch.get(path, 32 * TILE_WIDTH, immutable=width == TILE_WIDTH, size=32 * width)
        leaves += _hashes(data, path, width)
        keep(path, data)
    if root_from_leaf_hashes(leaves) != cp.root:
        raise VerificationError(f"the hash tiles at {base} do not give the root of its signed checkpoint"
                                + _which_leaf_tile(fetch, size, leaves, cp.root), expected=cp.root.hex())
    if old is not None and root_from_leaf_hashes(leaves[:old.size]) != old.root:
        raise VerificationError(f"the mirror's log does not extend the copy in {into} (size {old.size}): "
                                "a different history; nothing written", expected=old.root.hex())

    # higher levels: each node is the root of the 256 nodes under it, as the level below gives them
    below = leaves
    level = 1
    while size >> (level * TILE_HEIGHT):
        nodes = [root_from_leaf_hashes(below[i:i + TILE_WIDTH])
                 for i in range(0, len(below) - TILE_WIDTH + 1, TILE_WIDTH)]
        complete = size >> (level * TILE_HEIGHT)
        assert len(nodes) == complete
        for n in range((complete + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, complete - n * TILE_WIDTH)
            path = tile_path(level, n, width)
            data = fetch.get(path, 32 * TILE_WIDTH, immutable=width == TILE_WIDTH, size=32 * width)
            if _hashes(data, path, width) != nodes[n * TILE_WIDTH:n * TILE_WIDTH + width]:
                raise VerificationError(f"{path} at {base} does not hold the hashes of the level below it", path=path)
            keep(path, data)
        below = nodes
        level += 1

    # entry bundles: exactly the entries the leaf hashes name
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        path = tile_path("entries", n, width)
        data = fetch.get(path, MAX_BUNDLE, immutable=width == TILE_WIDTH)
        try:
            entries = split_entry_bundle(data)
        except BadInputError as e:
            raise VerificationError(f"{path} at {base} is not an entry bundle: {e.message}", path=path) from None
        if len(entries) != width or any(leaf_hash(e) != leaves[n * TILE_WIDTH + i] for i, e in enumerate(entries)):
            raise VerificationError(f"{path} at {base} does not hold the entries the hash tiles list", path=path)
        keep(path, data)
        if progress:
            progress(width)

    if into is not None:
        for path, data in files.items():
            if not _same(into / path, data):
                _write(into / path, data)
        _write(into / "checkpoint", cp_bytes)  # last: the copy never shows a checkpoint ahead of its tiles
    out: dict[str, Any] = {"url": base, "origin": cp.origin, "size": size, "root": cp.root.hex(),
                           "fetched": fetch.fetched, "reused": fetch.reused, "bytes_fetched": fetch.bytes,
                           "verified": True}
    if into is not None:
        out["directory"] = str(into)
        out["previous_size"] = old.size if old is not None else None
    return out


def _which_leaf_tile(fetch: _Fetcher, size: int, leaves: list[bytes], root: bytes) -> str:
    """Name the level-0 tile that is wrong, when the entry bundles give the signed root and it does not
    hold their leaf hashes ("" when that cannot be told: the bundles are wrong too, or unreadable)."""
    try:
        from_entries: list[bytes] = []
        for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, size - n * TILE_WIDTH)
            data = fetch.get(tile_path("entries", n, width), MAX_BUNDLE, immutable=width == TILE_WIDTH)
            from_entries += [leaf_hash(e) for e in split_entry_bundle(data)]
    except AiledgerError:
        return ""
    if len(from_entries) != size or root_from_leaf_hashes(from_entries) != root:
        return ""
    bad = [tile_path(0, n, min(TILE_WIDTH, size - n * TILE_WIDTH))
           for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH)
           if leaves[n * TILE_WIDTH:(n + 1) * TILE_WIDTH] != from_entries[n * TILE_WIDTH:(n + 1) * TILE_WIDTH]]
    return f": {', '.join(bad)} does not hold the leaf hashes of its entries (the entry bundles give the root)"


def _previous(into: Path, verifier: Verifier, origin: str | None) -> Checkpoint | None:
    """The checkpoint a copy already holds, if it is this log's; a foreign or damaged one is an error
    (the copy is someone else's: nothing is overwritten)."""
    if into.exists() and not into.is_dir():
        raise BadInputError(f"{into} is not a directory", field="directory")
    try:
        data = (into / "checkpoint").read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BadInputError(f"cannot read {into / 'checkpoint'}: {e.strerror}", field="directory") from e
    try:
        return open_checkpoint(data, verifier, origin)
    except AiledgerError as e:
        raise BadInputError(f"{into} holds a checkpoint that is not this log's ({e.message}); "
                            "give an empty or new directory", field="directory") from None


def _same(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
