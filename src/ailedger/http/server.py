"""The API's uvicorn protocol: :class:`ailedger.server.asgi.GuardedProtocol` with the deadlines of
the ServeConfig in ``$AILEDGER_SERVE_CONFIG`` (what ``ailedger serve`` runs with), read once per
process; ``uvicorn.run(..., http="ailedger.http.server:DeadlineProtocol")`` (docs/api.md "Deadlines").
Every ailedger server uses the same protocol (:mod:`ailedger.server.asgi`)."""

from __future__ import annotations

import json
import os

from ailedger.server.asgi import GuardedProtocol
from ailedger.server.guard import Deadlines

__all__ = ["PROTOCOL", "DeadlineProtocol", "deadlines_from_env"]

PROTOCOL = "ailedger.http.server:DeadlineProtocol"


def deadlines_from_env() -> Deadlines:
    from ailedger.http.app import ENV_CONFIG, ServeConfig

    cfg = ServeConfig.from_dict(json.loads(os.environ.get(ENV_CONFIG) or "{}"))
    return cfg.deadlines()


class DeadlineProtocol(GuardedProtocol):
    deadlines: Deadlines | None = None  # per process, from the environment on first use

    @classmethod
    def _deadlines(cls) -> Deadlines:
        if DeadlineProtocol.deadlines is None:
            DeadlineProtocol.deadlines = deadlines_from_env()
        return DeadlineProtocol.deadlines
