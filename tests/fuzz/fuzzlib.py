"""The parser fuzz harnesses' shared parts: valid seed inputs, the parsers under test, and the
structured mutations (hypothesis strategies) fed to them.

Every target is a function ``bytes -> None`` that hands the input to one hand-written parser (and
the verifier behind it where there is one). The contract checked for any input:

* it returns, or raises an :class:`ailedger.errors.AiledgerError` (a clear error), never any
  other exception type (``ValueError``, ``UnicodeDecodeError``, ``RecursionError``, ...);
* it does not hang (:func:`run_target` bounds the wall time of one call);
* it does not allocate without bound (:func:`run_target` bounds the peak traced allocation by a
  constant plus a small multiple of the input size, so a length field of 2^63 must be refused
  before anything is allocated for it).

Used by ``test_fuzz_parsers.py`` (hypothesis: a short run in the normal suite, a long one marked
slow), ``test_fuzz_regressions.py`` (each finding, kept) and ``atheris_driver.py`` (libFuzzer
coverage-guided runs, see docs/ledger.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
import tracemalloc
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from ailedger.blobs.car import encode_header, encode_section, read_car_bytes
from ailedger.blobs.cid import CID, DAG_PB, SHA2_256, decode_varint, encode_varint
from ailedger.blobs.unixfs import Block, FileImporter, Profile, decode_pbnode, decode_unixfs, read_file
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry, parse_entry
from ailedger.errors import AiledgerError
from ailedger.provenance.manifest import inclusion_proof, parse_safetensors_header
from ailedger.provenance.smt import decode_proof
from ailedger.tlog.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_text, sign_checkpoint
from ailedger.tlog.cosignature import (
    WitnessPolicy,
    add_cosignatures,
    cosign,
    evaluate_cosigned_checkpoint,
    verify_cosigned_checkpoint,
)
from ailedger.tlog.merkle import leaf_hash, root_from_leaf_hashes
from ailedger.tlog.note import ALG_COSIGNATURE_V1, Signer, parse_note, parse_vkey, verify_note
from ailedger.tlog.proofbundle import ProofBundle, parse_proof_bundle, verify_proof_bundle
from ailedger.tlog.tiles import entry_bundle, parse_tile_path, split_entry_bundle

__all__ = ["ALLOWED", "SEEDS", "TARGETS", "run_plain", "run_target", "seeds_for", "strategy_for"]

ALLOWED = (AiledgerError,)
TIME_LIMIT_S = 5.0  # one call, generous for a loaded 2-core machine; the inputs are at most ~100 KB
MEM_BASE = 8 << 20  # bytes any call may allocate whatever its input ...
MEM_PER_INPUT_BYTE = 40  # ... plus this much per input byte


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ailedger-fuzz-%d" % seed).digest())


LOG = Signer("fuzz.example/log", _key(1))
WITNESSES = [Signer(f"fuzz.example/w{i}", _key(10 + i), alg=ALG_COSIGNATURE_V1) for i in range(2)]
POLICY = WitnessPolicy.from_vkeys(LOG.vkey, [w.vkey for w in WITNESSES], 1)
LEAVES = [f"entry {i}".encode() for i in range(7)]
CP = Checkpoint(LOG.name, len(LEAVES), root_from_leaf_hashes([leaf_hash(x) for x in LEAVES]), ("ext line",))
NOTE = sign_checkpoint(CP, LOG)
COSIG_LINES = b"".join(cosign(CP.text(), w, 1_700_000_000 + i).line().encode() for i, w in enumerate(WITNESSES))
COSIGNED = NOTE + COSIG_LINES
BUNDLE = ProofBundle(3, tuple(inclusion_proof([leaf_hash(x) for x in LEAVES], 3)), COSIGNED, b"extra").to_bytes()
BUNDLE_NO_EXTRA = ProofBundle(0, tuple(inclusion_proof([leaf_hash(x) for x in LEAVES], 0)), NOTE).to_bytes()

TINY = Profile("fuzz-tiny", 8, 3)  # 8-byte chunks, 3 links per node: a deep DAG from a few bytes


def _dag(data: bytes) -> tuple[CID, list[Block]]:
    imp = FileImporter(TINY)
    blocks = imp.update(data)
    root, rest = imp.finish()
    return root, blocks + rest


DAG_ROOT, DAG_BLOCKS = _dag(b"a small file cut into eight-byte chunks, three links a node")
CAR = encode_header([DAG_ROOT]) + b"".join(encode_section(b) for b in DAG_BLOCKS)
PB_NODES = [b.data for b in DAG_BLOCKS if b.cid.codec == DAG_PB]


def _safetensors(tensors: dict[str, tuple[str, list[int], int]], meta: dict[str, str] | None = None) -> bytes:
    hdr: dict[str, object] = {}
    off = 0
    for name, (dtype, shape, nbytes) in tensors.items():
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    if meta is not None:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + bytes(off)


SAFETENSORS = [
    _safetensors({"w": ("F32", [2, 2], 16), "b": ("F16", [2], 4)}, {"format": "pt"}),
    _safetensors({"empty": ("F32", [0], 0)}),
    _safetensors({}),
]


def _entry() -> bytes:
    k = _key(3)
    did = did_from_public_key(k.public_key().public_bytes_raw())
    e = build_entry("model.register", {"name": "m", "subjects": [did]}, did, "2026-01-02T03:04:05.678Z", k.sign)
    return e.leaf_bytes


ENTRY = _entry()


def _manifest() -> object:
    from ailedger.provenance.manifest import Chunk, FileEntry, Manifest, Tensor

    a = b"0123456789abcdef"
    ca = (Chunk(0, 8, hashlib.sha256(a[:8]).digest()), Chunk(8, 8, hashlib.sha256(a[8:]).digest()))
    cb = (Chunk(0, 3, hashlib.sha256(b"xyz").digest()),)
    return Manifest.build([FileEntry("a.safetensors", 16, ca, (Tensor("w", "F32", (2,), 8, 16, 1, 1),)),
                           FileEntry("b.txt", 3, cb)], 8)


MANIFEST = _manifest()
PART_CONTENT = {"a.safetensors": b"0123456789abcdef", "b.txt": b"xyz"}


def _part_proofs() -> list[bytes]:
    """Model part proofs (services.artifacts.models) of MANIFEST's files and a chunk, under a log of two
    entries signed by LOG: the entry a model.register naming MANIFEST's root."""
    from ailedger.encoding.canonical import canonical_json

    header = b"ailedger-model-part-proof/v1\n"
    k = _key(4)
    did = did_from_public_key(k.public_key().public_bytes_raw())
    body = {"name": "m", "manifest": {"format": "ailedger-manifest/v1", "root": MANIFEST.root.hex(), "chunk_size": 8}}
    entry = build_entry("model.register", body, did, "2026-01-02T03:04:05.678Z", k.sign).leaf_bytes
    hashes = [leaf_hash(entry), leaf_hash(b"other")]
    note = sign_checkpoint(Checkpoint(LOG.name, 2, root_from_leaf_hashes(hashes)), LOG)
    bundle = ProofBundle(0, tuple(inclusion_proof(hashes, 0)), note).to_bytes().decode()
    out = []
    for proof in (MANIFEST.file_proof("a.safetensors"), MANIFEST.chunk_proof("a.safetensors", 1),
                  MANIFEST.file_proof("b.txt")):
        doc = {"type": "ailedger-model-part-proof/v1", "model": "m", "index": 0,
               "entry": base64.b64encode(entry).decode(), "tlog_proof": bundle, **proof}
        out.append(header + canonical_json(doc) + b"\n")
    return out

