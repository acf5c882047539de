"""Crops down to a quarter of the side, mirrored and slightly turned copies (issue 17).

Hosts here are built from scikit-learn's sample photograph "flower" (a region, mirrored, rescaled)
and from load_digits: not the coffee photograph the other watermark tests use.
"""

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits, load_sample_image

from ailedger.content import fingerprint as fp
from ailedger.content import watermark as wm

from .conftest import png_bytes

KEY = wm.WatermarkKey(b"geometry-test-key-0123456789abcd")
ID = 0x5EED1234


def _host() -> np.ndarray:
    f = load_sample_image("flower.jpg")[60:420, 80:620][:, ::-1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(f)).resize((600, 400), Image.BICUBIC))


@pytest.fixture(scope="module")
def marked():
    m, params = wm.embed(_host(), ID, KEY)
    return m, 32.0 * params.chip


def _crop(a, kept, corner):
    h, w = a.shape[:2]
    ch, cw = round(h * kept), round(w * kept)
    y, x = {"centre": ((h - ch) // 2, (w - cw) // 2), "corner": (h - ch, w - cw)}[corner]
    return a[y:y + ch, x:x + cw]


@pytest.mark.parametrize("corner", ["centre", "corner"])
def test_half_side_crop_with_the_registered_period(marked, corner):
    m, period = marked
    # 300 x 200: 1.5 tiles on the short side, too few for the autocorrelation; the service passes
    # the registered period unscaled (it used to scale it by the width ratio, as for a resize)
    c = _crop(m, 0.5, corner)
    assert wm.Detector(KEY).detect(c, period_hints=[period]).payload_id == ID


def test_quarter_side_crop_is_a_weak_read(marked):
    m, period = marked
    c = _crop(m, 0.35, "centre")  # 210 x 140: about one tile
    d = wm.Detector(KEY).detect(c, period_hints=[period], weak_reads=12)
    assert d.payload_id == ID or ID in [p for p, _ in d.weak_candidates]


def test_unmarked_gives_no_weak_candidates():
    a = _host()
    for kept in (1.0, 0.5):
        d = wm.Detector(KEY).detect(_crop(a, kept, "centre"), period_hints=[128.0, 96.0], weak_reads=12,
                                    mirrored=True)
        assert d.payload_id is None and d.weak_candidates == []


def test_mirrored_copy_read_only_when_asked(marked):
    m, _ = marked
    flipped = np.ascontiguousarray(m[:, ::-1])
    assert wm.Detector(KEY).detect(flipped).payload_id is None
    d = wm.Detector(KEY).detect(flipped, mirrored=True)
    assert d.payload_id == ID and d.mirrored


def test_geometric_variants_are_bounded_and_deterministic():
    a = _host()
    v = fp.geometric_variants(a)
    assert v[0][0] == "mirrored" and len(v) == 1 + len(fp.LOOKUP_ANGLES)
    assert v == fp.geometric_variants(a)
    # the mirror image's hashes are those of the mirrored array
    small = np.asarray(Image.fromarray(a).resize((256, 171), Image.BOX))
    assert fp.hamming(v[0][1], fp.phash64(small[:, ::-1])) <= 4


def _digits_host() -> np.ndarray:
    d = load_digits().images[:96]
    mosaic = np.block([[d[r * 12 + c] for c in range(12)] for r in range(8)])  # 64 x 96
    g = (mosaic / 16 * 200 + 30).astype(np.uint8)
    g = np.asarray(Image.fromarray(g).resize((576, 384), Image.BICUBIC))
    return np.stack([g, g // 2 + 60, 255 - g], axis=2)


@pytest.mark.parametrize("how", ["mirror", "rotate5", "rotate-5"])
def test_service_finds_mirrored_and_turned_copies(tmp_path, svc, alice, how):
    a = _host()
    src = tmp_path / "flower.png"
    src.write_bytes(png_bytes(a))
    entry = svc.register(src, alice)["entry"]  # no watermark: fingerprints only
    im = Image.fromarray(a)
    if how == "mirror":
        b = np.ascontiguousarray(a[:, ::-1])
    else:
        deg = 5 if how == "rotate5" else -5
        r = np.asarray(im.rotate(deg, resample=Image.BICUBIC))
        b = np.ascontiguousarray(r[30:370, 45:555])  # the upright part without black corners
    plain = svc.verify(None, data=png_bytes(b), name="b.png", geometric=False)
    assert plain["verdict"] == "no match"  # what lookups did before
    v = svc.verify(None, data=png_bytes(b), name="b.png")
    assert v["verdict"] == "near-duplicate" and v["matches"][0]["entry"] == entry
    ev = v["matches"][0]["evidence"][0]
    assert ev["transform"] == "mirrored" if how == "mirror" else ev["transform"].startswith("rotated")
    assert any("(mirrored)" in ln or "(rotated" in ln for ln in v["summary"])
    # an unrelated image still matches nothing, with every variant searched
    u = svc.verify(None, data=png_bytes(_digits_host()), name="u.png")
    assert u["verdict"] == "no match"


def test_service_reads_half_crop_and_mirror_of_marked_copy(tmp_path, svc, alice):
    src = tmp_path / "digits.png"
    src.write_bytes(png_bytes(_digits_host()))
    out = tmp_path / "digits.marked.png"
    entry = svc.register(src, alice, marked_out=out)["entry"]
    m = np.asarray(Image.open(out).convert("RGB"))
    for b in (_crop(m, 0.5, "corner"), _crop(m, 0.5, "centre"), np.ascontiguousarray(m[:, ::-1])):
        v = svc.verify(None, data=png_bytes(np.ascontiguousarray(b)), name="b.png")
        assert v["watermark"]["found"] and v["watermark"]["entry"] == entry, v["watermark"]
        assert any(e["how"] == "watermark" for mt in v["matches"] for e in mt["evidence"])
