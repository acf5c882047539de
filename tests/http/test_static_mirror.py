"""The static tile mirror: incremental export (full tiles written once, checkpoint last), partial
tile pruning, and the mirror served by a real nginx read back by a client written from the C2SP
tlog-tiles text (every leaf hash, the root, every entry)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.errors import BadInputError
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.mirror import export_tiles, nginx_conf, prune_partial_tiles
from tests.http.helpers import append_notes, ledger_with_notes
from tests.http.tlog_client import get, index_path, read_back

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)




def test_incremental_export_writes_new_tiles_only(tmp_path):
    led, a = ledger_with_notes(tmp_path / "l", "example.org/mirror", 600)
    site = tmp_path / "site"
    first = export_tiles(led, site)
    assert first["size"] == led.size == 600
    full0 = site / "tile/0/000"
    m0 = full0.stat().st_mtime_ns
    time.sleep(0.01)
    append_notes(led, a, 600, 300)
    second = export_tiles(led, site)
    assert second["kept"] >= 2  # tile/0/000, tile/0/001 and the full bundles were not rewritten
    assert full0.stat().st_mtime_ns == m0
    size = second["size"]
    assert (site / f"tile/0/{index_path(size // 256)}.p/{size % 256}").is_file()
    # --full rewrites everything
    third = export_tiles(led, site, incremental=False)
    assert third["kept"] == 0 and full0.stat().st_mtime_ns != m0
    # a damaged full tile (wrong length) is rewritten, not kept
    full0.write_bytes(b"short")
    export_tiles(led, site)
    assert full0.stat().st_size == 8192
    # partials of tiles that are now full go after the grace period, current ones stay
    old_partial = site / "tile/0/002.p/88"
    assert old_partial.is_file()  # written at size 600 + registration entries
    assert prune_partial_tiles(site, grace_seconds=3600) == 0
    append_notes(led, a, 900, 300)
    export_tiles(led, site)
    gone = prune_partial_tiles(site, grace_seconds=0)
    assert gone >= 1 and not old_partial.exists()
    size = led.size
    assert (site / f"tile/0/{index_path(size // 256)}.p/{size % 256}").is_file()
    led.close()


def test_nginx_conf_refuses_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="listen"):
        nginx_conf(tmp_path, "127.0.0.1:80; evil", tmp_path)
    with pytest.raises(BadInputError, match="directory"):
        nginx_conf(tmp_path / "a;b", "127.0.0.1:8080", tmp_path)
    r = CliRunner().invoke(main, ["tiles", "nginx-conf", str(tmp_path / "site"), "--listen", "x y"])
    assert r.exit_code == 2 and "listen" in r.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/setup.d/25-nginx.sh installs it with apt)")
def test_mirror_served_by_nginx_reads_back_per_spec(tmp_path):
    led, a = ledger_with_notes(tmp_path / "l", "example.org/mirror", 700)
    site = tmp_path / "site"
    r = CliRunner().invoke(main, ["tiles", "export", str(site), "--ledger", str(tmp_path / "l"), "--json"])
    assert r.exit_code == 0, r.output
    port = _free_port()
    conf = tmp_path / "nginx.conf"
    args = ["tiles", "nginx-conf", str(site), "--listen", f"127.0.0.1:{port}", "--prefix", str(tmp_path / "ngx"),
            "-o", str(conf)]
    if os.geteuid() == 0:
        args += ["--user", getpass.getuser()]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                status, _, body = get(base + "/checkpoint")
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("nginx did not start: " + proc.stderr.read1().decode(errors="replace") if proc.stderr else "")
        assert status == 200
        size, _, _ = read_back(base)
        assert size == led.size
        # nothing but the tlog-tiles paths is served
        for bad in ("/tile/../nginx.conf", "/tile/0/abc", "/etc/passwd", "/tile/0/000.p/999x", "/"):
            assert get(base + bad)[0] in (400, 404), bad
        # the mirror follows the log: append, export again, nginx serves the new checkpoint
        append_notes(led, a, 700, 100)
        export_tiles(led, site)
        deadline = time.monotonic() + 5  # nginx re-validates its open-file cache every second
        while True:
            status, _, body = get(base + "/checkpoint")
            if int(body.decode().split("\n")[1]) == led.size or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200 and int(body.decode().split("\n")[1]) == led.size
    finally:
        proc.terminate()
        proc.wait(10)
        led.close()


def test_mirror_reuses_the_stored_checkpoint_and_skips_known_tiles(tmp_path):
    led, a = ledger_with_notes(tmp_path / "l", "example.org/mirror", 600)
    site = tmp_path / "site"
    export_tiles(led, site)
    n_cps = len(led.store.checkpoints())
    again = export_tiles(led, site)  # nothing new: no new checkpoint signed, the stored one is served
    assert len(led.store.checkpoints()) == n_cps and again["size"] == 600
    (site / "tile/0/000").unlink()
    export_tiles(led, site, known_size=600)  # below the known size: taken as present, not looked at
    assert not (site / "tile/0/000").exists()
    export_tiles(led, site)  # without it, the missing tile is found and written again
    assert (site / "tile/0/000").stat().st_size == 8192
    append_notes(led, a, 600, 10)
    grown = export_tiles(led, site, known_size=600)
    assert grown["size"] == 610 and len(led.store.checkpoints()) == n_cps + 1
    led.close()


def test_bad_mirror_input_is_refused_cleanly(tmp_path):
    led = Ledger.init(tmp_path / "l", "example.org/mirror")
    led.close()
    (tmp_path / "afile").write_text("x")
    run = CliRunner().invoke
    r = run(main, ["tiles", "export", str(tmp_path / "afile" / "site"), "--ledger", str(tmp_path / "l")])
    assert r.exit_code == 2 and "cannot write" in r.output
    r = run(main, ["tiles", "export", str(tmp_path / "site"), "--ledger", str(tmp_path / "l"), "--watch", "0"])
    assert r.exit_code == 2 and "--watch" in r.output and not (tmp_path / "site").exists()
    r = run(main, ["tiles", "nginx-conf", str(tmp_path / "site"), "--workers", "0"])
    assert r.exit_code == 2 and "--workers" in r.output
    r = run(main, ["tiles", "nginx-conf", str(tmp_path / "site"), "--prefix", str(tmp_path / "afile" / "ngx")])
    assert r.exit_code == 2 and "cannot write" in r.output


def test_watch_keeps_the_mirror_current(tmp_path):
    import signal
    import sys

    led, a = ledger_with_notes(tmp_path / "l", "example.org/mirror", 300)
    site = tmp_path / "site"
    proc = subprocess.Popen([sys.executable, "-c", "from ailedger.cli.main import main; main()", "tiles", "export",
                             str(site), "--ledger", str(tmp_path / "l"), "--watch", "0.1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def mirrored_size() -> int:
            try:
                return int((site / "checkpoint").read_text().split("\n")[1])
            except (OSError, IndexError, ValueError):
                return -1

        deadline = time.monotonic() + 30
        while mirrored_size() != 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mirrored_size() == 300
        append_notes(led, a, 300, 250)
        led.checkpoint()
        while mirrored_size() != 550 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mirrored_size() == 550
        assert (site / "tile/0/001").stat().st_size == 8192 and (site / "tile/0/002.p/38").is_file()
        # a failing round (here: the checkpoint cannot be written) is reported and retried, not fatal
        (site / "checkpoint.tmp").mkdir()
        append_notes(led, a, 550, 10)
        time.sleep(1.0)
        assert mirrored_size() == 550 and proc.poll() is None
        (site / "checkpoint.tmp").rmdir()
        while mirrored_size() != 560 and time.monotonic() < deadline + 30:
            time.sleep(0.05)
        assert mirrored_size() == 560
    finally:
        proc.send_signal(signal.SIGTERM)  # as a service manager stops it: a clean exit
        out, err = proc.communicate(timeout=20)
        led.close()
    assert proc.returncode == 0, err.decode()
    assert b'"size": 550' in out and b'"size": 560' in out
    assert err.decode().count("warning: cannot write") == 1  # once, not every round
