"""`ailedger stake ...`: stake reputation on claims about content or data; bonded disputes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import INDEX, emit, json_option, ledger_option, open_ledger, with_hint
from ailedger.cli.gov import as_option, dao_hint, load_identity, name_of, time_option
from ailedger.errors import AiledgerError


def claim_text(c: dict[str, Any]) -> str:
    lines = [(f"claim {c['claim_id']}: {c['subject']} is {c['claim']!r} - {c['stake']} reputation staked by "
             f"{c['staker']}"), f"  status: {c['status']} (challenge window ends {c['challenge_window_ends']})"]
    d = c.get("dispute")
    if d:
        t = d["tally"]
        lines.append(f"  dispute {d['id']} by {d['challenger']} (bond {d['bond']}): {d['reason']}")
        lines.append(f"  votes: claim {t['claim']}, challenger {t['challenger']} ({d['voters']} voters"
                     + (f", jury of {len(d['jury'])}" if d.get("jury") else "") + f"); voting ends {d['voting_ends']}"
                     + (f"; winner: {d['winner']}" if d.get("winner") else ""))
    return "\n".join(lines)


def reputation_hint(led: Any, exc: AiledgerError, who: str, amount: int | None) -> AiledgerError:
    """A stake or bond refused for want of reputation: say where reputation comes from, or how much is free."""
    from ailedger.governance import service as gov
    from ailedger.governance import staking

    if "hint" in exc.details:
        return exc
    try:
        st = gov.state(led)
        rep = staking.reputation(led, led.did_for(who))
    except AiledgerError:
        return exc
    if st.dao is None:
        return dao_hint(led, exc, who=who)
    if exc.details.get("field") not in ("signer", "stake", "bond"):
        return exc
    if rep["reputation"] <= 0:
        return with_hint(exc, f"no reputation: run `ailedger gov reputation {who}=POINTS --as "
                              f"{name_of(led, st.minter)}` (the DAO's minter grants it), or stake after earning some "
                              f"(winning a dispute)")
    if amount is not None and rep["free"] < amount:
        return with_hint(exc, f"stake at most {rep['free']} (`ailedger stake reputation {who}` shows what is free "
                              f"and locked), or wait for a stake to be released")
    return dao_hint(led, exc, who=who)


def register(main: click.Group) -> None:
    from ailedger.governance import staking

    @main.group("stake")
    def stake_group() -> None:
        """Reputation staking on claims ("authentic", "human-made", "licensed") and disputes."""

    @stake_group.command("claim")
    @click.argument("subject")
    @click.argument("claim", type=click.Choice(["authentic", "human-made", "licensed", "consented", "accurate", "subnet"]))
    @click.argument("amount", type=int)
    @click.option("--note", default="")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def stake_claim(subject: str, claim: str, amount: int, note: str, who: str, at: str | None,
                    ledger_dir: Path | None, as_json: bool) -> None:
        """Stake AMOUNT reputation that SUBJECT (e.g. entry:12, sha256:...) is CLAIM."""
        with open_ledger(ledger_dir) as led:
            try:
                c = staking.stake_claim(led, load_identity(led, who), subject, claim, amount, note=note, time=at)
            except AiledgerError as exc:
                raise reputation_hint(led, exc, who, amount) from None
        emit(as_json, c, claim_text(c))

    @stake_group.command("dispute")
    @click.argument("claim_id", type=INDEX)
    @click.argument("bond", type=int)
    @click.option("--reason", required=True)
    @as_option
    @time_option
    @ledger_option
    @json_option
    def stake_dispute(claim_id: int, bond: int, reason: str, who: str, at: str | None, ledger_dir: Path | None,
                      as_json: bool) -> None:
        """Dispute claim CLAIM_ID, bonding BOND reputation."""
        with open_ledger(ledger_dir) as led:
            try:
                c = staking.dispute(led, load_identity(led, who), claim_id, bond, reason, time=at)
            except AiledgerError as exc:
                raise reputation_hint(led, exc, who, bond) from None
        emit(as_json, c, claim_text(c))

    @stake_group.command("vote")
    @click.argument("dispute_id", type=INDEX)
    @click.argument("side", type=click.Choice(["claim", "challenger"]))
    @as_option
    @time_option
    @ledger_option
    @json_option
    def stake_vote(dispute_id: int, side: str, who: str, at: str | None, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """Vote on a dispute (reputation holders, or the drawn jury)."""
        with open_ledger(ledger_dir) as led:
            try:
                r = staking.vote_dispute(led, load_identity(led, who), dispute_id, side, time=at)
            except AiledgerError as exc:
                raise dao_hint(led, exc, who=who) from None
        emit(as_json, r, f"voted {side} with weight {r['weight']} at entry {r['index']}; tally {r['tally']}")

    def _step(name: str, fn: Any, arg: str, doc: str) -> None:
        @stake_group.command(name, help=doc)
        @click.argument(arg, type=INDEX)
        @as_option
        @time_option
        @ledger_option
        @json_option
        def cmd(who: str, at: str | None, ledger_dir: Path | None, as_json: bool, **kw: int) -> None:
            with open_ledger(ledger_dir) as led:
                try:
                    c = fn(led, load_identity(led, who), kw[arg], time=at)
                except AiledgerError as exc:
                    raise dao_hint(led, exc, who=who) from None
            emit(as_json, c, claim_text(c))

    _step("resolve", staking.resolve, "dispute_id", "Close a dispute's vote and fix the winner.")
    _step("slash", staking.slash, "dispute_id", "Slash the loser of a resolved dispute and reward the winner.")
    _step("release", staking.release, "claim_id", "Unlock an unchallenged stake after its window.")

    @stake_group.command("show")
    @click.argument("subject")
    @time_option
    @ledger_option
    @json_option
    def stake_show(subject: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Every staked claim about SUBJECT with its dispute status."""
        with open_ledger(ledger_dir, read_only=True) as led:
            cs = staking.claims_for(led, subject, at=at)
        emit(as_json, {"subject": subject, "claims": cs},
             "\n".join(claim_text(c) for c in cs) if cs else f"no staked claims about {subject}")

    @stake_group.command("reputation")
    @click.argument("who")
    @ledger_option
    @json_option
    def stake_reputation(who: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Reputation of WHO (name or did): total, locked in stakes, free."""
        with open_ledger(ledger_dir, read_only=True) as led:
            r = staking.reputation(led, led.did_for(who))
        emit(as_json, r, f"{who}: reputation {r['reputation']} ({r['locked']} locked, {r['free']} free)")