# --------------------------------------------------------------------------- the targets


def _each(*calls: Callable[[], object]) -> None:
    """Run every call; a clear (ailedger) error from one does not stop the next."""
    for call in calls:
        try:
            call()
        except ALLOWED:
            pass


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def t_note(data: bytes) -> None:
    _each(lambda: parse_note(data), lambda: verify_note(data, LOG.verifier))


def t_checkpoint(data: bytes) -> None:
    _each(lambda: parse_checkpoint_text(_text(data)), lambda: open_checkpoint(data, LOG.verifier),
          lambda: parse_checkpoint_text(parse_note(data).text))


def t_vkey(data: bytes) -> None:
    parse_vkey(_text(data))


def t_cosignature(data: bytes) -> None:
    _each(lambda: evaluate_cosigned_checkpoint(data, POLICY, now=2_000_000_000),
          lambda: verify_cosigned_checkpoint(data, LOG.vkey, [w.vkey for w in WITNESSES], 1),
          lambda: add_cosignatures(NOTE, data.removeprefix(NOTE)))


def t_proofbundle(data: bytes) -> None:
    _each(lambda: parse_proof_bundle(data), lambda: verify_proof_bundle(data, LOG.verifier, entry=LEAVES[3]))


def _read_dag(root: CID, blocks: dict[CID, bytes], limit: int = 1 << 18) -> None:
    """Walk a UnixFS DAG from ``root`` (every block checked), stopping after ``limit`` bytes."""
    from ailedger.errors import NotFoundError

    def get(cid: CID) -> bytes:
        if cid not in blocks:
            raise NotFoundError(f"block {cid} not present")
        return blocks[cid]

    n = 0
    for piece in read_file(root, get):
        n += len(piece)
        if n > limit:
            return


