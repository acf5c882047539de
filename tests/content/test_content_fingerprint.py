import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from ailedger.content import fingerprint as fp
from ailedger.errors import BadInputError


def _jpeg(a, q=75):
    b = io.BytesIO()
    Image.fromarray(a).save(b, "JPEG", quality=q)
    return np.asarray(Image.open(b).convert("RGB"))


def test_area_resize_preserves_mean_and_identity():
    x = np.random.default_rng(0).random((37, 53))
    assert np.allclose(fp.area_resize(x, 37, 53), x)
    assert abs(fp.area_resize(x, 8, 8).mean() - x.mean()) < 1e-9


def test_image_hashes_survive_jpeg_and_separate_photos():
    a, c = data.astronaut(), data.coffee()
    assert fp.hamming(fp.phash64(a), fp.phash64(_jpeg(a))) <= 4
    assert fp.hamming(fp.dct256(a), fp.dct256(_jpeg(a))) <= 20
    assert fp.hamming(fp.phash64(a), fp.phash64(c)) > 16
    assert fp.hamming(fp.dct256(a), fp.dct256(c)) > 80


def test_crop_grid_finds_a_cropped_copy():
    a = data.astronaut()
    grid = fp.crop_grid(a)
    assert len(grid) == 2 * 25
    c = a[30:30 + 461, 20:20 + 461]  # 90% x 90% at an off-grid offset
    ph, _dc = fp.phash64(c), fp.dct256(c)
    assert min(fp.hamming(ph, g) for g, _ in grid) <= 8
    assert fp.hamming(ph, fp.phash64(a)) > min(fp.hamming(ph, g) for g, _ in grid)


def test_too_small_image_is_bad_input():
    with pytest.raises(BadInputError):
        fp.phash64(np.zeros((4, 4), dtype=np.uint8))


def test_text_normalisation_and_near_duplicates():
    t = "The quick brown fox jumps over the lazy dog, again and again, near the river bank today."
    assert fp.text_sha256(t) == fp.text_sha256("  THE quick\u200b brown fox   jumps over the lazy dog again and again "
                                                "near the river bank today!")
    edited = t.replace("lazy", "sleepy")
    assert fp.hamming(fp.simhash64(t), fp.simhash64(edited)) <= 12
    other = "Completely unrelated sentence about ledgers, Merkle trees and signed checkpoints for audit."
    assert fp.hamming(fp.simhash64(t), fp.simhash64(other)) > 16
    assert fp.minhash_jaccard(fp.minhash(t), fp.minhash(edited)) > 0.5
    assert fp.minhash_jaccard(fp.minhash(t), fp.minhash(other)) < 0.2
    with pytest.raises(BadInputError):
        fp.simhash64("   ...  ")


def test_audio_phash_survives_volume_and_resampling():
    rng = np.random.default_rng(1)
    rate = 16000
    t = np.arange(rate * 2) / rate
    sig = sum(np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(2 * np.pi * r * t))
              for f, r in [(220, 1.0), (440, 1.5), (880, 0.7), (1320, 2.3)]) / 4
    sig = sig + 0.01 * rng.normal(size=len(t))
    h = fp.audio_phash64(sig, rate)
    quiet = fp.audio_phash64(sig * 0.3, rate)
    resampled = fp.audio_phash64(sig[::2], rate // 2)  # 8 kHz
    other = fp.audio_phash64(rng.normal(size=len(t)) * 0.3, rate)
    assert fp.hamming(h, quiet) <= 4
    assert fp.hamming(h, resampled) <= 10
    assert fp.hamming(h, other) > 16
    with pytest.raises(BadInputError):
        fp.audio_phash64(sig[:100], rate)
