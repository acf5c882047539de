"""Who may write to an ailedger server: operator-issued tokens and signed requests (docs/api.md).

No ailedger server takes an unauthenticated write. A request that changes state carries one of:

- ``Authorization: Bearer <token>``: a token the operator issued with ``ailedger write-token new``.
  The server keeps only each token's SHA-256, in a token file that only its owner may read or
  write (mode 0600; a file others can read or change is refused, not used). The file is re-read
  when it changes, so a revoked token stops working without a restart.
- an RFC 9421 request signature (:mod:`ailedger.encoding.httpsig`) by an Ed25519 did:key the server
  admits: on the HTTP API an identity registered in the log and not revoked; on a storage node a
  key its operator named (``--allow``).

:class:`WriteAuth` is the one check every server calls; :func:`signed_headers` is the client side.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.encoding.httpsig import ForbiddenError, UnauthenticatedError, sign_request, verify_request
from ailedger.encoding.identity import public_key_from_did
from ailedger.errors import BadInputError, NotFoundError

__all__ = [
    "WWW_AUTHENTICATE",
    "Credential",
    "ForbiddenError",
    "KeyList",
    "TokenFile",
    "UnauthenticatedError",
    "WriteAuth",
    "signed_headers",
]

WWW_AUTHENTICATE = 'Bearer realm="ailedger", Signature'
TOKEN_PREFIX = "ailw_"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_LINE_RE = re.compile(r"([0-9a-f]{64}) (\S+) (\S+)")
log = logging.getLogger("ailedger.auth")
_HEADER = "# ailedger write tokens (ailedger write-token): sha256(token) name created\n"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _check_private(path: Path, st: os.stat_result) -> None:
    if st.st_mode & 0o077:
        raise BadInputError(f"token file {path} has mode {oct(st.st_mode & 0o777)}: others may read or change it; "
                            f"run chmod 600 {path}", field="token_file")


class TokenFile:
    """Operator-issued write tokens: one line per token (SHA-256 of the token, name, creation time)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, str] = {}
        self._warned = ""

    # -- reading ---------------------------------------------------------------------------------
    def _lines(self) -> list[tuple[str, str, str]]:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise BadInputError(f"cannot read token file {self.path}: {e.strerror}", field="token_file") from e
        with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as f:
            _check_private(self.path, os.fstat(f.fileno()))
            out = []
            for line in f:
                m = _LINE_RE.fullmatch(line.strip())
                if m:
                    out.append((m.group(1), m.group(2), m.group(3)))
            return out

    def check_file(self) -> None:
        """Raise BadInputError now if the file exists but is unreadable or not private (start-up check)."""
        self._lines()

    def _refresh(self) -> dict[str, str]:
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp or stamp is None:
                self._by_hash = {h: name for h, name, _ in self._lines()} if stamp is not None else {}
                self._stamp = stamp
            return self._by_hash

    def check(self, token: str) -> str | None:
        """The name of the token, or None if it is not (or no longer) issued."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        want = _digest(token)
        try:
            issued = self._refresh()
        except BadInputError as exc:  # the file became unreadable or public: fail closed, say why once
            if self._warned != exc.message:
                self._warned = exc.message
                log.warning("write tokens refused: %s", exc.message)
            return None
        for h, name in issued.items():
            if hmac.compare_digest(h, want):
                return name
        return None

    def entries(self) -> list[dict[str, str]]:
        return [{"name": n, "created": c, "id": h[:12]} for h, n, c in self._lines()]

    # -- writing ---------------------------------------------------------------------------------
    def _open_locked(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            _check_private(self.path, os.fstat(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def issue(self, name: str, now: float | None = None) -> str:
        """Create a token named ``name``; returns it (it is shown once: only its hash is kept)."""
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise BadInputError("token name must be 1-64 characters of letters, digits, . _ @ -", field="name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = _dt.datetime.fromtimestamp(time.time() if now is None else now, _dt.timezone.utc)
        line = f"{_digest(token)} {name} {created.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        fd = self._open_locked()
        try:
            size = os.fstat(fd).st_size
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, ((_HEADER if size == 0 else "") + line).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return token

    def revoke(self, name: str) -> int:
        """Remove every token named ``name``; returns how many went."""
        fd = self._open_locked()
        try:
            lines = self._lines()
            keep = [x for x in lines if x[1] != name]
            gone = len(lines) - len(keep)
            if not gone:
                raise NotFoundError(f"no write token named {name!r} in {self.path}", field="name")
            tmp = self.path.with_name(self.path.name + ".tmp")
            tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(tfd, "w", encoding="utf-8") as f:
                f.write(_HEADER + "".join(f"{h} {n} {c}\n" for h, n, c in keep))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            os.close(fd)
        return gone


class KeyList:
    """did:keys a server admits: given ones plus those listed in a file (one per line, ``#`` comments),
    re-read when the file changes."""

    def __init__(self, dids: Any = (), path: str | os.PathLike[str] | None = None) -> None:
        self.fixed = set()
        for d in dids:
            public_key_from_did(d)  # BadInputError if it is not an Ed25519 did:key
            self.fixed.add(d)
        self.path = Path(path) if path is not None else None
        self._stamp: tuple[int, int, int] | None = None
        self._listed: set[str] = set()
        self._lock = threading.Lock()
        if self.path is not None:
            self._refresh()

    def _refresh(self) -> set[str]:
        assert self.path is not None
        try:
            st = os.stat(self.path)
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise BadInputError(f"cannot read the allow file {self.path}: {e.strerror}", field="allow_file") from e
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._listed = {w for line in text.splitlines()
                                if (w := line.split("#", 1)[0].strip()).startswith("did:key:")}
                self._stamp = stamp
            return self._listed

    def __call__(self, did: str) -> bool:
        if did in self.fixed:
            return True
        if self.path is None:
            return False
        try:
            return did in self._refresh()
        except BadInputError as exc:
            log.warning("allow list unreadable, nobody from it admitted: %s", exc.message)
            return False

    def __bool__(self) -> bool:
        return bool(self.fixed) or self.path is not None


@dataclass(frozen=True)
class Credential:
    """Who a write request was authenticated as: a token's name, or a signer's did:key."""

    kind: str  # "token" or "signature"
    who: str
    body_sha256: bytes | None = None  # the digest a signature binds the body to

    def check_body(self, body_sha256: bytes) -> None:
        """For a signed request: the body read must be the one that was signed."""
        if self.body_sha256 is not None and not hmac.compare_digest(self.body_sha256, body_sha256):
            raise UnauthenticatedError("the request body does not match the Content-Digest its signature covers",
                                       field="content-digest")


@dataclass
class WriteAuth:
    """The write check: a valid token from ``tokens``, or a valid signature by a key ``admit`` accepts."""

    tokens: TokenFile | None = None
    admit: Callable[[str], bool] | None = None
    window: float = 300.0  # seconds a signature's created time may be from the server clock
    clock: Callable[[], float] = time.time
    what: str = "this server"

    def check(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> Credential:
        """``headers`` with lower-case names. Raises UnauthenticatedError (401) or ForbiddenError (403)."""
        auth = headers.get("authorization")
        if auth is not None:
            scheme, _, value = auth.strip().partition(" ")
            if scheme.lower() != "bearer":
                raise UnauthenticatedError("Authorization must be Bearer <token>; or sign the request (RFC 9421)",
                                           field="authorization")
            if self.tokens is None:
                raise UnauthenticatedError(f"{self.what} takes no write tokens; sign the request instead",
                                           field="authorization")
            name = self.tokens.check(value.strip())
            if name is None:
                raise UnauthenticatedError("unknown or revoked write token", field="authorization")
            return Credential("token", name)
        if "signature-input" in headers or "signature" in headers:
            signed = verify_request(method, path, query, headers, now=self.clock(), window=self.window)
            if self.admit is None or not self.admit(signed.keyid):
                raise ForbiddenError(f"{signed.keyid} may not write to {self.what}", field="keyid",
                                     found=signed.keyid)
            return Credential("signature", signed.keyid, signed.body_sha256)
        raise UnauthenticatedError(
            f"{self.what} takes writes only with a credential: Authorization: Bearer <token> "
            "(ailedger write-token new) or an RFC 9421 request signature by an admitted did:key (docs/api.md)",
            field="authorization")


def signed_headers(method: str, target: str, body_sha256: bytes, identity: Any, now: float | None = None
                   ) -> dict[str, str]:
    """Client side: the headers that sign ``method target`` (target = path[?query], as sent) with a
    body of this SHA-256, by ``identity`` (anything with ``did`` and ``sign(bytes)``)."""
    path, _, query = target.partition("?")
    return sign_request(method, path, query, body_sha256, identity.did, identity.sign,
                        int(time.time() if now is None else now))
