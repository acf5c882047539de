"""k-of-n Reed-Solomon erasure coding over GF(2^8), striped.

Two codecs, both systematic (shards 0..k-1 carry the data itself, so a fetch that gets them back
needs no decoding), both limited to n <= 256:

* ``rs-cauchy-gf256-isal`` (default when n > k): Intel ISA-L's Cauchy Reed-Solomon (always MDS),
  SIMD-accelerated, through pyeclib/liberasurecode (``isa_l_rs_cauchy``; the pyeclib wheel ships
  both libraries). Each piece is a liberasurecode fragment: an 80-byte header (index, sizes,
  library version) then ``unit`` bytes. Fast at wide n: see bench/RESULTS.md.
* ``rs-vandermonde-gf256-zfec``: zfec (Rizzo's fec, as in Tahoe-LAFS; Storj's ``infectious`` is a
  port), pieces are exactly ``unit`` bytes. Used when n == k, and to read objects stored with it.

Layout: the input (ciphertext) is cut into stripes of ``k * unit`` bytes (the last one padded
with zeros); stripe s gives each shard i its s-th piece. Shard i is the concatenation of its
pieces, ``stripes * piece`` bytes long. Both codecs are deterministic, so a shard rebuilt by
repair is byte-identical to the original (repair checks its SHA-256 against the ledger).
"""

from __future__ import annotations

import ctypes
import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zfec  # type: ignore[import-untyped]

from ailedger.errors import BadInputError, StorageError, VerificationError

__all__ = ["DEFAULT_K", "DEFAULT_N", "DEFAULT_UNIT", "ISAL", "ZFEC", "Coding", "StripeDecoder", "StripeEncoder",
           "coding_for_nodes", "default_k"]

DEFAULT_K = 10
DEFAULT_N = 30
DEFAULT_UNIT = 1 << 20
ZFEC = "rs-vandermonde-gf256-zfec"
ISAL = "rs-cauchy-gf256-isal"
ISAL_HEADER = 80  # liberasurecode fragment header

MAX_N = 256


