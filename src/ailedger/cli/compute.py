"""`ailedger compute ...`: the compute marketplace (docs/compute.md).

A client posts a job and escrows its price in the ComputeMarket contract; providers bid with a bond; the
client accepts one; the provider runs the job and commits to the root of every step; anyone may verify it
(all of it or a sample) and challenge; the bisection game narrows a dispute to one step that the referee
re-executes.  Every move is a transaction and a signed ledger entry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit_lines, json_option, ledger_option

KEY_HELP = "Ethereum private key: hex, a file holding it, or env:VAR (default: $AILEDGER_COMPUTE_KEY)"
key_option = click.option("--key", envvar="AILEDGER_COMPUTE_KEY", required=True, help=KEY_HELP)
as_option = click.option("--as", "who", required=True, help="Ledger identity that signs the entry.")
rpc_option = click.option("--rpc", envvar="AILEDGER_RPC", help="JSON-RPC URL (default: the one `compute deploy` saved)")


def _dir(ledger: Any) -> Path:
    return Path(ledger.path) / "compute"


def _market(ledger: Any, rpc: str | None) -> Any:
    from ailedger.compute.chain import Market, connect
    from ailedger.errors import NotFoundError

    cfg_path = _dir(ledger) / "market.json"
    if not cfg_path.exists():
        raise NotFoundError("no ComputeMarket for this ledger yet: run `ailedger compute deploy --rpc URL --key K`",
                            field="contract")
    cfg = json.loads(cfg_path.read_text())
    return Market.at(connect(rpc or cfg["rpc"]), cfg["contract"])


def _ident(ledger: Any, who: str) -> Any:
    return ledger.identities.load(who, os.environ.get("AILEDGER_PASSPHRASE"))


def _spec(ledger: Any, m: Any, job: int) -> tuple[Any, Any]:
    from ailedger.compute.job import JobSpec
    from ailedger.compute.service import job_view

    v = job_view(ledger, m.address, job)
    assert v.job is not None
    return JobSpec.from_dict(v.job["spec"]), v


def _bar(total: int, desc: str) -> Any:
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)


def _status_lines(st: dict[str, Any], view: dict[str, Any] | None) -> list[str]:
    lines = [f"job {st['job']} on chain {st['chain_id']} contract {st['contract']}: {st['phase']}",
             f"  client {st['client']}  provider {st['provider'] or '-'}  referee {st['referee']}",
             f"  price {st['price']} wei, bond {st['bond']} wei, {st['steps']} steps",
             f"  initial root {st['init_root']}"]
    if st.get("final_root"):
        lines.append(f"  final root {st['final_root']}  trace root {st['trace_root']}")
    d = st.get("dispute")
    if d:
        lines.append(f"  dispute by {st['challenger']}: steps {d['lo']}..{d['hi']} "
                     f"(agreed {d['lo_root'][:16]}.., disputed {d['hi_root'][:16]}..)"
                     + (f", {d['turn']}'s move" if d["turn"] else ""))
    if st.get("settlement"):
        s = st["settlement"]
        lines.append(f"  settled: {s['outcome']} (winner {s['winner']})")
    if view:
        res = view.get("result")
        if res and res.get("roots"):
            r = res["roots"]
            shown = ", ".join(f"r{i}={x[:12]}.." for i, x in list(enumerate(r))[:3])
            lines.append(f"  step roots (entry {res['index']}): {shown} ... r{len(r) - 1}={r[-1][:12]}..")
        if view.get("verdict"):
            v = view["verdict"]
            lines.append(f"  verdict (entry {v['index']}): step {v['step']}: provider "
                         + ("right" if v["provider_right"] else f"wrong (computed {v['computed_root'][:16]}..)"))
        for ig in view.get("ignored", []):
            lines.append(f"  ignored entry {ig['index']} ({ig['type']}): {ig['why']}")
    return lines


def register(main: click.Group) -> None:
    @main.group("compute")
    def compute() -> None:
        """Compute marketplace: jobs, bids, verified results and the bisection dispute game on Ethereum."""

    @compute.command("deploy")
    @click.option("--rpc", envvar="AILEDGER_RPC", required=True, help="Ethereum JSON-RPC URL")
    @key_option
    @ledger_option
    @json_option
    def deploy_cmd(rpc: str, key: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Deploy the ComputeMarket contract and remember it (and the RPC URL) for this ledger."""
        from ailedger.compute.chain import Market, connect, load_account
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = Market.deploy(connect(rpc), load_account(key))
            _dir(ledger).mkdir(exist_ok=True)
            (_dir(ledger) / "market.json").write_text(json.dumps({"rpc": rpc, "contract": m.address}) + "\n")
        out = {"contract": m.address, "chain_id": int(m.w3.eth.chain_id), "gas": m.gas["deploy"]}
        emit_lines(out, as_json, [f"ComputeMarket deployed at {m.address} on chain {out['chain_id']}"])

    @compute.command("post")
    @click.option("--referee", required=True, help="The referee's ledger identity (name or did).")
    @click.option("--referee-address", required=True, help="The referee's Ethereum address (it calls rule()).")
    @click.option("--price", type=int, required=True, help="Price in wei, escrowed now.")
    @click.option("--bond", type=int, required=True, help="The provider's (and a challenger's) bond in wei.")
    @click.option("--dataset", default="digits", show_default=True,
                  type=click.Choice(["digits", "iris", "wine", "breast_cancer"]), help="scikit-learn dataset")
    @click.option("--rows", type=int, default=256, show_default=True)
    @click.option("--hidden", type=int, default=16, show_default=True)
    @click.option("--batch", type=int, default=8, show_default=True)
    @click.option("--steps", type=int, default=64, show_default=True, help="SGD steps")
    @click.option("--lr-shift", type=int, default=6, show_default=True, help="learning rate 2**-N")
    @click.option("--seed", type=int, default=1, show_default=True, help="initial weights' seed")
    @click.option("--run-window", type=int, default=3600, show_default=True, help="seconds to run after acceptance")
    @click.option("--challenge-window", type=int, default=3600, show_default=True, help="seconds to challenge")
    @click.option("--move-window", type=int, default=600, show_default=True, help="seconds per dispute move")
    @as_option
    @key_option
    @rpc_option
    @ledger_option
    @json_option
    def post_cmd(referee: str, referee_address: str, price: int, bond: int, dataset: str, rows: int, hidden: int,
                 batch: int, steps: int, lr_shift: int, seed: int, run_window: int, challenge_window: int,
                 move_window: int, who: str, key: str, rpc: str | None, ledger_dir: Path | None,
                 as_json: bool) -> None:
        """Post a job: its spec, dataset root and initial model root are logged; the price is escrowed."""
        from web3 import Web3

        from ailedger.compute.chain import load_account
        from ailedger.compute.job import JobSpec, dataset_root, init_state, state_root
        from ailedger.compute.service import log_entry, spec_hash
        from ailedger.errors import BadInputError
        from ailedger.tlog.ledger import Ledger

        spec = JobSpec(dataset=dataset, rows=rows, hidden=hidden, batch=batch, steps=steps, lr_shift=lr_shift,
                       seed=seed)
        if not Web3.is_address(referee_address):
            raise BadInputError(f"--referee-address is not an Ethereum address: {referee_address!r}",
                                field="referee_address")
        for name, v in (("price", price), ("bond", bond), ("run-window", run_window),
                        ("challenge-window", challenge_window), ("move-window", move_window)):
            if v <= 0:
                raise BadInputError(f"--{name} must be positive, got {v}", field=name)
        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            ident = _ident(ledger, who)
            ref_did = ledger.did_for(referee)
            init = state_root(init_state(spec))
            acct = load_account(key)
            job = m.post(acct, spec_hash(spec), init, steps, price, bond, Web3.to_checksum_address(referee_address),
                         run_window, challenge_window, move_window)
            body = {"spec": spec.to_dict(), "spec_hash": spec_hash(spec).hex(), "dataset_root": dataset_root(spec).hex(),
                    "init_root": init.hex(), "price": price, "bond": bond, "referee": ref_did,
                    "referee_address": Web3.to_checksum_address(referee_address), "client_address": acct.address,
                    "chain_id": int(m.w3.eth.chain_id)}
            idx = log_entry(ledger, ident, "job", m.address, job, body)
        out = {"job": job, "entry": idx, "contract": m.address, "init_root": init.hex(), "gas": m.gas["post"]}
        emit_lines(out, as_json, [(f"job {job} posted (entry {idx}): {steps} steps of {dataset}, price {price} wei, "
                                  f"bond {bond} wei")])

    @compute.command("bid")
    @click.argument("job", type=int)
    @as_option
    @key_option
    @rpc_option
    @ledger_option
    @json_option
    def bid_cmd(job: int, who: str, key: str, rpc: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Bid on JOB: the bond is escrowed (withdrawn if another bid is accepted)."""
        from ailedger.compute.chain import load_account
        from ailedger.compute.service import log_entry
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            _spec(ledger, m, job)
            acct = load_account(key)
            m.bid(acct, job)
            idx = log_entry(ledger, _ident(ledger, who), "bid", m.address, job, {"provider_address": acct.address})
        emit_lines({"job": job, "entry": idx, "gas": m.gas["bid"]}, as_json, [f"bid on job {job} (entry {idx})"])

    @compute.command("accept")
    @click.argument("job", type=int)
    @click.option("--provider", required=True, help="The bidder's ledger identity (name or did).")
    @as_option
    @key_option
    @rpc_option
    @ledger_option
    @json_option
    def accept_cmd(job: int, provider: str, who: str, key: str, rpc: str | None, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """Accept PROVIDER's bid on JOB: its bond is escrowed and the run deadline starts."""
        from ailedger.compute.chain import load_account
        from ailedger.compute.service import log_entry
        from ailedger.errors import NotFoundError
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            view = _spec(ledger, m, job)[1]
            did = ledger.did_for(provider)
            bid = next((b for b in view.bids if b["signer"] == did), None)
            if bid is None:
                raise NotFoundError(f"{provider} has not bid on job {job}", field="provider")
            ident = _ident(ledger, who)
            body = {"provider": did, "provider_address": bid["provider_address"], "bid": bid["index"]}
            # refuse here what the ledger would refuse, before anything goes on chain
            from ailedger.compute.service import admission_check
            from ailedger.errors import NotAuthorisedError

            probe = ledger.make_entry("compute.accept", {"contract": m.address, "job": job, **body}, ident)
            why = admission_check(ledger, probe)
            if why:
                raise NotAuthorisedError(why, field="signer")
            m.accept(load_account(key), job, bid["provider_address"])
            idx = log_entry(ledger, ident, "accept", m.address, job, body)
        emit_lines({"job": job, "entry": idx, "provider": did, "gas": m.gas["accept"]}, as_json,
                   [f"job {job}: accepted {provider}'s bid (entry {idx})"])

    @compute.command("run")
    @click.argument("job", type=int)
    @click.option("--cheat-step", type=int, hidden=True, help="(demonstration) corrupt this step")
    @as_option
    @key_option
    @rpc_option
    @ledger_option
    @json_option
    def run_cmd(job: int, cheat_step: int | None, who: str, key: str, rpc: str | None, ledger_dir: Path | None,
                as_json: bool) -> None:
        """Run JOB as its accepted provider: keep every state, log the step roots, submit the result."""
        import time

        from ailedger.compute.chain import load_account
        from ailedger.compute.service import Trace, log_entry, result_body
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            spec, view = _spec(ledger, m, job)
            ident = _ident(ledger, who)
            if view.accepted is None or view.accepted["provider"] != ident.did:
                from ailedger.errors import NotAuthorisedError

                raise NotAuthorisedError(f"{who} is not the accepted provider of job {job}", field="signer")
            t0 = time.perf_counter()
            with _bar(spec.steps, f"job {job}") as bar:
                trace = Trace.compute(spec, corrupt=cheat_step, progress=bar.update)
            secs = time.perf_counter() - t0
            trace.save(_dir(ledger) / str(job) / "provider.npz")
            body = result_body(spec, trace.roots)
            m.submit(load_account(key), job, trace.roots)
            idx = log_entry(ledger, ident, "result", m.address, job, body)
        out = {"job": job, "entry": idx, "final_root": body["final_root"], "trace_root": body["trace_root"],
               "seconds": round(secs, 3), "gas": m.gas["submit"]}
        emit_lines(out, as_json, [(f"job {job}: {spec.steps} steps in {secs:.2f} s; result logged (entry {idx}) and "
                                  f"submitted"), f"  final root {body['final_root']}", f"  trace root {body['trace_root']}"])

    def _verify(ledger: Any, m: Any, job: int, sample: float | None, trace_file: str | None = None) -> dict[str, Any]:
        from ailedger.compute.game import sample_check, sample_steps
        from ailedger.compute.service import Trace
        from ailedger.errors import BadInputError

        spec, view = _spec(ledger, m, job)
        st = m.status(job)
        if not st["final_root"]:
            raise BadInputError(f"job {job} has no result yet", field="job")
        claimed = st["final_root"]
        if sample is None:
            with _bar(spec.steps, f"re-running job {job}") as bar:
                mine = Trace.compute(spec, progress=bar.update)
            roots = [r.hex() for r in mine.roots]
            bad = None
            if roots[-1] != claimed:
                given = (view.result or {}).get("roots")
                bad = next((i for i in range(spec.steps) if given and given[i + 1] != roots[i + 1]), None)
            rep = {"mode": "full", "ok": roots[-1] == claimed, "roots": roots, "bad_step": bad}
        else:
            trace = Trace.load(Path(trace_file) if trace_file else _dir(ledger) / str(job) / "provider.npz")
            if len(trace.roots) != spec.steps + 1 or trace.roots[0].hex() != st["init_root"]:
                raise BadInputError(f"the trace holds {len(trace.roots) - 1} steps from root "
                                    f"{trace.roots[0].hex()[:16]}..: not job {job}'s", field="trace")
            if trace.roots[-1].hex() != claimed:
                raise BadInputError("the provider's published trace does not end at its submitted root", field="trace")
            # the seed: the ledger's checkpoint now, after the result was logged (the provider could not know it)
            steps = sample_steps(spec.steps, sample, ledger.checkpoint())
            bad = sample_check(spec, trace, steps)
            rep = {"mode": f"sample {sample:g}", "ok": bad is None, "checked": len(steps), "bad_step": bad}
        (_dir(ledger) / str(job)).mkdir(parents=True, exist_ok=True)
        (_dir(ledger) / str(job) / "verifier.json").write_text(json.dumps(rep) + "\n")
        return rep

    @compute.command("verify")
    @click.argument("job", type=int)
    @click.option("--sample", type=float, help="re-execute only this fraction of steps (from the published trace)")
    @click.option("--trace", "trace_file", type=click.Path(exists=True, dir_okay=False),
                  help="the provider's published trace (.npz; default: LEDGER/compute/JOB/provider.npz)")
    @rpc_option
    @ledger_option
    @json_option
    def verify_cmd(job: int, sample: float | None, trace_file: str | None, rpc: str | None, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """Re-run JOB (all of it, or a sample of steps seeded by the ledger's latest checkpoint) and compare
        with the submitted result.  Exit 1 when the result is wrong."""
        from ailedger.errors import VerificationError
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            rep = _verify(ledger, m, job, sample, trace_file)
        shown = {k: v for k, v in rep.items() if k != "roots"}
        if not rep["ok"]:
            if as_json:
                click.echo(json.dumps(shown, sort_keys=True))
            raise VerificationError(f"job {job}: the provider's result is wrong"
                                    + (f" (first wrong step {rep['bad_step']})" if rep["bad_step"] is not None else ""),
                                    expected="the re-executed root", found="the submitted root")
        emit_lines(shown, as_json, [f"job {job}: result verified ({rep['mode']})"])

    @compute.command("challenge")
    @click.argument("job", type=int)
    @click.option("--sample", type=float, help="verify by sampling instead of a full re-run")
    @click.option("--force", is_flag=True, help="challenge even when this verifier found the result right")
    @as_option
    @key_option
    @rpc_option
    @ledger_option
    @json_option
    def challenge_cmd(job: int, sample: float | None, force: bool, who: str, key: str, rpc: str | None,
                      ledger_dir: Path | None, as_json: bool) -> None:
        """Verify JOB and, when the result is wrong, challenge it with a bond (starts the bisection game)."""
        from ailedger.compute.chain import load_account
        from ailedger.compute.service import log_entry
        from ailedger.errors import BadInputError
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            rep = _verify(ledger, m, job, sample)
            if rep["ok"] and not force:
                raise BadInputError(f"job {job}: the result verified ({rep['mode']}): nothing to challenge "
                                    "(--force to challenge anyway and risk the bond)", field="job")
            acct = load_account(key)
            m.challenge(acct, job)
            idx = log_entry(ledger, _ident(ledger, who), "challenge", m.address, job,
                            {"challenger_address": acct.address, "mode": rep["mode"], "bad_step": rep["bad_step"]})
        emit_lines({"job": job, "entry": idx, "bad_step": rep["bad_step"], "gas": m.gas["challenge"]}, as_json,
                   [f"job {job} challenged (entry {idx})"
                    + (f": first wrong step {rep['bad_step']}" if rep["bad_step"] is not None else "")])

    @compute.command("move")
    @click.argument("job", type=int)
    @click.option("--provider-key", help="play the provider's moves with this key (from its local trace)")
    @click.option("--challenger-key", help="play the challenger's moves with this key (from its verification)")
    @rpc_option
    @ledger_option
    @json_option
    def move_cmd(job: int, provider_key: str | None, challenger_key: str | None, rpc: str | None,
                 ledger_dir: Path | None, as_json: bool) -> None:
        """Make the bisection moves of the parties whose keys are given, until it is another party's turn."""
        from ailedger.compute.chain import load_account
        from ailedger.compute.game import Challenger, Provider, play
        from ailedger.compute.service import Trace
        from ailedger.errors import BadInputError
        from ailedger.tlog.ledger import Ledger

        if not provider_key and not challenger_key:
            raise BadInputError("give --provider-key and/or --challenger-key", field="key")
        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            d = _dir(ledger) / str(job)
            prov = Provider(load_account(provider_key), Trace.load(d / "provider.npz")) if provider_key else None
            chal = None
            if challenger_key:
                vp = d / "verifier.json"
                if not vp.exists():
                    raise BadInputError(f"no verification of job {job} here: run `ailedger compute challenge {job}`",
                                        field="job")
                rep = json.loads(vp.read_text())
                roots = [bytes.fromhex(r) for r in rep["roots"]] if rep.get("roots") else None
                chal = Challenger(load_account(challenger_key), roots=roots, bad_step=rep.get("bad_step"))
            moves: list[dict[str, Any]] = []
            st = play(m, job, prov, chal, on_move=lambda who, dd: moves.append({"by": who, **dd}))
        lines = [f"provider revealed r{mv['step']} = {str(mv['root'])[:16]}.." if mv["by"] == "provider" else
                 f"challenger {'agreed with' if mv['agree'] else 'disputed'} r{mv['step']}: steps {mv['lo']}..{mv['hi']} left"
                 for mv in moves]
        d2 = st.get("dispute") or {}
        lines.append(f"job {job}: {st['phase']}" + (f", {d2['turn']}'s move at steps {d2['lo']}..{d2['hi']}"
                                                     if d2.get("turn") else ""))
        emit_lines({"job": job, "moves": moves, "status": st}, as_json, lines)

    @compute.command("referee")
    @click.argument("job", type=int)
    @click.option("--proof", type=click.Path(exists=True, dir_okay=False),
                  help='a step proof {"step": N, "state": ...} (default: the trace held here, else a re-run)')
    @as_option
    @key_option
    @rpc_option
    @ledger_option
    @json_option
    def referee_cmd(job: int, proof: str | None, who: str, key: str, rpc: str | None, ledger_dir: Path | None,
                    as_json: bool) -> None:
        """As JOB's referee, re-execute the one disputed step, log the verdict (with its proof, replayable)
        and rule on chain."""
        from ailedger.compute.chain import load_account
        from ailedger.compute.service import Trace, encode_state, log_entry, referee_step
        from ailedger.errors import BadInputError
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            spec, _view = _spec(ledger, m, job)
            st = m.status(job)
            d = st.get("dispute")
            if st["phase"] != "disputed" or not d or d["turn"] != "referee":
                raise BadInputError(f"job {job} is not waiting for the referee ({st['phase']}"
                                    + (f", {d['turn']}'s move" if d and d.get("turn") else "") + ")", field="job")
            if proof:
                try:
                    pf = json.loads(Path(proof).read_text())
                except ValueError as exc:
                    raise BadInputError(f"the step proof is not JSON: {exc}", field="proof") from None
            else:
                tp = _dir(ledger) / str(job) / "provider.npz"
                trace = Trace.load(tp) if tp.exists() else Trace.compute(spec)
                pf = {"step": d["lo"], "state": encode_state(trace.state(d["lo"]))}
            v = referee_step(spec, d, pf)
            body = {**v, "spec": spec.to_dict(), "state": pf["state"]}
            ident = _ident(ledger, who)
            idx = log_entry(ledger, ident, "verdict", m.address, job, body)
            m.rule(load_account(key), job, v["provider_right"])
            settled = m.settlement(job)
        out = {"job": job, "entry": idx, **v, "settlement": settled, "gas": m.gas["rule"]}
        emit_lines(out, as_json, [f"job {job}, step {v['step']}: provider "
                                  + ("right" if v["provider_right"] else "wrong") + f" (verdict entry {idx})",
                                  f"  settled: {settled['outcome'] if settled else '-'}"])

    @compute.command("settle")
    @click.argument("job", type=int)
    @click.option("--as", "who", help="Ledger identity that logs the settlement (optional).")
    @key_option
    @rpc_option
    @ledger_option
    @json_option
    def settle_cmd(job: int, who: str | None, key: str, rpc: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Settle JOB once its window passed: pay the provider (no challenge), or give price and bond to the
        client (no result), or end a dispute whose party missed its move."""
        from ailedger.compute.chain import load_account
        from ailedger.compute.service import log_entry
        from ailedger.errors import BadInputError
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            st = m.status(job)
            acct = load_account(key)
            fn = {"submitted": m.finish, "accepted": m.claim_timeout, "disputed": m.timeout_dispute}.get(st["phase"])
            if fn is None:
                raise BadInputError(f"job {job} is {st['phase']}: nothing to settle", field="job")
            fn(acct, job)
            s = m.settlement(job)
            assert s is not None
            idx = log_entry(ledger, _ident(ledger, who), "settle", m.address, job, s) if who else None
        emit_lines({"job": job, "entry": idx, **s}, as_json, [f"job {job} settled: {s['outcome']} (to {s['winner']})"])

    @compute.command("withdraw")
    @key_option
    @rpc_option
    @ledger_option
    @json_option
    def withdraw_cmd(key: str, rpc: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Withdraw what the market owes this key."""
        from ailedger.compute.chain import load_account
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir) as ledger:
            m = _market(ledger, rpc)
            acct = load_account(key)
            n = m.withdraw(acct)
        emit_lines({"address": acct.address, "amount": n}, as_json, [f"withdrew {n} wei to {acct.address}"])

    @compute.command("status")
    @click.argument("job", type=int)
    @rpc_option
    @ledger_option
    @json_option
    def status_cmd(job: int, rpc: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """JOB's state on chain and in the ledger: phase, parties, step roots, dispute, verdict."""
        from ailedger.compute.service import job_view
        from ailedger.errors import NotFoundError
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir, read_only=True) as ledger:
            m = _market(ledger, rpc)
            st = m.status(job)
            st["settlement"] = m.settlement(job)
            try:
                view: dict[str, Any] | None = job_view(ledger, m.address, job).to_dict()
            except NotFoundError:
                view = None
        emit_lines({"chain": st, "ledger": view}, as_json, _status_lines(st, view))

    @compute.command("replay")
    @click.argument("entry", type=int)
    @ledger_option
    @json_option
    def replay_cmd(entry: int, ledger_dir: Path | None, as_json: bool) -> None:
        """Re-execute the step of the compute.verdict at log index ENTRY; exit 1 if it does not hold."""
        from ailedger.compute.service import replay_verdict
        from ailedger.errors import BadInputError
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(ledger_dir, read_only=True) as ledger:
            if not 0 <= entry < ledger.size:
                raise BadInputError(f"no entry {entry} in this ledger (size {ledger.size})", field="entry")
            e = ledger.entry(entry)
            if e.type != "compute.verdict":
                raise BadInputError(f"entry {entry} is a {e.type}, not a compute.verdict", field="entry")
            got = replay_verdict(dict(e.body))
        emit_lines(got, as_json, [f"verdict {entry} replays: step {got['step']}, provider "
                                  + ("right" if got["provider_right"] else "wrong")])
