"""Start-up and whole-command cost of the CLI on the README's screening commands, A/B between two source trees.

Runs, in a temporary folder with its own ledger and the README's iris data (``data.csv``), each command as a new
process, alternating the "before" tree (``--before-src``, default the main checkout's src) and the "after"
tree (this tree's src) command by command, ``--runs`` times; prints the median CPU time (user + system of the
child: steadier than wall time on a shared machine) and wall time per command and side, and the ratio
after / before.  Both sides run with the same interpreter and site-packages; only PYTHONPATH differs.

Byte code: by default each side gets its own ``PYTHONPYCACHEPREFIX`` (warmed by one untimed run), as an
installed package has its .pyc files; ``--no-pyc`` sets PYTHONDONTWRITEBYTECODE=1 instead, so every run
compiles the ailedger modules it imports (what a checkout run with that variable set pays).

The outputs are compared too: ``dataset screen --json`` must print the same report on both sides (but for its
``timing_seconds``).

Prints human lines, then one JSON object as the last line.
Usage: .venv/bin/python bench/cli_startup_bench.py [--runs 7] [--before-src /work/main/src] [--no-pyc]
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

HERE = Path(__file__).resolve().parents[1]

DATA = ("from sklearn.datasets import load_iris; d = load_iris(as_frame=True).frame.rename(columns={'target': 'label'}); "
        "d['source'] = ['crawl-7' if i % 3 == 0 else 'curated' for i in range(len(d))]; "
        "d.loc[0:8:3, 'label'] = 2; d.to_csv('data.csv', index=False)")

# name -> argv after `ailedger` ({n}: a number unique to the run, for names that must be new)
COMMANDS = {
    "version": ["--version"],
    "vkey": ["vkey"],
    "screen_json": ["dataset", "screen", "data.csv", "--label-column", "label", "--source-column", "source", "--json"],
    "screen_html": ["dataset", "screen", "data.csv", "--label-column", "label", "--html", "report.html"],
    "commit_screen": ["dataset", "commit", "data.csv", "--name", "D{n}", "--as", "alice", "--screen",
                      "--screen-policy", "default"],
}


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, bytes]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "ailedger.cli.main", *argv], env=env, cwd=cwd, capture_output=True,
                       check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): ailedger {' '.join(argv)}\n{r.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--before-src", default="/work/main/src")
    ap.add_argument("--after-src", default=str(HERE / "src"))
    ap.add_argument("--no-pyc", action="store_true", help="PYTHONDONTWRITEBYTECODE=1 (compile on every run)")
    ap.add_argument("--only", nargs="*", choices=sorted(COMMANDS), help="commands to time (default: all)")
    args = ap.parse_args()
    names = args.only or list(COMMANDS)
    work = Path(tempfile.mkdtemp(prefix="cli-startup-"))
    try:
        base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                                                                 "PYTHONPYCACHEPREFIX")}
        base["AILEDGER_LEDGER"] = str(work / "ledger")
        envs = {}
        for side, src in (("before", args.before_src), ("after", args.after_src)):
            env = dict(base, PYTHONPATH=src)
            if args.no_pyc:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            else:
                env["PYTHONPYCACHEPREFIX"] = str(work / f"pyc-{side}")
            envs[side] = env
        setup = dict(envs["after"])
        subprocess.run([sys.executable, "-c", DATA], cwd=work, env=setup, check=True)
        for argv in (["init", str(work / "ledger"), "--origin", "example.org/cli-startup"],
                     ["identity", "new", "alice"]):
            _run(argv, setup, work)
        n = 0
        outputs: dict[str, bytes] = {}
        for side in ("before", "after"):  # warm-up (writes the .pyc files) and the outputs to compare
            n += 1
            outputs[side] = _run([a.format(n=n) for a in COMMANDS["screen_json"]], envs[side], work)[2]
            if "commit_screen" in names:
                _run([a.format(n=f"w{n}") for a in COMMANDS["commit_screen"]], envs[side], work)
        reports = {side: json.loads(out) for side, out in outputs.items()}
        for r in reports.values():
            r.pop("timing_seconds", None)  # the report's own clock readings differ run to run
        same = reports["before"] == reports["after"]
        cpu: dict[tuple[str, str], list[float]] = {}
        wall: dict[tuple[str, str], list[float]] = {}
        for i in range(args.runs):
            for name in names:
                order = ("before", "after") if i % 2 == 0 else ("after", "before")
                for side in order:
                    n += 1
                    c, w, _ = _run([a.format(n=n) for a in COMMANDS[name]], envs[side], work)
                    cpu.setdefault((name, side), []).append(c)
                    wall.setdefault((name, side), []).append(w)
        result: dict[str, object] = {"runs": args.runs, "pyc": not args.no_pyc, "load_avg_1m": os.getloadavg()[0],
                                     "screen_json_same_output": same}
        print(f"{'command':<14} {'CPU before':>10} {'CPU after':>10} {'ratio':>6}   {'wall before':>11} "
              f"{'wall after':>10}  (s, median of {args.runs})")
        for name in names:
            cb, ca = statistics.median(cpu[(name, "before")]), statistics.median(cpu[(name, "after")])
            wb, wa = statistics.median(wall[(name, "before")]), statistics.median(wall[(name, "after")])
            print(f"{name:<14} {cb:10.3f} {ca:10.3f} {ca / cb:6.2f}   {wb:11.3f} {wa:10.3f}")
            result.update({f"{name}_cpu_before_s": round(cb, 3), f"{name}_cpu_after_s": round(ca, 3),
                           f"{name}_cpu_ratio": round(ca / cb, 3), f"{name}_wall_before_s": round(wb, 3),
                           f"{name}_wall_after_s": round(wa, 3)})
        print(f"dataset screen --json: same report on both sides: {same}")
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
