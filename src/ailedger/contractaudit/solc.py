"""The Solidity compilers: npm ``solc`` packages (soljson) behind a shim, one picked per source by its pragma.

Slither compiles through crytic-compile, which runs a native ``solc`` binary; ``solc-select`` would download
one, which this machine must not do.  The shim is a small Node script that answers the two calls
crytic-compile makes in standard-JSON mode (``solc --version`` and ``solc --standard-json``) with an npm
package's soljson, reading imported files from disk.  It loads the compiler through the wrapper of the newest
installed package (solc-js's ``setupMethods``), which also drives old soljson builds: compilers older than
0.4.11 have no standard-JSON entry point and the wrapper translates; compilers older than 0.4.12 give only the
legacy AST, which the shim hands over as ``ast`` (Slither reads both forms).  One shim is written per compiler
into a cache folder.

Several compilers may be installed: the one a source gets is the highest installed version that every
``pragma solidity`` of the source allows (npm semver, as solc itself reads it: :func:`satisfies`).  Where
packages are looked for, in this order: ``AILEDGER_SOLCJS`` (folders separated by ``os.pathsep``: a ``solc``
package folder, or a ``node_modules`` folder holding ``solc*`` packages), the repository's
``contracts/node_modules/solc`` (0.8.28) and ``tools/solc-versions/node_modules/solc-*`` (0.4.9, 0.4.24,
0.4.25, 0.4.26, 0.5.17: ``scripts/setup.d/12-solc-versions.sh``), then ``npm root -g``.
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

__all__ = ["CompileError", "Compiler", "compile_source", "compiler", "compiler_for", "find_solcjs",
           "installed_compilers", "pragma_ranges", "satisfies", "shim_path"]

_SHIM = r"""#!/usr/bin/env node
// ailedger solc shim: answers crytic-compile's `solc --version` and `solc --standard-json` with npm solc.
'use strict';
const fs = require('fs');
process.removeAllListeners('warning');  // old soljson builds make V8 warn about asm.js on stderr
const solc = require(%(wrapper)s)(require(%(soljson)s));
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
const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
for (const src of Object.values(out.sources || {})) {
  if (src.ast === undefined && src.legacyAST !== undefined) { src.ast = src.legacyAST; }
}
process.stdout.write(JSON.stringify(out));
"""


class CompileError(BadInputError):
    """The source does not compile (the message is the compiler's)."""


@dataclass(frozen=True)
class Compiler:
    module: Path       # the npm solc package folder (its soljson.js)
    version: str       # e.g. 0.8.28+commit.7893614a
    shim: Path         # executable shim for crytic-compile

    @property
    def semver(self) -> tuple[int, int, int]:
        return _parse_version(self.version)


# --- pragma ranges (npm semver, the reading solc gives `pragma solidity`) -------------------------------------

_VER = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$")
_COMP = re.compile(r"^(\^|~|>=|<=|>|<|=)?(.+)$")


def _parse_version(v: str) -> tuple[int, int, int]:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        raise AiledgerError(f"not a compiler version: {v!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _partial(text: str, rng: str) -> list[int | None]:
    m = _VER.match(text)
    if not m:
        raise BadInputError(f"pragma solidity {rng}: {text!r} is not a version", field="pragma")
    out: list[int | None] = []
    for g in m.groups():
        if g is None or g in "xX*":
            break
        out.append(int(g))
    return out


def _comparator(op: str, part: list[int | None], rng: str) -> list[tuple[str, tuple[int, int, int]]]:
    """One comparator as a list of (op, version) bounds, all of which must hold."""
    p = [int(x) for x in part if x is not None]
    n = len(p)
    lo = (*p, *([0] * (3 - n)))
    lo3 = (lo[0], lo[1], lo[2])
    if n == 0:  # `*`: any version, or none for `<*` and `>*`
        return [] if op in ("", "=", "^", "~", ">=", "<=") else [("<", (0, 0, 0))]

    def bump(k: int) -> tuple[int, int, int]:
        v = [*lo3]
        v[k] += 1
        for j in range(k + 1, 3):
            v[j] = 0
        return (v[0], v[1], v[2])
    if op == "^":
        k = next((i for i, x in enumerate(p) if x), n - 1)  # the first non-zero part given, else the last
        return [(">=", lo3), ("<", bump(k))]
    if op == "~":
        return [(">=", lo3), ("<", bump(1 if n > 1 else 0))]
    if op in ("", "="):
        return [("=", lo3)] if n == 3 else [(">=", lo3), ("<", bump(n - 1))]
    if op == ">":
        return [(">", lo3)] if n == 3 else [(">=", bump(n - 1))]
    if op == "<=":
        return [("<=", lo3)] if n == 3 else [("<", bump(n - 1))]
    return [(op, lo3)]  # >= and <


def _check(op: str, v: tuple[int, int, int], w: tuple[int, int, int]) -> bool:
    return {"=": v == w, ">": v > w, ">=": v >= w, "<": v < w, "<=": v <= w}[op]


def satisfies(version: str | tuple[int, int, int], rng: str) -> bool:
    """Whether ``version`` satisfies one pragma range (``^0.4.24``, ``>=0.4.22 <0.6.0``, ``0.4.x || ^0.5``, ``a - b``)."""
    v = _parse_version(version) if isinstance(version, str) else version
    text = re.sub(r"(\^|~|>=|<=|>|<|=)\s+", r"\1", rng.strip())
    for alt in text.split("||"):
        alt = alt.strip()
        bounds: list[tuple[str, tuple[int, int, int]]] = []
        hy = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alt)
        if hy:
            bounds += _comparator(">=", _partial(hy.group(1), rng), rng)
            bounds += _comparator("<=", _partial(hy.group(2), rng), rng)
        else:
            for tok in alt.split():
                m = _COMP.match(tok)
                if not m:
                    raise BadInputError(f"pragma solidity {rng}: cannot read {tok!r}", field="pragma")
                bounds += _comparator(m.group(1) or "", _partial(m.group(2), rng), rng)
        if all(_check(op, v, w) for op, w in bounds):
            return True
    return False


_PRAGMA = re.compile(r"^\s*pragma\s+solidity\s+([^;]+);", re.MULTILINE)
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def pragma_ranges(source: str) -> list[str]:
    """The ranges of the source's ``pragma solidity`` statements (comments ignored)."""
    text = _COMMENTS.sub(lambda m: "" if m.group(0).startswith("//") else re.sub(r"[^\n]", " ", m.group(0)), source)
    return [m.group(1).strip() for m in _PRAGMA.finditer(text)]


# --- the installed packages ------------------------------------------------------------------------------------

def _candidates() -> list[Path]:
    cands: list[Path] = []
    env = os.environ.get("AILEDGER_SOLCJS")
    for part in (env.split(os.pathsep) if env else []):
        if not part:
            continue
        d = Path(part)
        cands.append(d)
        if d.is_dir() and not (d / "soljson.js").is_file():
            cands += sorted(d.glob("solc*"))
    here = Path(__file__).resolve()
    for parent in here.parents:
        cands.append(parent / "contracts" / "node_modules" / "solc")
        cands += sorted((parent / "tools" / "solc-versions" / "node_modules").glob("solc-*"))
    if shutil.which("npm"):
        try:
            root = subprocess.run(["npm", "root", "-g"], check=False, capture_output=True, text=True, timeout=20).stdout.strip()
            if root:
                cands.append(Path(root) / "solc")
        except (OSError, subprocess.SubprocessError):
            pass
    return cands


@lru_cache(maxsize=1)
def _installed_cached(key: str) -> tuple[tuple[tuple[int, int, int], Path], ...]:
    seen: dict[tuple[int, int, int], Path] = {}
    for c in _candidates():
        try:
            if not ((c / "soljson.js").is_file() and (c / "package.json").is_file()):
                continue
            v = _parse_version(str(json.loads((c / "package.json").read_text())["version"]))
        except (OSError, ValueError, KeyError, AiledgerError):
            continue
        seen.setdefault(v, c.resolve())
    return tuple(sorted(seen.items()))


def installed_compilers() -> list[tuple[tuple[int, int, int], Path]]:
    """(version, package folder) of every installed npm solc, oldest first (one per version)."""
    found = list(_installed_cached(os.environ.get("AILEDGER_SOLCJS", "")))
    if not found:
        raise AiledgerError("no Solidity compiler installed: install the npm package solc (cd contracts && npm ci; "
                            "older ones: cd tools/solc-versions && npm ci) or set AILEDGER_SOLCJS to its folder")
    return found


def find_solcjs() -> Path:
    """The newest installed npm solc package."""
    return installed_compilers()[-1][1]


def _shim_dir() -> Path:
    d = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ailedger" / "solc-shim"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        d = Path(tempfile.gettempdir()) / f"ailedger-solc-shim-{os.getuid()}"
        d.mkdir(parents=True, exist_ok=True)
    return d


@lru_cache(maxsize=16)
def _compiler(module: Path, wrapper: Path) -> Compiler:
    if not shutil.which("node"):
        raise AiledgerError("node is not installed: the Solidity compiler (npm solc) needs it")
    text = _SHIM % {"wrapper": json.dumps(str(wrapper)), "soljson": json.dumps(str(module / "soljson.js"))}
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    d = _shim_dir()
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


def _wrapper() -> Path:
    """solc-js's wrapper of the newest installed package: it drives every older soljson too."""
    return find_solcjs() / "wrapper.js"


def compiler() -> Compiler:
    """The newest installed compiler."""
    return _compiler(find_solcjs(), _wrapper())


def compiler_for(source: str, filename: str = "source") -> Compiler:
    """The highest installed compiler every ``pragma solidity`` of ``source`` allows (the newest when it has
    none); BadInputError naming the pragma and the installed versions when none does."""
    inst = installed_compilers()
    ranges = pragma_ranges(source)
    ok = [(v, p) for v, p in inst if all(satisfies(v, r) for r in ranges)]
    if not ok:
        have = ", ".join(".".join(map(str, v)) for v, _ in inst)
        raise BadInputError(f"{filename}: pragma solidity {', '.join(ranges)} is not satisfied by any installed "
                            f"compiler (installed: solc {have})", field="pragma")
    return _compiler(ok[-1][1], _wrapper())


def shim_path(source: str | None = None) -> str:
    return str((compiler_for(source) if source is not None else compiler()).shim)


def compile_source(source: str, filename: str) -> dict[str, Any]:
    """Compile one source (with the compiler its pragma picks) with the AST output; raise
    :class:`CompileError` with the compiler's messages."""
    c = compiler_for(source, filename)
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
        raise BadInputError(f"{filename}: pragma solidity {rng} is not satisfied by the picked compiler "
                            f"(solc {c.version.split('+')[0]})", field="pragma")
    if errs:
        msg = "; ".join((e.get("formattedMessage") or e.get("message", "")).strip().splitlines()[0] for e in errs)
        first = errs[0].get("formattedMessage", "")
        loc = re.search(r"--> ([^\n]+)", first)
        raise CompileError(f"{filename} does not compile: {msg}" + (f" (at {loc.group(1)})" if loc else ""),
                           field="source")
    res["compiler"] = c.version
    return res
