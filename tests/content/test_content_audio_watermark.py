import numpy as np
import pytest
from scipy import signal

from ailedger.content import audio_watermark as awm
from ailedger.content.watermark import bit_accuracy
from ailedger.errors import BadInputError

KEY = awm.AudioKey(b"audio-test-key")
RATE = 22050


@pytest.fixture(scope="module")
def host():
    rng = np.random.default_rng(0)
    t = np.arange(RATE * 9) / RATE
    x = sum(np.sin(2 * np.pi * f * t + i) * (0.5 + 0.5 * np.sin(2 * np.pi * (0.3 + 0.1 * i) * t))
            for i, f in enumerate([220, 277, 330, 440, 554, 660, 880]))
    return x / np.abs(x).max() * 0.5 + 0.01 * rng.normal(size=len(t))


@pytest.fixture(scope="module")
def marked(host):
    y, snr = awm.embed(host, RATE, 0x5A5A1234, KEY)
    assert snr > 28
    return y


@pytest.mark.parametrize("name", ["none", "volume", "resample16k", "crop", "noise20dB", "pcm16"])
def test_audio_payload_survives(marked, name):
    rng = np.random.default_rng(1)
    x, r = {
        "none": (marked, RATE),
        "volume": (marked * 0.3, RATE),
        "resample16k": (signal.resample_poly(marked, 320, 441), 16000),
        "crop": (marked[int(1.37 * RATE):int(7.9 * RATE)], RATE),
        "noise20dB": (marked + rng.normal(size=len(marked)) * np.sqrt(np.mean(marked**2)) * 0.1, RATE),
        "pcm16": (np.round(marked * 32767) / 32767, RATE),
    }[name]
    d = awm.AudioDetector(KEY).detect(x, r)
    assert d.payload_id == 0x5A5A1234 and bit_accuracy(d.raw_bits, 0x5A5A1234) >= 0.95


def test_unmarked_and_wrong_key(host, marked):
    assert awm.AudioDetector(KEY).detect(host, RATE).payload_id is None
    assert awm.AudioDetector(awm.AudioKey(b"other")).detect(marked, RATE).payload_id is None


def test_too_short_or_low_rate(host):
    with pytest.raises(BadInputError, match="too short"):
        awm.embed(host[: RATE * 2], RATE, 1, KEY)
    with pytest.raises(BadInputError, match="too low"):
        awm.embed(host[::4], 5512, 1, KEY)
    with pytest.raises(BadInputError):
        awm.AudioDetector(KEY).detect(host[: RATE], RATE)
