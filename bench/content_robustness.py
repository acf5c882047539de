"""Content robustness curve: found again vs kept side of a crop, plus 5 degree rotations and flips.

Held-out images, none of them among the 12 photographs the watermark was tuned on as they are
(bench/content_bench.py's REGISTERED list); each is made here, deterministically, from what the
installed wheels ship (no downloads):

- ``china-*`` / ``flower-*``: scikit-learn's two sample photographs, but a different region of each,
  mirrored or transposed and rescaled, so neither the pixels nor the geometry are those tuned on
  (derived from tuning photographs: the weakest part of the held-out claim, listed separately);
- ``digits-*``: mosaics of scikit-learn ``load_digits`` 8x8 digits, upscaled and tinted (flat areas,
  hard edges: the hardest host for an additive mark);
- ``faces``: a mosaic of scikit-image's LFW face subset (25x25 faces) upscaled;
- ``tex-*``: synthetic textures (1/f^2 colour noise, shaded Voronoi cells, woven sinusoids, a
  smooth sky with soft clouds);
- ``coins`` / ``gravel``: scikit-image photographs never watermarked before (they only served as
  unrelated negatives in content_bench).

Every image is registered through ``ContentService`` in a real ledger with a watermarked PNG copy;
the copy is cropped (kept side 90/75/50/35/25 % of each side, at the centre and at two corners),
rotated by 5 degrees (corners filled black, or cropped to the largest upright rectangle inside) and
mirrored, and each result is looked up with ``ContentService.verify`` (the path of
``ailedger content verify``).  "found" = the right entry is among the matches; "by watermark" = the
payload was read; a wrong entry matching is counted separately.  Reference, same run: the same
lookups with ``geometric=False`` (no flipped/rotated fingerprint search) and the global pHash alone.

    .venv/bin/python bench/content_robustness.py [--plot docs/img/content-robustness.png]

False matches: ``--negatives N`` unrelated images (bench/content_bench.py's generator: patches of
other wheel images, faces, noise, gradients, shapes) looked up in the same ledger, with and without
the flip/rotation search.

Last line: one JSON object with the figures, references and ratios.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ailedger.content import fingerprint as fp
from ailedger.content.service import IMAGE_DCT256_MATCH, IMAGE_PHASH_MATCH, ContentService
from ailedger.tlog.ledger import Ledger

KEPT = (90, 75, 50, 35, 25)
POSITIONS = ("centre", "top-left", "bottom-right")


def _u8(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    a = (a - a.min()) / max(1e-9, float(a.max() - a.min()))
    return (a * 255).round().astype(np.uint8)


def _rgb(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else np.stack([a] * 3, axis=2)


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((w, h), Image.BICUBIC))


def held_out_images() -> dict[str, np.ndarray]:
    import skimage.data
    from sklearn.datasets import load_digits, load_sample_image

    rng = np.random.default_rng(20261206)
    out: dict[str, np.ndarray] = {}
    china, flower = load_sample_image("china.jpg"), load_sample_image("flower.jpg")  # 427 x 640
    out["china-right-mirrored"] = _resize(china[:, 190:, :][:, ::-1], 560, 420)
    out["china-bottom-flipped-up"] = _resize(china[150:, :][::-1], 760, 450)
    out["flower-top-right-mirrored"] = _resize(flower[:300, 200:][:, ::-1], 520, 360)
    out["flower-transposed"] = _resize(np.ascontiguousarray(flower[40:, 60:560].transpose(1, 0, 2)), 400, 520)
    digits = load_digits().images
    for k, (rows, cols, up, tint) in enumerate([(9, 14, 5, (1.0, 0.7, 0.3)), (12, 12, 4, (0.3, 0.6, 1.0))]):
        idx = rng.choice(len(digits), rows * cols, replace=False)
        mosaic = np.block([[digits[idx[r * cols + c]] for c in range(cols)] for r in range(rows)])
        g = _resize(_u8(mosaic), mosaic.shape[1] * up, mosaic.shape[0] * up).astype(np.float64)
        out[f"digits-{k + 1}"] = np.clip(np.stack([40 + g * t * 0.8 for t in tint], 2), 0, 255).astype(np.uint8)
    faces = np.load(Path(skimage.data.__file__).parent / "lfw_subset.npy")
    fm = np.block([[faces[r * 8 + c] for c in range(8)] for r in range(6)])
    out["faces"] = _rgb(_resize(_u8(fm), 8 * 25 * 3, 6 * 25 * 3))
    h, w = 480, 720
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w)) ** 2
    out["tex-pink-noise"] = np.stack(
        [_u8(np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((h, w)))))) for _ in range(3)], 2)
    h, w = 500, 500
    pts = rng.random((60, 2)) * (h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.stack([np.hypot(yy - py, xx - px) for py, px in pts])
    lab = d.argmin(0)
    shade = np.sort(d, 0)[1] - np.sort(d, 0)[0]
    cols = rng.integers(40, 230, (60, 3))
    out["tex-voronoi"] = np.clip(cols[lab] * (0.55 + 0.45 * np.tanh(shade / 25))[..., None], 0, 255).astype(np.uint8)
    h, w = 450, 700
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    weave = np.sin(xx / 3.1) * (np.sin(yy / 17) > 0) + np.sin(yy / 2.7) * (np.sin(yy / 17) <= 0)
    out["tex-weave"] = np.stack([_u8(weave + 0.4 * ndimage.gaussian_filter(rng.normal(size=(h, w)), 2)
                                     + 0.3 * np.sin(xx / 90 + c)) for c in range(3)], 2)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    clouds = ndimage.gaussian_filter(rng.normal(size=(h, w)), 18)
    clouds = np.clip((clouds - clouds.mean()) / clouds.std(), 0, None)
    sky = np.stack([70 + 80 * yy / h, 120 + 60 * yy / h, 200 + 30 * yy / h], 2) + 40 * clouds[..., None]
    out["tex-sky"] = np.clip(sky, 0, 255).astype(np.uint8)
    out["coins"] = _rgb(skimage.data.coins())
    out["gravel"] = _rgb(skimage.data.gravel())
    return {k: np.ascontiguousarray(v[..., :3]) for k, v in out.items()}


def png(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "PNG")
    return b.getvalue()


def dec(b: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))


def crop(a: np.ndarray, kept: int, pos: str) -> np.ndarray:
    h, w = a.shape[:2]
    ch, cw = round(h * kept / 100), round(w * kept / 100)
    y, x = {"centre": ((h - ch) // 2, (w - cw) // 2), "top-left": (0, 0), "bottom-right": (h - ch, w - cw)}[pos]
    return a[y:y + ch, x:x + cw]


def rotate(a: np.ndarray, deg: float, inscribed: bool) -> np.ndarray:
    out = np.asarray(Image.fromarray(a).rotate(deg, resample=Image.BICUBIC))
    if not inscribed:
        return out
    h, w = a.shape[:2]
    t = np.radians(abs(deg))
    k = min(1 / (np.cos(t) + np.sin(t) * h / w), 1 / (np.cos(t) + np.sin(t) * w / h))
    ch, cw = int(h * k), int(w * k)
    y, x = (h - ch) // 2, (w - cw) // 2
    return out[y:y + ch, x:x + cw]


def cases(marked: np.ndarray) -> list[tuple[str, np.ndarray]]:
    out = [(f"crop{k}-{p}", crop(marked, k, p)) for k in KEPT for p in POSITIONS]
    out += [("rotate5-black-corners", rotate(marked, 5, False)), ("rotate5-cropped", rotate(marked, 5, True)),
            ("rotate-5-cropped", rotate(marked, -5, True)), ("hflip", marked[:, ::-1]),
            ("hflip+crop90", crop(marked[:, ::-1], 90, "centre"))]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plot", help="write the recall-vs-kept-side curve as a PNG here")
    ap.add_argument("--images", type=int, default=0, help="use only the first N held-out images (0 = all)")
    ap.add_argument("--negatives", type=int, default=100,
                    help="unrelated images (content_bench's generator) looked up for false matches")
    ap.add_argument("--no-positives", action="store_true", help="only the false-match part")
    args = ap.parse_args()
    t0 = time.time()
    imgs = held_out_images()
    if args.images:
        imgs = dict(list(imgs.items())[: args.images])
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        led = Ledger.init(Path(tmp) / "ledger", origin="bench.example/robustness")
        ident, _ = led.new_identity("bench")
        svc = ContentService(led)
        reg: dict[str, tuple[int, np.ndarray, dict]] = {}
        for name, a in imgs.items():
            out = Path(tmp) / f"{name}.marked.png"
            r = svc.register(None, ident, data=png(a), name=f"{name}.png", marked_out=out)
            reg[name] = (r["entry"], dec(out.read_bytes()), r["record"])
            print(f"registered {name} {a.shape[1]}x{a.shape[0]} entry {r['entry']} "
                  f"psnr {r['record']['watermark']['psnr_centi_db'] / 100:.1f} dB", flush=True)
        neg = {"images": 0, "false_matches": 0, "false_matches_without_search": 0, "by": {}, "max_sync_z": 0.0}
        if args.negatives:
            sys.path.insert(0, str(Path(__file__).parent))
            from content_bench import unrelated_images

            for i, a in enumerate(unrelated_images(args.negatives, np.random.default_rng(99), {})):
                for geometric in (True, False):
                    res = svc.verify(None, data=png(a), name=f"neg{i}.png", geometric=geometric)
                    if res["matches"]:
                        neg["false_matches" if geometric else "false_matches_without_search"] += 1
                        for m in res["matches"]:
                            for e in m["evidence"]:
                                k = e["how"] + (f" ({e['transform']})" if e.get("transform") else "")
                                neg["by"][k] = neg["by"].get(k, 0) + 1
                    if geometric:
                        neg["max_sync_z"] = max(neg["max_sync_z"], (res.get("watermark") or {}).get("sync_z_centi", 0) / 100)
                neg["images"] += 1
            print(f"unrelated images: {neg['images']}, false matches {neg['false_matches']} "
                  f"(without flip/rotation search {neg['false_matches_without_search']}), max sync z {neg['max_sync_z']}",
                  flush=True)
        for name, (entry, marked, body) in reg.items():
            if args.no_positives:
                break
            for case, arr in cases(marked):
                if min(arr.shape[:2]) < 16:
                    continue
                data = png(arr)
                row = {"image": name, "case": case, "w": int(arr.shape[1]), "h": int(arr.shape[0])}
                for geometric in (True, False):
                    t1 = time.perf_counter()
                    res = svc.verify(None, data=data, name=f"{name}.{case}.png", geometric=geometric)
                    dt = time.perf_counter() - t1
                    ents = {m["entry"] for m in res["matches"]}
                    how = {e["how"] for m in res["matches"] if m["entry"] == entry for e in m["evidence"]}
                    tag = "" if geometric else "_plain"
                    row["found" + tag] = entry in ents
                    row["wrong" + tag] = len(ents - {entry})
                    row["by_wm" + tag] = "watermark" in how
                    row["by_fp" + tag] = "near-duplicate" in how
                    row["seconds" + tag] = round(dt, 3)
                    row["sync_z" + tag] = (res.get("watermark") or {}).get("sync_z_centi", 0) / 100
                # reference: the registered global pHash alone (marked copy), the classic lookup
                ph, dc = fp.phash64(arr), fp.dct256(arr)
                mf = body["watermark"]["marked_fingerprints"]
                row["phash_only"] = (fp.hamming(ph, int(mf["phash64"], 16)) <= IMAGE_PHASH_MATCH
                                     and fp.hamming(dc, int(mf["dct256"], 16)) <= IMAGE_DCT256_MATCH)
                rows.append(row)
                print(f"{name:28s} {case:24s} {row['w']:4d}x{row['h']:<4d} found={int(row['found'])} "
                      f"wm={int(row['by_wm'])} fp={int(row['by_fp'])} plain={int(row['found_plain'])} "
                      f"z={row['sync_z']:.1f} {row['seconds']:.2f}s", flush=True)
        svc.close()
        led.close()

    if not rows:
        print(json.dumps({"bench": "content_robustness", "images": sorted(imgs), "false_match": neg,
                          "seconds": round(time.time() - t0, 1)}))
        return 0

    def agg(sel: list[dict]) -> dict:
        n = len(sel)
        return {"cases": n,
                "found_pct": round(100 * sum(r["found"] for r in sel) / n, 1),
                "by_watermark_pct": round(100 * sum(r["by_wm"] for r in sel) / n, 1),
                "by_fingerprint_pct": round(100 * sum(r["by_fp"] for r in sel) / n, 1),
                "plain_found_pct": round(100 * sum(r["found_plain"] for r in sel) / n, 1),
                "phash_only_pct": round(100 * sum(r["phash_only"] for r in sel) / n, 1),
                "wrong_entry_matches": sum(r["wrong"] for r in sel)}

    curve = {}
    for k in KEPT:
        curve[str(k)] = agg([r for r in rows if r["case"].startswith(f"crop{k}-")])
        for p in POSITIONS:
            curve[f"{k}-{p}"] = agg([r for r in rows if r["case"] == f"crop{k}-{p}"])
    geo = {c: agg([r for r in rows if r["case"] == c]) for c in
           ("rotate5-black-corners", "rotate5-cropped", "rotate-5-cropped", "hflip", "hflip+crop90")}
    print()
    print("| kept side | cases | found | by watermark | by fingerprint | global pHash alone | wrong entry |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k in KEPT:
        c = curve[str(k)]
        print(f"| {k} % | {c['cases']} | {c['found_pct']} % | {c['by_watermark_pct']} % | "
              f"{c['by_fingerprint_pct']} % | {c['phash_only_pct']} % | {c['wrong_entry_matches']} |")
    print()
    print("| transformation | cases | found | by watermark | by fingerprint | without flip/rotation search |"
          " global pHash alone |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c, g in geo.items():
        print(f"| {c} | {g['cases']} | {g['found_pct']} % | {g['by_watermark_pct']} % | {g['by_fingerprint_pct']} % |"
              f" {g['plain_found_pct']} % | {g['phash_only_pct']} % |")
    secs = [r["seconds"] for r in rows]
    secs_plain = [r["seconds_plain"] for r in rows]
    p50, p50_plain = float(np.median(secs)), float(np.median(secs_plain))
    print(f"\nverify p50 {p50:.3f} s with flip/rotation search, {p50_plain:.3f} s without")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
        ks = list(KEPT)
        for key, label, style in (("found_pct", "found (any evidence)", "o-"),
                                  ("by_watermark_pct", "watermark read", "s--"),
                                  ("by_fingerprint_pct", "fingerprint match", "^:"),
                                  ("phash_only_pct", "global pHash alone", "x-.")):
            ax.plot(ks, [curve[str(k)][key] for k in ks], style, label=label)
        ax.set_xlabel("kept side of the crop (% of width and of height)")
        ax.set_ylabel(f"recall, % of {curve[str(KEPT[0])]['cases']} crops per point")
        ax.set_title(f"Crops of {len(imgs)} held-out watermarked images (centre + 2 corners)")
        ax.set_ylim(-3, 103)
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot)
        print(f"plot written to {args.plot}")
    ratios = {f"crop{k}_found_vs_phash_only": (round(curve[str(k)]["found_pct"] / curve[str(k)]["phash_only_pct"], 2)
                                               if curve[str(k)]["phash_only_pct"] else None) for k in KEPT}
    ratios.update({f"{c}_found_vs_without_search": (round(g["found_pct"] / g["plain_found_pct"], 2)
                                                     if g["plain_found_pct"] else None) for c, g in geo.items()})
    ratios["verify_p50_with_over_without_search"] = round(p50 / p50_plain, 2) if p50_plain else None
    print(json.dumps({"bench": "content_robustness", "images": sorted(imgs), "crop_curve": curve,
                      "geometric": geo, "false_match": neg,
                      "references": {"phash_only": "registered global phash64<=10 and dct256<=64 of the marked copy",
                                     "without_search": "verify(geometric=False), same run"},
                      "ratios": ratios, "verify_p50_s": round(p50, 3), "verify_p50_s_without_search": round(p50_plain, 3),
                      "seconds": round(time.time() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