def t_car(data: bytes) -> None:
    roots, blocks = read_car_bytes(data)
    if roots:
        _read_dag(roots[0], {b.cid: b.data for b in blocks})


def t_dagpb(data: bytes) -> None:
    def node() -> None:
        n = decode_pbnode(data)
        if n.data is not None:
            decode_unixfs(n.data)

    _each(node, lambda: decode_unixfs(data))


def t_unixfs_dag(data: bytes) -> None:
    """``data`` replaces the root block of a valid DAG (and gets its own CID, so the hash checks
    pass and the node's structure is what is tested); its links reach the original blocks."""
    cid = CID(1, DAG_PB, SHA2_256, hashlib.sha256(data).digest())
    blocks = {b.cid: b.data for b in DAG_BLOCKS}
    blocks[cid] = data
    _read_dag(cid, blocks)


def t_cid(data: bytes) -> None:
    _each(lambda: CID.from_bytes(data), lambda: CID.decode(_text(data)), lambda: decode_varint(data))


def t_tiles(data: bytes) -> None:
    _each(lambda: parse_tile_path(_text(data)), lambda: split_entry_bundle(data))


def t_safetensors(data: bytes) -> None:
    """As the model hasher calls it: the 8-byte prefix, the header it announces (read only when it
    fits the file and the limit), the file size."""
    prefix = data[:8]
    header = b""
    if len(prefix) == 8:
        (n,) = struct.unpack("<Q", prefix)
        if 8 + n <= len(data) and n <= 100 << 20:
            header = data[8 : 8 + n]
    _each(lambda: parse_safetensors_header(prefix, header, len(data)),
          lambda: parse_safetensors_header(prefix, data[8:], len(data)))


def t_entry(data: bytes) -> None:
    parse_entry(data, verify=True)


def t_witness_request(data: bytes) -> None:
    from ailedger.tlog.witness import parse_add_checkpoint_body

    parse_add_checkpoint_body(data)


def t_smt_proof(data: bytes) -> None:
    decode_proof(data)


def t_anchor_evidence(data: bytes) -> None:
    """Anchor evidence, as `verify --rpc` reads it from a sidecar file or a bundle's extra line
    (the parsing that happens before any RPC call)."""
    from ailedger.anchoring.service import evidence_from_bundle, parse_evidence
    from ailedger.encoding.canonical import parse_json

    _each(lambda: parse_evidence(parse_json(data)),
          lambda: evidence_from_bundle(ProofBundle(0, (), NOTE, data).to_bytes()))


def t_inference_blobs(data: bytes) -> None:
    from ailedger.inference.payloads import _unpack
    from ailedger.inference.store import unpack_records

    _each(lambda: _unpack(data), lambda: unpack_records(data))


def t_manifest(data: bytes) -> None:
    from ailedger.provenance.manifest import Manifest

    Manifest.from_bytes(data)


