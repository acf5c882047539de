"""Names loaded on first use (PEP 562): the one module ``__getattr__`` every package ``__init__`` shares.

A package lists ``{public name: module that defines it}`` (absolute, or relative to the package: ``".engine"``)
and sets ``__getattr__ = lazy_getattr(__name__, _LAZY, globals())``; the module is imported when the name is
first asked for and the value is kept in the package's namespace, so the next lookup is a plain attribute.
Importing a package therefore loads none of its modules (nor their third-party libraries) until used.

This module sits in the bottom layer with ``errors`` (tools/importgraph.py): every folder may import it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_getattr(package: str, names: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """The module-level ``__getattr__`` of ``package``: ``names[name]`` imported on first use, then cached in
    ``namespace`` (the package's ``globals()``); any other name is an AttributeError, as for any module."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__


def lazy_dir(namespace: dict[str, Any], names: Iterable[str]) -> Callable[[], list[str]]:
    """The module-level ``__dir__``: the names already there and the lazy ones, sorted."""

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __dir__
