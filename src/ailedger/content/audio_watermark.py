"""Audio watermark ("ailedger-awm1"): the 1-D twin of the image tile watermark.

Same payload and code as ``watermark`` (32-bit id + CRC-16, K=7 rate-1/2 -> 108 coded bits).
The mark lives at a canonical 8 kHz rate so that resampling does not move it:

* Tile: 512 chips x 64 samples (8 ms) = 4.096 s, repeated over the whole signal.  A key-seeded
  quarter of the chips carry sync, the rest carry the coded bits (~3.6 chips per bit per tile).
  Each chip is a key-seeded +-1 noise sequence, band-limited to 300-3400 Hz.
* Embedding: the pattern (at 8 kHz, resampled to the file's rate) is scaled by the host's short-time
  RMS (20 ms) times ``strength`` (default 0.03, about -30 dB under the signal) and added.
* Detection: resample to 8 kHz, whiten (divide the spectrum by its smoothed magnitude), fold the
  signal modulo the tile, find the cyclic offset by FFT cross-correlation with the sync pattern,
  correlate each chip, Viterbi-decode, check the CRC.  Needs at least one tile (4.1 s) of audio.

Survives: volume change, resampling, 16-bit requantisation, added noise at moderate level and
time crops (any offset).  Does not survive: speed/pitch change, heavy lossy coding at low bitrate.
Pure numpy/scipy; no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from math import gcd

import numpy as np
import numpy.typing as npt
from scipy import ndimage, signal  # type: ignore[import-untyped]

from ailedger.content import ecc
from ailedger.content.watermark import CODED_BITS, PAYLOAD_BITS, coded_bits
from ailedger.errors import BadInputError

SCHEME = "ailedger-awm1"
RATE = 8000
CHIP = 64
CHIPS = 512
TILE = CHIP * CHIPS  # 32768 samples = 4.096 s
SYNC_Z_THRESHOLD = 6.0
MIN_SECONDS = TILE / RATE

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AudioKey:
    seed: bytes

    def rng(self, label: str) -> np.random.Generator:
        h = hashlib.sha256(b"ailedger-awm1/" + label.encode() + b"/" + self.seed).digest()
        return np.random.default_rng(int.from_bytes(h[:16], "big"))


@dataclass
class AudioDetection:
    payload_id: int | None
    sync_z: float
    offset: int
    raw_bits: list[int] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.payload_id is not None


def _resample(x: FloatArray, src: int, dst: int) -> FloatArray:
    if src == dst:
        return x
    g = gcd(src, dst)
    out: FloatArray = signal.resample_poly(x, dst // g, src // g)
    return out


_BAND = signal.butter(4, [300, 3400], btype="bandpass", fs=RATE, output="sos")


class _Layout:
    def __init__(self, key: AudioKey) -> None:
        rng = key.rng("layout")
        perm = rng.permutation(CHIPS)
        n_sync = CHIPS // 4
        self.sync_idx = np.sort(perm[:n_sync])
        self.data_idx = perm[n_sync:]
        self.sync_sign = rng.choice([-1.0, 1.0], size=n_sync)
        self.data_bit = np.arange(len(self.data_idx)) % CODED_BITS
        self.data_sign = rng.choice([-1.0, 1.0], size=len(self.data_idx))
        pn = rng.choice([-1.0, 1.0], size=TILE)
        # band-limit the carrier (circularly, so the tile stays periodic)
        pn3 = signal.sosfiltfilt(_BAND, np.tile(pn, 3))[TILE:2 * TILE]
        self.pn: FloatArray = pn3 / np.sqrt(np.mean(pn3**2))
        sync = np.zeros(CHIPS)
        sync[self.sync_idx] = self.sync_sign
        self.sync_wave: FloatArray = np.repeat(sync, CHIP) * self.pn

    def tile(self, payload_id: int) -> FloatArray:
        code = np.asarray(coded_bits(payload_id), dtype=np.float64) * 2 - 1
        chips = np.zeros(CHIPS)
        chips[self.sync_idx] = self.sync_sign
        chips[self.data_idx] = code[self.data_bit] * self.data_sign
        out: FloatArray = np.repeat(chips, CHIP) * self.pn
        return out


def _envelope(x: FloatArray, rate: int) -> FloatArray:
    win = max(1, int(rate * 0.02))
    env: FloatArray = np.sqrt(ndimage.uniform_filter1d(x * x, win, mode="nearest"))
    return env


def embed(samples: npt.ArrayLike, rate: int, payload_id: int, key: AudioKey,
          strength: float = 0.03) -> tuple[FloatArray, float]:
    """Return (marked samples in [-1, 1], SNR in dB of host over mark)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise BadInputError("expected mono samples", field="samples")
    if rate < 8000:
        raise BadInputError(f"sample rate {rate} Hz too low to watermark (need >= 8000)", field="samples")
    if len(x) < MIN_SECONDS * rate:
        raise BadInputError(f"audio too short to watermark: need at least {MIN_SECONDS:.1f} s", field="samples")
    lay = _Layout(key)
    n8 = int(np.ceil(len(x) * RATE / rate)) + 1
    w8 = np.tile(lay.tile(payload_id), n8 // TILE + 1)[:n8]
    w = _resample(w8, RATE, rate)[: len(x)]
    if len(w) < len(x):
        w = np.pad(w, (0, len(x) - len(w)))
    env = _envelope(x, rate)
    mark = strength * np.maximum(env, 1e-3) * w / (np.sqrt(np.mean(w**2)) + 1e-12)
    y = np.clip(x + mark, -1.0, 1.0)
    snr = 10 * np.log10(np.sum(x**2) / max(float(np.sum((y - x) ** 2)), 1e-20))
    return y, round(float(snr), 2)


def _whiten(x: FloatArray) -> FloatArray:
    y = signal.sosfiltfilt(_BAND, x)
    f = np.fft.rfft(y)
    mag = ndimage.uniform_filter1d(np.abs(f), 64, mode="nearest") + 1e-9
    out: FloatArray = np.fft.irfft(f / mag, n=len(y))
    env = np.sqrt(ndimage.uniform_filter1d(out * out, 160, mode="nearest")) + 1e-9
    res: FloatArray = np.clip(out / env, -4, 4)
    return res


class AudioDetector:
    def __init__(self, key: AudioKey) -> None:
        self.layout = _Layout(key)
        t = self.layout.sync_wave - self.layout.sync_wave.mean()
        self._tpl = np.conj(np.fft.rfft(t))

    def detect(self, samples: npt.ArrayLike, rate: int) -> AudioDetection:
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1 or rate <= 0:
            raise BadInputError("expected mono samples and a positive rate", field="samples")
        if len(x) < MIN_SECONDS * rate:
            raise BadInputError(f"audio too short to carry a watermark (< {MIN_SECONDS:.1f} s)", field="samples")
        r = _whiten(_resample(x, rate, RATE))
        n = len(r) // TILE * TILE
        rem = r[n:]
        folded = r[:n].reshape(-1, TILE).sum(axis=0)
        folded[: len(rem)] += rem
        folded -= folded.mean()
        cc = np.fft.irfft(np.fft.rfft(folded) * self._tpl, n=TILE)
        k = int(np.argmax(cc))
        z = float((cc[k] - cc.mean()) / (cc.std() + 1e-12))
        aligned = np.roll(folded, -k)
        lay = self.layout
        chips = (aligned * lay.pn).reshape(CHIPS, CHIP).sum(axis=1)
        soft = np.zeros(CODED_BITS)
        np.add.at(soft, lay.data_bit, chips[lay.data_idx] * lay.data_sign)
        soft /= np.std(soft) + 1e-12
        det = AudioDetection(None, z, k, [int(v > 0) for v in soft])
        if z >= SYNC_Z_THRESHOLD:
            bits = ecc.viterbi_decode(soft, PAYLOAD_BITS)
            raw = ecc.bits_to_bytes(bits)
            if ecc.crc16_ccitt(raw[:4]) == int.from_bytes(raw[4:], "big"):
                det.payload_id = int.from_bytes(raw[:4], "big")
        return det
