"""The blob service: put, get, repair, audit and reader changes, recorded in the ledger.

Write path (``put``): plaintext -> (UnixFS CID of the plaintext, for the commitment) -> AES-256-GCM
segments -> (UnixFS CID of the ciphertext = the object's id) -> RS k-of-n stripes -> n shards held
in memory (spooled locally when large) -> uploaded in parallel to n distinct nodes -> ``blob.put`` record.

Read path (``get``): ledger state -> unwrap the key -> fetch k shards at once (data shards first;
another shard for each that fails or stalls), keep the first k of the right length (parity shards
checked against their SHA-256 as they arrive), cut the rest -> decode (while the data shards arrive;
again from the kept shards if they differ; data shards' fragment headers and padding checked) ->
decrypt (every segment authenticated) -> check the plaintext commitment -> only then move the output
into place. When a check fails, the data shards used are hashed, the bad ones named and replaced, and
everything is checked again, ciphertext CID included (docs/storage.md, "What a get proves"). A byte
that does not check out never reaches the output.

State is a replay of the ledger: ``blob.put`` (signed by the owner), ``blob.repair`` (new shard
locations; any signer, since shard bytes are checked by hash anyway; older locations stay as
fallbacks) and ``blob.readers`` (owner only: the re-wrapped key for the new reader set).

A shard on an S3 target may carry the endpoint it was written to (``"endpoint"``, optional: records
without it read as before). A reader uses it when it gives no endpoint of its own for that bucket
(``--s3-endpoint``/$AWS_ENDPOINT_URL win), and only when the blob's owner signed it (a ``blob.repair`` by
anyone else adds its locations, not where to send AWS-signed requests).
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.blobs import crypto
from ailedger.blobs.cid import CID
from ailedger.blobs.client import (
    Cancelled,
    MemoryShard,
    NodeClient,
    ShardSink,
    ShardSource,
    check_url,
    corrupted,
    hash_file,
    remove,
)
from ailedger.blobs.erasure import Coding, StripeDecoder, StripeEncoder, coding_for_nodes
from ailedger.blobs.s3 import (
    S3Target,
    check_target,
    endpoint_for,
    endpoint_in_use,
    is_s3,
    preflight,
    recordable_endpoint,
)
from ailedger.blobs.unixfs import DEFAULT_PROFILE, FileImporter, get_profile
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    NetworkError,
    NotFoundError,
    ProofError,
    StorageError,
    VerificationError,
)
from ailedger.provenance.shardproof import (
    SEGMENT,
    ShardHasher,
    challenge_indices,
    segment_count,
    verify_segment,
)

__all__ = ["ENCRYPTION", "BlobService", "BlobState", "GetResult", "PutResult", "RepairResult"]

ENCRYPTION = "aes-256-gcm-stream"
_IO = 1 << 20


@dataclass
class ShardInfo:
    index: int
    sha256: str
    root: str
    locations: list[str]  # newest first


@dataclass
class BlobState:
    cid: str
    put_index: int
    owner: str
    profile: str
    plain_size: int
    commitment: str
    coding: Coding
    segment: int
    shards: list[ShardInfo]
    readers: list[crypto.WrappedKey]
    history: list[int] = field(default_factory=list)
    superseded_by: str | None = None
    proof_segment: int = SEGMENT
    endpoints: dict[str, str] = field(default_factory=dict)  # s3:// location -> endpoint, as the owner recorded

    @property
    def reader_dids(self) -> list[str]:
        return [r.reader for r in self.readers]

    def to_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "put_index": self.put_index, "owner": self.owner, "profile": self.profile,
                "plain_size": self.plain_size, "coding": self.coding.to_dict(), "readers": self.reader_dids,
                "shards": [{"i": s.index, "node": s.locations[0] if s.locations else None, "sha256": s.sha256,
                            **({"endpoint": self.endpoints[s.locations[0]]}
                               if s.locations and s.locations[0] in self.endpoints else {})}
                           for s in self.shards],
                "records": self.history, "superseded_by": self.superseded_by}


@dataclass(frozen=True)
class PutResult:
    cid: str
    index: int
    plain_size: int
    cipher_size: int
    k: int
    n: int
    placement: dict[int, str]
    retried: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "index": self.index, "plain_size": self.plain_size,
                "cipher_size": self.cipher_size, "k": self.k, "n": self.n,
                "placement": {str(i): u for i, u in self.placement.items()}, "retried": self.retried}


@dataclass(frozen=True)
class GetResult:
    cid: str
    plaintext_cid: str
    size: int
    shards_used: list[int]
    failures: list[str]
    # data shards hashed after they arrived: a check failed, or a parity shard was needed (docs/storage.md)
    shards_hashed: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "plaintext_cid": self.plaintext_cid, "size": self.size,
                "shards_used": self.shards_used, "failures": self.failures, "shards_hashed": self.shards_hashed}


@dataclass(frozen=True)
class RepairResult:
    cid: str
    healthy: list[int]
    rebuilt: dict[int, str]
    index: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "healthy": self.healthy,
                "rebuilt": {str(i): u for i, u in self.rebuilt.items()}, "index": self.index}


def _cut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Live:
    """A swarm's current transfer per shard, for a decoder reading along: ``cond`` is notified on every
    new transfer, every write and at the end (``done``)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.sinks: dict[int, ShardSink] = {}
        self.done = False


def _unpadded(data: bytes, take: int) -> bytes:
    """The first ``take`` bytes of the last stripe, whose rest must be the encoder's zero padding."""
    pad = bytes(memoryview(data)[take:])  # (bytes compared, not a memoryview: that goes item by item)
    if pad != bytes(len(pad)):
        raise VerificationError("the padding after the last stripe's data is not zero", expected="zero bytes",
                                found=f"{len(pad) - pad.count(0)} non-zero of {len(pad)}")
    return data[:take]


def _term(cid: str) -> str:
    return f"blob:{cid}"


