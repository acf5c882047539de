"""Invisible, key-seeded, tiled spread-spectrum image watermark ("ailedger-wm1").

Why this design: the watermark must survive JPEG re-encoding, downscaling and cropping,
and the library must work offline with no model weights.  A periodic tile is the
classic answer (a crop only shifts the tile's phase; a resize only changes its period):

* Payload: a 32-bit record identifier + CRC-16 -> 48 bits, rate-1/2 convolutional code
  (K=7) -> 108 coded bits.
* Tile: 32 x 32 "chips".  A key-seeded quarter of the chips carry a +-1 sync pattern;
  the others carry coded bits, each bit spread over ~7 chips times a key-seeded +-1
  sign.  Each chip is ``chip`` pixels wide (about min(W, H) / 96), the chip grid is
  smoothed, tiled over the whole image and added to luminance with a perceptual mask
  (stronger in texture, weaker in flat areas).
* Detection: band-pass the luminance, normalise it locally, estimate the tile period
  from the residual's autocorrelation (plus caller-given hints such as the registered
  periods, as they were for crops and scaled for resizes), fold all tiles into one at the
  image's own resolution (average modulo the period) and resample that tile to 128 px,
  find the cyclic shift by FFT cross-correlation with the sync pattern, read the soft chip
  values, Viterbi-decode and check the CRC.  A payload is reported only when the sync peak
  is significant *and* the CRC holds; weaker alignments whose CRC holds are handed back as
  candidates the caller may accept only for an id it registered.

Everything here works on numpy arrays; decoding/encoding files is the service's job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage  # type: ignore[import-untyped]

from ailedger.content import ecc
from ailedger.errors import BadInputError

SCHEME = "ailedger-wm1"
TILE_CHIPS = 32
PAYLOAD_BITS = 48  # 32-bit id + 16-bit CRC
CODED_BITS = 2 * (PAYLOAD_BITS + ecc.K - 1)  # 108
MIN_SIDE = 128
DECODE_CHIP_PX = 4
DECODE_TILE_PX = TILE_CHIPS * DECODE_CHIP_PX  # 128
SYNC_Z_THRESHOLD = 6.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class WatermarkKey:
    """The secret (or published) seed; every pattern is derived from it."""

    seed: bytes

    def _rng(self, label: str) -> np.random.Generator:
        h = hashlib.sha256(b"ailedger-wm1/" + label.encode() + b"/" + self.seed).digest()
        return np.random.default_rng(int.from_bytes(h[:16], "big"))

    def layout(self) -> _Layout:
        return _Layout.from_key(self)


@dataclass(frozen=True)
class _Layout:
    sync_mask: npt.NDArray[np.bool_]  # (32, 32) chips carrying sync
    sync_sign: FloatArray  # (32, 32) +-1 on sync chips, 0 elsewhere
    data_bit: npt.NDArray[np.int64]  # (32, 32) coded bit index for data chips, -1 for sync
    data_sign: FloatArray  # (32, 32) +-1 spreading sign on data chips, 0 elsewhere

    @staticmethod
    def from_key(key: WatermarkKey) -> _Layout:
        n = TILE_CHIPS * TILE_CHIPS
        rng = key._rng("layout")
        perm = rng.permutation(n)
        n_sync = n // 4
        sync_idx = perm[:n_sync]
        data_idx = perm[n_sync:]
        sync_mask = np.zeros(n, dtype=bool)
        sync_mask[sync_idx] = True
        sync_sign = np.zeros(n)
        sync_sign[sync_idx] = rng.choice([-1.0, 1.0], size=n_sync)
        data_bit = np.full(n, -1, dtype=np.int64)
        data_bit[data_idx] = np.arange(len(data_idx)) % CODED_BITS
        data_sign = np.zeros(n)
        data_sign[data_idx] = rng.choice([-1.0, 1.0], size=len(data_idx))
        shape = (TILE_CHIPS, TILE_CHIPS)
        return _Layout(
            sync_mask.reshape(shape),
            sync_sign.reshape(shape),
            data_bit.reshape(shape),
            data_sign.reshape(shape),
        )


@dataclass(frozen=True)
class EmbedParams:
    chip: int
    strength: float
    psnr_db: float


@dataclass
class Detection:
    """What a decode found.  ``payload_id`` is set only when sync and CRC both hold."""

    payload_id: int | None
    sync_z: float
    period_px: float
    shift: tuple[int, int]
    raw_bits: list[int] = field(default_factory=list)  # hard decisions on the 108 coded bits
    coded_soft: list[float] = field(default_factory=list)
    # (payload id, sync z) of weaker alignments whose CRC holds (see Detector.detect's weak_reads)
    weak_candidates: list[tuple[int, float]] = field(default_factory=list)
    mirrored: bool = False  # read from the left-right mirror image

    @property
    def found(self) -> bool:
        return self.payload_id is not None


def chip_size_for(width: int, height: int) -> int:
    return max(2, min(width, height) // 96)


def payload_bits(payload_id: int) -> list[int]:
    if not 0 <= payload_id < 2**32:
        raise BadInputError("watermark id must be a 32-bit unsigned integer", field="payload_id")
    raw = payload_id.to_bytes(4, "big")
    return ecc.bytes_to_bits(raw + ecc.crc16_ccitt(raw).to_bytes(2, "big"))


def coded_bits(payload_id: int) -> list[int]:
    return ecc.conv_encode(payload_bits(payload_id))


def _chip_tile(key: WatermarkKey, payload_id: int) -> FloatArray:
    lay = key.layout()
    code = np.asarray(coded_bits(payload_id), dtype=np.float64) * 2.0 - 1.0
    data = np.where(lay.data_bit >= 0, code[np.maximum(lay.data_bit, 0)], 0.0) * lay.data_sign
    return lay.sync_sign + data


def _render(chips: FloatArray, chip_px: float, out_shape: tuple[int, int],
            offset: tuple[float, float] = (0.0, 0.0)) -> FloatArray:
    """Smoothly render the periodic chip grid at ``chip_px`` pixels per chip over out_shape."""
    h, w = out_shape
    ys = (np.arange(h) + offset[0]) / chip_px
    xs = (np.arange(w) + offset[1]) / chip_px
    # periodic bilinear interpolation between chip centres
    yy = ys - 0.5
    xx = xs - 0.5
    y0 = np.floor(yy).astype(np.int64)
    x0 = np.floor(xx).astype(np.int64)
    fy = (yy - y0)[:, None]
    fx = (xx - x0)[None, :]
    n = chips.shape[0]
    y0m, y1m = y0 % n, (y0 + 1) % n
    x0m, x1m = x0 % n, (x0 + 1) % n
    a = chips[np.ix_(y0m, x0m)]
    b = chips[np.ix_(y0m, x1m)]
    c = chips[np.ix_(y1m, x0m)]
    d = chips[np.ix_(y1m, x1m)]
    out: FloatArray = a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c * fy * (1 - fx) + d * fy * fx
    return out


def luminance(rgb: FloatArray) -> FloatArray:
    if rgb.ndim == 2:
        return rgb.astype(np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _mask(y: FloatArray, chip: int) -> FloatArray:
    """Perceptual amplitude mask: local activity, bounded."""
    sigma = max(1.0, chip * 0.75)
    mu = ndimage.gaussian_filter(y, sigma)
    var = ndimage.gaussian_filter((y - mu) ** 2, sigma * 2)
    act = np.sqrt(np.maximum(var, 0.0))
    out: FloatArray = np.clip(0.35 + act / 12.0, 0.35, 1.6)
    return out


def embed(image: npt.ArrayLike, payload_id: int, key: WatermarkKey, strength: float = 3.2) -> tuple[
        npt.NDArray[np.uint8], EmbedParams]:
    """Embed ``payload_id`` into an 8-bit RGB (H, W, 3) or grey (H, W) image; returns a new uint8 array."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise BadInputError("expected an 8-bit grey or RGB(A) image array", field="image")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise BadInputError(
            f"image too small to watermark: {w}x{h}, need at least {MIN_SIDE} px on each side",
            field="image", width=w, height=h)
    chip = chip_size_for(w, h)
    img = arr.astype(np.float64)
    rgb = img[..., :3] if img.ndim == 3 else img
    y = luminance(rgb)
    pattern = _render(_chip_tile(key, payload_id), float(chip), (h, w))
    pattern /= np.sqrt(np.mean(pattern**2))
    delta = strength * _mask(y, chip) * pattern
    if rgb.ndim == 3:
        out = rgb + delta[..., None]
    else:
        out = rgb + delta
    out8 = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        out8 = np.concatenate([out8, arr[..., 3:4]], axis=2)
    mse = float(np.mean((out8.astype(np.float64) - arr.astype(np.float64)) ** 2))
    psnr = 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return out8, EmbedParams(chip=chip, strength=strength, psnr_db=round(float(psnr), 2))


