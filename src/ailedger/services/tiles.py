"""Export a log as static C2SP tlog-tiles (checkpoint, hash tiles, entry bundles)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.core.checkpoint import parse_checkpoint_text
from ailedger.core.note import parse_note
from ailedger.core.tiles import TILE_HEIGHT, TILE_WIDTH, entry_bundle, tile_path

__all__ = ["export_tiles", "tile_bytes", "entry_bundle_bytes"]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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


def export_tiles(ledger: Any, out: Path, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    note = ledger.checkpoint()
    cp = parse_checkpoint_text(parse_note(note).text)
    size = cp.size
    store = ledger.store
    n_tiles = n_bundles = 0
    level = 0
    while (size >> (level * TILE_HEIGHT)) > 0:
        complete = size >> (level * TILE_HEIGHT)
        for n in range((complete + TILE_WIDTH - 1) // TILE_WIDTH):
            data = tile_bytes(store, level, n, size)
            if data is None:
                continue
            _write(out / tile_path(level, n, len(data) // 32), data)
            n_tiles += 1
        level += 1
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        data = entry_bundle_bytes(store, n, size)
        if data is None:
            continue
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        _write(out / tile_path("entries", n, width), data)
        n_bundles += 1
        if progress:
            progress(width)
    _write(out / "checkpoint", note)
    return {"size": size, "tiles": n_tiles, "entry_bundles": n_bundles, "directory": str(out)}