def t_model_part_proof(data: bytes) -> None:
    """A model part proof file as `model verify-part` opens it (header, JSON, entry, tlog-proof, manifest
    root), and its file / chunk proof checked against the seed manifest with the right content."""
    from ailedger.encoding.canonical import parse_json
    from ailedger.provenance.manifest import check_part_proof, verify_chunk_digest, verify_chunk_list
    from ailedger.provenance.models import _open_part_proof

    def core() -> None:
        doc = check_part_proof(parse_json(data.partition(b"\n")[2]))
        content = PART_CONTENT.get(doc["file"]["path"], b"")
        if "chunk" in doc:
            c = doc["chunk"]
            piece = content[c["offset"]:c["offset"] + c["length"]]
            verify_chunk_digest(doc, hashlib.sha256(piece).digest(), len(piece), MANIFEST.root)
        else:
            verify_chunk_list(doc, MANIFEST.root)

    _each(lambda: _open_part_proof(data, LOG.vkey), core)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "note": t_note,
    "checkpoint": t_checkpoint,
    "vkey": t_vkey,
    "cosignature": t_cosignature,
    "proofbundle": t_proofbundle,
    "car": t_car,
    "dagpb": t_dagpb,
    "unixfs_dag": t_unixfs_dag,
    "cid": t_cid,
    "tiles": t_tiles,
    "safetensors": t_safetensors,
    "entry": t_entry,
    "witness_request": t_witness_request,
    "smt_proof": t_smt_proof,
    "inference_blobs": t_inference_blobs,
    "anchor_evidence": t_anchor_evidence,
    "manifest": t_manifest,
    "model_part_proof": t_model_part_proof,
}


def _payload_blob() -> bytes:
    from ailedger.inference.payloads import _pack

    return _pack([("0123456789ab-1", b"s" * 16, b'{"q":1}', None), ("0123456789ab-2", b"t" * 16, None, b"[]")])


def _records_blob() -> bytes:
    from ailedger.inference.store import pack_records

    return pack_records([b'{"a":1}', b"", b"xyz"])


