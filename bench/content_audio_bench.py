"""Audio watermark (ailedger-awm1) robustness on SYNTHETIC music-like signals.

No real recordings ship inside any installed wheel (and nothing may be downloaded), so the hosts are
generated: random chords with tremolo envelopes, a plucked bass line, percussive noise bursts and a
noise floor.  Treat the figures as a sanity check of the design, not as a real-music measurement.

    .venv/bin/python bench/content_audio_bench.py [--songs 20] [--negatives 200]

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import io
import json
import sys
import time

import numpy as np
from scipy import signal

from ailedger.content import audio_watermark as awm
from ailedger.content.watermark import bit_accuracy


def song(rng: np.random.Generator, rate: int, seconds: float) -> np.ndarray:
    n = int(rate * seconds)
    t = np.arange(n) / rate
    x = np.zeros(n)
    root = rng.uniform(110, 330)
    for _ in range(int(rng.integers(3, 7))):
        f = root * 2 ** (int(rng.integers(0, 24)) / 12)
        x += np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 2) * t))
    beat = int(rate * rng.uniform(0.25, 0.6))
    for s in range(0, n - 2000, beat):
        k = min(n - s, int(rate * 0.15))
        env = np.exp(-np.arange(k) / (rate * 0.03))
        if rng.random() < 0.5:
            x[s:s + k] += 1.5 * rng.normal(size=k) * env
        else:
            x[s:s + k] += 2.0 * np.sin(2 * np.pi * root / 2 * np.arange(k) / rate) * env
    x /= np.abs(x).max()
    return 0.7 * x + 0.003 * rng.normal(size=n)


def aac(a: np.ndarray, rate: int, bitrate: int) -> np.ndarray:
    import av

    buf = io.BytesIO()
    c = av.open(buf, "w", format="mp4")
    s = c.add_stream("aac", rate=rate)
    s.bit_rate = bitrate
    s.layout = "mono"
    fr = av.AudioFrame.from_ndarray((np.clip(a, -1, 1)[None, :] * 32767).astype(np.int16), format="s16",
                                    layout="mono")
    fr.sample_rate = rate
    for p in s.encode(fr):
        c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    buf.seek(0)
    with av.open(buf) as d:
        return np.concatenate([f.to_ndarray().astype(np.float64).reshape(-1) for f in d.decode(audio=0)])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--songs", type=int, default=20)
    ap.add_argument("--negatives", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(11)
    key = awm.AudioKey(b"bench-audio-key")
    det = awm.AudioDetector(key)
    transforms = {
        "none": lambda a, r: (a, r),
        "volume_x0.3": lambda a, r: (a * 0.3, r),
        "resample_16k": lambda a, r: (signal.resample_poly(a, 16000, r), 16000),
        "crop_random_6s": lambda a, r: (a[int(r * rng.uniform(0, 3)):][: int(r * 6)], r),
        "noise_20dB": lambda a, r: (a + rng.normal(size=len(a)) * np.sqrt(np.mean(a**2)) * 0.1, r),
        "aac_64k": lambda a, r: (aac(a, r, 64000), r),
    }
    res: dict[str, dict[str, list[float]]] = {k: {"acc": [], "ok": []} for k in transforms}
    snrs = []
    t0 = time.perf_counter()
    for i in range(args.songs):
        rate = 44100 if i % 2 else 22050
        x = song(rng, rate, float(rng.uniform(9, 12)))
        pid = int(rng.integers(0, 2**32))
        y, snr = awm.embed(x, rate, pid, key)
        snrs.append(snr)
        for name, tf in transforms.items():
            a, r = tf(y, rate)
            d = det.detect(a, r)
            res[name]["acc"].append(bit_accuracy(d.raw_bits, pid))
            res[name]["ok"].append(float(d.payload_id == pid))
    per = {k: {"bit_accuracy_mean_pct": round(100 * float(np.mean(v["acc"])), 2),
               "bit_accuracy_min_pct": round(100 * float(np.min(v["acc"])), 2),
               "payload_decoded_pct": round(100 * float(np.mean(v["ok"])), 2)} for k, v in res.items()}
    for k, v in per.items():
        print(f"{k:15s} bit acc mean {v['bit_accuracy_mean_pct']:6.2f}% min {v['bit_accuracy_min_pct']:6.2f}% "
              f"payload {v['payload_decoded_pct']:6.2f}%")
    false_reads, zmax = 0, 0.0
    for i in range(args.negatives):
        rate = 22050
        a = song(rng, rate, 6.0) if i % 2 else rng.normal(size=rate * 6) * 0.2
        d = det.detect(a, rate)
        false_reads += int(d.payload_id is not None)
        zmax = max(zmax, d.sync_z)
    print(f"unmarked signals: {false_reads}/{args.negatives} payloads read, max sync z {zmax:.2f} "
          f"(threshold {awm.SYNC_Z_THRESHOLD}); mean SNR host/mark {np.mean(snrs):.1f} dB")
    print(json.dumps({"bench": "content_audio_watermark", "hosts": "synthetic", "songs": args.songs,
                      "snr_db_mean": round(float(np.mean(snrs)), 2), "per_transform": per,
                      "negatives": args.negatives, "false_payload_reads": false_reads,
                      "max_sync_z_unmarked": round(zmax, 2), "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
