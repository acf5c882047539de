"""Build hook for the optional C speed-up (everything else is in pyproject.toml).

``ailedger._speedups`` (batch SHA-256 for dataset commitments) is optional: without a C compiler
the install goes on and ailedger.core.fasthash falls back to hashlib."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ailedger._speedups", ["src/ailedger/_speedups.c"], optional=True,
                             extra_compile_args=["-O2"])])