SEEDS: dict[str, list[bytes]] = {
    "note": [NOTE, COSIGNED],
    "checkpoint": [NOTE, CP.text().encode()],
    "vkey": [LOG.vkey.encode(), WITNESSES[0].vkey.encode()],
    "cosignature": [COSIGNED, NOTE + COSIG_LINES[: len(COSIG_LINES) // 2]],
    "proofbundle": [BUNDLE, BUNDLE_NO_EXTRA],
    "car": [CAR],
    "dagpb": PB_NODES,
    "unixfs_dag": PB_NODES,
    "cid": [DAG_ROOT.bytes, str(DAG_ROOT).encode(), DAG_ROOT.to_v1().bytes,
            b"QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"],
    "tiles": [b"tile/0/000", b"tile/3/x001/x234/067.p/8", b"tile/entries/x123/456.p/255",
              entry_bundle([b"ab", b"", b"cde"])],
    "safetensors": SAFETENSORS,
    "entry": [ENTRY],
    "witness_request": [b"old 0\n\n" + NOTE, b"old 3\n" + base64.b64encode(bytes(32)) + b"\n\n" + NOTE],
    "smt_proof": [bytes([1, 0]) + (256).to_bytes(2, "big") + bytes(32),
                  bytes([1, 2, 0, 9, 0x80, 0]) + b"\x11" * 32 + b"\x22" * 32],
    "inference_blobs": [],  # filled lazily (services import) by seeds_for()
    "manifest": [MANIFEST.to_bytes()],
    "model_part_proof": _part_proofs(),
    "anchor_evidence": [json.dumps({"format": "ailedger-anchor-evidence/v1", "tx_hash": "0x" + "ab" * 32,
                                    "consistency": {"7": [base64.b64encode(bytes(32)).decode()] * 3,
                                                    "9": []}}).encode()],
}


def seeds_for(name: str) -> list[bytes]:
    if name == "inference_blobs" and not SEEDS[name]:
        SEEDS[name] = [_payload_blob(), _records_blob()]
    return SEEDS[name]


# --------------------------------------------------------------------------- running one input


def run_plain(name: str, data: bytes) -> None:
    """Run a target; any exception but an ailedger error propagates (the atheris driver's view)."""
    try:
        TARGETS[name](data)
    except ALLOWED:
        pass


class Finding(AssertionError):
    pass


def run_target(name: str, data: bytes, *, time_limit: float = TIME_LIMIT_S, check_memory: bool = True) -> None:
    """Run a target on ``data`` and fail (AssertionError) on any escape from its contract."""
    started = tracemalloc.is_tracing()
    if check_memory:
        if not started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    try:
        TARGETS[name](data)
    except ALLOWED:
        pass
    except RecursionError as exc:  # re-raised as a finding: pytest's traceback of it is useless
        raise Finding(f"{name}: RecursionError on input {data[:80]!r}... ({len(data)} bytes)") from exc
    finally:
        elapsed = time.perf_counter() - t0
        if check_memory:
            peak = tracemalloc.get_traced_memory()[1] - base
            if not started:
                tracemalloc.stop()
    if elapsed > time_limit:
        raise Finding(f"{name}: {elapsed:.1f} s on an input of {len(data)} bytes (limit {time_limit} s)")
    if check_memory:
        budget = MEM_BASE + MEM_PER_INPUT_BYTE * len(data)
        if peak > budget:
            raise Finding(f"{name}: allocated {peak} bytes for an input of {len(data)} bytes (budget {budget})")


# --------------------------------------------------------------------------- structured mutations

_U64 = [0, 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64]
INTERESTING: list[bytes] = [
    b"\x00", b"\n", b"\n\n", b"\r\n", b" ", b"\t", b"+", b"=", b"/", b"-", b"0", b"00", b"-1",
    "\u2014 ".encode(), "\u2014".encode(), "\u00b2".encode(), "\u0663".encode(), "\uff11".encode(),
    b"\xc0\x80", b"\xed\xa0\x80", b"\xff", b"\xf4\x90\x80\x80", "\u00e9".encode(),
    b"9" * 4400, b"1" * 30, b"18446744073709551615", b"18446744073709551616", b"9223372036854775808",
    b"[" * 3000, b"{\"a\":" * 1500, b"1e400", b"-0", b"NaN", b"true",
    b"x999/" * 40, b".p/", b".p/0", b".p/256", b"tile/", b"entries/",
    b"\x80" * 10, b"\xff" * 9 + b"\x01", b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
    *(encode_varint(v) for v in _U64 if v < 2**64),
    *(struct.pack("<Q", v) for v in _U64 if v < 2**64),
    *(struct.pack(">I", v) for v in (0, 1, 0xFFFFFFFE, 0xFFFFFFFF)),
    b"\xd8\x2a", b"\x9f", b"\xbf", b"\xff", b"\x1b" + b"\xff" * 8, b"\x5b" + b"\xff" * 8, b"\x7b" + b"\xff" * 8,
    b"\x9b" + b"\xff" * 8, b"\xbb" + b"\x7f" + b"\xff" * 7, b"\xc6", b"\xf9",
    b"old ", b"index ", b"extra ", b"c2sp.org/tlog-proof@v1\n", b"cosignature/v1\n",
    base64.b64encode(bytes(32)), base64.b64encode(bytes(31)), base64.b64encode(bytes(72)),
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few structure-blind edits (flips, inserts of interesting tokens, cuts,
    duplications, splices): most of the input stays valid, so the parser gets deep."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 5))):
        op = draw(st.integers(0, 8))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:
            i = min(pos, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 1 and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == 2:
            data[pos:pos] = draw(st.sampled_from(INTERESTING))
        elif op == 3:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == 4:
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == 5 and data:
            a = draw(st.integers(0, len(data) - 1))
            data[pos:pos] = data[a : a + draw(st.integers(1, 200))]
        elif op == 6:
            del data[pos:]
        elif op == 7:
            other = draw(st.sampled_from(seeds))
            data[pos:] = other[draw(st.integers(0, len(other))) :]
        elif op == 8:  # rewrite a decimal number in place
            digits = [i for i, c in enumerate(data) if 0x30 <= c <= 0x39]
            if digits:
                i = draw(st.sampled_from(digits))
                j = i
                while j < len(data) and 0x30 <= data[j] <= 0x39:
                    j += 1
                data[i:j] = str(draw(st.sampled_from(_U64 + [-1]))).encode()
    return bytes(data)


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | extra]) + n.to_bytes(width, "big")
    return bytes([major << 5 | 27]) + b"\xff" * 8


cbor_items = st.recursive(
    st.one_of(
        st.builds(lambda n: _cbor_head(0, n), st.sampled_from(_U64 + [23, 24, 255, 256])),
        st.builds(lambda n: _cbor_head(1, n), st.integers(0, 2**64 - 1)),
        st.builds(lambda b: _cbor_head(2, len(b)) + b, st.binary(max_size=40)),
        st.builds(lambda b: _cbor_head(3, len(b)) + b, st.binary(max_size=12)),
        st.builds(lambda s: _cbor_head(3, len(s.encode())) + s.encode(), st.sampled_from(["roots", "version", ""])),
        st.builds(lambda b: b"\xd8\x2a" + _cbor_head(2, len(b) + 1) + b"\x00" + b,
                  st.sampled_from([DAG_ROOT.bytes, DAG_ROOT.to_v1().bytes, b"\x01", b""])),
        st.builds(lambda n, w: bytes([0xe0 | min(n, 31)]) + bytes(w), st.integers(0, 31), st.integers(0, 8)),
        st.builds(lambda m, n: _cbor_head(m, n), st.integers(2, 5), st.sampled_from(_U64)),  # huge lengths
    ),
    lambda inner: st.one_of(
        st.builds(lambda xs: _cbor_head(4, len(xs)) + b"".join(xs), st.lists(inner, max_size=4)),
        st.builds(lambda kv: _cbor_head(5, len(kv)) + b"".join(k + v for k, v in kv),
                  st.lists(st.tuples(inner, inner), max_size=3)),
        st.builds(lambda t, x: _cbor_head(6, t) + x, st.sampled_from([42, 0, 2**64 - 1]), inner),
    ),
    max_leaves=12,
)


@st.composite
def car_files(draw: st.DrawFn) -> bytes:
    """A CAR built from generated CBOR headers and sections with arbitrary (or lying) lengths."""
    header = draw(st.one_of(cbor_items, st.just(encode_header([DAG_ROOT])[1:])))
    hlen = draw(st.sampled_from([len(header), len(header) + 1, max(0, len(header) - 1)] + _U64[:-1]))
    out = encode_varint(hlen) + header
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()) and DAG_BLOCKS:
            out += encode_section(draw(st.sampled_from(DAG_BLOCKS)))
        else:
            body = draw(st.binary(max_size=60))
            n = draw(st.sampled_from([len(body), 0, len(body) + 5, 2**63 - 1, 64 << 20]))
            out += encode_varint(n) + body
    return out


@st.composite
def pb_messages(draw: st.DrawFn) -> bytes:
    """Protobuf-shaped bytes: fields with any number, wire type and (lying) length."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 6))):
        num = draw(st.sampled_from([1, 2, 3, 4, 5, 15, 16, 2**28]))
        wt = draw(st.sampled_from([0, 2, 2, 2, 1, 5, 3, 4, 7]))
        out += encode_varint(num << 3 | wt)
        if wt == 0:
            out += encode_varint(draw(st.sampled_from(_U64[:-1])))
        elif wt == 2:
            inner = draw(st.one_of(st.binary(max_size=40), st.sampled_from(PB_NODES),
                                   st.sampled_from([DAG_ROOT.bytes, DAG_ROOT.to_v1().bytes, b"\xff\xfe"])))
            n = draw(st.sampled_from([len(inner)] * 4 + [len(inner) + 3, 2**63, 2**64 - 1]))
            out += encode_varint(n) + inner
        else:
            out += draw(st.binary(max_size=8))
    return bytes(out)


_json_scalars = st.one_of(st.integers(-(2**70), 2**70), st.booleans(), st.none(), st.floats(allow_nan=False),
                          st.text(max_size=8), st.sampled_from(["F32", "I32", "BF16", ""]))


@st.composite
def safetensors_files(draw: st.DrawFn) -> bytes:
    """A header of generated tensors (offsets, shapes and dtypes of any JSON type and size), a
    length prefix that may lie, and a data section of any length."""
    tensors: dict[str, object] = {}
    for i in range(draw(st.integers(0, 4))):
        begin = draw(st.sampled_from([0, 1, 4, 2**63, -1]))
        end = draw(st.sampled_from([0, 4, 8, 16, 2**64, -3, 10**30]))
        info: dict[str, object] = {
            "dtype": draw(st.one_of(st.sampled_from(["F32", "F16", "I8"]), _json_scalars)),
            "shape": draw(st.one_of(st.lists(st.integers(-2, 2**64), max_size=3), _json_scalars)),
            "data_offsets": draw(st.one_of(st.just([begin, end]), st.lists(_json_scalars, max_size=3))),
        }
        if draw(st.booleans()):
            del info[draw(st.sampled_from(sorted(info)))]
        tensors[draw(st.sampled_from([f"t{i}", "__metadata__", "", "\u00e9"]))] = info
    text = json.dumps(tensors).encode()
    if draw(st.booleans()):
        text = draw(mutated([text]))
    n = draw(st.sampled_from([len(text)] * 4 + [len(text) + 1, max(0, len(text) - 1)] + _U64[:-1]))
    data = bytes(draw(st.integers(0, 40)))
    return struct.pack("<Q", n) + text + data


@st.composite
def note_texts(draw: st.DrawFn) -> bytes:
    """Notes assembled line by line from checkpoint-like pieces and signature lines."""
    pieces = [LOG.name, "7", str(CP.size), base64.b64encode(CP.root).decode(), "ext line", "", "0", "07",
              "\u0663", "\u00b2", "9" * 5000, "18446744073709551616", base64.b64encode(bytes(31)).decode()]
    body = draw(st.lists(st.sampled_from(pieces), min_size=0, max_size=6))
    sigs = [ln for ln in COSIGNED.decode().split("\n\n", 1)[1].split("\n") if ln]
    sigpart = draw(st.lists(st.one_of(st.sampled_from(sigs),
                                      st.builds(lambda n, b: f"\u2014 {n} {b}", st.sampled_from([LOG.name, "w", ""]),
                                                st.sampled_from(["AAAA", "", "====", "\u00e9\u00e9",
                                                                 base64.b64encode(bytes(76)).decode()]))),
                            max_size=4))
    return ("\n".join(body) + "\n\n" + "\n".join(sigpart) + ("\n" if sigpart else "")).encode()


@st.composite
def tile_paths(draw: st.DrawFn) -> bytes:
    level = draw(st.sampled_from(["0", "1", "63", "64", "99", "entries", "00", "\u0663", "-1", ""]))
    groups = draw(st.lists(st.sampled_from(["x000", "x001", "x999", "x12", "x\u0663\u0663\u0663", "xx01"]),
                           max_size=5))
    if draw(st.integers(0, 20)) == 0:
        groups = ["x999"] * 1500  # a tile index of more than 4,300 digits
    last = draw(st.sampled_from(["000", "001", "255", "1", "0000", "\u0663\u0663\u0663", "abc"]))
    width = draw(st.sampled_from(["", ".p/1", ".p/255", ".p/256", ".p/0", ".p/001", ".p/", ".p/\u0663"]))
    return "/".join(["tile", level, *groups, last]).encode() + width.encode()


_json_values = st.one_of(_json_scalars, st.just([]), st.just({}), st.lists(_json_scalars, max_size=3),
                         st.sampled_from(["00" * 32, "zz" * 32, "%%%", -(2**63), 2**64, 10**30]))


@st.composite
def json_edits(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed JSON document (after an optional first header line) with a few structural edits: a member
    or item dropped, or replaced by a value of another kind or size, at any depth."""
    seed = draw(st.sampled_from(seeds))
    head, _, text = seed.partition(b"\n") if not seed.startswith(b"{") else (b"", b"", seed)
    doc = json.loads(text)
    for _ in range(draw(st.integers(1, 4))):
        node, path = doc, []
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 2)):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[key]
        elif draw(st.booleans()) and isinstance(parent, list):
            parent.pop(key)
        else:
            parent[key] = draw(_json_values)
    out = json.dumps(doc).encode()
    return head + b"\n" + out if head else out


def _raw(max_size: int = 600) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


def strategy_for(name: str) -> st.SearchStrategy[bytes]:
    seeds = seeds_for(name)
    base = [mutated(seeds), mutated(seeds), _raw()]
    extra = {
        "note": [note_texts()],
        "checkpoint": [note_texts()],
        "cosignature": [note_texts(), st.builds(lambda b: COSIGNED + b, mutated([COSIG_LINES]))],
        "proofbundle": [st.builds(lambda n: BUNDLE.split(b"\n\n", 1)[0] + b"\n\n" + n, note_texts())],
        "car": [car_files(), car_files()],
        "dagpb": [pb_messages(), pb_messages()],
        "unixfs_dag": [pb_messages()],
        "tiles": [tile_paths(), tile_paths()],
        "safetensors": [safetensors_files(), safetensors_files()],
        "witness_request": [st.builds(lambda n: b"old 0\n\n" + n, note_texts())],
        "manifest": [json_edits(seeds), json_edits(seeds), json_edits(seeds)],
        "model_part_proof": [json_edits(seeds), json_edits(seeds), json_edits(seeds)],
    }.get(name, [])
    return st.one_of(*base, *extra)


