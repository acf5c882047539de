"""HTTP Message Signatures (RFC 9421) by Ed25519 did:keys: the request signature ailedger servers accept.

A signed request carries three headers (RFC 9421 and, for the body, RFC 9530 ``Content-Digest``)::

    Content-Digest: sha-256=:<base64 SHA-256 of the body>:
    Signature-Input: sig1=("@method" "@path" "@query" "content-digest");created=<unix s>;keyid="did:key:z...";alg="ed25519"
    Signature: sig1=:<base64 Ed25519 signature over the signature base>:

The signature base is RFC 9421 section 2.5's: one line per covered component, then the parameters::

    "@method": PUT
    "@path": /v1/shards/ab12...
    "@query": ?
    "content-digest": sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:
    "@signature-params": ("@method" "@path" "@query" "content-digest");created=1700000000;keyid="did:key:z...";alg="ed25519"

(no newline after the last line). ``@path`` is the path as sent (percent-encoding kept), ``@query``
is ``?`` plus the query string, or ``?`` alone when there is none (RFC 9421 section 2.2.7). The
signature covers the method, the target, the body and the time: it cannot be moved to another
request, and a verifier refuses it outside a window around its own clock.

Pure: no I/O, no clock (``now`` is passed in). Verification goes through :mod:`ailedger.encoding.ed25519`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ailedger.encoding.ed25519 import verify as ed25519_verify
from ailedger.encoding.identity import public_key_from_did
from ailedger.errors import AiledgerError, BadInputError

__all__ = [
    "COVERED",
    "ForbiddenError",
    "SignedRequest",
    "UnauthenticatedError",
    "content_digest",
    "parse_content_digest",
    "sign_request",
    "signature_base",
    "verify_request",
]

COVERED = ("@method", "@path", "@query", "content-digest")
LABEL = "sig1"
MAX_HEADER = 4096


class UnauthenticatedError(AiledgerError):
    """No credential, or one that does not verify (HTTP 401)."""

    code = "unauthenticated"


class ForbiddenError(AiledgerError):
    """A credential that verifies, from someone this server does not let write (HTTP 403)."""

    code = "forbidden"


def content_digest(body_sha256: bytes) -> str:
    """The RFC 9530 ``Content-Digest`` value for a body with this SHA-256."""
    return "sha-256=:" + base64.b64encode(body_sha256).decode() + ":"


_DIGEST_RE = re.compile(r"sha-256=:([A-Za-z0-9+/]{43}=):")


def parse_content_digest(value: str | None) -> bytes:
    """The SHA-256 a ``Content-Digest`` header declares (only the ``sha-256`` algorithm, alone)."""
    if value is None:
        raise UnauthenticatedError("a signed request needs a Content-Digest header (RFC 9530, sha-256)",
                                   field="content-digest")
    m = _DIGEST_RE.fullmatch(value.strip())
    if not m:
        raise UnauthenticatedError("Content-Digest must be sha-256=:<base64 of 32 bytes>:", field="content-digest")
    return base64.b64decode(m.group(1))


def _sf_string(s: str) -> str:
    if not all(0x20 <= ord(c) < 0x7F for c in s):
        raise BadInputError("structured-field strings hold printable ASCII only")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _params_value(components: tuple[str, ...], created: int, keyid: str, alg: str | None) -> str:
    inner = "(" + " ".join(_sf_string(c) for c in components) + ")"
    out = f"{inner};created={created};keyid={_sf_string(keyid)}"
    if alg is not None:
        out += f";alg={_sf_string(alg)}"
    return out


def signature_base(method: str, path: str, query: str, digest_header: str, params_value: str,
                   components: tuple[str, ...] = COVERED) -> bytes:
    """RFC 9421 section 2.5 signature base for the components ailedger signs."""
    values = {"@method": method, "@path": path or "/", "@query": "?" + query,
              "content-digest": digest_header}
    lines = [f'"{c}": {values[c]}' for c in components]
    lines.append(f'"@signature-params": {params_value}')
    text = "\n".join(lines)
    if "\r" in text or any(ord(c) < 0x20 and c != "\n" for c in text) or not text.isascii():
        raise BadInputError("request target, method or digest has characters a signature base cannot hold")
    return text.encode("ascii")


def sign_request(method: str, path: str, query: str, body_sha256: bytes, keyid: str,
                 sign: Callable[[bytes], bytes], created: int) -> dict[str, str]:
    """The three headers that sign a request (``sign`` is the did:key's Ed25519 signing function)."""
    digest = content_digest(body_sha256)
    params = _params_value(COVERED, created, keyid, "ed25519")
    sig = sign(signature_base(method, path, query, digest, params))
    return {"Content-Digest": digest, "Signature-Input": f"{LABEL}={params}",
            "Signature": f"{LABEL}=:{base64.b64encode(sig).decode()}:"}


# -- parsing (a strict subset of RFC 8941 structured fields: what a signature input can hold) --------
_TOKEN_RE = re.compile(r"[a-z*][a-z0-9_.*-]*")
_STRING_RE = re.compile(r'"((?:[^"\\\x00-\x1f\x7f]|\\["\\])*)"')
_INT_RE = re.compile(r"-?[0-9]{1,15}")
_BYTES_RE = re.compile(r":([A-Za-z0-9+/]*={0,2}):")


def _unescape(s: str) -> str:
    return s.replace('\\"', '"').replace("\\\\", "\\")


def _members(value: str) -> dict[str, str]:
    """Split a dictionary field into label -> raw member text (members are separated by commas
    outside strings and parentheses)."""
    out: dict[str, str] = {}
    depth, in_str, esc, start = 0, False, False, 0
    parts = []
    for i, ch in enumerate(value):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    for part in parts:
        part = part.strip(" \t")
        label, eq, rest = part.partition("=")
        if not eq or not _TOKEN_RE.fullmatch(label):
            raise UnauthenticatedError("malformed signature header: a member is not label=value",
                                       field="signature-input")
        if label in out:
            raise UnauthenticatedError(f"signature label {label!r} appears twice", field="signature-input")
        out[label] = rest
    return out


@dataclass(frozen=True)
class _Input:
    components: tuple[str, ...]
    params: dict[str, int | str]
    params_value: str


def _parse_input(text: str) -> _Input:
    if not text.startswith("("):
        raise UnauthenticatedError("Signature-Input member must be an inner list", field="signature-input")
    close = text.find(")")
    if close < 0:
        raise UnauthenticatedError("Signature-Input inner list is not closed", field="signature-input")
    items = text[1:close].split(" ") if text[1:close] else []
    components = []
    for it in items:
        m = _STRING_RE.fullmatch(it)
        if not m:
            raise UnauthenticatedError("covered components must be quoted strings without parameters",
                                       field="signature-input")
        components.append(_unescape(m.group(1)))
    params: dict[str, int | str] = {}
    rest = text[close + 1:]
    while rest:
        if not rest.startswith(";"):
            raise UnauthenticatedError("malformed Signature-Input parameters", field="signature-input")
        name, eq, rest = rest[1:].partition("=")
        if not eq or not _TOKEN_RE.fullmatch(name) or name in params:
            raise UnauthenticatedError("malformed Signature-Input parameter", field="signature-input")
        if (ms := _STRING_RE.match(rest)) is not None:
            params[name] = _unescape(ms.group(1))
            rest = rest[ms.end():]
        elif (mi := _INT_RE.match(rest)) is not None:
            params[name] = int(mi.group(0))
            rest = rest[mi.end():]
        else:
            raise UnauthenticatedError(f"Signature-Input parameter {name} must be a string or an integer",
                                       field="signature-input")
    return _Input(tuple(components), params, text)


@dataclass(frozen=True)
class SignedRequest:
    """What a verified signature established: who signed, when, and the body digest it covers."""

    keyid: str
    created: int
    body_sha256: bytes


def verify_request(method: str, path: str, query: str, headers: Mapping[str, str], *, now: float,
                   window: float = 300.0) -> SignedRequest:
    """Check a request's RFC 9421 signature (``headers``: lower-case names). The signer's key is its
    did:key (``keyid``). Returns who signed and the SHA-256 the signature binds the body to: the
    caller must compare it with the body it reads (:func:`parse_content_digest` of the header that
    was signed). Raises UnauthenticatedError naming what is missing or wrong."""
    sig_in = headers.get("signature-input")
    sig = headers.get("signature")
    if sig_in is None or sig is None:
        raise UnauthenticatedError("no request signature: send Signature-Input and Signature (RFC 9421)",
                                   field="signature")
    if len(sig_in) > MAX_HEADER or len(sig) > MAX_HEADER:
        raise UnauthenticatedError("signature headers are too long", field="signature")
    inputs = _members(sig_in)
    sigs = _members(sig)
    if len(inputs) != 1:
        raise UnauthenticatedError("send exactly one signature (one Signature-Input member)", field="signature-input")
    label, raw_input = next(iter(inputs.items()))
    if label not in sigs:
        raise UnauthenticatedError(f"Signature has no member {label!r} matching Signature-Input", field="signature")
    mb = _BYTES_RE.fullmatch(sigs[label])
    if not mb:
        raise UnauthenticatedError("Signature member must be a byte sequence :base64:", field="signature")
    try:
        signature = base64.b64decode(mb.group(1), validate=True)
    except (binascii.Error, ValueError):
        raise UnauthenticatedError("Signature is not valid base64", field="signature") from None
    inp = _parse_input(raw_input)
    missing = [c for c in COVERED if c not in inp.components]
    if missing or len(set(inp.components)) != len(inp.components) or set(inp.components) - set(COVERED):
        raise UnauthenticatedError(f"the signature must cover exactly {' '.join(COVERED)}",
                                   field="signature-input", missing=missing)
    keyid, created, alg = inp.params.get("keyid"), inp.params.get("created"), inp.params.get("alg", "ed25519")
    if not isinstance(keyid, str) or not keyid.startswith("did:key:"):
        raise UnauthenticatedError("keyid must be the signer's did:key", field="keyid")
    if alg != "ed25519":
        raise UnauthenticatedError(f"alg must be ed25519, not {alg!r}", field="alg")
    if not isinstance(created, int):
        raise UnauthenticatedError("the signature needs an integer created parameter", field="created")
    if abs(created - now) > window:
        raise UnauthenticatedError(f"signature created {created} is more than {window:g} s from the server clock "
                                   f"{int(now)}", field="created", created=created, now=int(now))
    expires = inp.params.get("expires")
    if expires is not None and (not isinstance(expires, int) or expires < now):
        raise UnauthenticatedError("the signature has expired", field="expires")
    digest_header = headers.get("content-digest")
    body_sha256 = parse_content_digest(digest_header)
    try:
        pub = public_key_from_did(keyid)
    except (AiledgerError, ValueError):
        raise UnauthenticatedError(f"keyid {keyid[:80]!r} is not an Ed25519 did:key", field="keyid") from None
    try:
        base = signature_base(method, path, query, (digest_header or "").strip(), inp.params_value,
                              inp.components)
    except BadInputError as exc:
        raise UnauthenticatedError(exc.message, field="signature-input") from None
    if len(signature) != 64 or not ed25519_verify(pub, base, signature):
        raise UnauthenticatedError(f"the request signature does not verify under {keyid[:80]}", field="signature")
    return SignedRequest(keyid, created, body_sha256)
