"""JSON error answers: every error is ``{"code", "message", ...details}`` with a stable code."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from ailedger.core.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    NotAuthorisedError,
    NotFoundError,
    StorageError,
    VerificationError,
)
from ailedger.services.ingest import RateLimitedError, RevokedIdentityError, UnknownIdentityError

__all__ = ["MalformedJSONError", "OverloadedError", "TooLargeError", "error_response", "json_response", "status_of"]


class TooLargeError(BadInputError):
    code = "too_large"


class MalformedJSONError(BadInputError):
    code = "malformed_json"


class OverloadedError(AiledgerError):
    code = "overloaded"


class MethodNotAllowedError(BadInputError):
    code = "method_not_allowed"


def status_of(exc: AiledgerError) -> int:
    if isinstance(exc, TooLargeError):
        return 413
    if isinstance(exc, (UnknownIdentityError, RevokedIdentityError, NotAuthorisedError)):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, MethodNotAllowedError):
        return 405
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, RateLimitedError):
        return 429
    if isinstance(exc, (OverloadedError, StorageError)):
        return 503
    if isinstance(exc, (BadInputError, VerificationError)):
        return 400
    return 500


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), default=str).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_response(exc: AiledgerError) -> Response:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 429:
        headers["Retry-After"] = str(max(1, int(getattr(exc, "retry_after", 1) + 0.999)))
    elif status == 503:
        headers["Retry-After"] = "1"
    return json_response(exc.to_dict(), status, headers)
