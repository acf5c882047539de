"""`ailedger gov ...`: DAO governance of models and datasets (tokens, reputation, proposals, votes,
timelock, guardian kill switch), replay/recount from the log, and the whale simulation."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import INDEX, emit, json_option, ledger_option, open_ledger, out_option, with_hint
from ailedger.errors import AiledgerError, BadInputError, NotAuthorisedError, VerificationError

time_option = click.option("--at", "at", default=None, metavar="TIME",
                           help="Entry time (RFC 3339 UTC, e.g. 2030-01-01T00:00:00.000Z); default now. Must lie "
                                "within 600 s of this machine's clock: no entry moves the governance clock ahead.")
as_option = click.option("--as", "who", required=True, help="Identity that signs the entry.")


def load_identity(ledger: Any, name: str) -> Any:
    return ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))


def parse_amounts(ledger: Any, items: tuple[str, ...], what: str) -> dict[str, int]:
    """NAME_OR_DID=AMOUNT pairs."""
    out: dict[str, int] = {}
    for it in items:
        who, sep, amt = it.rpartition("=")
        if not sep or not who:
            raise BadInputError(f"{what} must look like NAME=AMOUNT, got {it!r}", field=what)
        try:
            n = int(amt)
        except ValueError:
            raise BadInputError(f"{what} amount {amt!r} is not an integer", field=what) from None
        out[ledger.did_for(who)] = out.get(ledger.did_for(who), 0) + n
    return out


def name_of(ledger: Any, did: str | None) -> str:
    """The local identity name of ``did`` (for a command line the user can paste), else the did."""
    if did is None:
        return "NAME"
    for n in ledger.identities.names():
        try:
            if ledger.identities.did_of(n) == did:
                return str(n)
        except AiledgerError:
            continue
    return did


def dao_hint(ledger: Any, exc: AiledgerError, *, proposal: int | None = None, who: str | None = None,
             step: str | None = None) -> AiledgerError:
    """``exc`` with the command that fixes it, found by looking at the governance state (not at the message)."""
    from ailedger.governance import service as gov

    if "hint" in exc.details:
        return exc
    try:
        st = gov.state(ledger)
    except AiledgerError:
        return exc
    me = who or "NAME"
    if st.dao is None:
        return with_hint(exc, f"this ledger has no DAO yet: run `ailedger gov init --name NAME --as {me}` "
                              f"(its signer becomes the minter)")
    if proposal is None or exc.details.get("field") != "proposal" or proposal not in st.proposals:
        return exc
    p = gov.proposal_info(ledger, proposal)
    state, ends, eta = p["state"], p["voting_ends"], p.get("eta")
    short = ("; to try governance end to end in minutes, make a DAO with `ailedger gov init ... "
             "--param voting_period=60 --param timelock=0`")
    if state == "pending":
        return with_hint(exc, f"voting on proposal {proposal} opens at {p['voting_starts']}: vote then")
    if state == "active" and step in ("queue", "execute"):
        then = (f"then `ailedger gov queue {proposal} --as {me}`" if step == "queue" else
                f"then `ailedger gov queue {proposal} --as {me}` and, after the timelock, "
                f"`ailedger gov execute {proposal} --as {me}`")
        return with_hint(exc, f"voting on proposal {proposal} ends at {ends}: {then}" + short)
    if state == "succeeded" and step == "execute":
        return with_hint(exc, f"queue it first: `ailedger gov queue {proposal} --as {me}`, then execute it once its "
                              f"timelock has passed")
    if state == "queued" and step == "execute" and eta:
        return with_hint(exc, f"proposal {proposal} may be executed from {eta}: run `ailedger gov execute "
                              f"{proposal} --as {me}` then" + short)
    if state in ("defeated", "expired", "canceled", "executed"):
        return with_hint(exc, f"proposal {proposal} is {state}; `ailedger gov show {proposal}` shows its tally and "
                              f"timetable")
    return exc


@contextmanager
def hinted(ledger: Any, **kw: Any) -> Iterator[None]:
    """Errors raised inside carry the fix ``dao_hint`` finds for them."""
    try:
        yield
    except AiledgerError as exc:
        raise dao_hint(ledger, exc, **kw) from None


def parse_value(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _proposal_text(p: dict[str, Any]) -> str:
    acts = ", ".join(f"{a['kind']} {a.get('model') or a.get('dataset') or a.get('key')}"
                     + (f"={a['value']}" if a["kind"] == "param.set" else "") for a in p["actions"])
    t = p["tally"]
    lines = [f"proposal {p['id']}: {p['state'].upper()} - {p['description']}",
             f"  actions:  {acts}",
             (f"  voting:   {p['voting_starts']} .. {p['voting_ends']} ({p['strategy']}, snapshot at log index "
             f"{p['snapshot_index']})"),
             f"  tally:    for {t['for']}, against {t['against']}, abstain {t['abstain']} ({p['voters']} voters); "
             f"quorum {p['quorum']} of {p['total_power']} " + ("reached" if p["quorum_reached"] else "not reached")]
    if p.get("eta"):
        lines.append(f"  timelock: executable from {p['eta']}")
    if p.get("executed"):
        lines.append(f"  executed: {p['executed']}")
    return "\n".join(lines)


def register(main: click.Group) -> None:
    from ailedger.governance import service as gov

    @main.group("gov")
    def gov_group() -> None:
        """DAO governance: tokens, reputation, proposals, votes, timelock, the guardian kill switch."""

    @gov_group.command("init")
    @click.option("--name", required=True, help="DAO name.")
    @as_option
    @click.option("--strategy", type=click.Choice(gov.STRATEGIES), default="token", show_default=True)
    @click.option("--param", "params", multiple=True, help="Governance parameter KEY=VALUE (repeatable).")
    @click.option("--alloc", "allocs", multiple=True, help="Initial tokens NAME=AMOUNT (repeatable).")
    @click.option("--rep", "reps", multiple=True, help="Initial reputation NAME=POINTS (repeatable).")
    @click.option("--guardian", "guardians", multiple=True, help="Guardian identity (name or did; repeatable).")
    @click.option("--guardian-threshold", type=int, default=None, help="Guardian signatures needed (k of n).")
    @time_option
    @ledger_option
    @json_option
    def gov_init(name: str, who: str, strategy: str, params: tuple[str, ...], allocs: tuple[str, ...],
                 reps: tuple[str, ...], guardians: tuple[str, ...], guardian_threshold: int | None, at: str | None,
                 ledger_dir: Path | None, as_json: bool) -> None:
        """Create this ledger's DAO; the signer becomes its minter."""
        with open_ledger(ledger_dir) as led:
            pr: dict[str, Any] = {"strategy": strategy}
            for kv in params:
                k, sep, v = kv.partition("=")
                if not sep:
                    raise BadInputError(f"--param must be KEY=VALUE, got {kv!r}", field="param")
                pr[k] = parse_value(v)
            if guardians:
                pr["guardians"] = [led.did_for(g) for g in guardians]
            if guardian_threshold is not None:
                pr["guardian_threshold"] = guardian_threshold
            try:
                r = gov.init_dao(led, load_identity(led, who), name, params=pr,
                                 allocations=parse_amounts(led, allocs, "alloc"),
                                 reputation=parse_amounts(led, reps, "rep"), time=at)
            except NotAuthorisedError as exc:
                raise NotAuthorisedError(exc.message + f"; the operator names founders once with: ailedger gov "
                                         f"founders {who}", **exc.details) from None
        emit(as_json, r, f"DAO {name} created at entry {r['index']} (id {r['dao'][:16]}...), strategy "
                         f"{r['params']['strategy']}, supply {r['supply']}")

    @gov_group.command("founders")
    @click.argument("names", nargs=-1, required=True)
    @click.option("--note", default="", help="A note stored in the genesis entry.")
    @ledger_option
    @json_option
    def gov_founders(names: tuple[str, ...], note: str, ledger_dir: Path | None, as_json: bool) -> None:
        """The log operator names who may found the DAO (a log.genesis entry signed with the log key; once)."""
        with open_ledger(ledger_dir) as led:
            r = gov.name_founders(led, [led.did_for(n) for n in names], note=note)
        emit(as_json, r, f"log.genesis at entry {r['index']}: {r['founding_rule']}")

    @gov_group.command("mint")
    @click.argument("allocs", nargs=-1, required=True)
    @as_option
    @time_option
    @ledger_option
    @json_option
    def gov_mint(allocs: tuple[str, ...], who: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Mint tokens: NAME=AMOUNT ... (minter only)."""
        with open_ledger(ledger_dir) as led, hinted(led, who=who):
            r = gov.mint(led, load_identity(led, who), parse_amounts(led, allocs, "alloc"), time=at)
        emit(as_json, r, f"minted at entry {r['index']}; supply {r['supply']}")

    @gov_group.command("transfer")
    @click.argument("to")
    @click.argument("amount", type=int)
    @as_option
    @time_option
    @ledger_option
    @json_option
    def gov_transfer(to: str, amount: int, who: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Transfer AMOUNT tokens to TO (name or did)."""
        with open_ledger(ledger_dir) as led, hinted(led, who=who):
            r = gov.transfer(led, load_identity(led, who), led.did_for(to), amount, time=at)
        emit(as_json, r, f"transferred {amount} at entry {r['index']}; balance now {r['balance']}")

    @gov_group.command("delegate")
    @click.argument("to")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def gov_delegate(to: str, who: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Delegate your token votes to TO (name or did; yourself to take them back)."""
        with open_ledger(ledger_dir) as led, hinted(led, who=who):
            r = gov.delegate(led, load_identity(led, who), led.did_for(to), time=at)
        emit(as_json, r, f"delegated at entry {r['index']}; the delegate now has {r['votes_of_delegate']} votes")

    @gov_group.command("reputation")
    @click.argument("grants", nargs=-1, required=True)
    @click.option("--reason", default="")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def gov_reputation(grants: tuple[str, ...], reason: str, who: str, at: str | None, ledger_dir: Path | None,
                       as_json: bool) -> None:
        """Grant reputation points: NAME=POINTS ... (minter only)."""
        with open_ledger(ledger_dir) as led, hinted(led, who=who):
            r = gov.grant_reputation(led, load_identity(led, who), parse_amounts(led, grants, "grant"),
                                     reason=reason, time=at)
        emit(as_json, r, f"reputation granted at entry {r['index']}")

    @gov_group.command("propose")
    @click.option("--description", "-m", required=True)
    @click.option("--revoke-model", "revoke", multiple=True, help="Revoke a model (the kill switch).")
    @click.option("--approve-model", "approve", multiple=True)
    @click.option("--approve-dataset", "approve_ds", multiple=True)
    @click.option("--revoke-dataset", "revoke_ds", multiple=True)
    @click.option("--confirm-suspension", "confirm", multiple=True, help="Turn a guardian suspension into a revocation.")
    @click.option("--lift-suspension", "lift", multiple=True, help="Lift a guardian suspension.")
    @click.option("--set", "sets", multiple=True, help="Change a governance parameter KEY=VALUE.")
    @click.option("--action", "raw", multiple=True, help="An action as JSON (e.g. '{\"kind\":\"model.revoke\",...}').")
    @click.option("--reason", default="", help="Reason recorded with model/dataset actions.")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def gov_propose(description: str, revoke: tuple[str, ...], approve: tuple[str, ...], approve_ds: tuple[str, ...],
                    revoke_ds: tuple[str, ...], confirm: tuple[str, ...], lift: tuple[str, ...],
                    sets: tuple[str, ...], raw: tuple[str, ...], reason: str, who: str, at: str | None,
                    ledger_dir: Path | None, as_json: bool) -> None:
        """Create a proposal; its id is its log index."""
        rs = {"reason": reason} if reason else {}
        actions: list[dict[str, Any]] = []
        actions += [{"kind": "model.revoke", "model": m, **rs} for m in revoke]
        actions += [{"kind": "model.approve", "model": m, **rs} for m in approve]
        actions += [{"kind": "dataset.approve", "dataset": d, **rs} for d in approve_ds]
        actions += [{"kind": "dataset.revoke", "dataset": d, **rs} for d in revoke_ds]
        actions += [{"kind": "suspension.confirm", "model": m, **rs} for m in confirm]
        actions += [{"kind": "suspension.lift", "model": m, **rs} for m in lift]
        for kv in sets:
            k, sep, v = kv.partition("=")
            if not sep:
                raise BadInputError(f"--set must be KEY=VALUE, got {kv!r}", field="set")
            actions.append({"kind": "param.set", "key": k, "value": parse_value(v)})
        for r_ in raw:
            try:
                actions.append(json.loads(r_))
            except json.JSONDecodeError as exc:
                raise BadInputError(f"--action is not JSON: {exc}", field="action") from None
        if not actions:
            raise BadInputError("a proposal needs at least one action (--revoke-model, --set, --action, ...)",
                                field="actions")
        with open_ledger(ledger_dir) as led, hinted(led, who=who):
            p = gov.propose(led, load_identity(led, who), actions, description, time=at)
        emit(as_json, p, _proposal_text(p))

    @gov_group.command("vote")
    @click.argument("proposal", type=INDEX)
    @click.argument("support", type=click.Choice(["for", "against", "abstain"]))
    @click.option("--reason", default="")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def gov_vote(proposal: int, support: str, reason: str, who: str, at: str | None, ledger_dir: Path | None,
                 as_json: bool) -> None:
        """Cast a signed vote on PROPOSAL."""
        with open_ledger(ledger_dir) as led, hinted(led, who=who, proposal=proposal, step="vote"):
            r = gov.vote(led, load_identity(led, who), proposal, support, reason=reason, time=at)
        t = r["tally"]
        emit(as_json, r, f"vote {support} with weight {r['weight']} logged at entry {r['index']}; tally for "
                         f"{t['for']}, against {t['against']}, abstain {t['abstain']}")

    def _step(name: str, fn: Any, doc: str) -> None:
        @gov_group.command(name, help=doc)
        @click.argument("proposal", type=INDEX)
        @as_option
        @time_option
        @ledger_option
        @json_option
        def cmd(proposal: int, who: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
            with open_ledger(ledger_dir) as led, hinted(led, who=who, proposal=proposal, step=name):
                r = fn(led, load_identity(led, who), proposal, time=at)
            emit(as_json, r, _proposal_text(r))

    _step("queue", gov.queue, "Queue a succeeded proposal (starts its timelock).")
    _step("execute", gov.execute, "Execute a queued proposal once its timelock has passed.")
    _step("cancel", gov.cancel, "Cancel your proposal while it is pending.")

    @gov_group.command("show")
    @click.argument("proposal", type=INDEX)
    @time_option
    @ledger_option
    @json_option
    def gov_show(proposal: int, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """A proposal's state, tally and timetable."""
        with open_ledger(ledger_dir, read_only=True) as led, hinted(led):
            p = gov.proposal_info(led, proposal, at=at)
            try:  # the analyst's advice beside the proposal (ailedger.daoai), when logged
                from ailedger.cli.daoai import advice_lines

                rows, advice = advice_lines(led, proposal)
            except ImportError:  # pragma: no cover - daoai extra not installed
                rows, advice = [], ""
        if rows:
            p["advice"] = rows
        emit(as_json, p, _proposal_text(p) + (f"\n{advice}" if advice else ""))

    @gov_group.command("status")
    @click.option("--model", default=None, help="Only this model's governance status.")
    @ledger_option
    @json_option
    def gov_status(model: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """The DAO's parameters, supply and the status of governed models and datasets."""
        with open_ledger(ledger_dir, read_only=True) as led:
            if model:
                from ailedger.authority.service import model_status

                ms = model_status(led, model)
                emit(as_json, {"model": model, "status": ms.to_dict()},
                     f"model {model}: {ms.state}" + (f" by {ms.by}" if ms.by else "")
                     + (f" ({ms.reason})" if ms.reason else "") + (f" at entry {ms.entry}" if ms.entry is not None
                                                                    else ""))
                return
            s = gov.state(led).summary()
        lines = [(f"DAO {s['name'] or '(none)'}: strategy {s['params']['strategy']}, supply {s['supply']}, "
                 f"{s['holders']} holders, reputation {s['reputation_total']}, {s['proposals']} proposals, "
                 f"{s['claims']} stake claims, {s['rejected']} refused entries")]
        lines += [f"  model {k}: {v['state']} by {v['by']}" for k, v in s["models"].items()]
        lines += [f"  dataset {k}: {v['state']} by {v['by']}" for k, v in s["datasets"].items()]
        emit(as_json, s, "\n".join(lines))

    @gov_group.command("balance")
    @click.argument("who")
    @ledger_option
    @json_option
    def gov_balance(who: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Tokens, delegated votes and reputation of WHO (name or did)."""
        with open_ledger(ledger_dir, read_only=True) as led:
            b = gov.balances(led, led.did_for(who))
        emit(as_json, b, f"{who}: balance {b['balance']}, votes {b['votes']}, delegate {b['delegate']}, "
                         f"reputation {b['reputation']} ({b['reputation_locked']} locked), voting power "
                         f"{b['voting_power']}")

    @gov_group.command("cosign")
    @click.option("--model", required=True)
    @click.option("--reason", required=True)
    @click.option("--nonce", required=True, help="Fresh value; a statement can be used once.")
    @as_option
    @out_option("Write the cosignature here (pass the file to `gov suspend --cosig`); default: print it.")
    @ledger_option
    @json_option
    def gov_cosign(model: str, reason: str, nonce: str, who: str, output: str | None, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """A guardian's signature on a suspension statement: JSON (printed, or written with -o) to pass to
        `gov suspend --cosig`. The output is JSON with or without --json."""
        with open_ledger(ledger_dir) as led, hinted(led, who=who):
            c = gov.guardian_cosign(led, load_identity(led, who), model, reason, nonce)
        if output:
            Path(output).write_text(json.dumps(c, sort_keys=True) + "\n")
            emit(as_json, {"output": output, **c}, f"wrote the cosignature of {who} to {output}")
        else:
            click.echo(json.dumps(c, sort_keys=True))

    @gov_group.command("suspend")
    @click.option("--model", required=True)
    @click.option("--reason", required=True)
    @click.option("--nonce", required=True)
    @click.option("--cosig", "cosigs", multiple=True, help="A cosignature (JSON text or a file holding it).")
    @click.option("--cosign-as", "local", multiple=True, help="A guardian identity held here that signs now.")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def gov_suspend(model: str, reason: str, nonce: str, cosigs: tuple[str, ...], local: tuple[str, ...], who: str,
                    at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Emergency kill switch: k of n guardians suspend MODEL at once; the DAO confirms or lifts it."""
        sigs = []
        for c in cosigs:
            text = Path(c).read_text() if not c.lstrip().startswith("{") and Path(c).exists() else c
            try:
                sigs.append(json.loads(text))
            except json.JSONDecodeError:
                raise BadInputError(f"--cosig {c[:40]!r} is not JSON nor a JSON file", field="cosig") from None
        with open_ledger(ledger_dir) as led:
            for g in local:
                sigs.append(gov.guardian_cosign(led, load_identity(led, g), model, reason, nonce))
            with hinted(led, who=who):
                r = gov.guardian_suspend(led, load_identity(led, who), model, reason, nonce, sigs, time=at)
        emit(as_json, r, f"model {model} SUSPENDED by {r['by']} at entry {r['index']}")

    @gov_group.command("replay")
    @click.option("--verify-signatures", is_flag=True, help="Re-check every governance entry's signature.")
    @click.option("--workers", type=int, default=None)
    @ledger_option
    @json_option
    def gov_replay(verify_signatures: bool, workers: int | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Recompute the governance state from the log alone and print its digest."""
        import time

        from ailedger.governance.staking import check_jury_seeds

        with open_ledger(ledger_dir, read_only=True) as led:
            t0 = time.perf_counter()
            st = gov.replay(led, verify_signatures=verify_signatures, workers=workers)
            secs = time.perf_counter() - t0
            seeds = check_jury_seeds(led, st)
            live = gov.state(led).digest()
        out = {**st.summary(), "digest": st.digest(), "matches_cached_state": live == st.digest(),
               "rejected_entries": [{"index": i, "reason": r} for i, r in st.rejected],
               "jury_seed_problems": seeds, "seconds": round(secs, 3), "signatures_checked": verify_signatures}
        lines = [f"replayed {st.applied} governance entries in {secs:.2f} s"
                 + (" (signatures checked)" if verify_signatures else ""),
                 f"state digest {out['digest']}", f"refused entries: {len(st.rejected)}"]
        lines += [f"  #{i}: {r}" for i, r in st.rejected[:20]]
        lines += [f"  dispute {p['dispute']}: {p['problem']}" for p in seeds]
        emit(as_json, out, "\n".join(lines))
        if seeds:
            raise VerificationError(f"{len(seeds)} dispute(s) cite a jury seed that is not this log's root")

    @gov_group.command("recount")
    @click.argument("proposal", type=INDEX)
    @click.option("--no-verify", is_flag=True, help="Skip the signature checks.")
    @click.option("--workers", type=int, default=None)
    @ledger_option
    @json_option
    def gov_recount(proposal: int, no_verify: bool, workers: int | None, ledger_dir: Path | None,
                    as_json: bool) -> None:
        """Re-tally PROPOSAL from the log (every vote's signature checked on every core)."""
        with open_ledger(ledger_dir, read_only=True) as led:
            r = gov.recount(led, proposal, verify_signatures=not no_verify, workers=workers)
        t = r["tally"]
        emit(as_json, r, f"proposal {proposal}: {r['state']}; for {t['for']}, against {t['against']}, abstain "
                         f"{t['abstain']} from {r['votes_counted']} votes; {r['refused_entries']} entries refused; "
                         f"{r['entries_replayed']} entries replayed in {r['seconds']} s"
                         + (" with signatures checked" if r["signatures_checked"] else ""))

    @gov_group.command("simulate")
    @click.option("--holders", type=int, default=1000, show_default=True)
    @click.option("--trials", type=int, default=2000, show_default=True)
    @click.option("--alpha", type=float, default=0.9, show_default=True, help="Pareto shape of the token spread.")
    @click.option("--cap-bps", type=int, default=500, show_default=True, help="Cap of the capped strategy.")
    @click.option("--turnout", type=float, default=0.3, show_default=True)
    @click.option("--seed", type=int, default=7, show_default=True)
    @click.option("--png", "png", default=None, help="Write the chart as PNG.")
    @click.option("--svg", "svg", default=None, help="Write the chart as SVG.")
    @json_option
    def gov_simulate(holders: int, trials: int, alpha: float, cap_bps: int, turnout: float, seed: int,
                     png: str | None, svg: str | None, as_json: bool) -> None:
        """How often do the top 3 token holders alone decide a vote, per weighting strategy?"""
        if holders < 4 or trials < 1 or not 0 < turnout <= 1 or alpha <= 0:
            raise BadInputError("need holders >= 4, trials >= 1, 0 < turnout <= 1, alpha > 0")
        r = gov.simulate(holders=holders, trials=trials, alpha=alpha, cap_bps=cap_bps, turnout=turnout, seed=seed)
        charts = [gov.simulate_chart(r, p) for p in (png, svg) if p]
        r["charts"] = charts
        lines = [(f"{holders} holders (Pareto a={alpha}; top 3 hold {r['top3_token_share'] * 100:.1f}% of tokens), "
                 f"{trials} votes, turnout {turnout:.0%}")]
        for s, v in r["strategies"].items():
            lines.append(f"  {s:<10} top 3 decide {v['top3_decide_rate'] * 100:5.1f}% of outcomes; top 3 weight "
                         f"share {v['top3_weight_share'] * 100:5.1f}%; outweigh all other voters "
                         f"{v['top3_dominant_rate'] * 100:5.1f}%")
        lines += [f"chart: {c}" for c in charts]
        emit(as_json, r, "\n".join(lines))
