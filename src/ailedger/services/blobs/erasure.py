"""k-of-n Reed-Solomon erasure coding over GF(2^8), striped.

Library: zfec (the systematic Vandermonde RS code of Rizzo's fec, used by Tahoe-LAFS; Storj's
``infectious`` is a port of it). Systematic: shards 0..k-1 are the data itself, so a fetch that
gets them back needs no decoding at all; n is limited to 256.

Layout: the input (ciphertext) is cut into stripes of ``k * unit`` bytes (the last one padded
with zeros); stripe s gives each shard i its s-th ``unit``-byte piece. Shard i is the
concatenation of its pieces, ``stripes * unit`` bytes long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import zfec

from ailedger.core.errors import BadInputError

__all__ = ["Coding", "DEFAULT_K", "DEFAULT_N", "DEFAULT_UNIT", "StripeEncoder", "StripeDecoder"]

DEFAULT_K = 10
DEFAULT_N = 30
DEFAULT_UNIT = 1 << 20
ALGORITHM = "rs-vandermonde-gf256-zfec"


@dataclass(frozen=True)
class Coding:
    k: int
    n: int
    unit: int  # bytes of each shard per stripe
    size: int  # bytes of the encoded input (ciphertext)

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n <= 256:
            raise BadInputError(f"erasure parameters need 1 <= k <= n <= 256, got k={self.k} n={self.n}",
                                field="k")
        if self.unit < 1 or self.size < 0:
            raise BadInputError("bad erasure unit or size", field="unit")

    @staticmethod
    def for_size(size: int, k: int = DEFAULT_K, n: int = DEFAULT_N, unit: int = DEFAULT_UNIT) -> "Coding":
        """Shrink the unit for small inputs so a 1 KiB object does not become n MiB of shards."""
        return Coding(k, n, max(1, min(unit, -(-size // k))), size)

    @property
    def stripe(self) -> int:
        return self.k * self.unit

    @property
    def stripes(self) -> int:
        return max(1, -(-self.size // self.stripe))

    @property
    def shard_size(self) -> int:
        return self.stripes * self.unit

    def to_dict(self) -> dict[str, int | str]:
        return {"algorithm": ALGORITHM, "k": self.k, "n": self.n, "unit": self.unit, "size": self.size}

    @staticmethod
    def from_dict(d: dict[str, object]) -> "Coding":
        if d.get("algorithm") != ALGORITHM:
            raise BadInputError(f"unsupported erasure algorithm {d.get('algorithm')!r}", field="coding")
        try:
            return Coding(int(d["k"]), int(d["n"]), int(d["unit"]), int(d["size"]))  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError):
            raise BadInputError("malformed coding parameters", field="coding") from None


class StripeEncoder:
    """encode(stripe bytes) -> n pieces (the first k are views of the input)."""

    def __init__(self, coding: Coding) -> None:
        self.c = coding
        self._enc = zfec.Encoder(coding.k, coding.n)
        self._checks = list(range(coding.k, coding.n))

    def encode(self, stripe: bytes | bytearray | memoryview, wanted: Sequence[int] | None = None) -> list[bytes]:
        c = self.c
        if len(stripe) > c.stripe:
            raise BadInputError("stripe too long", field="stripe")
        if len(stripe) < c.stripe:
            stripe = bytes(stripe) + b"\0" * (c.stripe - len(stripe))
        mv = memoryview(stripe)
        data = [mv[i * c.unit : (i + 1) * c.unit] for i in range(c.k)]
        want = list(range(c.n)) if wanted is None else list(wanted)
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
        self._dec = zfec.Decoder(coding.k, coding.n)

    def decode(self, pieces: dict[int, bytes]) -> bytes:
        c = self.c
        idx = sorted(pieces)[: c.k]
        if len(idx) < c.k:
            raise BadInputError(f"need {c.k} shards to decode, have {len(idx)}", field="shards")
        if idx == list(range(c.k)):
            return b"".join(pieces[i] for i in idx)
        got = self._dec.decode([pieces[i] for i in idx], idx)
        return b"".join(got)
