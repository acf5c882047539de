"""Monitor bench: entries/s followed (checked and matched) vs the raw tile download rate of the same files.

    python bench/monitor_bench.py [--entries 50000] [--step 5000]

A ledger of N signed notes is exported as a static tile mirror and served by `ailedger tiles serve` (the C
tile server) on 127.0.0.1:19690. Measured in one run:
- follow: two Monitors follow the log from empty in rounds of --step entries (the mirror re-exported between
  rounds; export time not counted): one with three watches that never match (name, subject, fingerprint), one
  whose signer watch matches every entry (so every entry's signature is checked as well);
- download: the same files (checkpoint, level-0 tiles, entry bundles) fetched with no checks at all;
- verify: `tiles verify`'s whole-mirror read (read_tile_mirror) of the final log.
Ratio follow/download says what the checks (fold onto the compact range, leaf hash of every entry,
parse + match) cost over just downloading."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ailedger.monitor import Monitor, parse_watch
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.mirror import export_tiles
from ailedger.tlog.note import parse_vkey
from ailedger.tlog.tileclient import read_tile_mirror
from ailedger.tlog.tiles import TILE_WIDTH, tile_path

PORT = 19690


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as r:
        return len(r.read())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=50000)
    ap.add_argument("--step", type=int, default=5000)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    led = Ledger.init(work / "led", "example.org/monitor-bench")
    who = led.identities.create("w")
    site = work / "site"
    site.mkdir()
    export_tiles(led, site)
    srv = subprocess.Popen([sys.executable, "-m", "ailedger", "tiles", "serve", str(site), "--listen",
                            f"127.0.0.1:{PORT}", "--refresh", "0.01"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(100):
            try:
                _get(url + "/checkpoint")
                break
            except OSError:
                time.sleep(0.1)
        vk = parse_vkey(led.vkey)
        # "rare": what a rights holder runs (nothing of theirs in the log); "all": every entry matches, so every
        # entry's signature is checked too (the worst case)
        rare = Monitor(url, vk, [parse_watch("name=never-there"), parse_watch("subject=record:nobody"),
                                 parse_watch("fingerprint=phash64:0123456789abcdef/6")])
        mon = Monitor(url, vk, [parse_watch(f"signer={who.did}")], on_match=lambda m: None)
        follow_s = rare_s = 0.0
        followed = matches = 0
        fetched_bytes = 0
        with tqdm(total=a.entries, desc="follow", unit="entry") as bar:
            while followed < a.entries:
                n = min(a.step, a.entries - followed)
                datas = [led.make_entry("note", {"i": i}, who).leaf_bytes for i in range(followed, followed + n)]
                led.append_entries(datas, parallel=False)
                export_tiles(led, site)
                want = led.size
                while _checkpoint_size(url) < want:  # the tile server re-reads the checkpoint
                    time.sleep(0.01)
                t0 = time.perf_counter()
                assert rare.poll()["matches"] == 0
                rare_s += time.perf_counter() - t0
                t0 = time.perf_counter()
                res = mon.poll()
                follow_s += time.perf_counter() - t0
                followed += res["entries_read"]
                matches += res["matches"]
                fetched_bytes += res["bytes_fetched"]
                bar.update(res["entries_read"])
        size = led.size
        # reference 1: download the same files (per round, the same tiles) with no checks
        t0 = time.perf_counter()
        dl_bytes = 0
        done = 0
        while done < size:
            end = min(size, done + a.step)
            dl_bytes += _get(url + "/checkpoint")
            for n in range(done // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1):
                w = min(TILE_WIDTH, end - n * TILE_WIDTH)
                dl_bytes += _get(f"{url}/{tile_path(0, n, w)}") + _get(f"{url}/{tile_path('entries', n, w)}")
            done = end
        download_s = time.perf_counter() - t0
        # reference 2: the whole-mirror check of `tiles verify`
        t0 = time.perf_counter()
        read_tile_mirror(url, parse_vkey(led.vkey))
        verify_s = time.perf_counter() - t0
    finally:
        srv.terminate()
        srv.wait(10)
        led.close()
        shutil.rmtree(work, ignore_errors=True)
    follow_rate = followed / follow_s
    rare_rate = followed / rare_s
    dl_rate = size / download_s
    verify_rate = size / verify_s
    print(f"followed {followed} entries, no match (3 watches): {rare_s:.2f} s, {rare_rate:,.0f} entries/s, "
          f"{fetched_bytes / rare_s / 1e6:.1f} MB/s of tiles")
    print(f"followed {followed} entries, every entry a match (signatures checked): {follow_s:.2f} s, "
          f"{follow_rate:,.0f} entries/s, {matches} matches")
    print(f"download only (same files, no checks): {dl_rate:,.0f} entries/s, {dl_bytes / download_s / 1e6:.1f} MB/s")
    print(f"tiles verify (whole mirror, all levels): {verify_rate:,.0f} entries/s")
    print(f"follow / download = {rare_rate / dl_rate:.3f} (no match), {follow_rate / dl_rate:.3f} (all match)")
    print(json.dumps({"bench": "monitor", "entries": size, "step": a.step, "matches": matches,
                      "follow_entries_per_s": round(rare_rate), "follow_mb_per_s": round(fetched_bytes / rare_s / 1e6, 2),
                      "follow_all_match_entries_per_s": round(follow_rate),
                      "download_entries_per_s": round(dl_rate), "download_mb_per_s": round(dl_bytes / download_s / 1e6, 2),
                      "verify_entries_per_s": round(verify_rate),
                      "ratio_follow_to_download": round(rare_rate / dl_rate, 3),
                      "ratio_follow_all_match_to_download": round(follow_rate / dl_rate, 3),
                      "ratio_follow_to_verify": round(rare_rate / verify_rate, 3)}, sort_keys=True))


def _checkpoint_size(url: str) -> int:
    with urllib.request.urlopen(url + "/checkpoint", timeout=10) as r:
        return int(r.read().split(b"\n")[1])


if __name__ == "__main__":
    main()
