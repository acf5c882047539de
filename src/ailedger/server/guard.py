"""Deadlines for the request head and body in ailedger's Python HTTP servers (docs/api.md "Deadlines").

A client that opens a connection and then sends its request slowly (or not at all) must not hold
the server's resources for longer than a deadline:

- the **head** (request line and headers) must arrive whole within ``head`` seconds of its first
  byte (default 10 s); an idle keep-alive connection is closed after ``idle`` seconds;
- the **body** must arrive within ``body`` seconds of the end of the head, plus one second per
  ``min_rate`` bytes received (default 10 s + 1 s per 64 KiB, the rule of Apache's mod_reqtimeout):
  a body trickled slower than ``min_rate`` bytes/s times out, a large body sent at any usable speed
  never does.

A request that misses a deadline is answered ``408`` (when no answer has started yet) and its
connection closed. :class:`Deadlines` is shared by every server: the protocol and the guard of
:mod:`ailedger.server.asgi` apply it to the API, the gateway, the witness and the storage node.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["Deadlines", "content_length"]


@dataclass(frozen=True)
class Deadlines:
    head: float = 10.0  # seconds for a request head, from its first byte
    body: float = 10.0  # seconds for a body after its head, plus 1 s per min_rate bytes received
    min_rate: int = 65536  # bytes/s a body must keep up on average
    idle: float = 30.0  # seconds an idle keep-alive connection stays open
    write: float = 60.0  # seconds a response write may block

    def __post_init__(self) -> None:
        for name in ("head", "body", "idle", "write"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 86400):
                raise BadInputError(f"{name} timeout must be in (0, 86400] seconds", field=name, found=v)
        if not (isinstance(self.min_rate, int) and self.min_rate >= 1):
            raise BadInputError("min_rate must be a positive number of bytes per second", field="min_rate")

    def body_deadline(self, started: float, received: int) -> float:
        """The monotonic time by which a body started at ``started`` must be in, given ``received`` bytes."""
        return started + self.body + received / self.min_rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def content_length(value: str | None, limit: int | None = None) -> int | None:
    """A strict Content-Length: ASCII digits only (no sign, space, underscore or other digits),
    at most 18 of them; None when absent. Over ``limit`` is still returned (the caller answers 413)."""
    if value is None:
        return None
    v = value.strip(" \t")
    if not (v.isascii() and v.isdigit()) or len(v) > 18:
        raise BadInputError(f"Content-Length must be a decimal byte count, got {value[:40]!r}",
                            field="content-length")
    return int(v)
