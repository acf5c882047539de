"""C2SP tlog-checkpoint bodies: origin, tree size, base64 root, optional extension lines."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ailedger.errors import BadInputError
from ailedger.tlog.note import Signer, Verifier, sign_note, verify_note

__all__ = ["MAX_U64", "Checkpoint", "open_checkpoint", "parse_checkpoint_text", "parse_u64", "sign_checkpoint"]

MAX_U64 = 2**64 - 1
_U64_DIGITS = len(str(MAX_U64))


def parse_u64(s: str | bytes, what: str, field: str | None = None) -> int:
    """A C2SP decimal: ASCII digits only, no sign, no leading zero, at most 2^64 - 1.

    ``str.isdigit`` alone would take "\u0663" (an Arabic-Indic three, which ``int`` reads as 3)
    and "\u00b2" (a superscript two, which ``int`` refuses with a ValueError); and ``int`` of more
    than 4,300 digits raises ValueError: the length is checked before anything is converted."""
    if isinstance(s, (bytes, bytearray)):
        try:
            s = bytes(s).decode("ascii")
        except UnicodeDecodeError:
            raise BadInputError(f"{what} is not a decimal number", field=field) from None
    shown = s[:30] + ("..." if len(s) > 30 else "")
    if not s or not s.isascii() or not s.isdigit() or (s != "0" and s[0] == "0"):
        raise BadInputError(f"{what} {shown!r} is not a decimal number without leading zeros", field=field)
    if len(s) > _U64_DIGITS or int(s) > MAX_U64:
        raise BadInputError(f"{what} {shown!r} is larger than 2^64 - 1", field=field, found=shown)
    return int(s)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.origin or "\n" in self.origin:
            raise BadInputError("checkpoint origin must be one non-empty line", field="origin")
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint_text(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise BadInputError("checkpoint needs origin, size and root lines, each ending in a newline")
    origin, size_s, root_s, *ext = lines[:-1]
    if not origin:
        raise BadInputError("checkpoint origin is empty", field="origin")
    size = parse_u64(size_s, "checkpoint tree size", "size")
    try:  # non-ASCII text raises a plain ValueError, bad base64 binascii.Error (a ValueError)
        root = base64.b64decode(root_s, validate=True)
    except ValueError as exc:
        raise BadInputError("checkpoint root is not base64", field="root") from exc
    if len(root) != 32:
        raise BadInputError(f"checkpoint root is {len(root)} bytes, not 32", field="root")
    if any(not e for e in ext):
        raise BadInputError("checkpoint has an empty extension line")
    return Checkpoint(origin, size, root, tuple(ext))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> bytes:
    return sign_note(cp.text(), [signer])


def open_checkpoint(data: bytes, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify the log's signature on a signed checkpoint and parse it.

    The origin line must equal the verifier key's name (or ``origin`` if given),
    as C2SP tlog-checkpoint asks of clients."""
    note = verify_note(data, verifier)
    cp = parse_checkpoint_text(note.text)
    want = origin if origin is not None else verifier.name
    if cp.origin != want:
        raise BadInputError(f"checkpoint origin {cp.origin!r} is not the expected {want!r}", field="origin")
    return cp
