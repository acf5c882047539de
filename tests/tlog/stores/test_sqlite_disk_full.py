"""SQLite on a full disk: the write transaction fails with StorageError (what happened), never with the
raw driver error of a second ROLLBACK after SQLite already rolled back by itself; nothing is half-written."""

import subprocess

import pytest

from ailedger.errors import StorageError
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow, SQLiteStore


@pytest.fixture
def small_disk(tmp_path):
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(d)], capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + r.stderr.decode().strip())
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_full_disk_is_a_storage_error_and_rolls_back(small_disk):
    s = SQLiteStore(small_disk / "l.db", create=True)
    size = 0
    with pytest.raises(StorageError) as info:
        for b in range(1000):
            rows = [LeafRow(d, leaf_hash(d)) for d in (f"{b}-{i}-".encode() + b"x" * 1500 for i in range(20))]
            with s.writer() as w:
                w.add_leaves(size, rows)
            size += 20
    assert "full" in str(info.value).lower(), info.value
    assert s.size() == size and s.index_row_count() == size  # the failed batch left nothing behind
    s.close()
