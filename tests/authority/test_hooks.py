"""The protocols through which the lower layers ask the capabilities above them (docs/ARCHITECTURE.md):
the kernel's admission policy, the model-status protocol the DAO answers, the dataset owner lookup, and
the proof kinds of `ailedger verify`.  Each is checked with its answer installed (the package's wiring)
and without it (what a lower layer does alone), on a real ledger."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ailedger.authority import hooks
from ailedger.authority import service as authority
from ailedger.errors import BadInputError, NotAuthorisedError
from ailedger.governance import service as gov
from ailedger.provenance import register_model
from ailedger.tlog import proofkinds
from ailedger.tlog.verify import verify_file
from tests.authority.test_authority import model_dir
from tests.governance.govhelp import DAY, T, dao, make_ledger, people

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path):
    led = make_ledger(tmp_path)
    T(0)
    p = people(led, "admin", "alice", "bob", "carol")
    yield led, p, tmp_path
    led.close()


@pytest.fixture
def without_dao():
    saved = hooks.dao()
    hooks.use_dao(None)
    try:
        yield
    finally:
        hooks.use_dao(saved)
        authority._cache.clear()


def test_the_package_installs_every_answer():
    assert hooks.dao() is not None and hooks.dataset_owner() is not None
    assert "gov.propose" in hooks.dao().types and "stake.claim" in hooks.dao().types
    assert [k.name for k in proofkinds.kinds()] == ["ailedger-dataset-proof"]
    assert proofkinds.checkpoint_check("anchor", flag="--rpc") is not None


def test_a_dao_revocation_reaches_model_status_through_the_protocol_only(env, without_dao):
    led, p, tmp = env
    hooks.use_dao(gov.AuthorityView())  # the answer the wiring installs, without the wiring
    register_model(led, model_dir(tmp / "m", 1), "m", p["alice"])
    dao(led, p)
    pid = gov.propose(led, p["alice"], [{"kind": "model.revoke", "model": "m", "reason": "dao"}], "x",
                      time=T(100))["id"]
    gov.vote(led, p["alice"], pid, "for", time=T(200))
    end = 100 + 60 + 3 * DAY
    gov.queue(led, p["bob"], pid, time=T(end))
    gov.execute(led, p["bob"], pid, time=T(end + 2 * DAY))
    st = authority.model_status(led, "m")
    assert (st.state, st.authority, st.by) == ("revoked", "dao", f"proposal {pid}")
    hooks.use_dao(None)  # no DAO: the owner's ruling alone, and the owner never revoked it
    st = authority.model_status(led, "m")
    assert st.usable and st.state != "revoked"


def test_without_a_dao_governance_entries_are_refused_saying_why(env, without_dao):
    led, p, _ = env
    n = led.size
    with pytest.raises(NotAuthorisedError, match=r"governance capability is not installed.*ailedger\[governance\]"):
        led.append_record("gov.delegate", {"to": p["bob"].did}, p["alice"])
    assert led.size == n  # nothing stored


def test_admission_asks_the_dao_simulator(env):
    """Who may found the DAO is the DAO's rule: admission refuses a stranger's gov.init through the
    installed simulator, and does not ask it when the caller has checked governance itself."""
    led, p, _ = env
    entry = led.make_entry("gov.init", {"name": "d"}, p["carol"])
    [err] = authority.admit(led, [entry])
    assert isinstance(err, NotAuthorisedError) and "operator" in err.message
    assert authority.admit(led, [entry], governance_checked=True) == [None]


def test_dataset_owner_lookup_is_the_installed_one(env):
    led, p, _ = env
    seen = []

    def owner(ledger, name):
        seen.append(name)
        return p["alice"].did

    saved = hooks.dataset_owner()
    hooks.use_dataset_owner(owner)
    try:
        e = led.make_entry("dataset.commit", {"name": "d1", "root": "00" * 32}, p["bob"])
        [err] = authority.admit(led, [e])
        assert isinstance(err, NotAuthorisedError) and "belongs to its original committer" in err.message
        hooks.use_dataset_owner(None)  # nobody owns dataset names: not refused for ownership
        assert authority.admit(led, [e]) == [None]
    finally:
        hooks.use_dataset_owner(saved)
    assert seen == ["d1"]


def test_verify_dispatches_to_registered_kinds_and_says_what_is_missing(env):
    led, _, _ = env
    with pytest.raises(BadInputError, match="pass --candidate FILE"):
        verify_file(b"ailedger-dataset-proof/v1\n{}\n", led.verifier)
    with pytest.raises(BadInputError, match="unknown proof file format"):
        verify_file(b"something-else/v1\n", led.verifier)
    bundle = led.prove(0) if led.size else None
    if bundle is None:
        led.append_record("note", {"x": 1}, led.identities.create("writer"))
        bundle = led.prove(0)
    entry = led.entry_bytes(0)
    saved = dict(proofkinds._checks)
    proofkinds._checks.clear()
    try:
        with pytest.raises(BadInputError, match=r"--rpc needs the anchor check.*ailedger\[anchoring\]"):
            verify_file(bundle, led.verifier, entry=entry, rpc="http://127.0.0.1:1", contract="0x" + "00" * 20)
    finally:
        proofkinds._checks.update(saved)
    assert verify_file(bundle, led.verifier, entry=entry)["ok"]


def test_a_kernel_without_a_policy_refuses_to_write(tmp_path):
    code = textwrap.dedent(f"""
        from ailedger.tlog import admission
        from ailedger.tlog.ledger import Ledger
        from ailedger.errors import AiledgerError
        admission._policy = None   # a kernel used without the package's wiring
        led = Ledger.init({str(tmp_path / 'l')!r}, origin="test.example/x")
        w = led.identities.create("w")
        try:
            led.append_record("note", {{"x": 1}}, w)
        except AiledgerError as exc:
            print("refused:", exc.message)
        print("size", led.size)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert r.returncode == 0, r.stderr
    assert "refused: no admission policy is installed" in r.stdout and "size 0" in r.stdout
