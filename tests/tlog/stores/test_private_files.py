"""Private files: a ledger used the way people use it (identities, the inference SDK with payloads
and subject keys, gateway API keys, erasure, witnesses) keeps every secret 0600 in a 0700 folder,
created so from the start (no chmod afterwards), and `ailedger doctor` finds and fixes older ones."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ailedger.tlog.private import check_private, connect_private, fix_private, is_secret, write_private

_WATCH: dict[str, object] = {"root": None, "chmods": [], "connects": []}


def _audit(event: str, args: tuple) -> None:  # sys.addaudithook: hooks cannot be removed, so it is gated
    root = _WATCH["root"]
    if root is None:
        return
    if event == "os.chmod" and str(args[0]).startswith(str(root)):
        _WATCH["chmods"].append(str(args[0]))
    elif event == "sqlite3.connect" and str(args[0]).startswith(str(root)):
        p = Path(args[0])
        # the database must already exist, 0600, when SQLite opens it: SQLite would create it 0644
        mode = stat.S_IMODE(p.stat().st_mode) if p.exists() else None
        _WATCH["connects"].append((str(p), mode))


sys.addaudithook(_audit)


@pytest.fixture
def umask022():
    old = os.umask(0o022)  # the usual umask: what the code does not set explicitly comes out 0644 / 0755
    yield
    os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def _exercise(tmp_path: Path) -> tuple[Path, Path, dict[str, int], dict[str, int]]:
    """Use every secret-bearing part; return the folders and their modes taken while open (SQLite's
    -wal and -shm files exist only while a connection is)."""
    from ailedger.inference import InferenceTrail, erase_subject
    from ailedger.inference.gateway import GatewayKeys
    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger
    from ailedger.tlog.witness import Witness, collect_cosignatures, configure_witness
    from ailedger.tlog.witness_http import make_server

    led = Ledger.init(tmp_path / "ledger", origin="test.example/private")
    pub, _ = led.new_identity("publisher")
    led.new_identity("bob")
    led.rotate_identity("bob")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(4096))
    register_model(led, model, "tiny", pub)
    with InferenceTrail(led, "tiny", mode="durable") as trail:
        trail.record({"note": "a private input"}, {"decision": "yes"}, subject="jane")
        trail.record({"note": "another"}, {"decision": "no"}, subject="joe")
        trail.flush()
        open_modes = _modes(led.path)
    erase_subject(led, "jane")
    keys = GatewayKeys(led.path)
    keys.new_key("carol", rate=5.0)
    keys.close()
    w = Witness.init(tmp_path / "witness", "witness.test/w0")
    w.add_log(led.vkey)
    srv = make_server(w)
    srv.start_background()
    try:
        configure_witness(led, srv.url, w.vkey)
        collect_cosignatures(led, witness_vkeys=[w.vkey])
        witness_open = _modes(tmp_path / "witness")
    finally:
        srv.shutdown()
        srv.server_close()
        w.close()
    led.close()
    return tmp_path / "ledger", tmp_path / "witness", open_modes, witness_open


def test_every_secret_is_private_from_the_start(tmp_path, umask022):
    _WATCH.update(root=str(tmp_path), chmods=[], connects=[])
    try:
        ledger, witness, open_modes, witness_open = _exercise(tmp_path)
    finally:
        _WATCH["root"] = None
    for root in (ledger, witness):
        modes = _modes(root)
        assert modes["."] == 0o700, f"{root} is {modes['.']:o}"
        secret = {rel: m for rel, m in modes.items() if rel != "." and is_secret(rel)}
        wide = {rel: f"{m:04o}" for rel, m in secret.items() if m & 0o077}
        assert not wide, f"secret files readable by others in {root}: {wide}"
        assert check_private(root) == []
    lm = _modes(ledger)
    # the rule is not vacuous: these exist and are 0600 (SQLite's side files included) / 0700
    for rel in ("log.key", "config.json", "ledger.db", "identities/publisher.key", "identities/bob.key.1",
                "identities/bob.json", "inference/subject.secret", "inference/keys.db", "inference/payloads.db",
                "inference/records.db", "inference/gateway.db", "witnesses.db"):
        assert lm.get(rel) == 0o600, f"{rel}: {lm.get(rel, 0):o}"
    for rel in ("ledger.db-wal", "ledger.db-shm", "inference/keys.db-wal", "inference/keys.db-shm",
                "inference/payloads.db-wal", "inference/records.db-wal"):
        assert open_modes.get(rel) == 0o600, f"{rel} (while open): {open_modes.get(rel, 0):o}"
    assert lm["identities"] == lm["inference"] == lm["inference/erasures"] == 0o700
    erasure_reports = [rel for rel in lm if rel.startswith("inference/erasures/")]
    assert erasure_reports and all(lm[r] == 0o600 for r in erasure_reports)
    for rel in ("witness.key", "witness.json", "state.db", "state.db-wal", "state.db-shm"):
        assert witness_open.get(rel) == 0o600, f"witness {rel}: {witness_open.get(rel, 0):o}"
    # no window: nothing was chmod-ed afterwards, and every SQLite file existed 0600 before SQLite opened it
    assert _WATCH["chmods"] == []
    secret_dbs = [(p, m) for p, m in _WATCH["connects"]
                  if any(is_secret(os.path.relpath(p, r)) for r in (ledger, witness) if p.startswith(str(r)))]
    assert len({p for p, _ in secret_dbs}) >= 6, secret_dbs  # keys, payloads, records, gateway, witnesses, state
    assert all(m == 0o600 for _, m in secret_dbs), secret_dbs


def test_existing_empty_folder_is_made_private_before_the_key(tmp_path, umask022):
    from ailedger.tlog.ledger import Ledger

    d = tmp_path / "made-by-hand"
    d.mkdir(mode=0o755)
    Ledger.init(d, origin="test.example/by-hand").close()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_helpers_create_with_the_mode(tmp_path):
    old = os.umask(0)  # even with no umask at all
    try:
        write_private(tmp_path / "f", b"x")
        connect_private(tmp_path / "d.db").execute("CREATE TABLE t (x)").connection.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "d.db").stat().st_mode) == 0o600


def test_check_and_fix(tmp_path, umask022):
    from ailedger.tlog.ledger import Ledger

    Ledger.init(tmp_path / "l", origin="test.example/fix").close()
    root = tmp_path / "l"
    os.chmod(root, 0o755)
    os.chmod(root / "log.key", 0o644)
    (root / "log.vkey").chmod(0o644)  # public: not a problem
    found = check_private(root)
    assert sorted((Path(p.path).name, p.kind, p.mode, p.want) for p in found) == [
        ("l", "folder", 0o755, 0o700), ("log.key", "file", 0o644, 0o600)]
    assert all(p.fix.startswith("chmod ") for p in found)
    assert fix_private(found) == 2 and check_private(root) == []


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AILEDGER_LEDGER"}
    return subprocess.run([sys.executable, "-m", "ailedger", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_doctor_and_audit_warn_about_an_older_ledger(tmp_path, umask022):
    """A ledger made before this rule: folder 0755, keys 0644. `doctor` names each and exits 1,
    `audit` warns (its exit code stays about tampering), `doctor --fix` fixes them."""
    from ailedger.inference.payloads import PayloadStore
    from ailedger.tlog.ledger import Ledger

    Ledger.init(tmp_path / "old", origin="test.example/old").close()
    PayloadStore(tmp_path / "old").close()
    root = tmp_path / "old"
    for p, m in ((root, 0o755), (root / "inference", 0o755), (root / "log.key", 0o644),
                 (root / "inference" / "keys.db", 0o644), (root / "inference" / "payloads.db", 0o640)):
        os.chmod(p, m)
    d = _cli("doctor", "--ledger", "old", cwd=tmp_path)
    assert d.returncode == 1, d.stderr
    for name in ("old ", "old/inference ", "old/log.key", "old/inference/keys.db", "old/inference/payloads.db"):
        assert name in d.stdout, d.stdout
    assert "chmod 600 old/inference/keys.db" in d.stdout and "ailedger doctor --fix" in d.stdout
    a = _cli("audit", "--ledger", "old", cwd=tmp_path)
    assert a.returncode == 0 and "warning: file old/inference/keys.db is mode 0644" in a.stderr
    assert "ailedger doctor --ledger old --fix" in a.stderr
    f = _cli("doctor", "--ledger", "old", "--fix", "--json", cwd=tmp_path)
    assert f.returncode == 0, f.stderr
    assert check_private(root) == [] and stat.S_IMODE((root / "inference" / "keys.db").stat().st_mode) == 0o600
    ok = _cli("doctor", "--ledger", "old", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
