"""One MPyC party of a three-party digits inference (run as ``python -m ailedger.private.mpc_party JOB I``).

Party 0 is the model owner (inputs the weights), party 1 the client (inputs the digit, alone learns the
class), party 2 a helper (inputs nothing).  MPyC parses the command line when it is imported, so the job
file is read and ``sys.argv`` set before the import.  The party writes ``party-I.json`` in the job's folder:
what it learned, its commitment's opening stays with it, and the bytes it sent.  Nothing is logged here:
the coordinator logs the three commitments only once every party finished.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any


def fingerprint_coefficients(seed: str, n: int) -> list[int]:
    """``n`` public coefficients in [1, 2^16) from SHA-256(seed || counter): the owner's weights
    commitment is the seed, so they are fixed only after the owner committed."""
    out: list[int] = []
    ctr = 0
    while len(out) < n:
        block = hashlib.sha256(f"{seed}:{ctr}".encode()).digest()
        out.extend(1 + int.from_bytes(block[i:i + 2], "big") % 65535 for i in range(0, 32, 2))
        ctr += 1
    return out[:n]


def main(job_path: str, index: int) -> int:
    job = json.loads(Path(job_path).read_text())
    ports = job["ports"]
    sys.argv = [sys.argv[0], "-M", "3", "-I", str(index), "--no-log", "-L", str(job["bit_length"]),
                *[a for p in ports for a in ("-P", f"127.0.0.1:{p}")]]
    import numpy as np
    from mpyc.runtime import mpc

    shapes = job["shapes"]
    frac = job["frac_bits"]
    secfxp = mpc.SecFxp(job["bit_length"], frac)
    out_dir = Path(job["dir"])

    flat_n = sum(a * b + b for (a, b) in shapes)
    mine: dict[str, Any] = {"party": index, "role": ["owner", "client", "helper"][index]}
    arrays = [np.zeros((a, b)) if k == "W" else np.zeros(b) for (a, b) in shapes for k in ("W", "b")]
    if index == 0:
        with np.load(job["weights"], allow_pickle=False) as z:
            arrays = [z[f"{k}{i}"].astype(np.float64) for i in range(len(shapes)) for k in ("W", "b")]
    x = np.array(json.loads(Path(job["input"]).read_text()), dtype=float) if index == 1 else np.zeros(shapes[0][0])

    async def run() -> None:
        await mpc.start()
        # the owner's commitment (published before any share is sent) seeds the fingerprint coefficients
        wc = await mpc.transfer(job.get("weights_commitment") if index == 0 else None, senders=0)
        shared = [mpc.input(secfxp.array(a, integral=False), senders=0) for a in arrays]
        x_sh = mpc.input(secfxp.array(x, integral=False), senders=1)
        coeff = fingerprint_coefficients(f"{job['run']}:{wc}", flat_n)
        fp = secfxp(0)
        off = 0
        for a, s in zip(arrays, shared):
            c = np.array(coeff[off:off + a.size], dtype=float).reshape(a.shape)
            off += a.size
            fp = fp + mpc.np_sum(s * c)  # public integer coefficients: exact in the field
        h = x_sh
        for li in range(len(shapes)):
            h = h @ shared[2 * li] + shared[2 * li + 1]
            if li < len(shapes) - 1:
                h = h * h
        cls = mpc.np_argmax(h)
        fp_open = await mpc.output(fp)
        cls_open = await mpc.output(cls, receivers=[1])
        mine["fingerprint"] = float(fp_open)
        mine["weights_commitment"] = wc
        if index == 1:
            mine["class"] = round(float(cls_open))
        mine["bytes_sent"] = sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != mpc.pid)
        await mpc.shutdown()

    mpc.run(run())
    tmp = out_dir / f"party-{index}.json.tmp"
    tmp.write_text(json.dumps(mine))
    tmp.replace(out_dir / f"party-{index}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], int(sys.argv[2])))