def _endpoints(st: BlobState, shards: Any) -> None:
    """Note the endpoints that the owner's shard records name for their S3 locations (optional field)."""
    for s in shards if isinstance(shards, list) else []:
        if not isinstance(s, dict):
            continue
        node, ep = s.get("node"), s.get("endpoint")
        if isinstance(node, str) and is_s3(node) and isinstance(ep, str) and recordable_endpoint(ep):
            st.endpoints[node] = ep


class BlobService:
    def __init__(self, ledger: Any, *, timeout: float = 30.0, spool: str | os.PathLike[str] | None = None,
                 workers: int = 16, s3_endpoint: str | Mapping[str, str] | None = None,
                 memory: int = 512 << 20, hedge: float = 2.0) -> None:
        """``memory``: bytes of shards a put or get may hold in memory instead of spooling them to disk.
        ``hedge``: seconds without a byte from a shard's node before a get starts fetching another shard.
        ``s3_endpoint``: the endpoint of ``s3://`` targets (default: boto3's, i.e. $AWS_ENDPOINT_URL or AWS),
        or ``{bucket: URL, "": default}`` when buckets live on different stores."""
        self.ledger = ledger
        self.s3_endpoint = s3_endpoint
        self.timeout = timeout
        self.workers = workers
        self.memory = memory
        self.hedge = hedge
        self.spool_root = Path(spool) if spool else None
        self._recorded: dict[str, str] = {}  # endpoints of s3:// locations, from the last blob state() read

    # -- helpers ------------------------------------------------------------------------------
    def _client(self, url: str, signer: Any = None) -> Any:
        """A client for one shard location: a storage node (``http://``; with ``signer``, writes are signed
        by that identity, RFC 9421, docs/storage.md: a node takes writes only from identities its operator
        admitted) or an S3 target (``s3://bucket[/prefix]``; writes use the AWS credentials)."""
        if is_s3(url):
            return S3Target(url, self.timeout, self._endpoint(url))
        return NodeClient(url, self.timeout, signer=signer)

    def _endpoint(self, url: str) -> str | None:
        """The endpoint for S3 target ``url``: the caller's (argument, else None), else the one its record names."""
        return endpoint_for(self.s3_endpoint, url) or self._recorded.get(url)

    def _endpoint_field(self, url: str) -> dict[str, str]:
        """``{"endpoint": URL}`` for a shard record on S3 target ``url`` written through a custom endpoint."""
        ep = recordable_endpoint(endpoint_in_use(self._endpoint(url))) if is_s3(url) else None
        return {"endpoint": ep} if ep else {}

    def _locations(self, urls: Iterable[str], *, check: bool = False) -> list[str]:
        """Normal forms of storage node URLs and S3 targets, duplicates dropped; with ``check`` every
        S3 target must answer first (reachable, credentials accepted, bucket there)."""
        out = list(dict.fromkeys(check_target(u) if is_s3(u) else check_url(u) for u in urls))
        if check:
            preflight([u for u in out if is_s3(u)], self.s3_endpoint, min(self.timeout, 10.0))
        return out

    def _spool(self) -> Path:
        if self.spool_root is not None:
            self.spool_root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="ailedger-blob-", dir=self.spool_root))

    def _reader_did(self, who: str) -> str:
        return str(self.ledger.did_for(who))

    @staticmethod
    def _binding(cid: str) -> bytes:
        return b"ailedger/blob-reader/v1\0" + CID.decode(cid).bytes

    # -- state ----------------------------------------------------------------------------------
    def state(self, cid: str) -> BlobState:
        c = CID.decode(cid)  # validates
        cid = str(c)
        st: BlobState | None = None
        for index, e in self.ledger.find(term=_term(cid)):
            b = e.body
            if e.type == "blob.put" and st is None:
                if b.get("cid") != cid:
                    continue
                try:
                    st = BlobState(
                        cid=cid, put_index=index, owner=e.signer, profile=b["profile"],
                        plain_size=int(b["plain"]["size"]), commitment=b["plain"]["commitment"],
                        coding=Coding.from_dict(b["coding"]), segment=int(b["encryption"]["segment"]),
                        shards=[ShardInfo(int(s["i"]), s["sha256"], s["root"], [s["node"]]) for s in b["shards"]],
                        readers=[crypto.WrappedKey.from_dict(r) for r in b["readers"]], history=[index],
                        proof_segment=int(b.get("proof", {}).get("segment", SEGMENT)),
                    )
                    _endpoints(st, b["shards"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise StorageError(f"ledger entry {index} is not a valid blob.put: {exc}", index=index) from None
            elif st is not None and b.get("put") == st.put_index:
                if e.type == "blob.repair":
                    for s in b.get("shards", []):
                        i = int(s["i"])
                        if 0 <= i < len(st.shards):
                            locs = st.shards[i].locations
                            if s["node"] in locs:
                                locs.remove(s["node"])
                            locs.insert(0, s["node"])
                    if e.signer == st.owner:
                        _endpoints(st, b.get("shards", []))
                    st.history.append(index)
                elif e.type == "blob.supersede" and e.signer == st.owner:
                    st.superseded_by = b.get("superseded_by")
                    st.history.append(index)
                elif e.type == "blob.readers" and e.signer == st.owner:
                    st.readers = [crypto.WrappedKey.from_dict(r) for r in b["readers"]]
                    st.history.append(index)
        if st is None:
            raise NotFoundError(f"no blob {cid} in this ledger", field="cid")
        self._recorded = dict(st.endpoints)  # the blob being worked on names its stores
        return st

    # -- put ------------------------------------------------------------------------------------
    def put(self, path: str | os.PathLike[str], nodes: list[str], signer: Any, *, k: int | None = None,
            n: int | None = None,
            readers: Iterable[str] = (), profile: str = DEFAULT_PROFILE, unit: int = 1 << 20,
            progress: Callable[[str], None] | None = None) -> PutResult:
        prof = get_profile(profile)
        src = Path(path)
        if not src.is_file():
            raise NotFoundError(f"no file {src}", field="file")
        urls = self._locations(nodes, check=True)
        if not urls:
            raise BadInputError("give at least one storage target (--target s3://BUCKET or --nodes URL)",
                                field="target")
        k, n = coding_for_nodes(len(urls), k, n)  # default: one shard per node (docs/storage.md)
        reader_dids = list(dict.fromkeys([signer.did, *(self._reader_did(r) for r in readers)]))
        plain_size = src.stat().st_size
        coding = Coding.for_size(crypto.ciphertext_size(plain_size), k, n, unit)
        key = crypto.new_key()
        spool = self._spool()
        try:
            cids, infos, sources = self._encode(src, key, coding, prof, spool)
            try:
                placement, retried = self._upload(sources, infos, urls, progress, signer)
            except BaseException:
                with contextlib.suppress(Exception):
                    cids()
                raise
            try:
                plain_cid, cipher_cid = cids()
            except BaseException:
                self._delete_placed(placement, infos, signer)
                raise
            cid = str(cipher_cid)
            binding = self._binding(cid)
            body = {
                "cid": cid,
                "profile": prof.name,
                "size": coding.size,
                "plain": {"size": plain_size,
                          "commitment": crypto.plaintext_commitment(key, plain_cid.bytes).hex()},
                "encryption": {"algorithm": ENCRYPTION, "segment": crypto.SEGMENT},
                "proof": {"segment": SEGMENT, "tree": "rfc6962-sha256"},
                "coding": coding.to_dict(),
                "shards": [{"i": i, "node": placement[i], "sha256": infos[i][0], "root": infos[i][1],
                            **self._endpoint_field(placement[i])} for i in range(n)],
                "readers": [crypto.wrap_key(key, d, binding).to_dict() for d in reader_dids],
            }
            try:
                res = self.ledger.append_record("blob.put", body, signer, terms=[_term(cid)])
            except BaseException:
                self._delete_placed(placement, infos, signer)  # unrecorded shards would be orphans
                raise
        finally:
            shutil.rmtree(spool, ignore_errors=True)
        return PutResult(cid, res.index, plain_size, coding.size, k, n, placement, retried)

    def _encode(self, src: Path, key: bytes, coding: Coding, prof: Any, spool: Path
                ) -> tuple[Callable[[], tuple[CID, CID]], list[tuple[str, str]], list[ShardSource]]:
        """Encrypt, erasure-code and hash ``src``; returns (a call that gives the plaintext and ciphertext
        CIDs, (sha256, root) per shard, the shards). Shards stay in memory as the encoder's pieces when
        all n fit in ``self.memory`` bytes (no spool file, no copy), else they are spooled to disk.

        Hashing dominates (plaintext CID, ciphertext CID, each shard's SHA-256 and segment tree): each runs
        on a lane of its own (one thread each, so its order holds; hashlib releases the GIL). The shard
        lanes are waited for (a shard's object key is its SHA-256); the two CID lanes may still be
        running while the shards upload, and the returned call waits for them."""
        in_memory = coding.n * coding.shard_size <= self.memory
        plain_imp, cipher_imp = FileImporter(prof, keep_leaves=False), FileImporter(prof, keep_leaves=False)
        enc = crypto.Encryptor(key)
        senc = StripeEncoder(coding)
        sinks: list[Any] = ([MemoryShard() for _ in range(coding.n)] if in_memory else
                            [open(spool / f"shard-{i}", "wb") for i in range(coding.n)])  # noqa: SIM115
        hashers = [ShardHasher() for _ in range(coding.n)]
        pend: deque[memoryview] = deque()
        pend_len = 0
        written = 0
        lanes = [ThreadPoolExecutor(1) for _ in range(coding.n + 2)]
        pending: deque[Future[None]] = deque()
        cid_futs: list[Future[None]] = []

        def later(lane: int, fn: Callable[[], None]) -> None:
            fut = lanes[lane].submit(fn)
            pending.append(fut)
            if lane >= coding.n:
                cid_futs.append(fut)
            while len(pending) > 4 * len(lanes):
                pending.popleft().result()

        def shard_piece(f: Any, h: ShardHasher, piece: list[bytes | memoryview]) -> Callable[[], None]:
            def run() -> None:
                for part in piece:  # (a fragment header, then a view of the stripe or of the parity)
                    h.update(part)
                    if in_memory:
                        f.append(part)
                    else:
                        f.write(part)
            return run

        def emit(final: bool) -> None:
            # a stripe is joined once from the ciphertext chunks (views; no growing buffer to copy and shift)
            nonlocal pend_len, written
            while pend_len >= coding.stripe or (final and (pend_len or written == 0)):
                need = take = min(coding.stripe, pend_len)
                parts = []
                while need:
                    mv = pend[0]
                    if len(mv) <= need:
                        parts.append(pend.popleft())
                        need -= len(mv)
                    else:
                        parts.append(mv[:need])
                        pend[0] = mv[need:]
                        need = 0
                pend_len -= take
                # a bytearray: the ISA-L encoder reads it in place and data pieces are views of it (no copy)
                for i, (f, h, piece) in enumerate(zip(sinks, hashers, senc.encode_views(bytearray().join(parts)))):
                    later(i, shard_piece(f, h, piece))
                written += 1

        def add(ct: bytes) -> None:
            nonlocal pend_len
            if ct:
                pend.append(memoryview(ct))
                pend_len += len(ct)

        def importer(imp: FileImporter, data: bytes) -> Callable[[], None]:
            def run() -> None:
                imp.update(data)
            return run

        def close_all() -> None:
            for lane in lanes:
                lane.shutdown(wait=True, cancel_futures=True)
            if not in_memory:
                for f in sinks:
                    f.close()

        try:
            with open(src, "rb") as fin:
                while buf := fin.read(_IO):
                    later(coding.n, importer(plain_imp, buf))
                    ct = enc.update(buf)
                    if ct:
                        later(coding.n + 1, importer(cipher_imp, ct))
                        add(ct)
                        emit(False)
            ct = enc.finish()
            later(coding.n + 1, importer(cipher_imp, ct))
            add(ct)
            emit(True)
            for lane in lanes[: coding.n]:
                lane.shutdown(wait=True)
            for fut in pending:
                if fut.done():
                    fut.result()
            if not in_memory:
                for f in sinks:
                    f.close()
        except BaseException:
            close_all()
            raise
        if written != coding.stripes:
            close_all()
            raise StorageError("internal: stripe count mismatch", expected=coding.stripes, found=written)
        infos = []
        sources: list[ShardSource] = []
        for i, h in enumerate(hashers):
            if h.size != coding.shard_size:
                close_all()
                raise StorageError("internal: shard size mismatch", expected=coding.shard_size, found=h.size)
            sha, root = h.finish()
            infos.append((sha.hex(), root.hex()))
            # the segment leaf hashes, for targets that keep them next to the shard (S3: audit without rehash)
            leaves = b"".join(h.leaf_hashes)
            if in_memory:
                sinks[i].leaves = leaves
                sources.append(sinks[i])
            else:
                (spool / f"shard-{i}.leaves").write_bytes(leaves)
                sources.append(spool / f"shard-{i}")

        def cids() -> tuple[CID, CID]:
            try:
                for fut in cid_futs:
                    fut.result()
            finally:
                close_all()
            return plain_imp.finish()[0], cipher_imp.finish()[0]

        return cids, infos, sources

    def _upload(self, sources: list[ShardSource], infos: list[tuple[str, str]], urls: list[str],
                progress: Callable[[str], None] | None, signer: Any) -> tuple[dict[int, str], list[str]]:
        n = len(infos)
        order = urls[:]
        random.shuffle(order)  # spread objects over the pool
        lock = threading.Lock()
        spare = order[n:]
        placement: dict[int, str] = {}
        retried: list[str] = []
        errors: list[str] = []

        def one(i: int, url: str) -> None:
            while True:
                try:
                    self._client(url, signer).put_shard(infos[i][0], sources[i])
                    with lock:
                        placement[i] = url
                    if progress:
                        progress(f"shard {i} -> {url}")
                    return
                except AiledgerError as e:
                    with lock:
                        errors.append(e.message)
                        retried.append(f"shard {i}: {e.message}")
                        if not spare:
                            raise StorageError(
                                f"could not place shard {i} on a distinct node: {e.message} "
                                f"(no spare node left; give more --nodes or --target)", shard=i) from None
                        url = spare.pop(0)

        with ThreadPoolExecutor(min(self.workers, n)) as ex:
            futs = [ex.submit(one, i, order[i]) for i in range(n)]
            failed = [f.exception() for f in futs if f.exception() is not None]
        if failed:
            self._delete_placed(placement, infos, signer)
            raise failed[0]  # type: ignore[misc]
        return placement, retried

    def _delete_placed(self, placement: dict[int, str], infos: list[tuple[str, str]], signer: Any) -> None:
        """Best effort: take back shards of a put that will not be recorded."""
        for i, url in placement.items():
            try:
                self._client(url, signer).delete_shard(infos[i][0])
            except AiledgerError:
                pass

    # -- get --------------------------------------------------------------------------------------
    def open_key(self, st: BlobState, ident: Any) -> bytes:
        for r in st.readers:
            if r.reader == ident.did:
                return crypto.unwrap_key(r, ident.private_key, self._binding(st.cid))

        raise BadInputError(
            f"identity {ident.did} is not a reader of blob {st.cid} (readers: {len(st.readers)}; "
            "access may have been revoked)", field="as", cid=st.cid)

    def _swarm(self, st: BlobState, spool: Path, need: int, candidates: list[int] | None = None,
               locations: dict[int, list[str]] | None = None,
               progress: Callable[[int, int], None] | None = None,
               live: _Live | None = None, optimistic: bool = False,
               have: dict[int, ShardSink] | None = None, failed: Iterable[str] = ()
               ) -> tuple[list[int], list[str], dict[int, ShardSink]]:
        """Fetch shards until ``need`` good ones are in; returns (indices, failures, their sinks).

        Every shard is checked against its SHA-256 in the ledger as it arrives, except with ``optimistic``
        the data shards (0..k-1): a get proves those bytes end to end (AES-GCM, plaintext CID) and hashes
        them only when that fails (:meth:`_named_bad`). Parity shards are always checked (the ISA-L decoder
        is never handed bytes that were not). ``have``: shards already in and checked (they count as good);
        ``failed``: failures seen before, reported first (also when too few shards are left).

        ``need`` fetches start at once, data shards first (no decoding needed), the rest in random order
        so load spreads. Another shard is started when a fetch fails, or when one has received nothing
        for ``self.hedge`` seconds (a stalled node; the stalled fetch keeps running and the first ``need``
        good shards win, the others are cut). Shards are received into memory when all the fetches that may
        run at once fit in ``self.memory`` bytes, else into spool files. ``progress(shard index, bytes received)`` is called
        as bytes arrive (from the fetching threads)."""
        coding = st.coding
        have = dict(have or {})
        idx = [i for i in (candidates if candidates is not None else range(coding.n)) if i not in have]
        prim = [i for i in idx if i < coding.k]
        rest = [i for i in idx if i >= coding.k]
        random.shuffle(rest)
        queue = prim + rest
        parallel = min(len(queue), need + max(2, need // 4), 64)
        in_memory = parallel * coding.shard_size <= self.memory  # every fetch that may run at once
        cancel = threading.Event()
        good: list[int] = sorted(have)
        failures: list[str] = list(failed)
        lock = threading.Lock()
        conns: list[Any] = []
        sinks: dict[int, ShardSink] = dict(have)
        active: dict[int, ShardSink] = {}

        def register(conn: Any) -> None:
            with lock:
                conns.append(conn)
            if cancel.is_set():
                _cut(conn)

        def tell(i: int, got: int) -> None:
            if progress is not None:
                progress(i, got)
            if live is not None:
                with live.cond:
                    live.cond.notify_all()

        def fetch(i: int) -> int:
            s = st.shards[i]
            locs = (locations or {}).get(i, s.locations)
            last: AiledgerError | None = None
            for url in locs:
                out = ShardSink(coding.shard_size, None if in_memory else spool / f"get-{i}",
                                None if progress is None and live is None else functools.partial(tell, i),
                                chunk=coding.piece)
                out.url = url
                out.verified = not (optimistic and i < coding.k)
                with lock:
                    active[i] = out
                if live is not None:
                    with live.cond:
                        live.sinks[i] = out
                        live.cond.notify_all()
                try:
                    self._client(url).get_shard(s.sha256, coding.shard_size, out, cancel, register,
                                                verify=out.verified)
                    out.close()
                    with lock:
                        sinks[i] = out
                    return i
                except Cancelled:
                    out.discard()
                    raise
                except AiledgerError as e:
                    out.discard()
                    last = e
                    with lock:
                        failures.append(f"shard {i} from {url}: {e.message}")
                except Exception as e:  # noqa: BLE001 - a local failure (spool disk, bug) must be reported too
                    out.discard()
                    last = StorageError(f"shard {i} from {url}: {type(e).__name__}: {e}")
                    with lock:
                        failures.append(last.message)
            raise last or NetworkError(f"shard {i} has no location", shard=i)

        try:
            hedged: set[int] = set()
            with ThreadPoolExecutor(max(1, parallel)) as ex:
                running: dict[Future[int], int] = {}

                def start() -> None:
                    j = queue.pop(0)
                    running[ex.submit(fetch, j)] = j

                while queue and len(running) + len(good) < need:
                    start()
                while running and len(good) < need:
                    done, _ = wait(running, timeout=self.hedge / 2, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = running.pop(fut)
                        if fut.exception() is None:
                            good.append(i)
                    while queue and len(running) + len(good) < need and len(running) < parallel:
                        start()  # a failed fetch is replaced by the next shard
                    now = time.monotonic()
                    with lock:
                        stalled = [i for i in running.values() if i not in hedged and i in active
                                   and now - active[i].last > self.hedge]
                    for i in stalled:
                        hedged.add(i)
                        if queue and len(running) < parallel:
                            start()
                cancel.set()
                with lock:  # unblock transfers still waiting on slow or stalled nodes
                    for conn in conns:
                        _cut(conn)
            for fut, i in running.items():
                if fut.done() and fut.exception() is None and len(good) < need:
                    good.append(i)
            used = sorted(good[:need])
            for i, sink in list(sinks.items()):
                if i not in used:
                    sink.discard()
                    del sinks[i]
            if len(good) < need:
                raise NetworkError(
                    f"only {len(good)} of the {need} shards needed could be fetched intact for {st.cid}; "
                    f"failures: {'; '.join(failures[-5:])}", cid=st.cid, found=len(good), expected=need)
            return used, failures, sinks
        finally:
            if live is not None:
                with live.cond:
                    live.done = True
                    live.cond.notify_all()

    def _fits(self, st: BlobState, need: int) -> bool:
        """Whether every fetch a swarm for ``need`` shards may run at once fits in ``self.memory``."""
        n = st.coding.n
        return min(n, need + max(2, need // 4), 64) * st.coding.shard_size <= self.memory

    def _stream_decode(self, st: BlobState, live: _Live, attempt: Any) -> tuple[dict[int, ShardSink], Any] | None:
        """Decode stripes from the data shards 0..k-1 as their bytes arrive (``live``: the swarm's current
        sinks). Gives up (None) when one of those transfers is replaced or the swarm ends first."""
        coding = st.coding
        prim = list(range(coding.k))
        dec = StripeDecoder(coding)
        chosen: dict[int, ShardSink] = {}

        def feed(sink: Callable[[bytes], None]) -> bool:
            left = coding.size
            p = coding.piece
            for s in range(coding.stripes):
                need = (s + 1) * p
                with live.cond:
                    while True:
                        cur = {i: live.sinks.get(i) for i in prim}
                        if chosen and any(cur[i] is not chosen[i] for i in prim):
                            return False  # a data shard's transfer failed and was replaced
                        if all(x is not None and x.got >= need for x in cur.values()):
                            break
                        if live.done:
                            return False
                        live.cond.wait(0.5)
                    views: dict[int, bytes | memoryview] = {}
                    for i in prim:
                        x = cur[i]
                        piece = x.piece(s, p) if x is not None else None
                        if piece is None:
                            return False  # discarded under us
                        chosen[i] = x  # type: ignore[assignment]
                        views[i] = piece
                data = dec.decode(views, headers=True)
                take = min(left, len(data))
                sink(data if take == len(data) else _unpadded(data, take))
                left -= take
            return True

        res = attempt(feed)
        return None if res is None else (chosen, res)

    def _decode(self, st: BlobState, sinks: dict[int, ShardSink], used: list[int], sink: Callable[[bytes], None]
                ) -> None:
        """Decode the shards ``used`` into ``sink``; shards not hash-checked (``verified``) have every byte
        that is not ciphertext checked: their fragment headers, and the zero padding of the last stripe."""
        coding = st.coding
        headers = not all(sinks[i].verified for i in used)
        dec = StripeDecoder(coding)
        mem = [i for i in used if sinks[i].path is None]
        files: dict[int, Any] = {i: open(fp, "rb") for i in used  # noqa: SIM115 - closed below
                                 if (fp := sinks[i].path) is not None}
        try:
            left = coding.size
            p = coding.piece
            for s in range(coding.stripes):
                pieces: dict[int, bytes | memoryview] = {i: sinks[i].piece(s, p) or b"" for i in mem}
                pieces.update({i: f.read(p) for i, f in files.items()})
                data = dec.decode(pieces, headers=headers)
                take = min(left, len(data))
                sink(data if take == len(data) else _unpadded(data, take) if headers else data[:take])
                left -= take
        finally:
            for f in files.values():
                f.close()

    def get(self, cid: str, out: str | os.PathLike[str], ident: Any,
            progress: Callable[[int, int], None] | None = None) -> GetResult:
        """Fetch, decode, decrypt and check blob ``cid`` into ``out``; ``progress(shard, bytes)`` as shards
        arrive.

        Optimistic (docs/storage.md, "What a get proves"): the data shards are not hashed as they arrive;
        the bytes are proven end to end instead, by every segment's AES-GCM tag under the object key and the
        plaintext's CID against the commitment (and size) in the ledger. Only when one of those fails are the
        shards used hashed against their SHA-256 in the ledger: the bad ones are named in ``failures`` and
        replaced by others, fetched with every check, and the result is checked again, ciphertext CID
        included (as every get did before)."""
        st = self.state(cid)
        if st.superseded_by:
            raise NotFoundError(f"blob {st.cid} was re-encrypted under a new key as {st.superseded_by} and its "
                                "shards deleted; fetch the new CID (if you are still a reader)", field="cid",
                                superseded_by=st.superseded_by)
        key = self.open_key(st, ident)
        dest = Path(out)
        spool = self._spool()
        part = dest.with_name(dest.name + ".part")
        prof = get_profile(st.profile)
        Done = tuple[FileImporter | None, FileImporter]

        def attempt(feed: Callable[[Callable[[bytes], None]], bool], checked: bool = False) -> Done | None:
            """Decode what ``feed`` gives into ``part`` (fresh importers, decryptor and file each time);
            None when ``feed`` gave up (its shards changed under it). ``checked``: the ciphertext CID is
            computed too (the fallback path)."""
            cipher_imp = FileImporter(prof, keep_leaves=False) if checked else None
            plain_imp = FileImporter(prof, keep_leaves=False)
            decr = crypto.Decryptor(key, st.segment)
            # the CID importers hash on lanes of their own (as in put), beside decoding and decryption
            lanes = [ThreadPoolExecutor(1) for _ in range(2 if checked else 1)]
            pending: deque[Future[Any]] = deque()
            with open(part, "wb") as fout:
                def plain_out(pt: bytes) -> None:
                    plain_imp.update(pt)
                    fout.write(pt)

                def later(lane: int, fn: Callable[[bytes], Any], data: bytes) -> None:
                    pending.append(lanes[lane].submit(fn, data))
                    while len(pending) > 8:
                        pending.popleft().result()

                def sink(ct: bytes) -> None:
                    if cipher_imp is not None:
                        later(1, cipher_imp.update, ct)
                    pt = decr.update(ct)
                    if pt:
                        later(0, plain_out, pt)

                try:
                    if not feed(sink):
                        return None
                    pt = decr.finish()
                    later(0, plain_out, pt)
                    while pending:
                        pending.popleft().result()
                finally:
                    for lane in lanes:
                        lane.shutdown(wait=True, cancel_futures=True)
            return cipher_imp, plain_imp

        def whole(got: dict[int, ShardSink], used: list[int]) -> Callable[[Callable[[bytes], None]], bool]:
            def feed(sink: Callable[[bytes], None]) -> bool:
                self._decode(st, got, used, sink)
                return True
            return feed

        def proven(done: Done | None) -> CID:
            """The end-to-end checks (and the ciphertext CID when it was computed)."""
            assert done is not None
            cipher_imp, plain_imp = done
            if cipher_imp is not None:
                got_cid = str(cipher_imp.finish()[0])
                if got_cid != st.cid:
                    raise VerificationError("reassembled ciphertext does not match the blob's CID",
                                            expected=st.cid, found=got_cid)
            plain_cid = plain_imp.finish()[0]
            if crypto.plaintext_commitment(key, plain_cid.bytes).hex() != st.commitment:
                raise VerificationError("decrypted bytes do not match the plaintext commitment in the ledger",
                                        expected=st.commitment, found=str(plain_cid))
            if plain_imp.size != st.plain_size:
                raise VerificationError("decrypted size differs from the ledger", expected=st.plain_size,
                                        found=plain_imp.size)
            return plain_cid

        k = st.coding.k
        hashed: list[int] = []
        bad: dict[int, str] = {}
        recheck = False
        got: dict[int, ShardSink] | None = None
        try:
            try:
                done: Done | None = None
                if self._fits(st, k):
                    # decode while the data shards stream in (views of their buffers); if the shards the swarm
                    # keeps are not those, everything is decoded again from them
                    live = _Live()
                    with ThreadPoolExecutor(1) as bg:
                        swarm = bg.submit(self._swarm, st, spool, k, progress=progress, live=live, optimistic=True)
                        try:
                            streamed = self._stream_decode(st, live, attempt)
                        except VerificationError:
                            streamed = None  # an altered data shard (or a bad record): decoded again below
                        used, failures, got = swarm.result()
                    if streamed is not None and streamed[0] == {i: got.get(i) for i in used}:
                        done = streamed[1]
                else:
                    used, failures, got = self._swarm(st, spool, k, progress=progress, optimistic=True)
                if done is None:
                    if any(i >= k for i in used):
                        # a parity shard is needed: the ISA-L decoder is handed checked shards only
                        bad, hashed = self._named_bad(st, got, used)
                    if not bad:
                        done = attempt(whole(got, used))
                if not bad:
                    plain_cid = proven(done)
            except VerificationError:
                if got is None:
                    raise
                # a check failed: hash the shards used and name the bad ones; whether or not one is, everything is
                # then checked as before this was optimistic (every shard hashed, the ciphertext CID too), so a
                # record that does not add up fails with the same error as it always did
                bad, more = self._named_bad(st, got, used)
                hashed += more
                recheck = True
            if bad:
                # fetch other shards in place of the bad ones (checked as they arrive)
                assert got is not None
                for i in bad:
                    got.pop(i).discard()
                used, failures, got = self._swarm(
                    st, spool, k, candidates=[i for i in range(st.coding.n) if i not in bad], progress=progress,
                    have=got, failed=[*failures, *bad.values()])
            if bad or recheck:
                assert got is not None
                plain_cid = proven(attempt(whole(got, used), checked=True))
            os.replace(part, dest)
        except BaseException:
            remove(part)
            raise
        finally:
            shutil.rmtree(spool, ignore_errors=True)
        return GetResult(st.cid, str(plain_cid), st.plain_size, used, failures, hashed)

    def _named_bad(self, st: BlobState, got: dict[int, ShardSink], used: list[int]) -> tuple[dict[int, str], list[int]]:
        """Hash the shards in ``got`` that were not checked as they arrived; returns ({index: failure naming
        the shard and where it came from} for those that differ from the ledger, the indices hashed)."""
        todo = [i for i in used if not got[i].verified]
        with ThreadPoolExecutor(max(1, min(len(todo), self.workers))) as ex:
            shas = dict(zip(todo, ex.map(lambda i: got[i].sha256(), todo)))
        bad: dict[int, str] = {}
        for i, sha in shas.items():
            url = got[i].url or "?"
            try:
                corrupted("S3 target" if is_s3(url) else "storage node", url, st.shards[i].sha256, sha)
            except VerificationError as e:
                bad[i] = f"shard {i} from {url}: {e.message}"
            got[i].verified = True
        return bad, todo

    def get_ciphertext(self, cid: str, out: str | os.PathLike[str]) -> GetResult:
        """Fetch and reassemble the encrypted object without any key (e.g. to pin it on IPFS or pack it
        for Filecoin: ``blob car`` of the result gives the same CID). Checked against the CID."""
        st = self.state(cid)
        dest = Path(out)
        spool = self._spool()
        part = dest.with_name(dest.name + ".part")
        try:
            used, failures, got = self._swarm(st, spool, st.coding.k)
            imp = FileImporter(get_profile(st.profile), keep_leaves=False)
            with open(part, "wb") as fout:
                def sink(ct: bytes) -> None:
                    imp.update(ct)
                    fout.write(ct)

                self._decode(st, got, used, sink)
            got_cid = str(imp.finish()[0])
            if got_cid != st.cid:
                raise VerificationError("reassembled ciphertext does not match the blob's CID",
                                        expected=st.cid, found=got_cid)
            os.replace(part, dest)
        except BaseException:
            remove(part)
            raise
        finally:
            shutil.rmtree(spool, ignore_errors=True)
        return GetResult(st.cid, "", st.coding.size, used, failures)

    # -- audit (proofs of storage) ---------------------------------------------------------------
    def audit(self, cid: str, challenges: int = 3) -> dict[int, dict[str, Any]]:
        """Challenge every shard's current location with random segments; verify the Merkle proofs
        against the roots in the ledger."""
        st = self.state(cid)
        size = st.coding.shard_size
        if st.proof_segment != SEGMENT:
            raise BadInputError(f"blob {st.cid} commits to {st.proof_segment}-byte proof segments; this version "
                                f"of the storage node answers {SEGMENT}-byte ones", field="proof")
        segs = segment_count(size)

        def one(s: ShardInfo) -> tuple[int, dict[str, Any]]:
            url = s.locations[0]
            seed = os.urandom(16)
            try:
                for j in challenge_indices(seed, challenges, segs):
                    seg, proof, got_size = self._client(url).challenge(s.sha256, j)
                    if got_size != size:
                        raise ProofError("node holds a shard of the wrong size", expected=size, found=got_size)
                    verify_segment(bytes.fromhex(s.root), size, j, seg, proof)
                return s.index, {"node": url, "ok": True, "challenges": challenges}
            except AiledgerError as e:
                return s.index, {"node": url, "ok": False, "error": e.message}

        with ThreadPoolExecutor(min(self.workers, len(st.shards))) as ex:
            return dict(ex.map(one, st.shards))

    # -- repair -----------------------------------------------------------------------------------
    def repair(self, cid: str, signer: Any, nodes: Iterable[str] = ()) -> RepairResult:
        st = self.state(cid)
        given = self._locations(nodes, check=True)  # new targets answer (endpoint, credentials, bucket) first
        report = self.audit(cid, challenges=1)
        healthy = sorted(i for i, r in report.items() if r["ok"])
        broken = sorted(i for i, r in report.items() if not r["ok"])
        if not broken:
            return RepairResult(st.cid, healthy, {}, None)
        if len(healthy) < st.coding.k:
            why = "; ".join(f"shard {i} on {report[i]['node']}: {report[i]['error']}" for i in broken[:3])
            raise StorageError(f"blob {st.cid} cannot be repaired: only {len(healthy)} shards answer, "
                               f"{st.coding.k} needed ({why})", found=len(healthy), expected=st.coding.k)
        used_nodes = {report[i]["node"] for i in healthy}
        pool = given + [loc for s in st.shards for loc in s.locations]
        pool = [u for u in dict.fromkeys(pool) if u not in used_nodes]
        spool = self._spool()
        rebuilt: dict[int, str] = {}
        try:
            locs = {i: [report[i]["node"]] for i in healthy}
            used, _, got = self._swarm(st, spool, st.coding.k, candidates=healthy, locations=locs)
            enc = StripeEncoder(st.coding)
            outs = {i: open(spool / f"new-{i}", "wb") for i in broken}  # noqa: SIM115
            try:
                def sink(data: bytes) -> None:
                    sink.buf += data  # type: ignore[attr-defined]
                    while len(sink.buf) >= st.coding.stripe:  # type: ignore[attr-defined]
                        stripe = bytes(sink.buf[: st.coding.stripe])  # type: ignore[attr-defined]
                        del sink.buf[: st.coding.stripe]  # type: ignore[attr-defined]
                        for i, piece in zip(broken, enc.encode(stripe, broken)):
                            outs[i].write(piece)

                sink.buf = bytearray()  # type: ignore[attr-defined]
                self._decode(st, got, used, sink)
                if sink.buf:  # type: ignore[attr-defined]
                    for i, piece in zip(broken, enc.encode(bytes(sink.buf), broken)):  # type: ignore[attr-defined]
                        outs[i].write(piece)
            finally:
                for f in outs.values():
                    f.close()
            for i in broken:
                sha, _root, _ = hash_file(spool / f"new-{i}")
                if sha.hex() != st.shards[i].sha256:
                    raise VerificationError(f"rebuilt shard {i} differs from the ledger",
                                            expected=st.shards[i].sha256, found=sha.hex())
            alive: list[str] = []
            errors: list[str] = []
            for u in pool:
                try:
                    self._client(u).health()
                    alive.append(u)
                except AiledgerError as e:
                    errors.append(e.message)
            for i in broken:
                while True:
                    if not alive:
                        raise StorageError(f"no healthy spare node left to hold rebuilt shard {i}; give more --nodes/--target "
                                           f"({'; '.join(errors[-3:])})", shard=i)
                    u = alive.pop(0)
                    try:
                        self._client(u, signer).put_shard(st.shards[i].sha256, spool / f"new-{i}")
                        rebuilt[i] = u
                        break
                    except AiledgerError as e:
                        errors.append(e.message)
                        continue
        finally:
            shutil.rmtree(spool, ignore_errors=True)
        body = {"cid": st.cid, "put": st.put_index,
                "shards": [{"i": i, "node": u, **self._endpoint_field(u)} for i, u in sorted(rebuilt.items())],
                "lost": broken}
        res = self.ledger.append_record("blob.repair", body, signer, terms=[_term(st.cid)])
        return RepairResult(st.cid, healthy, rebuilt, res.index)

    # -- readers ----------------------------------------------------------------------------------
    def set_readers(self, cid: str, owner: Any, *, add: Iterable[str] = (), remove_: Iterable[str] = ()
                    ) -> tuple[int, list[str]]:
        """Re-wrap the object key for a new reader set (fresh ephemeral keys for everyone kept)."""
        st = self.state(cid)
        if owner.did != st.owner:
            raise BadInputError(f"only the blob's owner {st.owner} may change its readers", field="as")
        key = self.open_key(st, owner)
        gone = {self._reader_did(r) for r in remove_}
        if owner.did in gone:
            raise BadInputError("the owner cannot revoke itself", field="revoke")
        missing = gone - set(st.reader_dids)
        if missing:
            raise NotFoundError(f"not a reader of {st.cid}: {', '.join(sorted(missing))}", field="revoke")
        new = [d for d in st.reader_dids if d not in gone]
        new += [d for d in (self._reader_did(a) for a in add) if d not in new]
        binding = self._binding(st.cid)
        body = {"cid": st.cid, "put": st.put_index, "readers": [crypto.wrap_key(key, d, binding).to_dict() for d in new],
                "removed": sorted(gone)}
        res = self.ledger.append_record("blob.readers", body, owner, terms=[_term(st.cid)])
        return res.index, new

    # -- rotation (revocation that also retires the old key) ------------------------------------------
    def rotate(self, cid: str, owner: Any, *, remove_: Iterable[str] = (), nodes: Iterable[str] = (),
               k: int | None = None, n: int | None = None) -> dict[str, Any]:
        """Re-encrypt the object under a fresh key for the remaining readers, store it as a new blob,
        record ``blob.supersede`` (old -> new) and delete the old shards from their nodes.

        A revoked reader who kept the old key can then no longer decrypt anything fetched from our
        nodes (the old ciphertext is gone from them; copies kept elsewhere are out of reach)."""
        st = self.state(cid)
        if owner.did != st.owner:
            raise BadInputError(f"only the blob's owner {st.owner} may rotate it", field="as")
        gone = {self._reader_did(r) for r in remove_}
        if owner.did in gone:
            raise BadInputError("the owner cannot revoke itself", field="revoke")
        missing = gone - set(st.reader_dids)
        if missing:
            raise NotFoundError(f"not a reader of {st.cid}: {', '.join(sorted(missing))}", field="revoke")
        keep = [d for d in st.reader_dids if d not in gone and d != owner.did]
        pool = self._locations(nodes, check=True) or list(dict.fromkeys(s.locations[0] for s in st.shards))
        spool = self._spool()
        try:
            plain = spool / "plain"
            self.get(st.cid, plain, owner)
            new = self.put(plain, pool, owner, k=k or st.coding.k, n=n or st.coding.n, readers=keep,
                           profile=st.profile)
        finally:
            shutil.rmtree(spool, ignore_errors=True)
        body = {"cid": st.cid, "put": st.put_index, "superseded_by": new.cid, "new_put": new.index,
                "removed": sorted(gone)}
        res = self.ledger.append_record("blob.supersede", body, owner, terms=[_term(st.cid), _term(new.cid)])
        deleted, kept = 0, []
        for s in st.shards:
            for url in s.locations:
                try:
                    self._client(url, owner).delete_shard(s.sha256)
                    deleted += 1
                except AiledgerError as e:
                    kept.append(f"shard {s.index} on {url}: {e.message}")
        return {"old": st.cid, "new": new.cid, "put_index": new.index, "index": res.index,
                "readers": [owner.did, *keep], "deleted": deleted, "not_deleted": kept}
