import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from ailedger.content import watermark as wm
from ailedger.errors import BadInputError

KEY = wm.WatermarkKey(b"test-key-0123456789abcdef0123456")


def _png_roundtrip(a):
    b = io.BytesIO()
    Image.fromarray(a).save(b, "PNG")
    return np.asarray(Image.open(b).convert("RGB"))


def _jpeg(a, q=75):
    b = io.BytesIO()
    Image.fromarray(a).save(b, "JPEG", quality=q)
    return np.asarray(Image.open(b).convert("RGB"))


def _half(a):
    im = Image.fromarray(a)
    return np.asarray(im.resize((im.width // 2, im.height // 2), Image.BICUBIC))


@pytest.fixture(scope="module")
def marked():
    a = data.coffee()  # 600 x 400
    m, params = wm.embed(a, 0xC0FFEE42, KEY)
    assert params.psnr_db > 34
    return a, m


@pytest.mark.parametrize("transform", ["none", "jpeg75", "half", "crop10", "half+jpeg75"])
def test_payload_survives(marked, transform):
    _, m = marked
    t = {"none": _png_roundtrip, "jpeg75": _jpeg, "half": _half,
         "crop10": lambda x: x[17:17 + 360, 41:41 + 540], "half+jpeg75": lambda x: _jpeg(_half(x))}[transform]
    d = wm.Detector(KEY).detect(t(m))
    assert d.payload_id == 0xC0FFEE42
    assert wm.bit_accuracy(d.raw_bits, 0xC0FFEE42) >= 0.95


def test_unmarked_and_wrong_key_read_nothing(marked):
    a, m = marked
    assert wm.Detector(KEY).detect(a).payload_id is None
    assert wm.Detector(wm.WatermarkKey(b"another key")).detect(m).payload_id is None


def test_random_noise_reads_nothing():
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = (rng.random((300, 300, 3)) * 255).astype(np.uint8)
        d = wm.Detector(KEY).detect(x)
        assert d.payload_id is None and d.sync_z < wm.SYNC_Z_THRESHOLD


def test_too_small_to_watermark():
    with pytest.raises(BadInputError, match="too small"):
        wm.embed(np.zeros((100, 400, 3), np.uint8), 1, KEY)
    with pytest.raises(BadInputError):
        wm.Detector(KEY).detect(np.zeros((20, 20, 3), np.uint8))


def test_bad_inputs():
    with pytest.raises(BadInputError):
        wm.embed(np.zeros((200, 200, 3), np.float32), 1, KEY)
    with pytest.raises(BadInputError):
        wm.payload_bits(2**32)


def test_smallest_watermarkable_image_decodes_blind():
    a = np.asarray(Image.fromarray(data.coffee()).resize((192, 128)))
    m, params = wm.embed(a, 77, KEY)
    assert params.chip == 2
    assert wm.Detector(KEY).detect(_jpeg(m)).payload_id == 77
