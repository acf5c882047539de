"""JSON error answers: every error is ``{"code", "message", ...details}`` with a stable code."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from ailedger.encoding.httpsig import ForbiddenError, UnauthenticatedError
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    NotAuthorisedError,
    NotFoundError,
    SignatureError,
    StorageError,
    VerificationError,
)
from ailedger.server.asgi import (  # the one error shape and the guards' errors, shared by every server
    MalformedJSONError,
    OverloadedError,
    RequestTimeoutError,
    TooLargeError,
    json_bytes,
)
from ailedger.server.auth import WWW_AUTHENTICATE
from ailedger.tlog.ingest import (
    BatchRejectedError,
    RateLimitedError,
    RevokedIdentityError,
    UnknownIdentityError,
)

__all__ = [
    "MalformedJSONError",
    "OverloadedError",
    "RequestTimeoutError",
    "TooLargeError",
    "error_response",
    "error_status_headers",
    "is_db_error",
    "json_response",
    "status_of",
]

# entry-level refusals that are about who signed, not about the bytes: 403 (a batch whose every
# refused entry failed for one of these is 403 too; any malformed entry makes it 400)
AUTH_CODES = frozenset({SignatureError.code, UnknownIdentityError.code, RevokedIdentityError.code,
                        ForbiddenError.code, UnauthenticatedError.code, NotAuthorisedError.code})


class MethodNotAllowedError(BadInputError):
    code = "method_not_allowed"


def status_of(exc: AiledgerError) -> int:
    if isinstance(exc, TooLargeError):
        return 413
    if isinstance(exc, UnauthenticatedError):
        return 401
    if isinstance(exc, (UnknownIdentityError, RevokedIdentityError, ForbiddenError, SignatureError,
                        NotAuthorisedError)):
        return 403
    if isinstance(exc, BatchRejectedError):
        codes = {e.get("code") for e in exc.details.get("errors", []) if isinstance(e, dict)}
        return 403 if codes and codes <= AUTH_CODES else 400
    if isinstance(exc, RequestTimeoutError):
        return 408
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
    return Response(json_bytes(data), status_code=status, headers=headers, media_type="application/json")


def error_response(exc: AiledgerError) -> Response:
    status, headers = error_status_headers(exc)
    return json_response(exc.to_dict(), status, headers)


# set by the app when metrics are on: counts every error answer by code and status (once per failed request)
ERROR_HOOK: list[Callable[[str, int], None]] = []


def error_status_headers(exc: AiledgerError) -> tuple[int, dict[str, str]]:
    """The HTTP status of an error answer and its headers (Retry-After, WWW-Authenticate, Connection)."""
    status = status_of(exc)
    for hook in ERROR_HOOK:
        hook(exc.code, status)
    headers: dict[str, str] = {}
    if status == 429:
        headers["Retry-After"] = str(max(1, int(getattr(exc, "retry_after", 1) + 0.999)))
    elif status == 503:
        headers["Retry-After"] = "1"
    elif status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    elif status == 408:
        headers["Connection"] = "close"
    return status, headers


def is_db_error(exc: BaseException) -> bool:
    """Is ``exc`` a database driver's error a store let through (disk full, I/O error, lost server)?  The API
    and the explorer both answer it as a storage error rather than an internal one."""
    if isinstance(exc, sqlite3.Error):
        return True
    return type(exc).__module__.startswith("psycopg")
