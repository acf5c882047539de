"""The light install against the full one: install size, `import ailedger` and `ailedger verify` start-up.

Kernel: a fresh venv with ``pip install <this tree>`` and no extra (made here, in a temporary folder, from a
copy of the tree; pip reaches PyPI for the kernel's few dependencies), or ``--kernel-venv DIR`` to reuse one.
All: the project's own venv (``.venv``, made by scripts/setup.sh with every extra), running this tree's
code (PYTHONPATH=src), so both sides run the same ailedger code.

Install size: the bytes on disk (the files each distribution's RECORD lists) of ailedger and every
distribution its requirements pull in, resolved through the installed metadata, for ``ailedger`` (kernel)
and this tree's ``ailedger[all]`` (all, read from pyproject.toml); the venv's own tools (pip, setuptools)
and the test tools of ``[dev]`` are left out.
The ailedger package itself is counted from the kernel venv on both sides (the project venv holds an
editable link to it).

Start-up: wall time and CPU time (user + system: steadier on a shared machine) of a new process, median
of ``--runs`` runs, alternating kernel and all: ``python -c
"import ailedger"``, and ``ailedger verify`` of one proof bundle (made by the full install) with its entry.
The reference of each figure is the same figure for the full install, measured in the same run; the ratio
is kernel / all.  A bare ``python -c pass`` is printed beside them (the interpreter's own floor).

Prints human lines, then one JSON object as the last line.
Usage: .venv/bin/python bench/install_bench.py [--runs 21] [--kernel-venv DIR] [--before-rev 2db58f3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# run by each venv's python: the closure of a requirement and the size of every distribution in it
CLOSURE = r"""
import json, sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

def norm(n): return n.lower().replace("_", "-").replace(".", "-")

seen, todo = {}, []
for r in json.loads(sys.argv[1]):  # the requirements to start from
    req = Requirement(r)
    if req.marker is None or req.marker.evaluate():
        todo.append((req.name, set(req.extras)))
while todo:
    name, ex = todo.pop()
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    key = norm(dist.metadata["Name"])
    if key in seen and ex <= seen[key][1]:
        continue
    old = seen.get(key, (dist, set()))[1]
    seen[key] = (dist, old | ex)
    for r in dist.requires or []:
        req = Requirement(r)
        envs = [{"extra": e} for e in (ex or {""})]
        if req.marker is None or any(req.marker.evaluate(e) for e in envs):
            todo.append((req.name, set(req.extras)))
out = {}
for key, (dist, _) in seen.items():
    size = 0
    for f in dist.files or []:
        p = dist.locate_file(f)
        try:
            size += p.stat().st_size
        except OSError:
            pass
    out[key] = size
