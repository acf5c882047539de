"""Shared helpers for the governance and staking tests: a ledger, identities, an explicit clock."""

from __future__ import annotations

from ailedger.core.governance_state import iso, time_ms
from ailedger.services import governance as gov
from ailedger.services.ledger import Ledger

BASE = time_ms("2030-01-01T00:00:00.000Z")
DAY = 86400


def T(seconds: float) -> str:
    """The time ``seconds`` after the test epoch, as an entry time."""
    return iso(BASE + int(seconds * 1000))


def make_ledger(tmp_path, name="gov"):
    return Ledger.init(tmp_path / name, origin="test.example/gov")


def people(ledger, *names):
    return {n: ledger.identities.create(n) for n in names}


PARAMS = {"voting_delay": 60, "voting_period": 3 * DAY, "timelock": 2 * DAY, "quorum_bps": 2000,
          "grace_period": 7 * DAY, "challenge_window": 7 * DAY, "dispute_period": 3 * DAY}


def dao(ledger, p, *, strategy="token", tokens=None, rep=None, guardians=(), k=1, **extra):
    """A DAO minted by p['admin']: default tokens alice 600, bob 300, carol 100."""
    tokens = tokens if tokens is not None else {"alice": 600, "bob": 300, "carol": 100}
    rep = rep if rep is not None else {}
    params = {**PARAMS, "strategy": strategy, **extra}
    if guardians:
        params["guardians"] = [p[g].did for g in guardians]
        params["guardian_threshold"] = k
    return gov.init_dao(ledger, p["admin"], "test-dao", params=params,
                        allocations={p[n].did: a for n, a in tokens.items()},
                        reputation={p[n].did: a for n, a in rep.items()}, time=T(0))
