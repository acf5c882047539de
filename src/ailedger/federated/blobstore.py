"""The run's updates kept in ailedger's blob store (``--store blob:URL[,URL...]``, docs/federated.md)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ailedger.blobs import BlobService
from ailedger.errors import AiledgerError, BadInputError, NotFoundError, VerificationError
from ailedger.federated.audit import run_view

__all__ = ["BlobUpdateStore"]


class BlobUpdateStore:
    """The run's updates in ailedger's blob store (:class:`ailedger.blobs.BlobService`, docs/storage.md):
    each item is put as its own blob, encrypted under a fresh key wrapped for the run's server (and any
    ``readers``), erasure-coded over the given storage nodes or S3 targets and recorded by a ``blob.put``
    entry.  Every ``put_*`` returns the blob's CID (content-addressed: the UnixFS CID of its ciphertext);
    the run logs it beside the item (``fl.run`` ``init_blob``, each client's ``blob`` in ``fl.round``, the
    round's ``dp.noise_blob``), so replay finds every update through the log and the blob service checks the
    bytes against the CID, the shards' SHA-256 and the plaintext commitment before the digest is compared.

    Reading needs ``ident``, an identity the blob keys are wrapped for (the server, or a named reader)."""

    kind = "blob"

    def __init__(self, ledger: Any, ident: Any, *, nodes: Sequence[str] = (), readers: Sequence[str] = (),
                 refs: dict[str, str] | None = None, timeout: float = 30.0, workers: int = 4) -> None:
        self.service = BlobService(ledger, timeout=timeout)
        self.ident = ident
        self.nodes = list(nodes)
        self.readers = list(readers)
        self.refs: dict[str, str] = dict(refs or {})  # "init" / "r<round>/<did>" / "r<round>/noise" -> CID
        self.tmp = Path(tempfile.mkdtemp(prefix="ailedger-fl-blob-"))
        self.workers = workers
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, ledger: Any, run: int, ident: Any, *, timeout: float = 30.0) -> BlobUpdateStore:
        """The blob store of a logged ``run``: the CIDs read from its ``fl.run`` and effective ``fl.round``
        entries."""
        v = run_view(ledger, run)
        refs: dict[str, str] = {}
        if isinstance(v.body.get("init_blob"), str):
            refs["init"] = v.body["init_blob"]
        for _, b in v.rounds:
            for c in b.get("clients", []):
                if isinstance(c.get("blob"), str):
                    refs[f"r{b['round']}/{c['did']}"] = c["blob"]
            nb = (b.get("dp") or {}).get("noise_blob")
            if isinstance(nb, str):
                refs[f"r{b['round']}/noise"] = nb
        return cls(ledger, ident, refs=refs, timeout=timeout)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _put(self, ref: str, data: bytes) -> str:
        if not self.nodes:
            raise BadInputError("the blob store needs at least one storage node URL or s3:// target "
                                "(--store blob:URL[,URL...])", field="store")
        p = self.tmp / f"item-{threading.get_ident()}.bin"
        p.write_bytes(data)
        try:
            cid = self.service.put(p, self.nodes, self.ident, readers=self.readers).cid
        finally:
            p.unlink(missing_ok=True)
        with self._lock:
            self.refs[ref] = cid
        return cid

    def _get(self, ref: str, what: str) -> bytes:
        cid = self.refs.get(ref)
        if cid is None:
            raise NotFoundError(f"{what}: the log names no blob for it", field="store")
        out = self.tmp / f"got-{threading.get_ident()}.bin"
        try:
            self.service.get(cid, out, self.ident)
            return out.read_bytes()
        except BadInputError as exc:  # e.g. this identity is not one of the blob's readers
            raise BadInputError(f"{what}: {exc.message}", field="as", cid=cid) from None
        except AiledgerError as exc:  # a shard that does not check out, a node that holds no intact copy
            raise VerificationError(f"{what}: blob {cid} could not be read back intact: {exc.message}",
                                    field="store", cid=cid) from None
        finally:
            out.unlink(missing_ok=True)

    def put_init(self, data: bytes) -> str:
        return self._put("init", data)

    def get_init(self) -> bytes:
        return self._get("init", "initial model")

    def put_update(self, round_: int, did: str, data: bytes) -> str:
        return self._put(f"r{round_}/{did}", data)

    def put_updates(self, round_: int, items: list[tuple[str, bytes]]) -> dict[str, str]:
        """Every ``(did, update)`` of a round, ``workers`` puts at a time (their ``blob.put`` entries share
        the ledger's group commit); did -> CID."""
        if len(items) <= 1 or self.workers <= 1:
            return {did: self.put_update(round_, did, data) for did, data in items}
        with ThreadPoolExecutor(min(self.workers, len(items))) as pool:
            cids = list(pool.map(lambda it: self.put_update(round_, it[0], it[1]), items))
        return {did: cid for (did, _), cid in zip(items, cids)}

    def get_update(self, round_: int, did: str) -> bytes:
        return self._get(f"r{round_}/{did}", f"round {round_}: the stored update of client {did}")

    def get_updates(self, round_: int, dids: list[str]) -> list[bytes]:
        """The updates of ``dids`` in round ``round_``, ``workers`` fetches at a time; the first failure in
        ``dids`` order is raised (so replay names the same client whatever finishes first)."""
        if len(dids) <= 1 or self.workers <= 1:
            return [self.get_update(round_, d) for d in dids]
        with ThreadPoolExecutor(min(self.workers, len(dids))) as pool:
            return list(pool.map(lambda d: self.get_update(round_, d), dids))

    def put_seed(self, round_: int, seed: bytes) -> str:
        return self._put(f"r{round_}/noise", seed)

    def get_seed(self, round_: int) -> bytes:
        return self._get(f"r{round_}/noise", f"round {round_} noise seed")
