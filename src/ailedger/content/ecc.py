"""Error correction and integrity check for short watermark payloads.

A rate-1/2 convolutional code (constraint length 7, generators 171/133 octal, the
classic NASA/CCSDS pair) with a soft-decision Viterbi decoder, plus CRC-16/CCITT-FALSE
so that a decoder can tell a real payload from noise.  Pure functions over lists and
numpy arrays; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

K = 7
G = (0o171, 0o133)
_NSTATES = 1 << (K - 1)


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); check value of b"123456789" is 0x29B1."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def bytes_to_bits(data: bytes) -> list[int]:
    return [(b >> (7 - i)) & 1 for b in data for i in range(8)]


def bits_to_bytes(bits: Sequence[int]) -> bytes:
    if len(bits) % 8:
        raise ValueError("bit count must be a multiple of 8")
    out = bytearray()
    for i in range(0, len(bits), 8):
        v = 0
        for b in bits[i : i + 8]:
            v = (v << 1) | (int(b) & 1)
        out.append(v)
    return bytes(out)


def _parity(x: int) -> int:
    return (x).bit_count() & 1


# Precomputed trellis: for state s (last K-1 input bits, newest in bit K-2) and input u.
_OUT = np.zeros((_NSTATES, 2, 2), dtype=np.int8)
_NEXT = np.zeros((_NSTATES, 2), dtype=np.int64)
for _s in range(_NSTATES):
    for _u in range(2):
        _reg = (_u << (K - 1)) | _s
        _OUT[_s, _u, 0] = _parity(_reg & G[0])
        _OUT[_s, _u, 1] = _parity(_reg & G[1])
        _NEXT[_s, _u] = _reg >> 1


def conv_encode(bits: Sequence[int]) -> list[int]:
    """Encode and flush with K-1 zero tail bits: len(out) = 2 * (len(bits) + K - 1)."""
    state = 0
    out: list[int] = []
    for u in list(bits) + [0] * (K - 1):
        out.append(int(_OUT[state, u, 0]))
        out.append(int(_OUT[state, u, 1]))
        state = int(_NEXT[state, u])
    return out


def viterbi_decode(soft: npt.ArrayLike, n_bits: int) -> list[int]:
    """Soft-decision Viterbi.  soft[i] > 0 means coded bit i is likely 1; magnitude = confidence.

    Returns the n_bits information bits (tail dropped).  Starts and ends in state 0.
    """
    llr = np.asarray(soft, dtype=np.float64)
    steps = n_bits + K - 1
    if llr.shape != (2 * steps,):
        raise ValueError(f"expected {2 * steps} soft values, got {llr.shape}")
    sign = (2.0 * _OUT.astype(np.float64) - 1.0)  # (S, 2, 2) in {-1,+1}
    metric = np.full(_NSTATES, -np.inf)
    metric[0] = 0.0
    back = np.zeros((steps, _NSTATES), dtype=np.int64)   # predecessor state
    back_u = np.zeros((steps, _NSTATES), dtype=np.int8)  # input bit
    for t in range(steps):
        r = llr[2 * t : 2 * t + 2]
        branch = sign[:, :, 0] * r[0] + sign[:, :, 1] * r[1]  # (S, 2)
        cand = metric[:, None] + branch
        if t >= n_bits:  # tail: only input 0 allowed
            cand[:, 1] = -np.inf
        new = np.full(_NSTATES, -np.inf)
        nb = np.zeros(_NSTATES, dtype=np.int64)
        nu = np.zeros(_NSTATES, dtype=np.int8)
        for u in (0, 1):
            tgt = _NEXT[:, u]
            vals = cand[:, u]
            # each target state has exactly two predecessors for a given u; resolve by max
            order = np.argsort(vals)  # ascending: later writes (larger) win
            better = vals[order] > new[tgt[order]]
            idx = order[better]
            new[tgt[idx]] = vals[idx]
            nb[tgt[idx]] = idx
            nu[tgt[idx]] = u
        metric = new
        back[t] = nb
        back_u[t] = nu
    state = 0
    bits = [0] * steps
    for t in range(steps - 1, -1, -1):
        bits[t] = int(back_u[t, state])
        state = int(back[t, state])
    return bits[:n_bits]
