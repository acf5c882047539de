"""`ailedger tiles verify URL` and `ailedger tiles mirror URL DIR` against a real nginx serving an exported
tile tree (the documented default for serving tiles, docs/mirror.md): the whole log is checked, a copy
follows the log and can be served in turn, and a mirror that lies (a changed tile, a changed entry, a
foreign checkpoint, a forked history, a missing file) is refused with nothing written."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.mirror import export_tiles, nginx_conf
from ailedger.tlog.tiles import tile_path
from tests.http.helpers import append_notes, ledger_with_notes

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(NGINX is None,
                                reason="nginx is not installed (scripts/setup.d/25-nginx.sh installs it with apt)")


class Nginx:
    """A real nginx serving ``site`` on a free 127.0.0.1 port with the configuration `tiles nginx-conf` writes."""

    def __init__(self, site: Path, work: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        work.mkdir(parents=True, exist_ok=True)
        conf = work / "nginx.conf"
        conf.write_text(nginx_conf(site, f"127.0.0.1:{port}", work, user=getpass.getuser() if os.geteuid() == 0 else None))
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError("nginx did not start: " + self.proc.stderr.read().decode()) from None
                time.sleep(0.025)
        raise AssertionError("nginx did not start listening")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def served(tmp_path):
    led, who = ledger_with_notes(tmp_path / "l", "example.org/nginx-mirror", 700)
    site = tmp_path / "site"
    export_tiles(led, site)
    ngx = Nginx(site, tmp_path / "ngx")
    yield led, who, site, ngx
    ngx.stop()
    led.close()


def cli(*args: str):
    r = CliRunner().invoke(main, [*args, "--json"])
    first = r.output.split("\n", 1)[0]
    return r.exit_code, (json.loads(first) if first.startswith("{") else r.output)


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def wait_checkpoint(url: str, size: int) -> None:
    import urllib.request

    deadline = time.monotonic() + 5  # nginx re-validates its open-file cache every second
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/checkpoint", timeout=5) as r:
            if int(r.read().decode().split("\n")[1]) == size:
                return
        time.sleep(0.1)
    raise AssertionError(f"nginx never served the checkpoint at size {size}")


def test_verify_and_mirror_from_nginx_and_follow_the_log(served, tmp_path):
    led, who, site, ngx = served
    code, res = cli("tiles", "verify", ngx.url, "--vkey", led.vkey)
    assert code == 0, res
    assert res["verified"] and res["size"] == led.size and res["root"] == led.log.root_at(led.size).hex()
    assert res["fetched"] == 1 + 3 + 1 + 3  # checkpoint, 3 level-0 tiles, 1 level-1 tile, 3 entry bundles

    copy = tmp_path / "copy"
    code, res = cli("tiles", "mirror", ngx.url, str(copy), "--vkey", led.vkey)
    assert code == 0, res
    assert res["previous_size"] is None and files(copy) == files(site)
    first = led.size
    old_site = tmp_path / "old-site"
    shutil.copytree(site, old_site)

    # the log grows; the mirror follows; a second run fetches only what changed
    append_notes(led, who, 700, 300)
    export_tiles(led, site)
    wait_checkpoint(ngx.url, led.size)
    code, res = cli("tiles", "mirror", ngx.url, str(copy), "--vkey", led.vkey)
    assert code == 0, res
    assert res["previous_size"] == first and res["size"] == led.size == first + 300
    assert res["reused"] == 4  # tile/0/000, 001 and the two full bundles were read from the copy
    partial_before = copy / tile_path(0, 2, first - 512)
    assert partial_before.exists()  # kept: readers holding the old checkpoint still find it (as export does)
    assert {k: v for k, v in files(copy).items() if k in files(site)} == files(site)

    # the copy is a tile mirror in its own right: served by another nginx, it verifies
    ngx2 = Nginx(copy, tmp_path / "ngx2")
    try:
        code, res = cli("tiles", "verify", ngx2.url, "--vkey", led.vkey)
        assert code == 0 and res["size"] == first + 300, res
    finally:
        ngx2.stop()

    # a mirror that went back (its checkpoint older than the copy's) is refused, the copy untouched
    ngx_old = Nginx(old_site, tmp_path / "ngx-old")
    try:
        before = files(copy)
        code, res = cli("tiles", "mirror", ngx_old.url, str(copy), "--vkey", led.vkey)
        assert code == 1 and "is behind the copy" in res["error"]["message"], res
        assert files(copy) == before
    finally:
        ngx_old.stop()


@pytest.mark.parametrize("damage", ["hash tile", "upper tile", "entry bundle", "short tile", "missing bundle"])
def test_a_mirror_that_lies_is_refused_and_the_copy_is_untouched(served, tmp_path, damage):
    led, who, site, ngx = served
    copy = tmp_path / "copy"
    assert cli("tiles", "mirror", ngx.url, str(copy), "--vkey", led.vkey)[0] == 0
    before = files(copy)
    append_notes(led, who, 700, 100)
    export_tiles(led, site)
    wait_checkpoint(ngx.url, led.size)
    # (what is damaged is new since the copy was made: files the copy already holds are read from it)
    if damage == "hash tile":
        p = site / "tile/0/002"
        b = bytearray(p.read_bytes())
        b[100] ^= 1
        p.write_bytes(bytes(b))
        want, code_want = "do not give the root", 1
    elif damage == "upper tile":
        p = site / tile_path(1, 0, led.size // 256)
        b = bytearray(p.read_bytes())
        b[0] ^= 1
        p.write_bytes(bytes(b))
        want, code_want = "does not hold the hashes of the level below", 1
    elif damage == "entry bundle":
        p = site / "tile/entries/002"
        b = bytearray(p.read_bytes())
        b[-1] ^= 1
        p.write_bytes(bytes(b))
        want, code_want = "does not hold the entries", 1
    elif damage == "short tile":
        p = site / tile_path(0, 3, led.size - 768)
        p.write_bytes(p.read_bytes()[:-32])
        want, code_want = "a tile of width", 1
    else:
        (site / tile_path("entries", 3, led.size - 768)).unlink()
        want, code_want = "answered 404", 2
    time.sleep(1.1)  # past nginx's open-file cache
    code, res = cli("tiles", "verify", ngx.url, "--vkey", led.vkey)
    assert code == code_want and want in res["error"]["message"], res
    code, res = cli("tiles", "mirror", ngx.url, str(copy), "--vkey", led.vkey)
    assert code == code_want and want in res["error"]["message"], res
    assert files(copy) == before


def test_a_foreign_key_or_a_forked_history_is_refused(served, tmp_path):
    led, who, site, ngx = served
    other = Ledger.init(tmp_path / "other", "example.org/nginx-mirror")
    code, res = cli("tiles", "verify", ngx.url, "--vkey", other.vkey)
    assert code == 1 and res["error"]["code"] == "bad_signature", res
    other.close()

    # a fork: a copy of the log (same key) that then takes a different history
    copy = tmp_path / "copy"
    assert cli("tiles", "mirror", ngx.url, str(copy), "--vkey", led.vkey)[0] == 0
    led.close()
    shutil.copytree(tmp_path / "l", tmp_path / "fork")
    led = Ledger.open(tmp_path / "l")
    fork = Ledger.open(tmp_path / "fork")
    append_notes(led, who, 700, 50)
    append_notes(fork, who, 5000, 50)
    fork_site = tmp_path / "fork-site"
    shutil.copytree(site, fork_site)
    export_tiles(fork, fork_site)
    ngx_fork = Nginx(fork_site, tmp_path / "ngx-fork")
    try:
        assert cli("tiles", "verify", ngx_fork.url, "--vkey", led.vkey)[0] == 0  # alone, the fork is a valid log
        # the copy follows the real log, then is offered the fork (same size, same key, other entries)
        export_tiles(led, site)
        wait_checkpoint(ngx.url, led.size)
        assert cli("tiles", "mirror", ngx.url, str(copy), "--vkey", led.vkey)[0] == 0
        assert fork.size == led.size
        before = files(copy)
        code, res = cli("tiles", "mirror", ngx_fork.url, str(copy), "--vkey", led.vkey)
        assert code == 1 and "does not extend the copy" in res["error"]["message"], res
        assert files(copy) == before
    finally:
        ngx_fork.stop()
        fork.close()
        led.close()


def test_bad_input_names_what_is_wrong(tmp_path):
    led = Ledger.init(tmp_path / "l", "example.org/x")
    vkey = led.vkey
    led.close()
    code, res = cli("tiles", "verify", "ftp://example.org/x", "--vkey", vkey)
    assert code == 2 and "not an http(s) URL" in res["error"]["message"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, res = cli("tiles", "verify", f"http://127.0.0.1:{port}", "--vkey", vkey)
    assert code == 2 and res["error"]["code"] == "network" and "cannot read" in res["error"]["message"]
    (tmp_path / "afile").write_text("x")
    code, res = cli("tiles", "mirror", f"http://127.0.0.1:{port}", str(tmp_path / "afile"), "--vkey", vkey)
    assert code == 2
    r = CliRunner().invoke(main, ["tiles", "verify", "http://127.0.0.1:1"])
    assert r.exit_code == 2 and "--vkey" in r.output


def test_the_same_client_reads_the_c_server_and_the_write_server(tmp_path):
    """`tiles verify` is not nginx-specific: the C mirror server and `ailedger serve` (tiles at its site
    root) answer the same paths, and the same checks pass."""
    from ailedger.tlog import tileserver
    from tests.http.helpers import Server

    led, _ = ledger_with_notes(tmp_path / "l", "example.org/any-server", 300)
    site = tmp_path / "site"
    export_tiles(led, site)
    vkey = led.vkey
    size = led.size
    led.close()
    if tileserver.available():
        import sys

        p = subprocess.Popen([sys.executable, "-c", "from ailedger.cli.main import main; main()", "tiles", "serve",
                              str(site), "--listen", "127.0.0.1:0", "--json"], stdout=subprocess.PIPE)
        try:
            url = json.loads(p.stdout.readline())["url"]
            code, res = cli("tiles", "verify", url, "--vkey", vkey)
            assert code == 0 and res["size"] == size, res
        finally:
            p.terminate()
            p.wait(10)
    srv = Server(tmp_path / "l")
    try:
        code, res = cli("tiles", "verify", srv.url, "--vkey", vkey)
        assert code == 0 and res["size"] >= size, res
    finally:
        srv.stop()
