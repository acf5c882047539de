"""The Solidity compiler: the npm ``solc`` package (soljson, pinned in contracts/package.json) behind a shim.

Slither compiles through crytic-compile, which runs a native ``solc`` binary; ``solc-select`` would download
one, which this machine must not do.  The shim is a small Node script that answers the two calls
crytic-compile makes in standard-JSON mode (``solc --version`` and ``solc --standard-json``) with the npm
package's ``solc.compile``, reading imported files from disk.  It is written once per compiler into a cache
folder; :func:`shim_path` returns its path for ``Slither(..., solc=...)``.

Where the npm package is looked for: ``AILEDGER_SOLCJS`` (the folder of the ``solc`` package), then the
repository's ``contracts/node_modules/solc``, then ``npm root -g``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError

__all__ = ["CompileError", "Compiler", "compile_source", "find_solcjs", "pragma_ranges", "shim_path"]

_SHIM = r"""#!/usr/bin/env node
// ailedger solc shim: answers crytic-compile's `solc --version` and `solc --standard-json` with npm solc.
'use strict';
const fs = require('fs');
const solc = require(%(module)s);
const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('ailedger solc shim: only --version and --standard-json are supported\n');
  process.exit(2);
}
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
for (const [name, src] of Object.entries(input.sources || {})) {
  if (src.content === undefined && src.urls) {
    src.content = fs.readFileSync(src.urls[0], 'utf8');
    delete src.urls;
  }
}
function findImports(p) {
  try { return { contents: fs.readFileSync(p, 'utf8') }; } catch (e) { return { error: 'File not found: ' + p }; }
}
process.stdout.write(solc.compile(JSON.stringify(input), { import: findImports }));
"""


class CompileError(BadInputError):
    """The source does not compile (the message is the compiler's)."""


@dataclass(frozen=True)
class Compiler:
    module: Path       # the npm solc package folder
    version: str       # e.g. 0.8.28+commit.7893614a
    shim: Path         # executable shim for crytic-compile


def find_solcjs() -> Path:
    env = os.environ.get("AILEDGER_SOLCJS")
    cands: list[Path] = [Path(env)] if env else []
    here = Path(__file__).resolve()
    for parent in here.parents:
        cands.append(parent / "contracts" / "node_modules" / "solc")
    if shutil.which("npm"):
        try:
            root = subprocess.run(["npm", "root", "-g"], check=False, capture_output=True, text=True, timeout=20).stdout.strip()
            if root:
                cands.append(Path(root) / "solc")
        except (OSError, subprocess.SubprocessError):
            pass
    for c in cands:
        if (c / "soljson.js").is_file() and (c / "package.json").is_file():
            return c
    raise AiledgerError("no Solidity compiler installed: install the npm package solc (cd contracts && npm ci) or "
                        "set AILEDGER_SOLCJS to its folder")


@lru_cache(maxsize=4)
def _compiler(module: Path) -> Compiler:
    if not shutil.which("node"):
        raise AiledgerError("node is not installed: the Solidity compiler (npm solc) needs it")
    text = _SHIM % {"module": json.dumps(str(module))}
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    d = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ailedger" / "solc-shim"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        d = Path(tempfile.gettempdir()) / f"ailedger-solc-shim-{os.getuid()}"
        d.mkdir(parents=True, exist_ok=True)
    shim = d / f"solc-{digest}"
    if not shim.exists():
        tmp = d / f".solc-{digest}.{os.getpid()}"
        tmp.write_text(text)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IRUSR)
        os.replace(tmp, shim)
    out = subprocess.run([str(shim), "--version"], check=False, capture_output=True, text=True, timeout=60)
    m = re.search(r"Version: (\S+)", out.stdout)
    if out.returncode or not m:
        raise AiledgerError(f"the solc shim does not run: {out.stderr.strip()[:300]}")
    version = m.group(1).replace(".Emscripten.clang", "")
    return Compiler(module=module, version=version, shim=shim)


def compiler() -> Compiler:
    return _compiler(find_solcjs())


def shim_path() -> str:
    return str(compiler().shim)


_PRAGMA = re.compile(r"^\s*pragma\s+solidity\s+([^;]+);", re.MULTILINE)


def pragma_ranges(source: str) -> list[str]:
    return [m.group(1).strip() for m in _PRAGMA.finditer(source)]


def compile_source(source: str, filename: str) -> dict[str, Any]:
    """Compile one source with the AST output; raise :class:`CompileError` with the compiler's messages."""
    c = compiler()
    inp = {"language": "Solidity", "sources": {filename: {"content": source}},
           "settings": {"outputSelection": {"*": {"": ["ast"]}}}}
    out = subprocess.run([str(c.shim), "--standard-json"], check=False, input=json.dumps(inp), capture_output=True, text=True,
                         timeout=300)
    try:
        res: dict[str, Any] = json.loads(out.stdout)
    except ValueError:
        raise AiledgerError(f"the compiler failed: {out.stderr.strip()[:300]}") from None
    errs = [e for e in res.get("errors", []) if e.get("severity") == "error"]
    if any("requires different compiler version" in e.get("message", "") for e in errs):
        rng = ", ".join(pragma_ranges(source)) or "?"
        raise BadInputError(f"{filename}: pragma solidity {rng} is not satisfied by any installed compiler "
                            f"(installed: solc {c.version.split('+')[0]})", field="pragma")
    if errs:
        msg = "; ".join((e.get("formattedMessage") or e.get("message", "")).strip().splitlines()[0] for e in errs)
        first = errs[0].get("formattedMessage", "")
        loc = re.search(r"--> ([^\n]+)", first)
        raise CompileError(f"{filename} does not compile: {msg}" + (f" (at {loc.group(1)})" if loc else ""),
                           field="source")
    return res
