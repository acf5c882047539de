"""Identity key files: Ed25519, PKCS#8 PEM, file mode 0600, optional passphrase."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.identity import did_from_public_key
from ailedger.errors import BadInputError, ConflictError, NotFoundError
from ailedger.tlog.private import private_dir, write_private

__all__ = ["Identity", "KeyStore", "read_private_key", "write_private_key"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Identity:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes_raw()

    @property
    def did(self) -> str:
        return did_from_public_key(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def write_private_key(path: Path, key: Ed25519PrivateKey, passphrase: str | None = None) -> None:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def read_private_key(path: Path, passphrase: str | None = None) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no key file at {path}") from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase.encode() if passphrase else None)
    except TypeError as exc:
        if "encrypted" in str(exc).lower() and not passphrase:
            raise BadInputError(f"key {path.name} is protected by a passphrase (set AILEDGER_PASSPHRASE)") from None
        raise BadInputError(f"cannot read key {path.name}: {exc}") from None
    except ValueError:
        raise BadInputError(f"cannot read key {path.name}: wrong passphrase or not a PEM key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInputError(f"key {path.name} is not an Ed25519 key")
    return key


class KeyStore:
    """Named identities kept under ``<ledger>/identities``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _check(self, name: str) -> None:
        if not _NAME_RE.match(name or ""):
            raise BadInputError(f"identity name {name!r} must be 1-64 letters, digits, '.', '_' or '-'",
                                field="name")

    def path(self, name: str) -> Path:
        self._check(name)
        return self.root / f"{name}.key"

    def create(self, name: str, passphrase: str | None = None) -> Identity:
        p = self.path(name)
        if p.exists():
            raise ConflictError(f"identity {name!r} already exists", field="name")
        private_dir(self.root)
        key = Ed25519PrivateKey.generate()
        write_private_key(p, key, passphrase)
        ident = Identity(name, key)
        meta = {"name": name, "did": ident.did}
        write_private(self.root / f"{name}.json", json.dumps(meta, indent=1) + "\n")
        return ident

    def load(self, name: str, passphrase: str | None = None) -> Identity:
        p = self.path(name)
        if not p.exists():
            raise NotFoundError(f"no identity named {name!r} (create it with: ailedger identity new {name})",
                                field="as")
        if passphrase is None:
            passphrase = os.environ.get("AILEDGER_PASSPHRASE") or None
        return Identity(name, read_private_key(p, passphrase))

    def replace(self, name: str, passphrase: str | None = None) -> Identity:
        """Rotate: keep the old key as <name>.key.<n> and make a new one."""
        p = self.path(name)
        n = 1
        while (self.root / f"{name}.key.{n}").exists():
            n += 1
        p.rename(self.root / f"{name}.key.{n}")
        (self.root / f"{name}.json").unlink(missing_ok=True)
        return self.create(name, passphrase)

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.stem for p in self.root.glob("*.key"))

    def did_of(self, name: str) -> str | None:
        meta = self.root / f"{name}.json"
        if meta.exists():
            return str(json.loads(meta.read_text())["did"])
        return None
