"""`ailedger vault ...`: tokenized real-world assets managed by an AI agent within limits -- a permissioned asset
token (ERC-3643 style), an EIP-4626 vault holding it and a stable asset, rebalanced by a registered policy
through the DeFi guard, every decision logged before its transaction.  See docs/rwa-vault.md."""

from __future__ import annotations

import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, json_option, ledger_option, open_ledger
from ailedger.errors import BadInputError

RPC_HELP = "JSON-RPC endpoint (default: $AILEDGER_RPC)."
E18 = 10**18


def _identity(ledger: Any, name: str) -> Any:
    return ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))


def _units(value: str, what: str) -> int:
    """A decimal amount of whole tokens (``1.5``) in 18-decimal units."""
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise BadInputError(f"--{what} must be a decimal number of tokens, got {value!r}", field=what) from None
    if not d.is_finite() or d < 0 or d * E18 != int(d * E18) or d * E18 >= 2**256:
        raise BadInputError(f"--{what} must be a non-negative amount with at most 18 decimals, got {value!r}",
                            field=what)
    return int(d * E18)


def _deployment(path: str) -> dict[str, Any]:
    try:
        d = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BadInputError(f"--deployment: cannot read {path}: {exc.strerror}", field="deployment") from None
    except json.JSONDecodeError as exc:
        raise BadInputError(f"--deployment {path} is not JSON: {exc.msg}", field="deployment") from None
    if not isinstance(d, dict) or "vault" not in (d.get("addresses") or {}):
        raise BadInputError(f"{path} is not a deployment file written by `vault deploy --out`", field="deployment")
    return d


def _address(w3: Any, value: str, what: str) -> str:
    if not w3.is_address(value):
        raise BadInputError(f"--{what} {value!r} is not an address", field=what)
    return str(w3.to_checksum_address(value))


def _opened(rpc: str | None, deployment: str, **keys: str) -> Any:
    from ailedger.defi.chain import connect, load_key
    from ailedger.rwa.chain import vault_from

    dep = _deployment(deployment)
    w3 = connect(rpc or "")
    if w3.eth.chain_id != dep.get("chain_id"):
        raise BadInputError(f"{deployment} is for chain {dep.get('chain_id')}, the endpoint is chain "
                            f"{w3.eth.chain_id}", field="deployment")
    return vault_from(w3, dep, **{k: load_key(v, f"{k}-key") for k, v in keys.items()})