def default_k(n: int) -> int:
    """Shards needed to read back when ``n`` are stored: losing a third of them (at least one, when there
    are two or more) still reads back. 1 -> 1, 2 -> 1, 3 -> 2, 4 -> 3, 6 -> 4, 30 -> 20."""
    return max(1, n - max(1, n // 3)) if n > 1 else 1


def coding_for_nodes(nodes: int, k: int | None = None, n: int | None = None) -> tuple[int, int]:
    """The (k, n) a put uses with ``nodes`` distinct storage nodes: by default one shard per node
    (n = nodes, at most 256) and k = ``default_k(n)``; a given k or n is checked against the nodes.
    A refusal carries ``suggest_k`` / ``suggest_n``: the values that would work."""
    if nodes < 1:
        raise BadInputError("no storage nodes given", field="nodes")
    fit = min(nodes, MAX_N)
    if n is None:
        n = fit
    if n < 1 or n > MAX_N:
        raise BadInputError(f"n = {n} shards: n must be between 1 and {MAX_N}", field="n",
                            suggest_k=default_k(fit), suggest_n=fit)
    if n > nodes:
        raise BadInputError(f"{nodes} storage node{'s' if nodes != 1 else ''} given, n = {n} shards need {n} "
                            f"distinct nodes", field="n", suggest_k=default_k(fit), suggest_n=fit)
    if k is None:
        k = default_k(n)
    if k < 1 or k > n:
        raise BadInputError(f"k = {k} shards to read back out of n = {n} stored: k must be between 1 and n",
                            field="k", suggest_k=default_k(n), suggest_n=n)
    return k, n


@dataclass(frozen=True)
class Coding:
    k: int
    n: int
    unit: int  # data bytes of each shard per stripe
    size: int  # bytes of the encoded input (ciphertext)
    algorithm: str = ZFEC

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n <= 256:
            raise BadInputError(f"erasure parameters need 1 <= k <= n <= 256, got k={self.k} n={self.n}",
                                field="k")
        if self.unit < 1 or self.size < 0:
            raise BadInputError("bad erasure unit or size", field="unit")
        if self.algorithm not in (ZFEC, ISAL):
            raise BadInputError(f"unsupported erasure algorithm {self.algorithm!r}", field="coding")
        if self.algorithm == ISAL and self.n == self.k:
            raise BadInputError("the ISA-L codec needs at least one parity shard (n > k)", field="n")

    @staticmethod
    def for_size(size: int, k: int = DEFAULT_K, n: int = DEFAULT_N, unit: int = DEFAULT_UNIT,
                 algorithm: str | None = None) -> Coding:
        """Shrink the unit for small inputs so a 1 KiB object does not become n MiB of shards."""
        if algorithm is None:
            algorithm = ISAL if n > k else ZFEC
        return Coding(k, n, max(1, min(unit, -(-size // k))), size, algorithm)

    @property
    def piece(self) -> int:
        """Bytes each shard gets per stripe."""
        return self.unit + (ISAL_HEADER if self.algorithm == ISAL else 0)

    @property
    def stripe(self) -> int:
        return self.k * self.unit

    @property
    def stripes(self) -> int:
        return max(1, -(-self.size // self.stripe))

    @property
    def shard_size(self) -> int:
        return self.stripes * self.piece

    def to_dict(self) -> dict[str, int | str]:
        return {"algorithm": self.algorithm, "k": self.k, "n": self.n, "unit": self.unit, "size": self.size,
                "piece": self.piece}

    @staticmethod
    def from_dict(d: dict[str, object]) -> Coding:
        alg = d.get("algorithm")
        if alg not in (ZFEC, ISAL):
            raise BadInputError(f"unsupported erasure algorithm {alg!r}", field="coding")
        try:
            c = Coding(int(d["k"]), int(d["n"]), int(d["unit"]), int(d["size"]), str(alg))  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError):
            raise BadInputError("malformed coding parameters", field="coding") from None
        if "piece" in d and d["piece"] != c.piece:
            raise BadInputError("coding piece size disagrees with the codec", field="coding",
                                expected=c.piece, found=d["piece"])
        return c


def _isal(coding: Coding) -> Any:
    from pyeclib.ec_iface import ECDriver

    return ECDriver(k=coding.k, m=coding.n - coding.k, ec_type="isa_l_rs_cauchy")


@functools.lru_cache(maxsize=1)
def _libisal() -> Any:
    """ISA-L as the pyeclib wheel bundles it (``pyeclib.libs/libisal-*.so``), or None."""
    try:
        import pyeclib  # type: ignore[import-untyped]

        found = sorted((Path(pyeclib.__file__).resolve().parent.parent / "pyeclib.libs").glob("libisal*.so*"))
        lib = ctypes.CDLL(str(found[0]))
        vp, ci = ctypes.c_void_p, ctypes.c_int
        lib.gf_gen_cauchy1_matrix.argtypes, lib.gf_gen_cauchy1_matrix.restype = [vp, ci, ci], None
        lib.ec_init_tables.argtypes, lib.ec_init_tables.restype = [ci, ci, vp, vp], None
        lib.ec_encode_data.argtypes, lib.ec_encode_data.restype = [ci, ci, ci, vp, vp, vp], None
        return lib
    except (ImportError, OSError, IndexError, AttributeError):
        return None


class _DirectIsal:
    """The ``isa_l_rs_cauchy`` encoding without liberasurecode's buffers: a data shard's piece is its fragment
    header (the same for every stripe) and a view of the stripe, a parity piece the header and ISA-L's
    ``ec_encode_data`` output (the same Cauchy matrix and tables liberasurecode sets up). Used only after
    both were seen to give pyeclib's fragments byte for byte (:func:`_direct_ok`, ``StripeEncoder._first``)."""

    def __init__(self, coding: Coding, lib: Any, headers: list[bytes]) -> None:
        k, m = coding.k, coding.n - coding.k
        self.c, self.lib, self.headers = coding, lib, headers
        matrix = (ctypes.c_ubyte * ((k + m) * k))()
        lib.gf_gen_cauchy1_matrix(matrix, k + m, k)
        self.tables = (ctypes.c_ubyte * (k * m * 32))()
        lib.ec_init_tables(k, m, ctypes.byref(matrix, k * k), self.tables)

    def encode(self, stripe: bytearray, want: list[int]) -> list[list[bytes | memoryview]]:
        c = self.c
        k, m, unit = c.k, c.n - c.k, c.unit
        mv = memoryview(stripe)
        par = bytearray(m * unit) if any(i >= k for i in want) else bytearray()
        if par:
            src = (ctypes.c_ubyte * len(stripe)).from_buffer(stripe)
            dst = (ctypes.c_ubyte * len(par)).from_buffer(par)
            a, b = ctypes.addressof(src), ctypes.addressof(dst)
            self.lib.ec_encode_data(unit, k, m, self.tables, (ctypes.c_void_p * k)(*(a + i * unit for i in range(k))),
                                    (ctypes.c_void_p * m)(*(b + j * unit for j in range(m))))
            del src, dst
        pv = memoryview(par)
        return [[self.headers[i], mv[i * unit : (i + 1) * unit] if i < k else pv[(i - k) * unit : (i - k + 1) * unit]]
                for i in want]


@functools.lru_cache(maxsize=16)
def _direct_ok(k: int, n: int) -> bool:
    """Whether ISA-L loads and, called directly, gives exactly pyeclib's fragments for k-of-n, checked at a
    small unit on a zero and a random stripe (the parity is a linear map of the data, the same matrix at any
    unit), and whether liberasurecode's fragment headers are then the same for both (no data checksum in
    them: one stripe's headers serve every stripe)."""
    lib = _libisal()
    if lib is None:
        return False
    small = Coding(k, n, 64, k * 64, ISAL)
    drv = _isal(small)
    samples = [bytes(small.stripe), random.Random(0x15A1).randbytes(small.stripe)]
    refs = [drv.encode(x) for x in samples]
    if any(len(r) != n or any(len(f) != small.piece for f in r) for r in refs) or \
            [f[:ISAL_HEADER] for f in refs[0]] != [f[:ISAL_HEADER] for f in refs[1]]:
        return False
    direct = _DirectIsal(small, lib, [bytes(f[:ISAL_HEADER]) for f in refs[0]])
    return all([b"".join(v) for v in direct.encode(bytearray(data), list(range(n)))] == [bytes(f) for f in frags]
               for data, frags in zip(samples, refs))


class StripeEncoder:
    """encode(stripe bytes) -> n pieces (the first k are views of the input)."""

    def __init__(self, coding: Coding) -> None:
        self.c = coding
        self._isal = _isal(coding) if coding.algorithm == ISAL else None
        self._enc = zfec.Encoder(coding.k, coding.n) if self._isal is None else None
        # ISA-L called directly from the second stripe on (the first goes through pyeclib and gives the headers)
        self._direct: _DirectIsal | None = None
        self._may_direct = self._isal is not None and _direct_ok(coding.k, coding.n)

    def _first(self, stripe: bytearray) -> None:
        """Encode a full stripe with pyeclib, take its fragment headers and switch to ISA-L called directly
        if that gives the very same fragments for this stripe."""
        self._may_direct = False
        frags = self._isal.encode(bytes(stripe))  # type: ignore[union-attr]
        c = self.c
        if len(frags) != c.n or any(len(f) != c.piece for f in frags):
            return
        direct = _DirectIsal(c, _libisal(), [bytes(f[:ISAL_HEADER]) for f in frags])
        views = direct.encode(stripe, list(range(c.n)))
        # (bytes compared, not memoryviews: CPython compares those item by item)
        if all(v[0] == f[:ISAL_HEADER] and bytes(v[1]) == f[ISAL_HEADER:] for v, f in zip(views, frags)):
            self._direct = direct

    def encode_views(self, stripe: bytes | bytearray | memoryview, wanted: Sequence[int] | None = None
                     ) -> list[list[bytes | memoryview]]:
        """Like :meth:`encode`, each piece as the buffers it is made of, in order (with ISA-L: its fragment
        header, then a view of ``stripe`` for a data shard, of the parity for the others: no copy of the
        data when ``stripe`` is a full-size bytearray)."""
        c = self.c
        if self._direct is None and not self._may_direct:
            return [[p] for p in self.encode(stripe, wanted)]
        if len(stripe) > c.stripe:
            raise BadInputError("stripe too long", field="stripe")
        if not isinstance(stripe, bytearray) or len(stripe) != c.stripe:
            full = bytearray(c.stripe)
            full[: len(stripe)] = stripe
            stripe = full
        if self._direct is None:
            self._first(stripe)
        if self._direct is None:
            return [[p] for p in self.encode(stripe, wanted)]
        return self._direct.encode(stripe, list(range(c.n)) if wanted is None else list(wanted))

    def encode(self, stripe: bytes | bytearray | memoryview, wanted: Sequence[int] | None = None) -> list[bytes]:
        c = self.c
        if self._direct is not None or self._may_direct:
            return [b"".join(v) for v in self.encode_views(stripe, wanted)]
        if len(stripe) > c.stripe:
            raise BadInputError("stripe too long", field="stripe")
        if len(stripe) < c.stripe:
            stripe = bytes(stripe) + b"\0" * (c.stripe - len(stripe))
        want = list(range(c.n)) if wanted is None else list(wanted)
        if self._isal is not None:
            frags = self._isal.encode(bytes(stripe))
            if len(frags) != c.n or any(len(f) != c.piece for f in frags):
                raise StorageError("ISA-L codec produced fragments of an unexpected size", expected=c.piece,
                                   found=len(frags[0]) if frags else 0)
            return [frags[i] for i in want]
        assert self._enc is not None
        mv = memoryview(stripe)
        data = [mv[i * c.unit : (i + 1) * c.unit] for i in range(c.k)]
        checks = [i for i in want if i >= c.k]
        out: dict[int, bytes] = {}
        if checks:
            for i, piece in zip(checks, self._enc.encode(data, checks)):
                out[i] = piece
        return [out[i] if i >= c.k else bytes(data[i]) for i in want]


class StripeDecoder:
    """decode({shard index: piece}) with any k distinct indices -> the stripe's bytes."""

    def __init__(self, coding: Coding) -> None:
        self.c = coding
        self._isal = _isal(coding) if coding.algorithm == ISAL else None
        self._dec = zfec.Decoder(coding.k, coding.n) if self._isal is None else None
        self._headers: list[bytes] | None = None

    def headers(self) -> list[bytes]:
        """The fragment header of each data shard's pieces (ISA-L): the same in every stripe, whatever the
        data (liberasurecode writes no data checksum here; the last stripe is padded to full size)."""
        if self._headers is None:
            frags = StripeEncoder(self.c).encode(b"", list(range(self.c.k)))
            self._headers = [bytes(f[:ISAL_HEADER]) for f in frags]
        return self._headers

    def decode(self, pieces: Mapping[int, bytes | memoryview], headers: bool = False) -> bytes:
        """``headers``: the data shards were not hash-checked, so each data piece's fragment header is
        compared with the codec's own (the rest of their bytes is ciphertext, checked by the caller)."""
        c = self.c
        idx = sorted(pieces)[: c.k]
        if len(idx) < c.k:
            raise BadInputError(f"need {c.k} shards to decode, have {len(idx)}", field="shards")
        if self._isal is not None and idx == list(range(c.k)):
            # all data fragments: strip the fragment headers and join
            if headers:
                want = self.headers()
                for i in idx:
                    if bytes(memoryview(pieces[i])[:ISAL_HEADER]) != want[i]:
                        raise VerificationError(f"shard {i}: a piece's fragment header is not the codec's",
                                                shard=i, expected=want[i].hex(),
                                                found=bytes(memoryview(pieces[i])[:ISAL_HEADER]).hex())
            return b"".join(memoryview(pieces[i])[ISAL_HEADER:] for i in idx)
        if self._isal is not None:
            try:  # pyeclib takes only bytes (a memoryview aborts the process)
                out = self._isal.decode([bytes(pieces[i]) for i in idx])
            except Exception as e:  # noqa: BLE001 - pyeclib raises its own tree
                raise StorageError(f"ISA-L decode failed: {e}") from None
            if len(out) != c.stripe:
                raise StorageError("ISA-L decode returned a stripe of the wrong size", expected=c.stripe,
                                   found=len(out))
            return bytes(out)
        if idx == list(range(c.k)):
            return b"".join(pieces[i] for i in idx)
        assert self._dec is not None
        got = self._dec.decode([bytes(pieces[i]) for i in idx], idx)
        return b"".join(got)
