import os
import random

import pytest

from ailedger.core.errors import BadInputError
from ailedger.services.blobs.erasure import Coding, StripeDecoder, StripeEncoder


@pytest.mark.parametrize("k,n", [(1, 1), (1, 3), (10, 30), (29, 80)])
@pytest.mark.parametrize("size", [0, 1, 999, 100_000])
def test_any_k_shards_decode(k, n, size):
    c = Coding.for_size(size, k, n, 4096)
    data = os.urandom(size)
    enc, dec = StripeEncoder(c), StripeDecoder(c)
    shards = [bytearray() for _ in range(n)]
    for s in range(c.stripes):
        for i, p in enumerate(enc.encode(data[s * c.stripe:(s + 1) * c.stripe])):
            shards[i] += p
    assert all(len(x) == c.shard_size for x in shards)
    assert bytes(shards[0][: min(c.unit, size)]) == data[: c.unit]  # systematic
    for trial in range(3):
        pick = random.sample(range(n), k)
        out = b""
        for s in range(c.stripes):
            out += dec.decode({i: bytes(shards[i][s * c.unit:(s + 1) * c.unit]) for i in pick})
        assert out[:size] == data


def test_partial_reencode_matches_full():
    c = Coding.for_size(50_000, 10, 30, 1000)
    stripe = os.urandom(c.stripe)
    enc = StripeEncoder(c)
    full = enc.encode(stripe)
    assert enc.encode(stripe, [3, 17, 29]) == [full[3], full[17], full[29]]


def test_bad_parameters():
    for k, n in [(0, 3), (4, 3), (10, 257)]:
        with pytest.raises(BadInputError):
            Coding(k, n, 1, 0)
    c = Coding.for_size(100, 10, 30)
    with pytest.raises(BadInputError):
        StripeDecoder(c).decode({0: b"x"})
    with pytest.raises(BadInputError):
        Coding.from_dict({"algorithm": "other", "k": 1, "n": 1, "unit": 1, "size": 0})
    assert Coding.from_dict(c.to_dict()) == c
