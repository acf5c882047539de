"""The off-ledger store of a run's updates: one file per client and round in a folder, optionally
encrypted (AES-256-GCM, ``cryptography``; the key in the ledger's private folder, the file's path as
associated data, so a file moved to another client or round does not decrypt); or in ailedger's blob store
(:class:`ailedger.federated.blobstore.BlobUpdateStore`: encrypted, content-addressed, each item's CID logged
beside it). :class:`Store` is what the run and replay need of either.

Layout: ``STORE/run-<N>/init.bin`` (the initial global model), ``STORE/run-<N>/r<round>/<did>.bin`` (each
accepted client's serialized update, :func:`ailedger.federated.params.serialize`) and
``r<round>/noise.seed`` (the DP noise seed, when the run adds noise)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from ailedger.errors import BadInputError, NotFoundError, VerificationError

__all__ = ["Store", "UpdateStore"]

_MAGIC = b"AILFL1\n"


class Store(Protocol):
    """What a run writes and replay reads: ``put_*`` return a reference to log beside the item (the blob
    store's CID) or None (the folder store: the path follows from run, round and client)."""

    def put_init(self, data: bytes) -> str | None: ...
    def get_init(self) -> bytes: ...
    def put_update(self, round_: int, did: str, data: bytes) -> str | None: ...
    def put_updates(self, round_: int, items: list[tuple[str, bytes]]) -> dict[str, str]: ...
    def get_update(self, round_: int, did: str) -> bytes: ...
    def get_updates(self, round_: int, dids: list[str]) -> list[bytes]: ...
    def put_seed(self, round_: int, seed: bytes) -> str | None: ...
    def get_seed(self, round_: int) -> bytes: ...
    def close(self) -> None: ...


class UpdateStore:
    kind = "folder"

    def __init__(self, root: str | os.PathLike[str], run: int, *, key: bytes | None = None) -> None:
        self.dir = Path(root) / f"run-{run}"
        self.key = key
        if key is not None and len(key) != 32:
            raise BadInputError("the store key must be 32 bytes", field="key")

    @staticmethod
    def _name(did: str) -> str:
        return did.removeprefix("did:key:") + ".bin"

    def path(self, round_: int, name: str) -> Path:
        return self.dir / ("init.bin" if round_ == 0 and name == "init" else f"r{round_:04d}/{name}")

    def _aad(self, p: Path) -> bytes:
        return str(p.relative_to(self.dir.parent)).encode()

    def _write(self, p: Path, data: bytes) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        if self.key is not None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            nonce = os.urandom(12)
            data = _MAGIC + nonce + AESGCM(self.key).encrypt(nonce, data, self._aad(p))
        tmp = p.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)

    def _read(self, p: Path, what: str) -> bytes:
        if not p.exists():
            raise NotFoundError(f"{what}: no stored file {p}", field="store")
        data = p.read_bytes()
        if data.startswith(_MAGIC):
            if self.key is None:
                raise BadInputError(f"{what}: {p} is encrypted and no key was given", field="key")
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            body = data[len(_MAGIC):]
            try:
                return AESGCM(self.key).decrypt(body[:12], body[12:], self._aad(p))
            except InvalidTag:
                raise VerificationError(f"{what}: {p} does not decrypt with this key (tampered or moved)",
                                    field="store") from None
        return data

    def close(self) -> None:
        """Nothing to release (the blob store's counterpart removes its scratch folder)."""

    def put_init(self, data: bytes) -> None:
        self._write(self.dir / "init.bin", data)

    def get_init(self) -> bytes:
        return self._read(self.dir / "init.bin", "initial model")

    def put_update(self, round_: int, did: str, data: bytes) -> None:
        self._write(self.path(round_, self._name(did)), data)

    def put_updates(self, round_: int, items: list[tuple[str, bytes]]) -> dict[str, str]:
        """Every ``(did, update)`` of a round; the folder store logs no references (an empty dict)."""
        for did, data in items:
            self.put_update(round_, did, data)
        return {}

    def get_update(self, round_: int, did: str) -> bytes:
        return self._read(self.path(round_, self._name(did)), f"round {round_} update of {did}")

    def get_updates(self, round_: int, dids: list[str]) -> list[bytes]:
        return [self.get_update(round_, did) for did in dids]

    def put_seed(self, round_: int, seed: bytes) -> None:
        self._write(self.path(round_, "noise.seed"), seed)

    def get_seed(self, round_: int) -> bytes:
        return self._read(self.path(round_, "noise.seed"), f"round {round_} noise seed")

