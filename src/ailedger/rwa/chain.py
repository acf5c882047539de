"""The on-chain side of the RWA vault: the permissioned asset token and its identity registry and compliance
(ERC-3643 style), the issuer's NAV desk, the EIP-4626 vault, and the DeFi guard (``defi``'s AgentGuard and
deny list, unchanged) as the vault's manager.  Sources in ``rwa/contracts/`` (pinned npm solc), artifacts
beside them (package data).

The vault changes its position only through ``swap(tokenIn, amountIn, minOut, to)``, callable by its manager;
the manager is the guard, so an agent rebalances with ``guard.execute(vault, swap...)``: the guard's allow list
(vault + swap selector), caps per token per period, slippage bound against the vault's quote and the DAO's
pause apply, and the call has the shape ``defi.actions`` logs and audits (an ``agent.action`` of kind swap).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ailedger.defi import chain as dchain
from ailedger.errors import AiledgerError, BadInputError, VerificationError

__all__ = ["BUILD", "E18", "TokenRefused", "Vault", "deploy_vault", "load_artifact", "revert_name", "status",
           "vault_from"]

BUILD = Path(__file__).resolve().with_name("contracts")
NAMES = ("Compliance", "IdentityRegistry", "NavDesk", "RwaToken", "RwaVault")
E18 = 10**18
SWAP = bytes.fromhex("f3e6ea8a")  # swap(address,uint256,uint256,address): the guard's bounded kind
COUNTRY = 250                    # the country code the demo registers holders with (ISO 3166-1 numeric)


class TokenRefused(AiledgerError):
    """A contract other than the guard refused (the token's compliance check, the vault, the desk)."""

    code = "contract_refused"


@cache
def load_artifact(name: str) -> dict[str, Any]:
    if name not in NAMES:
        return dchain.load_artifact(name)
    return dchain.read_artifact(BUILD / f"{name}.json", "compile src/ailedger/rwa/contracts")


@cache
def _errors() -> dict[bytes, tuple[str, list[str]]]:
    return dchain.error_table(load_artifact(name)["abi"] for name in (*NAMES, *dchain.NAMES))


def _decode(blob: bytes) -> str | None:
    from eth_abi import decode

    hit = _errors().get(blob[:4]) if len(blob) >= 4 else None
    if hit is None:
        return None
    name, types = hit
    try:
        args = decode(types, blob[4:])
    except Exception:  # noqa: BLE001 - a malformed payload still names the error
        return name
    if name == "CallFailed" and args and isinstance(args[0], bytes):
        inner = _decode(args[0])
        return f"CallFailed({inner or '0x' + args[0].hex()})"
    shown = [a.hex() if isinstance(a, bytes) else str(a) for a in args]
    return f"{name}({', '.join(shown)})"


def revert_name(exc: BaseException) -> str:
    """The custom error a revert carries, from the vault's contracts or the guard's (nested ``CallFailed``
    payloads decoded), e.g. ``UnverifiedHolder(0x..)`` or ``CallFailed(InsufficientInventory(...))``."""
    for raw in (getattr(exc, "data", None), *(exc.args or ())):
        blob = b""
        if isinstance(raw, (bytes, bytearray)):
            blob = bytes(raw)
        elif isinstance(raw, str) and raw.startswith("0x"):
            try:
                blob = bytes.fromhex(raw[2:])
            except ValueError:
                continue
        name = _decode(blob)
        if name:
            return name
    text = str(exc)
    if "execution reverted: b" in text:  # eth-tester puts the payload in the message as a bytes literal
        import ast

        try:
            name = _decode(ast.literal_eval(text.split("execution reverted: ", 1)[1]))
        except (ValueError, SyntaxError):
            name = None
        if name:
            return name
    return dchain.revert_name(exc)


def send(w3: Any, fn: Any, acct: Any) -> Any:
    """Sign locally (the node's gas estimate plus a quarter: an estimate made on one block can fall short on
    the next), send, wait; a revert raises TokenRefused naming the contract's error, in the simulation before
    anything is signed or, should the chain still revert, replayed at the block that reverted it."""
    params = {"from": acct.address, "chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(acct.address)}
    try:
        gas = int(fn.estimate_gas(params))
        signed = acct.sign_transaction(fn.build_transaction({**params, "gas": gas + gas // 4 + 10_000}))
    except dchain.revert_errors() as exc:
        reason = revert_name(exc)
        raise TokenRefused(f"refused by the contract: {reason}", reason=reason) from None
    rcpt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), timeout=60)
    if rcpt["status"] != 1:
        reason = f"reverted on chain (gas used {rcpt['gasUsed']})"
        try:
            if hasattr(fn, "call"):
                fn.call({"from": acct.address}, block_identifier=int(rcpt["blockNumber"]) - 1)
        except dchain.revert_errors() as exc:
            reason = revert_name(exc)
        raise TokenRefused(f"refused by the contract: {reason}", reason=reason)
    return rcpt


def deploy(w3: Any, acct: Any, name: str, *args: Any) -> Any:
    art = load_artifact(name)
    rcpt = send(w3, w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args), acct)
    return w3.eth.contract(address=rcpt["contractAddress"], abi=art["abi"])


def at(w3: Any, name: str, address: str) -> Any:
    return w3.eth.contract(address=w3.to_checksum_address(address), abi=load_artifact(name)["abi"])


@dataclass
class Vault:
    """The deployed contracts, and the keys a command needs (None where it needs none).  ``guard`` and
    ``agent`` give it the shape ``defi.actions.act`` drives (``w3``, ``guard``, ``agent``)."""

    w3: Any
    dao: Any
    kill: Any
    agent: Any
    oracle: Any
    stable: Any
    rwa: Any
    registry: Any
    compliance: Any
    desk: Any
    vault: Any
    guard: Any
    deny: Any

    def addresses(self) -> dict[str, str]:
        return {"vault": self.vault.address, "guard": self.guard.address, "stable": self.stable.address,
                "rwa": self.rwa.address, "registry": self.registry.address, "compliance": self.compliance.address,
                "desk": self.desk.address, "deny_list": self.deny.address,
                "agent": self.guard.functions.agent().call(), "dao": self.vault.functions.dao().call(),
                "kill_switch": self.guard.functions.killSwitch().call(),
                "oracle": self.desk.functions.oracle().call()}


def deploy_vault(w3: Any, dao: Any, kill: Any, agent: Any, oracle: Any = None, *, nav: int = E18,
                 deposit: int = 100_000 * E18, desk_inventory: int = 1_000_000 * E18, cap: int = 50_000 * E18,
                 period: int = 86400, slippage_bps: int = 100, spread_bps: int = 10, holders: tuple[str, ...] = (),
                 direct_manager: str | None = None) -> Vault:
    """Deploy the stable (defi's TestToken), the identity registry, compliance and asset token (owner and agent:
    ``dao``), the desk (NAV posted by ``oracle``), the deny list and guard (agent ``agent``, DAO ``dao``, kill
    switch ``kill``), and the vault (manager: the guard, or ``direct_manager`` for a reference deployment
    without one).  The desk, the vault, the DAO and ``holders`` are registered as verified holders; the desk holds
    ``desk_inventory`` of each token; the DAO deposits ``deposit`` of the stable.  The guard lets the agent call
    the vault's swap, within ``cap`` of each token per ``period``."""
    oracle = oracle or dao
    cs = w3.to_checksum_address
    stable = deploy(w3, dao, "TestToken", "Stable Dollar", "sUSD")
    registry = deploy(w3, dao, "IdentityRegistry", dao.address)
    compliance = deploy(w3, dao, "Compliance", dao.address, 0)
    rwa = deploy(w3, dao, "RwaToken", "Tokenized Fund Shares", "TFS", dao.address, registry.address,
                 compliance.address, dao.address)
    send(w3, compliance.functions.bindToken(rwa.address), dao)
    send(w3, rwa.functions.addAgent(dao.address), dao)
    deny = deploy(w3, dao, "DenyList", dao.address)
    guard = deploy(w3, dao, "AgentGuard", dao.address, kill.address, agent.address, deny.address, slippage_bps)
    desk = deploy(w3, dao, "NavDesk", stable.address, rwa.address, oracle.address, spread_bps, nav)
    manager = cs(direct_manager) if direct_manager else guard.address
    vault = deploy(w3, dao, "RwaVault", stable.address, rwa.address, registry.address, desk.address, manager,
                   dao.address, "RWA Vault Share", "vTFS")
    for who in (desk.address, vault.address, dao.address, *(cs(h) for h in holders)):
        send(w3, registry.functions.registerIdentity(who, who, COUNTRY, 0), dao)
    send(w3, rwa.functions.mint(desk.address, desk_inventory), dao)
    send(w3, stable.functions.mint(desk.address, desk_inventory), dao)
    send(w3, rwa.functions.mint(dao.address, 1000 * E18), dao)  # the DAO's own holding (transfers, the demo)
    send(w3, stable.functions.mint(dao.address, deposit), dao)
    send(w3, stable.functions.approve(vault.address, deposit), dao)
    send(w3, vault.functions.deposit(deposit, dao.address), dao)
    send(w3, guard.functions.setAllowed(vault.address, SWAP, True), dao)
    for t in (stable, rwa):
        send(w3, guard.functions.setAllowance(t.address, cap, period), dao)
    return Vault(w3, dao, kill, agent, oracle, stable, rwa, registry, compliance, desk, vault, guard, deny)


def vault_from(w3: Any, deployment: dict[str, Any], *, dao: Any = None, kill: Any = None, agent: Any = None,
               oracle: Any = None) -> Vault:
    """The vault a deployment file names (``vault deploy --out``); keys only where a command needs them."""
    try:
        a = deployment["addresses"]
        return Vault(w3, dao, kill, agent, oracle, at(w3, "TestToken", a["stable"]), at(w3, "RwaToken", a["rwa"]),
                     at(w3, "IdentityRegistry", a["registry"]), at(w3, "Compliance", a["compliance"]),
                     at(w3, "NavDesk", a["desk"]), at(w3, "RwaVault", a["vault"]), at(w3, "AgentGuard", a["guard"]),
                     at(w3, "DenyList", a["deny_list"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"not a vault deployment file (vault deploy --out): {exc}", field="deployment") from None


def cap_left(v: Vault, token: Any) -> int:
    """What the guard still lets the agent spend of ``token`` in the current period (its own arithmetic)."""
    cap, period, reset_at, spent = v.guard.functions.allowances(token.address).call()
    now = v.w3.eth.get_block("latest")["timestamp"]
    if period and now + 1 >= reset_at + period:  # the next block is at least one second later
        spent = 0
    return max(0, int(cap) - int(spent))


def status(v: Vault) -> dict[str, Any]:
    """Balances, NAV, weights, shares and the guard's state (amounts as decimal strings)."""
    va = v.vault.address
    s = int(v.stable.functions.balanceOf(va).call())
    r = int(v.rwa.functions.balanceOf(va).call())
    nav = int(v.desk.functions.nav().call())
    total = int(v.vault.functions.totalAssets().call())
    if total != s + r * nav // E18:
        raise VerificationError("totalAssets differs from the balances at the NAV", expected=s + r * nav // E18,
                                found=total)
    supply = int(v.vault.functions.totalSupply().call())
    return {"stable": str(s), "rwa": str(r), "nav": str(nav), "total_assets": str(total),
            "rwa_weight_bps": (r * nav // E18) * 10000 // total if total else 0,
            "shares": str(supply), "share_price": str(v.vault.functions.convertToAssets(E18).call()),
            "paused": bool(v.guard.functions.paused().call()),
            "cap_left": {"stable": str(cap_left(v, v.stable)), "rwa": str(cap_left(v, v.rwa))},
            "manager": v.vault.functions.manager().call()}
