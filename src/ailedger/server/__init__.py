"""The HTTP kit every server of the package shares: request deadlines and size limits (guard) and
write authentication (bearer tokens, HTTP message signatures), and the one ASGI stack (uvicorn + the
``Guard`` middleware) the API, the explorer, the gateway, the witness and the storage node run on.

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.server.asgi import Guard, Server
    from ailedger.server.auth import KeyList, TokenFile, WriteAuth, signed_headers
    from ailedger.server.guard import Deadlines, content_length

_LAZY = {
    "KeyList": "ailedger.server.auth",
    "TokenFile": "ailedger.server.auth",
    "WriteAuth": "ailedger.server.auth",
    "signed_headers": "ailedger.server.auth",
    "Deadlines": "ailedger.server.guard",
    "Guard": "ailedger.server.asgi",
    "Server": "ailedger.server.asgi",
    "content_length": "ailedger.server.guard",
}

__all__ = [
    "Deadlines", "Guard", "KeyList", "Server", "TokenFile", "WriteAuth",
    "content_length", "signed_headers",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
