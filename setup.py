"""Build hook for the optional C parts (everything else is in pyproject.toml).

``ailedger.encoding._speedups`` (batch SHA-256 for dataset commitments) and ``ailedger.tlog._tiled`` (the tile
mirror server behind ``ailedger tiles serve``, Linux) and ``ailedger.tlog._front`` (the write front of ``ailedger
serve --ingest-port``, Linux) are optional: without a C compiler the install
goes on; ailedger.encoding.fasthash then falls back to hashlib and ``tiles serve`` says what is missing."""

import sys

from setuptools import Extension, setup

# _speedups also checks Ed25519 entry signatures in batches through the libsodium PyNaCl bundles (found
# with dlopen at run time, so no libsodium headers are needed to build): -ldl for glibc < 2.34
ext = [Extension("ailedger.encoding._speedups", ["src/ailedger/encoding/_speedups.c"], optional=True,
                 extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
                 libraries=["dl"] if sys.platform.startswith("linux") else [])]
if sys.platform.startswith("linux"):
    ext.append(Extension("ailedger.tlog._tiled", ["src/ailedger/tlog/_tiled.c"], optional=True,
                         extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
                         depends=["src/ailedger/tlog/_http1.h"]))
    # the write front of `ailedger serve --ingest-port` (an epoll loop on its own thread, without the GIL)
    ext.append(Extension("ailedger.tlog._front", ["src/ailedger/tlog/_front.c"], optional=True,
                         extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
                         depends=["src/ailedger/tlog/_http1.h"], libraries=["pthread"]))
setup(ext_modules=ext)
