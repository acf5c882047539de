"""Perceptual and near-duplicate fingerprints (pure: arrays and strings in, integers out).

* Images: ``phash64`` (the classic DCT pHash: 32x32 area-resize, 8x8 low DCT block without
  DC, median threshold) and ``dct256`` (PDQ-inspired: 64x64 area-resize, 16x16 low DCT
  block, median threshold -> 256 bits).  dct256 follows PDQ's shape but is NOT bit-compatible
  with Meta's PDQ (no Jarosz filter, no quality score).
* Text: NFKC + casefold + punctuation/whitespace folding, a SHA-256 of that normal form,
  SimHash-64 over word 3-shingles, and a 32-value MinHash for Jaccard estimates.
* Audio: ``audio_phash64``: the pHash of the log-magnitude spectrogram (time x frequency)
  seen as an image; survives re-encoding, resampling and volume change, not time crops.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from scipy import fft as sfft  # type: ignore[import-untyped]

from ailedger.errors import BadInputError

FloatArray = npt.NDArray[np.float64]
MASK64 = (1 << 64) - 1


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def to_gray(arr: npt.ArrayLike) -> FloatArray:
    a = np.asarray(arr)
    if a.ndim == 3:
        a = a[..., :3].astype(np.float64)
        return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    if a.ndim != 2:
        raise BadInputError("expected a 2-D grey or 3-D colour image array", field="image")
    return a.astype(np.float64)


def _box_rows(a: FloatArray, n_out: int) -> FloatArray:
    """Area-average rows of ``a`` into n_out rows (fractional edges weighted), via an integral image."""
    n = a.shape[0]
    c = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)], axis=0)
    edges = np.linspace(0.0, float(n), n_out + 1)
    i = np.minimum(np.floor(edges).astype(np.int64), n - 1)
    frac = (edges - i)[:, None]
    at = c[i] + frac * a[i]  # integral up to each (fractional) edge
    out: FloatArray = (at[1:] - at[:-1]) / np.diff(edges)[:, None]
    return out


def area_resize(a: FloatArray, out_h: int, out_w: int) -> FloatArray:
    """Box-filter resize (exact area averaging).  No BLAS: cheap and deterministic under load."""
    a = np.asarray(a, dtype=np.float64)
    return _box_rows(_box_rows(a, out_h).T, out_w).T


def _bits_to_int(bits: Iterable[bool]) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | int(bool(b))
    return v


def phash64(image: npt.ArrayLike) -> int:
    g = to_gray(image)
    if min(g.shape) < 8:
        raise BadInputError("image too small to fingerprint", field="image")
    small = area_resize(g, 32, 32)
    d = sfft.dctn(small, norm="ortho")[:8, :8].ravel()[1:]  # 63 coefficients, DC excluded
    med = np.median(d)
    bits = list(d > med) + [False]
    return _bits_to_int(bits)


def dct256(image: npt.ArrayLike) -> int:
    g = to_gray(image)
    if min(g.shape) < 16:
        raise BadInputError("image too small to fingerprint", field="image")
    small = area_resize(g, 64, 64)
    d = sfft.dctn(small, norm="ortho")[:16, :16].ravel()
    med = np.median(d)
    return _bits_to_int(d > med)


CROP_SCALES = (0.9, 0.8)
CROP_STEPS = 5


def crop_grid(image: npt.ArrayLike, scales: Sequence[float] = CROP_SCALES,
              steps: int = CROP_STEPS) -> list[tuple[int, int]]:
    """(phash64, dct256) of a grid of sub-windows: ``steps`` x ``steps`` offsets at each scale.

    Global hashes change a lot when 10% is cut off an edge; a cropped copy is instead close to
    the registered window that best overlaps it (measured: 90% x 90% crops at random offsets
    land within phash64 distance 6 of the nearest 5x5 window).
    """
    g = to_gray(image)
    h, w = g.shape
    out: list[tuple[int, int]] = []
    for s in scales:
        ch, cw = round(h * s), round(w * s)
        for fy in np.linspace(0.0, 1.0, steps):
            for fx in np.linspace(0.0, 1.0, steps):
                y, x = round((h - ch) * fy), round((w - cw) * fx)
                win = g[y : y + ch, x : x + cw]
                out.append((phash64(win), dct256(win)))
    return out


# Rotations searched at lookup time (degrees; the suspect is turned back by each).  A copy turned
# by a few degrees loses its corners (or gets black ones); turned back, the largest upright
# rectangle inside is close to a centre window of the registered crop grid (90 % or 80 %).
LOOKUP_ANGLES = (-10.0, -5.0, -2.5, 2.5, 5.0, 10.0)


def _inscribed(g: FloatArray, deg: float) -> FloatArray:
    """The centre of ``g`` turned by ``deg``: the largest upright rectangle of the same shape inside."""
    from scipy import ndimage

    h, w = g.shape
    rot = ndimage.rotate(g, deg, reshape=False, order=1, mode="constant", cval=0.0)
    t = np.radians(abs(deg))
    k = min(1.0 / (np.cos(t) + np.sin(t) * h / w), 1.0 / (np.cos(t) + np.sin(t) * w / h))
    ch, cw = max(1, int(h * k)), max(1, int(w * k))
    y, x = (h - ch) // 2, (w - cw) // 2
    out: FloatArray = rot[y:y + ch, x:x + cw]
    return out


def geometric_variants(image: npt.ArrayLike, angles: Sequence[float] = LOOKUP_ANGLES) -> list[tuple[str, int, int]]:
    """(label, phash64, dct256) of the mirror image and of the suspect turned back by each angle.

    Used at lookup time only (nothing new is recorded): a mirrored copy is compared with the
    registered global hashes, a turned copy's upright centre with the registered crop windows.
    Work is bounded: the image is first reduced to at most 256 px on its long side.
    """
    g = to_gray(image)
    h, w = g.shape
    if min(h, w) < 16:
        raise BadInputError("image too small to fingerprint", field="image")
    s = min(1.0, 256.0 / max(h, w))
    if s < 1.0:
        g = area_resize(g, max(16, round(h * s)), max(16, round(w * s)))
    out: list[tuple[str, int, int]] = []
    mirror = g[:, ::-1]
    out.append(("mirrored", phash64(mirror), dct256(mirror)))
    for a in angles:
        v = _inscribed(g, -a)
        if min(v.shape) >= 16:
            out.append((f"rotated {a:g} deg", phash64(v), dct256(v)))
    return out


# ---------------------------------------------------------------- text

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_WS = re.compile(r"\s+", re.UNICODE)


def normalize_text(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(ch for ch in t if unicodedata.category(ch) != "Cf")  # zero-width etc.
    t = _PUNCT.sub(" ", t)
    return _WS.sub(" ", t).strip()


def text_sha256(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def _h64(s: str, salt: bytes = b"") -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8, key=salt).digest(), "big")


def shingles(text: str, n: int = 3) -> list[str]:
    words = normalize_text(text).split(" ")
    words = [w for w in words if w]
    if len(words) < n:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


def simhash64(text: str) -> int:
    sh = shingles(text)
    if not sh:
        raise BadInputError("text has no words to fingerprint", field="text")
    acc = np.zeros(64, dtype=np.int64)
    for s in sh:
        h = _h64(s)
        bits = np.fromiter(((h >> (63 - i)) & 1 for i in range(64)), dtype=np.int64, count=64)
        acc += 2 * bits - 1
    return _bits_to_int(acc > 0)


MINHASH_K = 32


def minhash(text: str, k: int = MINHASH_K) -> list[int]:
    sh = set(shingles(text))
    if not sh:
        raise BadInputError("text has no words to fingerprint", field="text")
    return [min(_h64(s, salt=i.to_bytes(2, "big")) >> 32 for s in sh) for i in range(k)]


def minhash_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    if not a or len(a) != len(b):
        return 0.0
    return sum(int(x == y) for x, y in zip(a, b)) / len(a)


# ---------------------------------------------------------------- audio

def audio_phash64(samples: npt.ArrayLike, rate: int) -> int:
    """pHash of the log spectrogram.  ``samples``: mono float array in [-1, 1]."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise BadInputError("expected mono samples", field="samples")
    if rate <= 0 or len(x) < rate // 4 or len(x) < 2048:
        raise BadInputError("audio too short to fingerprint (need at least 0.25 s)", field="samples")
    # fixed analysis in seconds so the fingerprint does not depend on the sample rate
    win = max(256, round(rate * 0.064))
    hop = win // 2
    n = 1 + (len(x) - win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n] * np.hanning(win)
    spec = np.abs(np.fft.rfft(frames, axis=1))
    freqs = np.fft.rfftfreq(win, 1.0 / rate)
    # 33 log-spaced bands 100 Hz - 4 kHz (telephone-safe range, survives lossy codecs)
    edges = np.geomspace(100.0, min(4000.0, rate / 2 * 0.95), 34)
    bands = np.stack(
        [spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in itertools.pairwise(edges)], axis=1)
    logspec = np.log1p(bands / (bands.mean() + 1e-12) * 100.0)
    return phash64(logspec.T if logspec.shape[0] >= 8 else np.repeat(logspec.T, 8, axis=1))
