"""Subject for instruction counts of a blob put / get to S3 targets (load-independent figures).

    valgrind --tool=callgrind --callgrind-out-file=cg.MODE.%p .venv/bin/python bench/blob_s3_callgrind.py MODE [--size-mib 32]

MODE ``none`` starts one SeaweedFS (tests/seaweed.py; its process is not traced: valgrind does not follow
children by default), builds the ledger, the blob service and the boto3 client and imports everything a
put or get uses; ``put`` does that and one `BlobService.put` of a SIZE MiB random file to three buckets
(2-of-3); ``get`` does that put and one `BlobService.get`. Instructions of a put = Ir(put) - Ir(none); of a
get = Ir(get) - Ir(put). Alternate ``PYTHONPATH`` (main's src vs a branch's) to compare code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: the test helpers (weed)
from tests.seaweed import SeaweedS3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["none", "put", "get"])
    ap.add_argument("--size-mib", type=int, default=32)
    a = ap.parse_args()

    import boto3  # noqa: F401 - imported in every mode, so the differences are the operations alone
    import pyeclib.ec_iface  # type: ignore[import-untyped]  # noqa: F401
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401

    from ailedger.blobs.erasure import StripeDecoder, StripeEncoder  # noqa: F401
    from ailedger.blobs.s3 import s3_client
    from ailedger.blobs.service import BlobService
    from ailedger.tlog.ledger import Ledger

    tmp = Path(tempfile.mkdtemp(prefix="ailedger-s3cg-"))
    src = tmp / "in.bin"
    src.write_bytes(random_bytes(a.size_mib << 20))
    try:
        with SeaweedS3(buckets=["bkt-0", "bkt-1", "bkt-2"], data_dir=tmp / "weed") as s3:
            os.environ.update(s3.env())
            led = Ledger.init(tmp / "ledger", origin="bench.example/s3cg")
            me = led.new_identity("bench")[0]
            svc = BlobService(led, s3_endpoint=s3.endpoint)
            s3_client(s3.endpoint).head_bucket(Bucket="bkt-0")
            if a.mode in ("put", "get"):
                r = svc.put(src, [f"s3://bkt-{i}/x" for i in range(3)], me)
            if a.mode == "get":
                svc.get(r.cid, tmp / "out", me)
                if (tmp / "out").read_bytes() != src.read_bytes():
                    raise SystemExit("get returned other bytes")
            led.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def random_bytes(n: int) -> bytes:
    """Incompressible bytes, the same in every mode (os.urandom's cost would differ by nothing, but a seeded
    generator keeps the runs identical)."""
    import random

    return random.Random(22).randbytes(n)


if __name__ == "__main__":
    main()
