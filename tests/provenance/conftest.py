import json
import os
import struct

import pytest


def write_safetensors(path, tensors, pad_to=8):
    """tensors: {name: (dtype, shape, bytes)} -> a safetensors file (format: u64 LE header length,
    JSON header with data_offsets relative to the data section, then the data)."""
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % pad_to)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


@pytest.fixture
def ledger(tmp_path):
    from ailedger.tlog.ledger import Ledger

    lg = Ledger.init(tmp_path / "ledger", origin="test.example/ledger")
    yield lg
    lg.close()


@pytest.fixture
def alice(ledger):
    return ledger.identities.create("alice")


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    rng = __import__("random").Random(7)
    write_safetensors(d / "model.safetensors", {
        "embed.weight": ("F32", (64, 32), bytes(rng.getrandbits(8) for _ in range(64 * 32 * 4))),
        "layer.0.bias": ("F32", (32,), bytes(rng.getrandbits(8) for _ in range(32 * 4))),
        "layer.0.weight": ("F16", (32, 300), bytes(rng.getrandbits(8) for _ in range(32 * 300 * 2))),
    })
    (d / "config.json").write_text('{"hidden": 32}\n')
    (d / "sub").mkdir()
    (d / "sub" / "tokenizer.txt").write_bytes(os.urandom(5000))
    (d / "empty.txt").write_bytes(b"")
    return d


@pytest.fixture(scope="module")
def cluster():
    """A real Dask LocalCluster (two worker processes on 127.0.0.1), one per test module that asks."""
    distributed = pytest.importorskip("distributed")
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                 host="127.0.0.1", silence_logs=40)
    yield c
    c.close()


@pytest.fixture
def engine(cluster):
    """The provenance Dask engine, connected to that cluster."""
    from ailedger.provenance.distributed import DaskEngine

    with DaskEngine(cluster.scheduler_address) as eng:
        yield eng
