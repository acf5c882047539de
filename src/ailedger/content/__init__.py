"""Content authenticity: watermarks (image, audio), perceptual fingerprints and their index, C2PA
manifests, and the service that registers and looks up content on a ledger.

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailedger.content.service import ContentService, find_disputes

_LAZY = {
    "ContentService": "ailedger.content.service",
    "find_disputes": "ailedger.content.service",
}

__all__ = [
    "ContentService", "find_disputes",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
