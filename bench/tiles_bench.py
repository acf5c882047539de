"""Static tile mirror: `ailedger tiles serve` (the C server, ailedger.tlog._tiled) against nginx serving the
same exported tiles, in the same run.

    .venv/bin/python bench/tiles_bench.py [--entries 30000] [--seconds 10] [--rounds 3] [--connections 200]

A ledger of --entries signed entries is exported with `ailedger tiles export`; `ailedger tiles serve`
(1 worker) and nginx (1 worker, the configuration `ailedger tiles nginx-conf` writes) serve that one
directory on 127.0.0.1 (ports 18700-18799).  wrk (1 thread, --connections connections that never pause)
reads each in turn, alternating which goes first, --rounds times: half the requests /checkpoint, half
full level-0 tiles.  Before the load, each server's answers are checked byte for byte against the files.
Figures per server: req/s, p50, p99 (wrk) and the server's CPU seconds; ratios tiled/nginx are the
median over rounds of the per-round ratio.  The reference is nginx measured in the same run.
Prints human lines, then one JSON object as the last line."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.tlog.ledger import Ledger, utc_now
from ailedger.tlog.mirror import export_tiles, nginx_conf
from ailedger.tlog.tileserver import available

PORTS = (18701, 18702)


def signed_ledger(d: Path, n: int) -> None:
    key = Ed25519PrivateKey.generate()
    did = did_from_public_key(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                            serialization.PublicFormat.Raw))
    rows = [build_entry("identity.register", {"name": "tiles-bench", "did": did, "subjects": [did]}, did, utc_now(),
                        key.sign).to_dict()]
    rows += [build_entry("bench.event", {"i": i, "subjects": [f"sha256:{i:064x}"]}, did, utc_now(), key.sign).to_dict()
             for i in range(n - 1)]
    Ledger.init(d, origin="bench.example/tiles").close()
    with Ledger.open(d) as led:
        bad = [r for r in led.append_entries([json.dumps(r).encode() for r in rows]) if isinstance(r, str)]
        if bad:
            raise SystemExit(f"the bench ledger refused entries: {bad[:3]}")
        led.checkpoint()


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (nginx's worker, the C server's loop)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in [pid] + children(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except (OSError, IndexError):
            pass
    return total


def children(pid: int) -> list[int]:
    out = []
    for t in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (t / "children").read_text().split()]
        except OSError:
            pass
    return out


def same_bytes(url: str, site: Path, paths: list[str]) -> None:
    for p in paths:
        with urllib.request.urlopen(url + p, timeout=5) as r:
            if r.read() != (site / p.lstrip("/")).read_bytes():
                raise SystemExit(f"{url}{p} differs from the exported file")


def wrk(url: str, paths: list[str], conns: int, seconds: int) -> dict:
    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    lua.write_text("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\nreqs = {}\n"
                   "init = function(args) for i, p in ipairs(paths) do reqs[i] = wrk.format('GET', p) end end\n"
                   "request = function() return reqs[math.random(#reqs)] end\n")
    try:
        r = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
                           capture_output=True, text=True, check=True)
    finally:
        lua.unlink()
    out: dict = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            v = parts[1]
            ms = float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
            out[f"p{parts[0][:-1]}_ms"] = round(ms, 3)
        elif line.startswith("Requests/sec:"):
            out["rps"] = round(float(parts[1]))
        elif "Non-2xx" in line or "Socket errors" in line:
            out.setdefault("errors", []).append(line.strip())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=30000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=200)
    args = ap.parse_args()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    missing = [w for w, ok in (("wrk", shutil.which("wrk")), ("nginx", nginx), ("ailedger.tlog._tiled", available()))
               if not ok]
    if missing:
        raise SystemExit(f"needs {', '.join(missing)} (scripts/setup.d/25-nginx.sh, scripts/setup.sh)")
    work = Path(tempfile.mkdtemp(prefix="tiles-bench-"))
    procs: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        t = time.perf_counter()
        signed_ledger(work / "ledger", args.entries)
        with Ledger.open(work / "ledger") as led:
            st = export_tiles(led, work / "site")
        print(f"ledger of {st['size']} entries made and exported in {time.perf_counter() - t:.1f} s")
        full = st["size"] // 256
        paths = ["/checkpoint"] * full + [f"/tile/0/{n:03d}" for n in range(min(full, 999))]

        p = subprocess.Popen([sys.executable, "-c", "from ailedger.cli.main import main; main()", "tiles", "serve",
                              str(work / "site"), "--listen", f"127.0.0.1:{PORTS[0]}"], stdout=subprocess.DEVNULL)
        procs["tiled"] = (p, f"http://127.0.0.1:{PORTS[0]}")
        wait_port(PORTS[0], p)
        (work / "ngx").mkdir()
        conf = work / "nginx.conf"
        conf.write_text(nginx_conf(work / "site", f"127.0.0.1:{PORTS[1]}", work / "ngx", workers=1,
                                   user=getpass.getuser() if os.geteuid() == 0 else None))
        p = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"])
        procs["nginx"] = (p, f"http://127.0.0.1:{PORTS[1]}")
        wait_port(PORTS[1], p)
        for _, url in procs.values():
            same_bytes(url, work / "site", ["/checkpoint", "/tile/0/000", f"/tile/0/{min(full, 999) - 1:03d}"])

        runs: dict[str, list[dict]] = {"tiled": [], "nginx": []}
        for r in range(args.rounds):
            for name in (["tiled", "nginx"] if r % 2 == 0 else ["nginx", "tiled"]):
                proc, url = procs[name]
                c0 = cpu_seconds(proc.pid)
                w = wrk(url, paths, args.connections, args.seconds)
                w["server_cpu_s"] = round(cpu_seconds(proc.pid) - c0, 2)
                w["loadavg"] = round(os.getloadavg()[0], 2)
                runs[name].append(w)
                print(f"round {r + 1}, {name}: {w.get('rps')} req/s, p50 {w.get('p50_ms')} ms, p99 {w.get('p99_ms')} ms,"
                      f" server CPU {w['server_cpu_s']} s, load {w['loadavg']}" + (f", {w['errors']}" if 'errors' in w else ""),
                      flush=True)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    out: dict = {"bench": "tiles", "entries": st["size"], "connections": args.connections, "seconds": args.seconds,
                 "rounds": args.rounds, "cpus": os.cpu_count()}
    for name, rs in runs.items():
        out[name] = {"rps_median": round(statistics.median(x["rps"] for x in rs)),
                     "p50_ms_median": round(statistics.median(x["p50_ms"] for x in rs), 3),
                     "p99_ms_median": round(statistics.median(x["p99_ms"] for x in rs), 3),
                     "cpu_s_per_100k_requests": round(statistics.median(
                         x["server_cpu_s"] / (x["rps"] * args.seconds) * 1e5 for x in rs), 3),
                     "runs": rs}
    pairs = list(zip(runs["tiled"], runs["nginx"]))
    out["reference"] = "nginx, 1 worker, same tiles, same run"
    out["ratio_rps_tiled_vs_nginx"] = round(statistics.median(a["rps"] / b["rps"] for a, b in pairs), 3)
    out["ratio_p99_tiled_vs_nginx"] = round(statistics.median(a["p99_ms"] / b["p99_ms"] for a, b in pairs), 3)
    out["ratio_cpu_per_request_tiled_vs_nginx"] = round(
        out["tiled"]["cpu_s_per_100k_requests"] / out["nginx"]["cpu_s_per_100k_requests"], 3)
    print(f"tiled vs nginx: {out['ratio_rps_tiled_vs_nginx']}x the requests/s, {out['ratio_p99_tiled_vs_nginx']}x "
          f"the p99, {out['ratio_cpu_per_request_tiled_vs_nginx']}x the CPU per request")
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
