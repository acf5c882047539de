"""Content authenticity: watermarks (image, audio), perceptual fingerprints and their index, C2PA
manifests, and the service that registers and looks up content on a ledger.

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.content.service import ContentService, find_disputes

_LAZY = {
    "ContentService": "ailedger.content.service",
    "find_disputes": "ailedger.content.service",
}

__all__ = [
    "ContentService", "find_disputes",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