print(json.dumps(out))
"""


def closure(python: str, requirements: list[str], env: dict[str, str]) -> dict[str, int]:
    p = subprocess.run([python, "-c", CLOSURE, json.dumps(requirements)], capture_output=True, text=True, env=env,
                       check=True)
    return json.loads(p.stdout)


def full_requirements() -> list[str]:
    """This tree's ``ailedger[all]``: the kernel's dependencies and every extra's, from pyproject.toml (the
    project venv's installed metadata may be older than the tree)."""
    import re

    import tomllib

    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    opt = proj["optional-dependencies"]
    reqs, todo, done = list(proj["dependencies"]), ["all"], set()
    while todo:
        extra = todo.pop()
        if extra in done:
            continue
        done.add(extra)
        for r in opt[extra]:
            m = re.match(r"ailedger\[(.*)\]", r)
            if m:
                todo.extend(e.strip() for e in m.group(1).split(","))
            else:
                reqs.append(r)
    return reqs


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wall(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process) of one run."""
    c, t = _cpu(), time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    dt, dc = time.perf_counter() - t, _cpu() - c
    if p.returncode != 0:
        raise SystemExit(f"{argv} failed: {p.stderr.decode()[-2000:]}")
    return dt, dc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--kernel-venv", type=Path, default=None, help="reuse a venv holding `pip install .` (no extra)")
    ap.add_argument("--before-rev", default=None,
                    help="also size `pip install ailedger` as of this git revision (before the extras: 2db58f3)")
    ap.add_argument("--all-python", default=str(ROOT / ".venv" / "bin" / "python"),
                    help="python of the full install (default: the project's .venv)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="install-bench-"))
    t0 = time.perf_counter()
    if args.kernel_venv is None:
        from test_install import make_kernel_venv

        kbin = make_kernel_venv(work / "kvenv")
        print(f"made the kernel venv in {time.perf_counter() - t0:.0f} s (pip install <tree>, no extra)")
    else:
        kbin = args.kernel_venv / "bin"
    kpy, apy = str(kbin / "python"), args.all_python
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "AILEDGER_LEDGER")}
    kenv = dict(base)
    aenv = dict(base, PYTHONPATH=str(ROOT / "src"))

    # sizes
    ksizes = closure(kpy, ["ailedger"], kenv)
    asizes = closure(apy, full_requirements(), base)
    asizes["ailedger"] = ksizes["ailedger"]  # the project venv holds an editable link: count the installed package
    ktotal, atotal = sum(ksizes.values()), sum(asizes.values())
    before_total = None
    if args.before_rev:
        import tomllib

        old = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.before_rev}:pyproject.toml"], check=True,
                             capture_output=True, text=True).stdout
        bsizes = closure(apy, tomllib.loads(old)["project"]["dependencies"], base)
        bsizes["ailedger"] = ksizes["ailedger"]
        before_total = sum(bsizes.values())
        print(f"install size, `pip install ailedger` at {args.before_rev}: {before_total / 1e6:.1f} MB in "
              f"{len(bsizes)} distributions; kernel now / then = {ktotal / before_total:.3f}")
    top = sorted(asizes.items(), key=lambda kv: -kv[1])[:8]
    print(f"install size, kernel: {ktotal / 1e6:.1f} MB in {len(ksizes)} distributions "
          f"({', '.join(sorted(ksizes))})")
    print(f"install size, all:    {atotal / 1e6:.1f} MB in {len(asizes)} distributions; largest: "
          + ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in top))
    print(f"  kernel / all = {ktotal / atotal:.3f}")

    # a proof made by the full install
    cli = [apy, "-m", "ailedger"]
    for a in (["init", "led", "--origin", "example.org/bench"], ["--ledger", "led", "identity", "new", "alice"],
              ["--ledger", "led", "prove", "0", "-o", "p.tlog-proof"], ["--ledger", "led", "entry", "0", "-o", "e0.bin"]):
        subprocess.run([*cli, *a], cwd=work, env=aenv, check=True, capture_output=True)
    (work / "log.vkey").write_bytes(subprocess.run([*cli, "--ledger", "led", "vkey"], cwd=work, env=aenv,
                                                   check=True, capture_output=True).stdout)
    verify = ["verify", "p.tlog-proof", "--vkey", "log.vkey", "--entry", "e0.bin"]
    cases = {
        "python_bare": ([kpy, "-c", "pass"], [apy, "-c", "pass"]),
        "import_ailedger": ([kpy, "-c", "import ailedger"], [apy, "-c", "import ailedger"]),
        "cli_verify": ([str(kbin / "ailedger"), *verify], [apy, "-m", "ailedger", *verify]),
    }
    for kargv, aargv in cases.values():  # warm the page cache and the bytecode caches
        wall(kargv, kenv, work)
        wall(aargv, aenv, work)
    times: dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {k: ([], []) for k in cases}
    for _ in range(args.runs):
        for name, (kargv, aargv) in cases.items():
            times[name][0].append(wall(kargv, kenv, work))
            times[name][1].append(wall(aargv, aenv, work))
    out: dict[str, object] = {
        "runs": args.runs, "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "kernel_install_bytes": ktotal, "all_install_bytes": atotal,
        "kernel_distributions": len(ksizes), "all_distributions": len(asizes),
        "ratio_install_kernel_vs_all": round(ktotal / atotal, 4),
    }
    if before_total is not None:
        out.update({"before_rev": args.before_rev, "before_install_bytes": before_total,
                    "ratio_install_kernel_vs_before": round(ktotal / before_total, 4)})
    for name, (ks, as_) in times.items():
        for i, what in ((0, "wall"), (1, "cpu")):
            k, a = statistics.median(x[i] for x in ks), statistics.median(x[i] for x in as_)
            print(f"{name:16s} {what:4s} kernel p50 {k * 1000:7.1f} ms   all p50 {a * 1000:7.1f} ms   "
                  f"kernel / all = {k / a:.3f}")
            out[f"{name}_{what}_kernel_ms"] = round(k * 1000, 1)
            out[f"{name}_{what}_all_ms"] = round(a * 1000, 1)
            out[f"ratio_{name}_{what}_kernel_vs_all"] = round(k / a, 3)
    shutil.rmtree(work, ignore_errors=True)  # the kernel venv made here, the ledger and the proof
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
