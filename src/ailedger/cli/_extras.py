"""Which optional extra a command needs, and the error that names it when it is not installed.

``pip install ailedger`` is the kernel: the log, its proofs and offline verification (cryptography,
PyNaCl, click, orjson, tqdm).  Every capability whose third-party libraries are heavy is an extra
(``pip install 'ailedger[content]'``; ``[all]`` is every one).  The table below says, for each extra,
the modules its distributions install; it must agree with ``[project.optional-dependencies]`` in
pyproject.toml (tests/cli/test_extras.py checks it).

A command tagged with an extra (cli/main.py's ``COMMANDS``) first checks, without importing anything,
that every module of the extra can be found: if one is missing it stops before doing any work, with
``install ailedger[<extra>]`` and exit code 2.  Any command (tagged or not) that still meets a missing
module of an extra while it runs (an optional path such as ``verify --rpc``) stops with the same message.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

import click

from ailedger.errors import AiledgerError

__all__ = ["EXTRAS", "KERNEL", "PROBES", "MissingExtraError", "extra_for_module", "guard", "missing_modules"]

# the kernel's own third-party distributions -> the module each installs (pyproject `dependencies`)
KERNEL: dict[str, str] = {"cryptography": "cryptography", "pynacl": "nacl", "click": "click", "orjson": "orjson",
                          "tqdm": "tqdm"}

# extra -> {distribution: the top-level module it installs}; an extra listed as ``ailedger[...]`` in
# pyproject (like ``all``) is not here: it only gathers others
EXTRAS: dict[str, dict[str, str]] = {
    "server": {"starlette": "starlette", "uvicorn": "uvicorn", "uvloop": "uvloop", "httptools": "httptools",
               "jinja2": "jinja2", "psycopg": "psycopg", "prometheus-client": "prometheus_client"},
    "monitor": {"prometheus-client": "prometheus_client"},
    "tracing": {"opentelemetry-sdk": "opentelemetry"},
    "provenance": {"numpy": "numpy", "pyarrow": "pyarrow", "matplotlib": "matplotlib"},
    "content": {"numpy": "numpy", "scipy": "scipy", "pillow": "PIL", "av": "av", "c2pa-python": "c2pa"},
    "governance": {"web3": "web3", "matplotlib": "matplotlib"},
    "screening": {"numpy": "numpy", "scipy": "scipy", "scikit-learn": "sklearn", "cleanlab": "cleanlab",
                  "pillow": "PIL", "pyarrow": "pyarrow", "matplotlib": "matplotlib"},
    "blobs": {"zfec": "zfec", "pyeclib": "pyeclib", "boto3": "boto3"},
    "anchoring": {"web3": "web3"},
    "compute": {"web3": "web3", "numpy": "numpy", "scikit-learn": "sklearn"},
    "inference": {"aiohttp": "aiohttp", "matplotlib": "matplotlib"},
    "extraction": {"numpy": "numpy", "scipy": "scipy", "scikit-learn": "sklearn"},
    "dask": {"dask": "dask", "distributed": "distributed"},
    "subnets": {"numpy": "numpy", "scikit-learn": "sklearn", "matplotlib": "matplotlib"},
    "s3": {"boto3": "boto3"},
    "daoai": {"scikit-learn": "sklearn", "matplotlib": "matplotlib"},
    "defi": {"web3": "web3", "numpy": "numpy", "scipy": "scipy", "scikit-learn": "sklearn", "matplotlib": "matplotlib"},
    "supplychain": {"jsonschema": "jsonschema", "fastjsonschema": "fastjsonschema", "numpy": "numpy", "scipy": "scipy", "scikit-learn": "sklearn"},
    "federated": {"flwr": "flwr", "numpy": "numpy", "scikit-learn": "sklearn", "matplotlib": "matplotlib"},
    "zk": {"ezkl": "ezkl", "onnx": "onnx", "numpy": "numpy"},
    "eval": {"onnxruntime": "onnxruntime", "numpy": "numpy"},
    "reports": {"numpy": "numpy", "matplotlib": "matplotlib", "weasyprint": "weasyprint"},
    "private": {"numpy": "numpy", "scikit-learn": "sklearn", "tenseal": "tenseal", "mpyc": "mpyc", "gmpy2": "gmpy2"},
    "contractaudit": {"slither-analyzer": "slither", "crytic-compile": "crytic_compile", "scikit-learn": "sklearn",
                      "matplotlib": "matplotlib"},
    "huggingface": {"huggingface_hub": "huggingface_hub"},
    "mlflow": {"mlflow-skinny": "mlflow"},
}

# what a tagged command checks before it starts: every module of its extra (found, not imported), but
# the ones a platform marker leaves out of the install
_CONDITIONAL = {"uvloop"}  # sys_platform != 'win32'
PROBES: dict[str, tuple[str, ...]] = {
    extra: tuple(dict.fromkeys(m for m in mods.values() if m not in _CONDITIONAL)) for extra, mods in EXTRAS.items()
}

# a module several extras install is named by the first of them (a command's own extra wins)
_PRIMARY = ("server", "anchoring", "governance", "s3", "blobs", "content", "screening", "provenance", "inference",
            "dask", "federated", "subnets", "zk", "eval", "private", "compute", "defi", "contractaudit", "supplychain", "monitor", "tracing", "huggingface", "mlflow", "daoai")  # s3 before blobs: boto3 missing in an untagged command (tiles export s3://) names the light one
# modules the extras' distributions pull in and the code imports by name
_ALSO = {"botocore": "blobs", "eth_account": "anchoring", "eth_utils": "anchoring", "requests": "anchoring", "threadpoolctl": "screening"}


class MissingExtraError(AiledgerError):
    """A command needs a library of an optional extra that is not installed."""

    code = "missing_extra"


def extra_for_module(module: str, prefer: str | None = None) -> str | None:
    """The extra that installs top-level ``module`` (``prefer`` when it is one of them), else None."""
    top = module.split(".", 1)[0]
    if prefer is not None and top in EXTRAS.get(prefer, {}).values():
        return prefer
    for extra in _PRIMARY:
        if top in EXTRAS[extra].values():
            return extra
    return _ALSO.get(top)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked import, or a module whose spec is unset
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra``'s probe that cannot be imported (found without importing them)."""
    return [m for m in PROBES.get(extra, ()) if not _importable(m)]


