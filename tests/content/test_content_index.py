import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.content.index import FingerprintStore, HammingIndex


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([64, 256]), st.integers(0, 15))
def test_mih_equals_brute_force(seed, bits, radius):
    rng = np.random.default_rng(seed)
    words = bits // 64
    base = rng.integers(0, 2**63, size=(500, words), dtype=np.uint64) * np.uint64(2)
    idx = HammingIndex(bits)
    idx.add_many(base)
    # queries near existing rows, so there are hits to find
    for _ in range(5):
        row = int(rng.integers(0, 500))
        code = 0
        for w in base[row]:
            code = (code << 64) | int(w)
        for b in rng.choice(bits, int(rng.integers(0, radius + 3)), replace=False):
            code ^= 1 << int(b)
        assert idx.search(code, radius) == idx.brute(code, radius)


def test_empty_and_nearest():
    idx = HammingIndex(64)
    assert idx.search(123, 5) == [] and idx.brute(123, 5) == []
    idx.add(0b1111)
    idx.add(0)
    assert [h.row for h in idx.nearest_brute(0b0111, 1)] == [0]


def test_store_persists_and_groups_by_entry(tmp_path):
    s = FingerprintStore(tmp_path / "i.sqlite")
    s.add("phash64", 0xFFFF0000FFFF0000, 7)
    s.add("phash64", 0xFFFF0000FFFF0001, 7)
    s.add("phash64", 0x0F0F0F0F0F0F0F0F, 9)
    s.add_watermark(0xDEADBEEF, 7)
    s.close()
    s = FingerprintStore(tmp_path / "i.sqlite")
    hits = s.search("phash64", 0xFFFF0000FFFF0003, 4)
    assert [(h.entry, h.distance) for h in hits] == [(7, 1)]
    assert s.watermark_entry(0xDEADBEEF) == 7 and s.watermark_entry(1) is None
    assert s.max_entry() == 9
    s.close()
