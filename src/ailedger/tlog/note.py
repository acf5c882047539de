"""C2SP signed-note with Ed25519 signatures, and verifier keys in their text form.

A note is UTF-8 text ending in a newline, then a blank line, then signature lines
``— <name> <base64(keyid || signature)>``.  An Ed25519 key id is the first four
bytes of SHA-256(name || 0x0A || 0x01 || public key).  A verifier key is the
string ``<name>+<hex key id>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign

from ailedger.encoding import ed25519
from ailedger.errors import BadInputError, SignatureError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Note",
    "Signature",
    "Signer",
    "Verifier",
    "format_note",
    "key_id",
    "make_vkey",
    "parse_note",
    "parse_vkey",
    "sign_note",
    "verify_note",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_DASH = "\u2014 "
# golang.org/x/mod/sumdb/note (the reference implementation of C2SP signed-note) refuses notes
# with more than 100 signatures; so do we, which also bounds every loop over the signature lines
MAX_SIGNATURES = 100


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise BadInputError(f"key name {name!r} must be non-empty with no spaces or '+'", field="name")


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    sig: bytes  # everything after the 4-byte key id

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.sig).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def to_bytes(self) -> bytes:
        return format_note(self.text, self.signatures)


@dataclass(frozen=True)
class Verifier:
    """A signed-note verifier key (Ed25519 or a witness cosignature key)."""

    name: str
    key_id: bytes
    alg: int
    public_key: bytes

    @property
    def vkey(self) -> str:
        return make_vkey(self.name, self.public_key, self.alg)

    def verify(self, msg: bytes, sig: bytes) -> bool:
        return ed25519.verify(self.public_key, msg, sig)


class Signer:
    """An Ed25519 signed-note signer (the key is held in memory only)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey, alg: int = ALG_ED25519) -> None:
        _check_name(name)
        self.name = name
        self._key = private_key
        self.alg = alg
        self.public_key = private_key.public_key().public_bytes_raw()
        self.key_id = key_id(name, alg, self.public_key)
        # libsodium's form of the same key (seed || public key): it signs in about 60% of the time OpenSSL's
        # build in ``cryptography`` takes (a checkpoint per committed group); Ed25519 signatures are
        # deterministic, so the signature is the same byte for byte
        self._sk = private_key.private_bytes_raw() + self.public_key

    def sign(self, msg: bytes) -> bytes:
        return crypto_sign(msg, self._sk)[:64]

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.alg, self.public_key)

    @property
    def vkey(self) -> str:
        return make_vkey(self.name, self.public_key, self.alg)


def make_vkey(name: str, public_key: bytes, alg: int = ALG_ED25519) -> str:
    _check_name(name)
    kid = key_id(name, alg, public_key)
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([alg]) + public_key).decode()}"


def parse_vkey(vkey: str) -> Verifier:
    """Parse ``name+keyid+base64key``; the key id must match the key."""
    vkey = vkey.strip()
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise BadInputError("verifier key must be name+keyid+key", field="vkey", found=vkey)
    name, hexid, b64 = parts
    _check_name(name)
    try:
        kid = bytes.fromhex(hexid)
        raw = base64.b64decode(b64, validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise BadInputError(f"verifier key is not well formed: {exc}", field="vkey") from exc
    if len(kid) != 4 or len(raw) != 33:
        raise BadInputError("verifier key has a wrong key id or key length", field="vkey")
    alg, pub = raw[0], raw[1:]
    if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise BadInputError(f"unsupported verifier key type 0x{alg:02x}", field="vkey")
    if key_id(name, alg, pub) != kid:
        raise BadInputError("verifier key id does not match its name and key", field="vkey")
    return Verifier(name, kid, alg, pub)


def format_note(text: str, signatures: Iterable[Signature]) -> bytes:
    return (text + "\n" + "".join(s.line() for s in signatures)).encode()


def parse_note(data: bytes) -> Note:
    """Split a signed note into its text and signature lines (no verification)."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError("signed note is not UTF-8") from exc
    if "\r" in s:
        raise BadInputError("signed note must use \\n line endings")
    i = s.rfind("\n\n")
    if i < 0 or not s.endswith("\n"):
        raise BadInputError("signed note has no blank line before its signatures")
    text, sigpart = s[: i + 1], s[i + 2 :]
    if not sigpart:
        raise BadInputError("signed note carries no signature")
    sigs: list[Signature] = []
    lines = sigpart[:-1].split("\n", MAX_SIGNATURES)
    if len(lines) > MAX_SIGNATURES:
        raise BadInputError(f"signed note carries more than {MAX_SIGNATURES} signatures", field="signatures")
    for line in lines:
        if not line.startswith(_DASH):
            raise BadInputError(f"malformed signature line {line[:100]!r}")
        rest = line[len(_DASH) :]
        name, sp, b64 = rest.rpartition(" ")
        if not sp or not name or any(c.isspace() for c in name) or "+" in name:
            raise BadInputError(f"malformed signature line {line[:100]!r}")
        try:  # a str with non-ASCII characters raises ValueError (binascii.Error is one too)
            raw = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise BadInputError(f"signature line has bad base64: {line[:100]!r}") from exc
        if len(raw) < 5:
            raise BadInputError(f"signature too short in line {line[:100]!r}")
        sigs.append(Signature(name, raw[:4], raw[4:]))
    return Note(text, tuple(sigs))


def sign_note(text: str, signers: Sequence[Signer]) -> bytes:
    if not text.endswith("\n"):
        raise BadInputError("note text must end with a newline")
    if "\n\n" in text:
        raise BadInputError("note text must not contain a blank line")
    msg = text.encode()
    sigs = [Signature(s.name, s.key_id, s.sign(msg)) for s in signers]
    return format_note(text, sigs)


def verify_note(data: bytes, verifier: Verifier) -> Note:
    """Return the note if ``verifier`` has a valid Ed25519 signature on it, else raise."""
    note = parse_note(data)
    matching = [s for s in note.signatures if s.name == verifier.name and s.key_id == verifier.key_id]
    if not matching:
        names = ", ".join(f"{s.name}/{s.key_id.hex()}" for s in note.signatures)
        raise SignatureError(
            f"note carries no signature by {verifier.name}",
            expected=f"{verifier.name}/{verifier.key_id.hex()}",
            found=names,
        )
    for s in matching:
        if verifier.alg == ALG_ED25519 and verifier.verify(note.text.encode(), s.sig):
            return note
    raise SignatureError(
        f"signature by {verifier.name} on the note does not verify", expected=verifier.vkey, found="bad signature"
    )
