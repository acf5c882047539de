import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.content import ecc


def test_crc16_check_value():
    assert ecc.crc16_ccitt(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE catalogue check value


def test_bits_roundtrip():
    assert ecc.bits_to_bytes(ecc.bytes_to_bits(b"\x00\xffab")) == b"\x00\xffab"


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=6, max_size=6), st.integers(0, 2**32 - 1))
def test_viterbi_corrects_scattered_errors(payload, seed):
    bits = ecc.bytes_to_bits(payload)
    code = np.array(ecc.conv_encode(bits), dtype=float) * 2 - 1
    rng = np.random.default_rng(seed)
    noisy = code + rng.normal(0, 0.35, size=code.shape)
    start = int(rng.integers(0, 20))
    flip = [start, start + 30, start + 60]  # plus 3 well-separated hard errors (free distance is 10)
    noisy[flip] = -code[flip]
    assert ecc.viterbi_decode(noisy, len(bits)) == bits


def test_viterbi_rejects_wrong_length():
    import pytest

    with pytest.raises(ValueError):
        ecc.viterbi_decode([0.0] * 10, 48)