def _error(extra: str, module: str, command: str) -> MissingExtraError:
    dist = next((d for d, m in EXTRAS.get(extra, {}).items() if m == module), module)
    what = dist if dist == module else f"{dist} (module {module})"
    return MissingExtraError(
        f"`ailedger {command}` needs {what}, which is not installed: install ailedger[{extra}]",
        extra=extra, module=module, hint=f"run: pip install 'ailedger[{extra}]' (or 'ailedger[all]')")


def guard(cmd: click.Command, extra: str | None, path: str, home: str | None = None) -> None:
    """Wrap ``cmd``'s callback: check ``extra`` before it runs, and name the extra of a module it misses.
    ``home``: the extra of the command's capability, named first for a module that a command needing no
    extra misses on an optional path (``dataset verify-screening --html`` needs matplotlib: ``screening``)."""
    callback = cmd.callback
    if callback is None:
        return

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        if extra is not None:
            missing = missing_modules(extra)
            if missing:
                raise _error(extra, missing[0], path)
        try:
            return callback(*args, **kwargs)
        except ModuleNotFoundError as exc:
            name = exc.name or ""
            owner = extra_for_module(name, extra or home) if name else None
            if owner is None:
                raise
            raise _error(owner, name.split(".", 1)[0], path) from exc

    cmd.callback = run
    cmd.ailedger_extra = extra  # type: ignore[attr-defined]
