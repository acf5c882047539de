"""C2SP tlog-checkpoint bodies: origin, tree size, base64 root, optional extension lines."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from ailedger.core.errors import BadInputError
from ailedger.core.note import Signer, Verifier, sign_note, verify_note

__all__ = ["Checkpoint", "parse_checkpoint_text", "sign_checkpoint", "open_checkpoint"]


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
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise BadInputError(f"checkpoint tree size {size_s!r} is not a decimal number", field="size")
    try:
        root = base64.b64decode(root_s, validate=True)
    except binascii.Error as exc:
        raise BadInputError("checkpoint root is not base64", field="root") from exc
    if len(root) != 32:
        raise BadInputError(f"checkpoint root is {len(root)} bytes, not 32", field="root")
    if any(not e for e in ext):
        raise BadInputError("checkpoint has an empty extension line")
    return Checkpoint(origin, int(size_s), root, tuple(ext))


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
