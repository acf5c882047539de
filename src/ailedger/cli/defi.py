"""`ailedger agent ...`: AI agents in DeFi -- a guard contract every agent transaction passes through, every
action logged before it is sent, an audit of the chain against the log, a detector for fraud patterns and
honest backtests.  See docs/defi.md."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, json_option, ledger_option, open_ledger
from ailedger.errors import BadInputError, VerificationError

RPC_HELP = "JSON-RPC endpoint (default: $AILEDGER_RPC)."


def _identity(ledger: Any, name: str) -> Any:
    return ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))


def _json_arg(value: str, what: str) -> Any:
    """Inline JSON, or @FILE / a path to a JSON file."""
    text = value
    p = Path(value.removeprefix("@"))
    if value.startswith("@") or (not value.lstrip().startswith(("{", "[")) and p.is_file()):
        try:
            text = p.read_text()
        except OSError as exc:
            raise BadInputError(f"{what}: cannot read {p}: {exc.strerror}", field=what) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                            field=what) from None


def _deployment(path: str) -> dict[str, Any]:
    d = _json_arg("@" + path, "deployment")
    if not isinstance(d, dict) or "addresses" not in d:
        raise BadInputError(f"{path} is not a deployment file written by `agent deploy --out`", field="deployment")
    return d


def register(main: click.Group) -> None:
    @main.group("agent")
    def agent() -> None:
        """AI agents in DeFi: guarded execution, logged actions, audit, fraud detection, honest backtests."""

    @agent.command("deploy")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--dao-key", default="env:AILEDGER_DAO_KEY", show_default=True,
                  help="Key of the DAO (its timelock on a real chain): the only one that changes the policy.")
    @click.option("--kill-key", default="env:AILEDGER_KILL_KEY", show_default=True,
                  help="Key of the kill switch (guardians): may pause the guard.")
    @click.option("--agent-address", required=True, help="The agent's address (the only caller of execute).")
    @click.option("--cap", type=int, default=1000, show_default=True, help="Per-token cap per period (whole tokens).")
    @click.option("--period", type=int, default=86400, show_default=True, help="Cap period in seconds.")
    @click.option("--slippage-bps", type=click.IntRange(0, 10000), default=100, show_default=True)
    @click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
                  help="Write the deployment JSON here.")
    @json_option
    def deploy_cmd(rpc: str | None, dao_key: str, kill_key: str, agent_address: str, cap: int, period: int,
                   slippage_bps: int, out: str, as_json: bool) -> None:
        """Deploy two test tokens, their AMM, the deny list and the agent's guard (funded, policy set by the DAO)."""
        from types import SimpleNamespace

        from ailedger.defi.chain import E18, connect, load_key, setup_market

        w3 = connect(rpc or "")
        dao, kill = load_key(dao_key, "dao-key"), load_key(kill_key, "kill-key")
        if not w3.is_address(agent_address):
            raise BadInputError(f"--agent-address {agent_address!r} is not an address", field="agent-address")
        ag = SimpleNamespace(address=w3.to_checksum_address(agent_address))  # the agent signs nothing here
        m = setup_market(w3, dao, kill, ag, cap=cap * E18, period=period, slippage_bps=slippage_bps)
        dep = {"chain_id": w3.eth.chain_id, "addresses": m.addresses(), "policy": {
            "cap": str(cap * E18), "period": period, "slippage_bps": slippage_bps}, "block": w3.eth.block_number}
        Path(out).write_text(json.dumps(dep, indent=2) + "\n")
        emit(as_json, dep, "\n".join([f"deployed on chain {dep['chain_id']} (wrote {out}):"] +
                                     [f"  {k:<12} {v}" for k, v in dep["addresses"].items()]))

    @agent.command("act")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--deployment", required=True, type=click.Path(dir_okay=False), help="From `agent deploy --out`.")
    @click.option("--agent-key", default="env:AILEDGER_AGENT_KEY", show_default=True, help="The agent's key.")
    @click.option("--model", required=True, help="The registered model that decided (NAME, #INDEX or root).")
    @click.option("--inputs", "inputs", required=True, help="The model's inputs (JSON or @FILE); only a salted "
                  "commitment is logged.")
    @click.option("--intent", "intent", required=True, help="The decoded intent (JSON or @FILE): kind "
                  "swap|transfer|approve, target, to, amount (+ token_in, min_out for a swap).")
    @click.option("--slippage-bps", type=click.IntRange(0, 10000), default=None,
                  help="For a swap intent without min_out: set it from the AMM's quote less this many bps.")
    @click.option("--as", "identity", required=True, help="Identity that signs the agent.action entry.")
    @ledger_option
    @json_option
    def act_cmd(rpc: str | None, deployment: str, agent_key: str, model: str, inputs: str, intent: str,
                slippage_bps: int | None, identity: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Log the decision (agent.action) with the hash of the signed transaction, then send it through the guard."""
        from ailedger.defi.actions import act
        from ailedger.defi.chain import connect, load_key, market_from

        it = _json_arg(intent, "intent")
        inp = _json_arg(inputs, "inputs")
        dep = _deployment(deployment)
        w3 = connect(rpc or "")
        m = market_from(w3, dep, agent=load_key(agent_key, "agent-key"))
        if isinstance(it, dict) and it.get("kind") == "swap" and "min_out" not in it and slippage_bps is not None:
            from ailedger.defi.actions import validate_intent

            full = validate_intent({**it, "min_out": "0"})
            quote = m.amm.functions.getAmountOut(w3.to_checksum_address(full["token_in"]), int(full["amount"])).call()
            it["min_out"] = str(quote * (10000 - slippage_bps) // 10000)
        with open_ledger(ledger_dir) as lg:
            res = act(lg, _identity(lg, identity), m, model=model, inputs=inp, intent=it)
        emit(as_json, res, f"logged agent.action #{res['index']} for tx {res['body']['tx']} "
                           f"(status {res['status']}, gas {res['gas']}); input salt {res['salt']} (keep it to "
                           "reveal the inputs)")

    @agent.command("audit")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--agent", "agent_address", required=True, help="The agent's address.")
    @click.option("--from", "from_block", type=click.IntRange(0), default=0, show_default=True)
    @click.option("--to", "to_block", type=click.IntRange(0), default=None, help="Last block (default: latest).")
    @ledger_option
    @json_option
    def audit_cmd(rpc: str | None, agent_address: str, from_block: int, to_block: int | None,
                  ledger_dir: Path | None, as_json: bool) -> None:
        """Match every transaction the agent sent with a logged intent; exit 1 if any has none or differs."""
        from ailedger.defi.actions import audit
        from ailedger.defi.chain import connect

        w3 = connect(rpc or "")
        with open_ledger(ledger_dir) as lg:
            rep = audit(lg, w3, agent_address, from_block=from_block, to_block=to_block)
        c = rep["counts"]
        lines = [(f"agent {rep['agent']} on chain {rep['chain_id']}, blocks {rep['blocks'][0]}..{rep['blocks'][1]}: "
                  f"{c['matched']} matched, {c['unlogged']} without a logged decision, {c['mismatch']} differing "
                  f"from their intent, {c['not_on_chain']} logged but not on chain")]
        lines += [f"  {r['status']:<9} {r['tx']} block {r['block']}" + (f" entry #{r['entry']}" if "entry" in r else "")
                  for r in rep["transactions"] if r["status"] != "matched"]
        emit(as_json, rep, "\n".join(lines))
        if not rep["ok"]:
            raise VerificationError("the agent sent transactions without a matching logged decision",
                                    expected="every transaction logged", found=c)

    @agent.command("detect")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--deployment", default=None, type=click.Path(dir_okay=False),
                  help="Known contracts (from `agent deploy --out`): approvals to them are not unknown spenders.")
    @click.option("--known", multiple=True, help="Another known address (repeatable).")
    @click.option("--from", "from_block", type=click.IntRange(0), default=0, show_default=True)
    @click.option("--to", "to_block", type=click.IntRange(0), default=None, help="Last block (default: latest).")
    @click.option("--scenario", "scenario_blocks", type=click.IntRange(1, 10000), default=None,
                  help="First play the scripted labelled scenario for N blocks (needs --dao-key), then report "
                       "precision and recall per pattern.")
    @click.option("--dao-key", default="env:AILEDGER_DAO_KEY", show_default=True, help="For --scenario (mints).")
    @click.option("--agent-key", default="env:AILEDGER_AGENT_KEY", show_default=True, help="For --scenario.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--log", "do_log", is_flag=True, help="Log each finding as a signed agent.finding (needs --as).")
    @click.option("--as", "identity", default=None, help="Identity of the detector.")
    @ledger_option
    @json_option
    def detect_cmd(rpc: str | None, deployment: str | None, known: tuple[str, ...], from_block: int,
                   to_block: int | None, scenario_blocks: int | None, dao_key: str, agent_key: str, seed: int,
                   do_log: bool, identity: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Watch blocks for unknown-spender approvals, drains, sandwiches and address poisoning (Forta style)."""
        from ailedger.defi.chain import connect, load_key, market_from
        from ailedger.defi.detector import Detector, chain_balance, evaluate, log_findings, run_scenario, scan

        if do_log and not identity:
            raise BadInputError("--log needs --as IDENTITY", field="as")
        w3 = connect(rpc or "")
        dep = _deployment(deployment) if deployment else None
        known_map = {k.lower(): "known" for k in known}
        labels = info = None
        if dep is not None:
            known_map.update({v.lower(): k for k, v in dep["addresses"].items()})
        if scenario_blocks:
            if dep is None:
                raise BadInputError("--scenario needs --deployment", field="scenario")
            m = market_from(w3, dep, dao=load_key(dao_key, "dao-key"), agent=load_key(agent_key, "agent-key"))
            labels, info = run_scenario(w3, m, seed=seed, blocks=scenario_blocks)
            from_block, to_block = info["start_block"], info["end_block"]
        findings = scan(w3, Detector(known=known_map, balance_of=chain_balance(w3)), from_block, to_block, progress=not as_json)
        out: dict[str, Any] = {"findings": [f.to_dict() for f in findings], "count": len(findings)}
        if labels is not None:
            out.update(scenario=info, evaluation=evaluate(findings, labels))
        if do_log:
            with open_ledger(ledger_dir) as lg:
                out["logged"] = log_findings(lg, _identity(lg, identity or ""), findings, chain_id=w3.eth.chain_id)
        lines = [f"{len(findings)} finding(s)"]
        by: dict[str, int] = {}
        for f in findings:
            by[f.pattern] = by.get(f.pattern, 0) + 1
        lines += [f"  {k}: {v}" for k, v in sorted(by.items())]
        if labels is not None:
            lines.append("precision / recall per pattern on the scripted scenario:")
            lines += [f"  {p:<25} P {e['precision']:.2f}  R {e['recall']:.2f}  (tp {e['tp']}, fp {e['fp']}, "
                      f"fn {e['fn']})" for p, e in out["evaluation"].items()]
        if do_log:
            lines.append(f"logged {len(out['logged'])} agent.finding entries")
        emit(as_json, out, "\n".join(lines))

    @agent.command("backtest")
    @click.option("--study", required=True, help="Name of the study: every plan under it counts as tried.")
    @click.option("--as", "identity", required=True, help="Identity that commits the plan and the result.")
    @click.option("--bars", type=click.IntRange(200, 100000), default=1500, show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated AMM market.")
    @click.option("--horizon", type=click.IntRange(1, 100), default=4, show_default=True, help="Label horizon (bars).")
    @click.option("--embargo", type=click.IntRange(0, 1000), default=8, show_default=True)
    @click.option("--folds", type=click.IntRange(2, 50), default=6, show_default=True)
    @click.option("--cost-bps", type=click.IntRange(0, 1000), default=5, show_default=True,
                  help="Cost per unit of turnover, in basis points.")
    @click.option("--grid", type=click.Choice(["default", "small"]), default="default", show_default=True)
    @click.option("--leak", is_flag=True, help="Use leaking folds (plain k-fold): committed, then refused.")
    @click.option("--png", "chart", default=None, type=click.Path(dir_okay=False),
                  help="Write a PNG chart here (equity curves, CSCV logits).")
    @ledger_option
    @json_option
    def backtest_cmd(study: str, identity: str, bars: int, seed: int, horizon: int, embargo: int, folds: int,
                     cost_bps: int, grid: str, leak: bool, chart: str | None, ledger_dir: Path | None,
                     as_json: bool) -> None:
        """Commit folds, features and models to the ledger, then score: net Sharpe, deflated Sharpe, PBO."""
        from ailedger.defi.backtest import run_backtest

        with open_ledger(ledger_dir) as lg:
            rep = run_backtest(lg, _identity(lg, identity), study=study, bars=bars, seed=seed, horizon=horizon,
                               embargo=embargo, k=folds, cost_bps=cost_bps, leak=leak, grid=grid, chart=chart,
                               progress=not as_json)
        d = rep["deflated"]
        emit(as_json, rep, "\n".join([
            f"plan committed at entry #{rep['plan_index']}, result at #{rep['result_index']}",
            (f"configurations tried in study {study!r} (from the ledger): {rep['n_trials_ledger']} "
             f"in {len(rep['plan_entries'])} plan(s)"),
            (f"best configuration #{rep['best']}: net Sharpe {d['sharpe']:.4f} per bar "
             f"({rep['best_sharpe_annual']:.2f} annualised)"),
            f"deflated Sharpe ratio {d['dsr']:.3f} (expected max of unskilled trials {d['sr0']:.4f} per bar)",
            f"probability of backtest overfitting (CSCV, {rep['pbo']['splits']} splits) {rep['pbo']['pbo']:.3f}",
        ] + ([f"chart: {chart}"] if chart else [])))

    @agent.command("results")
    @click.option("--study", default=None, help="Only this study's results.")
    @ledger_option
    @json_option
    def results_cmd(study: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """The backtest results that count (each by its plan's signer, after the plan, one per plan), and the
        ignored ones with why."""
        from ailedger.defi.rules import effective_results

        with open_ledger(ledger_dir) as lg:
            kept, ignored = effective_results(lg, study)
            rows = [{"entry": i, "plan": e.body["plan"], "study": e.body.get("study"), "signer": e.signer,
                     "trials_on_ledger": e.body.get("trials_on_ledger"), "best_config": e.body.get("best_config"),
                     "metrics": e.body.get("metrics")} for i, e in kept]
            out = {"results": rows, "ignored": [{"entry": i, "why": w} for i, w in ignored]}
        lines = [f"{len(rows)} result(s)" + (f" in study {study!r}" if study else "")]
        for r in rows:
            m = r["metrics"] if isinstance(r["metrics"], dict) else {}
            lines.append(f"  #{r['entry']} plan #{r['plan']} study {r['study']!r} by {r['signer']}: "
                         f"{r['trials_on_ledger']} trials, DSR {m.get('dsr')}, PBO {m.get('pbo')}, "
                         f"annual Sharpe {m.get('sharpe_annual')}")
        lines += [f"  ignored #{x['entry']}: {x['why']}" for x in out["ignored"]]
        emit(as_json, out, "\n".join(lines))
