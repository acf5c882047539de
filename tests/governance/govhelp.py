"""Shared helpers for the governance and staking tests: a ledger, identities, a clock the test controls.

Every ledger made here reads ``CLOCK``.  ``T(seconds)`` moves that clock to ``seconds`` after the test
epoch and returns the time as an entry time, so ``gov.vote(..., time=T(200))`` is an entry signed at the
ledger's "now": no entry is dated away from the clock the writer reads (writers refuse that, as they
should), and the test still decides when everything happens."""

from __future__ import annotations

from ailedger.governance import service as gov
from ailedger.governance.state import iso, time_ms
from ailedger.tlog.ledger import Ledger

BASE = time_ms("2030-01-01T00:00:00.000Z")
DAY = 86400


class Clock:
    """A clock the test moves (seconds since the epoch, as time.time())."""

    def __init__(self, ms: int = BASE) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000

    def at(self, seconds: float) -> str:
        self.ms = BASE + int(seconds * 1000)
        return iso(self.ms)


CLOCK = Clock()


def T(seconds: float) -> str:
    """Move the test clock to ``seconds`` after the test epoch; that time as an entry time."""
    return CLOCK.at(seconds)


def make_ledger(tmp_path, name="gov"):
    CLOCK.at(0)
    led = Ledger.init(tmp_path / name, origin="test.example/gov")
    led.clock = CLOCK
    return led


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
    from ailedger.authority import service as authority

    if p["admin"].did not in authority.genesis_info(ledger)["founders"]:
        gov.name_founders(ledger, [p["admin"].did])   # the operator names the founder (log.genesis)
    return gov.init_dao(ledger, p["admin"], "test-dao", params=params,
                        allocations={p[n].did: a for n, a in tokens.items()},
                        reputation={p[n].did: a for n, a in rep.items()}, time=T(0))