def _residual(y: FloatArray) -> FloatArray:
    # high-pass (sigma 1.5 measured best for surviving a half-size resize + JPEG)
    r = y - ndimage.gaussian_filter(y, 1.5)
    env = np.sqrt(ndimage.gaussian_filter(r * r, 6.0)) + 1.0
    out: FloatArray = np.clip(r / env, -3.0, 3.0)
    return out


def _wiener_residual(y: FloatArray) -> FloatArray:
    """Residual after a 3x3 local Wiener estimate of the host (keeps more mark in busy texture)."""
    mu = ndimage.uniform_filter(y, 3)
    var = ndimage.uniform_filter(y * y, 3) - mu * mu
    noise = 9.0  # about the mark's own variance (3.2 grey levels RMS)
    r = y - (mu + np.maximum(var - noise, 0.0) / np.maximum(var, noise) * (y - mu))
    env = np.sqrt(ndimage.gaussian_filter(r * r, 6.0)) + 1.0
    out: FloatArray = np.clip(r / env, -3.0, 3.0)
    return out


def _period_candidates(r: FloatArray, max_candidates: int = 4) -> list[float]:
    """Tile period candidates (in pixels) from the residual's autocorrelation."""
    h, w = r.shape
    f = np.fft.rfft2(r - r.mean(), s=(2 * h, 2 * w))
    ac = np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w))
    ac /= ac[0, 0] + 1e-12
    lo = 24
    hi = int(min(h, w) * 0.6) + 2  # a tile may be half the image: keep its lag inside the range
    if hi <= lo + 2:
        return []
    lags = np.arange(lo, hi)
    prof = ac[0, lags] + ac[lags, 0]
    # harmonic support: a true period also peaks at 2x (when it fits)
    prof2 = np.zeros_like(prof)
    for i, lag in enumerate(lags):
        if 2 * lag < min(h, w):
            prof2[i] = ac[0, 2 * lag] + ac[2 * lag, 0]
    score = prof + 0.5 * prof2
    base = ndimage.median_filter(score, size=15, mode="nearest")
    score = score - base
    cands: list[tuple[float, float]] = []
    for i in range(1, len(score) - 1):
        if score[i] >= score[i - 1] and score[i] >= score[i + 1] and score[i] > 0:
            # parabolic refinement
            a, b, c = score[i - 1], score[i], score[i + 1]
            den = a - 2 * b + c
            off = 0.5 * (a - c) / den if den != 0 else 0.0
            cands.append((float(b), float(lags[i] + off)))
    cands.sort(reverse=True)
    return [p for _, p in cands[:max_candidates]]