def register(main: click.Group) -> None:
    @main.group("vault")
    def vault() -> None:
        """Tokenized real-world assets in an EIP-4626 vault, rebalanced by an AI agent through the DeFi guard."""

    @vault.command("policy")
    @click.argument("folder", type=click.Path(file_okay=False))
    @json_option
    def policy_cmd(folder: str, as_json: bool) -> None:
        """Write the rebalancing policy's model folder (register it with `ailedger model register FOLDER`)."""
        from ailedger.rwa.agent import POLICY, export_policy, policy_root

        p = export_policy(folder)
        emit(as_json, {"folder": folder, "file": str(p), "root": policy_root(), "policy": POLICY},
             f"wrote {p}; manifest root {policy_root()}")

    @vault.command("deploy")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--dao-key", default="env:AILEDGER_DAO_KEY", show_default=True,
                  help="The DAO (its timelock on a real chain): owns the registry and token, sets the guard's policy.")
    @click.option("--kill-key", default="env:AILEDGER_KILL_KEY", show_default=True,
                  help="The kill switch (guardians): may pause the guard.")
    @click.option("--agent-address", required=True, help="The agent's address (the only caller of the guard).")
    @click.option("--cap", default="50000", show_default=True, help="Per-token cap per period (tokens).")
    @click.option("--period", type=click.IntRange(1), default=86400, show_default=True, help="Cap period (s).")
    @click.option("--slippage-bps", type=click.IntRange(0, 10000), default=100, show_default=True)
    @click.option("--deposit", default="100000", show_default=True, help="Stable the DAO deposits (tokens).")
    @click.option("--nav", default="1", show_default=True, help="The asset token's first NAV (stable per token).")
    @click.option("--holder", "holders", multiple=True, help="Another verified holder to register (repeatable).")
    @click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
                  help="Write the deployment JSON here.")
    @json_option
    def deploy_cmd(rpc: str | None, dao_key: str, kill_key: str, agent_address: str, cap: str, period: int,
                   slippage_bps: int, deposit: str, nav: str, holders: tuple[str, ...], out: str,
                   as_json: bool) -> None:
        """Deploy the identity registry, compliance, asset token, desk, guard and vault; the DAO deposits."""
        from types import SimpleNamespace

        from ailedger.defi.chain import connect, load_key
        from ailedger.rwa.chain import deploy_vault

        cap_u, dep_u, nav_u = _units(cap, "cap"), _units(deposit, "deposit"), _units(nav, "nav")
        if nav_u == 0:
            raise BadInputError("--nav must be positive", field="nav")
        w3 = connect(rpc or "")
        dao, kill = load_key(dao_key, "dao-key"), load_key(kill_key, "kill-key")
        ag = SimpleNamespace(address=_address(w3, agent_address, "agent-address"))  # the agent signs nothing here
        hs = tuple(_address(w3, h, "holder") for h in holders)
        v = deploy_vault(w3, dao, kill, ag, nav=nav_u, deposit=dep_u, cap=cap_u, period=period,
                         slippage_bps=slippage_bps, holders=hs)
        dep = {"chain_id": w3.eth.chain_id, "addresses": v.addresses(), "block": w3.eth.block_number,
               "policy": {"cap": str(cap_u), "period": period, "slippage_bps": slippage_bps}}
        Path(out).write_text(json.dumps(dep, indent=2) + "\n")
        emit(as_json, dep, "\n".join([f"deployed on chain {dep['chain_id']} (wrote {out}):"] +
                                     [f"  {k:<12} {a}" for k, a in dep["addresses"].items()]))

    @vault.command("series")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--deployment", required=True, type=click.Path(dir_okay=False), help="From `vault deploy --out`.")
    @click.option("--seed", type=int, required=True, help="Seed of the simulated NAV series.")
    @click.option("--steps", type=click.IntRange(2, 100_000), required=True, help="Its length.")
    @click.option("--as", "identity", required=True, help="Identity that signs the rwa.series entry.")
    @ledger_option
    @json_option
    def series_cmd(rpc: str | None, deployment: str, seed: int, steps: int, identity: str, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """Log the price series the agent will decide from (generator, seed, length, digest)."""
        from ailedger.rwa.agent import log_series

        v = _opened(rpc, deployment)
        with open_ledger(ledger_dir) as lg:
            res = log_series(lg, _identity(lg, identity), seed=seed, steps=steps, vault=v.vault.address,
                             chain_id=v.w3.eth.chain_id)
        emit(as_json, res, f"logged rwa.series #{res['index']}: {steps} prices, seed {seed}, "
                           f"sha256 {res['body']['sha256']}")

    @vault.command("rebalance")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--deployment", required=True, type=click.Path(dir_okay=False), help="From `vault deploy --out`.")
    @click.option("--agent-key", default="env:AILEDGER_AGENT_KEY", show_default=True, help="The agent's key.")
    @click.option("--oracle-key", default="env:AILEDGER_DAO_KEY", show_default=True,
                  help="The desk's NAV oracle (the DAO's key in a deployment from `vault deploy`).")
    @click.option("--model", required=True, help="The registered policy (NAME, #INDEX or root).")
    @click.option("--series", "series", type=click.IntRange(0), required=True, help="Index of the rwa.series entry.")
    @click.option("--from-step", "start", type=click.IntRange(0), default=0, show_default=True)
    @click.option("--steps", type=click.IntRange(1, 100_000), default=1, show_default=True)
    @click.option("--advance", type=click.IntRange(0), default=0, show_default=True,
                  help="Dev chains only: move the chain's clock this many seconds after each step (evm_increaseTime).")
    @click.option("--as", "identity", required=True, help="Identity that signs the agent.action entries.")
    @ledger_option
    @json_option
    def rebalance_cmd(rpc: str | None, deployment: str, agent_key: str, oracle_key: str, model: str, series: int,
                      start: int, steps: int, advance: int, identity: str, ledger_dir: Path | None,
                      as_json: bool) -> None:
        """Post each NAV of the series, let the policy decide, log each trade (agent.action), then send it."""
        from ailedger.rwa.agent import find_series, rebalance_step, require_policy_model, tracking_error

        v = _opened(rpc, deployment, agent=agent_key, oracle=oracle_key)
        rows: list[dict[str, Any]] = []
        with open_ledger(ledger_dir) as lg:
            me = _identity(lg, identity)
            require_policy_model(lg, model)
            body, prices = find_series(lg, series)
            if body.get("vault") != v.vault.address.lower():
                raise BadInputError(f"rwa.series #{series} names vault {body.get('vault')}, not this deployment's",
                                    field="series")
            if start + steps > len(prices):
                raise BadInputError(f"steps {start}..{start + steps - 1} run past the series' {len(prices)} prices",
                                    field="steps")
            for t in range(start, start + steps):
                rows.append(rebalance_step(lg, me, v, model=model, series_index=series, prices=prices, t=t))
                if advance:
                    v.w3.provider.make_request("evm_increaseTime", [advance])
                    v.w3.provider.make_request("evm_mine", [])
        out: dict[str, Any] = {"steps": rows, "tracking_error": tracking_error(rows),
               "trades": sum(r["action"] is not None for r in rows)}
        lines = [f"step {r['t']}: NAV {int(r['nav']) / E18:.4f}, target {r['target_bps'] / 100:.2f}%, weight "
                 f"{r['weight_before_bps'] / 100:.2f}% -> {r['weight_after_bps'] / 100:.2f}%"
                 + (f", {'bought' if r['action']['token'] == 'stable' else 'sold'} with "
                    f"{int(r['action']['amount']) / E18:.2f} {r['action']['token']}: agent.action "
                    f"#{r['action']['index']} tx {r['action']['tx'][:12]}..." if r["action"] else ", no trade")
                 for r in rows]
        te = out["tracking_error"]
        lines.append(f"{out['trades']} trade(s); tracking error {te['rms_bps']:.1f} bps rms, {te['max_bps']:.0f} max")
        emit(as_json, out, "\n".join(lines))

    @vault.command("status")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--deployment", required=True, type=click.Path(dir_okay=False), help="From `vault deploy --out`.")
    @json_option
    def status_cmd(rpc: str | None, deployment: str, as_json: bool) -> None:
        """The vault's balances, NAV, weight, share price and the guard's state."""
        from ailedger.rwa.chain import status

        s = status(_opened(rpc, deployment))
        emit(as_json, s, "\n".join([
            (f"stable {int(s['stable']) / E18:,.2f}, asset tokens {int(s['rwa']) / E18:,.2f} at NAV "
             f"{int(s['nav']) / E18:.4f}: total {int(s['total_assets']) / E18:,.2f}, asset weight "
             f"{s['rwa_weight_bps'] / 100:.2f}%"),
            (f"shares {int(s['shares']) / E18:,.2f} at {int(s['share_price']) / E18:.6f}; guard "
             f"{'PAUSED' if s['paused'] else 'active'}; cap left this period: stable "
             f"{int(s['cap_left']['stable']) / E18:,.2f}, asset {int(s['cap_left']['rwa']) / E18:,.2f}")]))

    @vault.command("holder")
    @click.argument("address")
    @click.option("--remove", is_flag=True, help="Delete the holder's identity instead.")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--deployment", required=True, type=click.Path(dir_okay=False), help="From `vault deploy --out`.")
    @click.option("--dao-key", default="env:AILEDGER_DAO_KEY", show_default=True, help="The registry's owner.")
    @json_option
    def holder_cmd(address: str, remove: bool, rpc: str | None, deployment: str, dao_key: str, as_json: bool) -> None:
        """Register ADDRESS as a verified holder in the identity registry (or remove it)."""
        from ailedger.rwa.chain import COUNTRY, send

        v = _opened(rpc, deployment, dao=dao_key)
        a = _address(v.w3, address, "address")
        fn = (v.registry.functions.deleteIdentity(a) if remove
              else v.registry.functions.registerIdentity(a, a, COUNTRY, 0))
        send(v.w3, fn, v.dao)
        ok = bool(v.registry.functions.isVerified(a).call())
        emit(as_json, {"address": a, "verified": ok}, f"{a}: {'verified' if ok else 'not verified'}")

    @vault.command("transfer")
    @click.option("--to", "to", required=True, help="Receiver of the asset tokens.")
    @click.option("--amount", required=True, help="Tokens to send.")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--deployment", required=True, type=click.Path(dir_okay=False), help="From `vault deploy --out`.")
    @click.option("--key", "key", default="env:AILEDGER_DAO_KEY", show_default=True, help="The sender's key.")
    @json_option
    def transfer_cmd(to: str, amount: str, rpc: str | None, deployment: str, key: str, as_json: bool) -> None:
        """Send asset tokens; the token itself refuses a receiver that is not a verified holder (exit 2)."""
        from ailedger.rwa.chain import send

        v = _opened(rpc, deployment, dao=key)
        a, n = _address(v.w3, to, "to"), _units(amount, "amount")
        rcpt = send(v.w3, v.rwa.functions.transfer(a, n), v.dao)
        tx = "0x" + bytes(rcpt["transactionHash"]).hex()
        emit(as_json, {"to": a, "amount": str(n), "tx": tx}, f"sent {amount} to {a} (tx {tx})")

    @vault.command("pause")
    @click.option("--rpc", envvar="AILEDGER_RPC", default=None, help=RPC_HELP)
    @click.option("--deployment", required=True, type=click.Path(dir_okay=False), help="From `vault deploy --out`.")
    @click.option("--kill-key", default="env:AILEDGER_KILL_KEY", show_default=True, help="The kill switch.")
    @click.option("--lift", is_flag=True, help="Lift the pause (the DAO's key: --kill-key names it then).")
    @json_option
    def pause_cmd(rpc: str | None, deployment: str, kill_key: str, lift: bool, as_json: bool) -> None:
        """Pull the DAO's kill switch on the guard: every rebalance is refused until the DAO lifts it."""
        from ailedger.rwa.chain import send

        v = _opened(rpc, deployment, kill=kill_key)
        send(v.w3, v.guard.functions.unpause() if lift else v.guard.functions.pause(), v.kill)
        p = bool(v.guard.functions.paused().call())
        emit(as_json, {"paused": p}, "guard paused" if p else "guard active")