def _fold(r: FloatArray, period: float) -> FloatArray:
    """Average every tile of the residual into one, at the decode size (128 x 128).

    The fold happens at the image's own resolution (each pixel goes to the bin of its position
    modulo the period, ``floor(period)`` bins a side), and only the folded tile is resampled:
    every pixel counts, and the cost no longer grows with the resampled image's size.
    """
    h, w = r.shape
    n = max(8, int(np.floor(period)))
    by = (np.mod(np.arange(h), period) * (n / period)).astype(np.int64) % n
    bx = (np.mod(np.arange(w), period) * (n / period)).astype(np.int64) % n
    idx = (by[:, None] * n + bx[None, :]).ravel()
    acc = np.bincount(idx, weights=r.ravel(), minlength=n * n)
    cnt = np.bincount(idx, minlength=n * n)
    tile = (acc / np.maximum(cnt, 1)).reshape(n, n)
    if n == DECODE_TILE_PX:
        return tile
    # periodic resampling of the folded tile (bin centres sit at (i + 0.5) * period / n)
    folded: FloatArray = ndimage.zoom(tile, DECODE_TILE_PX / n, order=1, mode="grid-wrap", grid_mode=True)
    return folded


class Detector:
    """Reusable detector for one key (precomputes the sync template)."""

    def __init__(self, key: WatermarkKey) -> None:
        self.key = key
        self.layout = key.layout()
        tpl = _render(self.layout.sync_sign, float(DECODE_CHIP_PX), (DECODE_TILE_PX, DECODE_TILE_PX))
        tpl -= tpl.mean()
        self._tpl_f = np.conj(np.fft.fft2(tpl))

    def _correlate(self, r: FloatArray, period: float) -> tuple[FloatArray, FloatArray, float]:
        """Fold at ``period``; returns (folded tile, sync cross-correlation, its peak z-score)."""
        folded = _fold(r, period)
        folded = folded - folded.mean()
        cc: FloatArray = np.real(np.fft.ifft2(np.fft.fft2(folded) * self._tpl_f))
        flat = cc.ravel()
        sd = float(flat.std()) + 1e-12
        return folded, cc, float((flat.max() - flat.mean()) / sd)

    def _read(self, folded: FloatArray, cc: FloatArray, k: int, period: float) -> Detection:
        """Soft coded bits for the tile aligned at flat cross-correlation index ``k``."""
        flat = cc.ravel()
        z = float((flat[k] - flat.mean()) / (float(flat.std()) + 1e-12))
        dy, dx = divmod(k, DECODE_TILE_PX)
        aligned = np.roll(folded, (-dy, -dx), axis=(0, 1))
        c = DECODE_CHIP_PX
        cells = aligned.reshape(TILE_CHIPS, c, TILE_CHIPS, c)
        # matched filter: the bilinear rendering peaks at offset c/2 within a cell
        weights = 1.0 - np.abs(np.arange(c) - c / 2) / c
        wmat = np.outer(weights, weights)
        chips = np.einsum("iajb,ab->ij", cells, wmat)
        lay = self.layout
        soft = np.zeros(CODED_BITS)
        sel = lay.data_bit >= 0
        np.add.at(soft, lay.data_bit[sel], (chips * lay.data_sign)[sel])
        soft /= np.std(soft) + 1e-12
        return Detection(None, z, period, (int(dy), int(dx)), [int(v > 0) for v in soft], soft.tolist())

    def _try(self, r: FloatArray, period: float) -> Detection:
        folded, cc, _ = self._correlate(r, period)
        return self._read(folded, cc, int(np.argmax(cc)), period)

    @staticmethod
    def _decode(d: Detection) -> int | None:
        bits = ecc.viterbi_decode(d.coded_soft, PAYLOAD_BITS)
        raw = ecc.bits_to_bytes(bits)
        return int.from_bytes(raw[:4], "big") if ecc.crc16_ccitt(raw[:4]) == int.from_bytes(raw[4:], "big") else None

    def detect(self, image: npt.ArrayLike, period_hints: Iterable[float] = (), *,
               weak_reads: int = 0, mirrored: bool = False) -> Detection:
        """Find and read the mark.

        ``period_hints``: tile periods to try besides those the autocorrelation suggests (the
        service passes the registered periods, unscaled for crops and scaled for resizes).
        ``weak_reads``: when the sync peak stays under the threshold, also decode this many of the
        strongest (period, shift) alignments and list those whose CRC holds in
        ``Detection.weak_candidates``: not a finding by themselves (their payload_id stays None);
        the caller may accept one only when it names a registered mark.  ``mirrored``: also try
        the left-right mirror image (a flipped copy folds into a mirrored tile).
        """
        arr = np.asarray(image)
        if arr.ndim not in (2, 3):
            raise BadInputError("expected a grey or RGB image array", field="image")
        h, w = arr.shape[:2]
        if min(h, w) < 48:
            raise BadInputError(f"image too small to carry a watermark: {w}x{h}", field="image")
        rgb = arr[..., :3] if arr.ndim == 3 else arr
        r = _residual(luminance(rgb.astype(np.float64)))
        periods: list[float] = []
        # the residual's own autocorrelation first; caller hints (e.g. registered sizes) after.
        # A crop may hold less than one tile: a period up to 1.6x the long side still leaves
        # enough of the tile to fold (coverage below ~35 % of the tile is not tried).
        for p in _period_candidates(r) + list(period_hints):
            cover = min(1.0, h / p) * min(1.0, w / p) if p > 0 else 0.0
            if 24 <= p <= 1.6 * max(h, w) and cover >= 0.35 and all(abs(p - q) > 0.25 for q in periods):
                periods.append(float(p))
        # second chance for hosts whose texture drowns the Gaussian high-pass (gravel, foliage):
        # a local Wiener residual, tried only when the first gave no significant peak
        def residuals() -> Iterable[FloatArray]:
            yield r
            r2 = _wiener_residual(luminance(rgb.astype(np.float64)))
            yield r2
            if mirrored:
                yield r[:, ::-1]
                yield r2[:, ::-1]

        best: Detection | None = None
        tried: list[tuple[float, FloatArray, FloatArray, float]] = []  # the strongest folds (z, folded, cc, period)
        for n_res, res in enumerate(residuals()):
            top: Detection | None = None
            for p in periods:
                for q in (p, p * 0.995, p * 1.005):
                    folded, cc, z = self._correlate(res, q)
                    tried.append((z, folded, cc, q))
                    if len(tried) > 24:
                        tried = sorted(tried, key=lambda t: -t[0])[:12]
                    if top is None or z > top.sync_z:
                        top = self._read(folded, cc, int(np.argmax(cc)), q)
                if top is not None and top.sync_z > 2 * SYNC_Z_THRESHOLD:
                    break
            if top is None:
                break
            top.mirrored = n_res >= 2
            if top.sync_z >= SYNC_Z_THRESHOLD:
                top.payload_id = self._decode(top)
            if best is None or (top.payload_id is not None) > (best.payload_id is not None) or (
                    (top.payload_id is None) == (best.payload_id is None) and top.sync_z > best.sync_z):
                best = top
            if best.payload_id is not None:
                break
        if best is None:
            return Detection(None, 0.0, 0.0, (0, 0))
        if best.payload_id is None and weak_reads > 0:
            # the strongest alignments: the top folds by sync z, the top peaks of each
            tried.sort(key=lambda t: -t[0])
            seen: set[int] = set()
            budget = weak_reads
            for _z, folded, cc, q in tried[:max(1, weak_reads // 3)]:
                for k in np.argsort(cc.ravel())[::-1][:3]:
                    if budget <= 0:
                        break
                    budget -= 1
                    d = self._read(folded, cc, int(k), q)
                    pid = self._decode(d)
                    if pid is not None and pid not in seen:
                        seen.add(pid)
                        best.weak_candidates.append((pid, round(d.sync_z, 2)))
        return best


def bit_accuracy(detected: Sequence[int], payload_id: int) -> float:
    """Fraction of the 108 coded (pre-ECC) bits read correctly."""
    ref = coded_bits(payload_id)
    if len(detected) != len(ref):
        return 0.0
    return sum(int(a == b) for a, b in zip(detected, ref)) / len(ref)
