"""The on-chain side: the guard, deny list, test tokens and AMM (Solidity in ``defi/contracts/``, compiled with
the pinned npm solc; artifacts ship as package data), deployed and driven over any web3 endpoint: the in-process
EVM (``EthereumTesterProvider``) or anvil.  Transactions are signed locally with eth_account keys, so the agent
knows a transaction's hash before it is broadcast and can log its decision first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError, NetworkError, NotFoundError, VerificationError

__all__ = ["BUILD", "SELECTORS", "GuardRefused", "Market", "decode_call", "deploy", "fund", "load_artifact",
           "revert_name", "send", "setup_market"]

BUILD = Path(__file__).resolve().with_name("contracts")
NAMES = ("AgentGuard", "DenyList", "SimpleAMM", "TestToken")
E18 = 10**18
# 4-byte selectors the guard understands (keccak of the signature; AgentGuard.sol has the same constants)
SELECTORS = {"a9059cbb": "transfer", "095ea7b3": "approve", "f3e6ea8a": "swap"}


class GuardRefused(AiledgerError):
    """The guard contract refused a transaction (the reason is the contract's custom error)."""

    code = "guard_refused"


def read_artifact(p: Path, how_to_build: str) -> dict[str, Any]:
    """A compiled contract's artifact (NotFoundError saying how to build it when absent)."""
    if not p.exists():
        raise NotFoundError(f"contract artifact {p} missing: {how_to_build}")
    out: dict[str, Any] = json.loads(p.read_text())
    return out


@cache
def load_artifact(name: str) -> dict[str, Any]:
    return read_artifact(BUILD / f"{name}.json", "run scripts/compile-defi-contracts.sh")


def error_table(abis: Iterable[list[dict[str, Any]]]) -> dict[bytes, tuple[str, list[str]]]:
    """Custom errors of these ABIs by their 4-byte selector: ``{selector: (name, argument types)}``."""
    from eth_utils import keccak

    out: dict[bytes, tuple[str, list[str]]] = {}
    for abi in abis:
        for item in abi:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                out[keccak(text=f"{item['name']}({','.join(types)})")[:4]] = (item["name"], types)
    return out


@cache
def _errors() -> dict[bytes, tuple[str, list[str]]]:
    return error_table(load_artifact(name)["abi"] for name in NAMES)


def revert_name(exc: BaseException) -> str:
    """The contract's custom error with its arguments, e.g. ``OverCap(0xab.., 0, 5000, 1000)``."""
    from eth_abi import decode

    blob = b""
    for raw in (getattr(exc, "data", None), *(exc.args or ())):
        if isinstance(raw, (bytes, bytearray)):
            blob = bytes(raw)
        elif isinstance(raw, str) and raw.startswith("0x"):
            try:
                blob = bytes.fromhex(raw[2:])
            except ValueError:
                continue
        if len(blob) >= 4:
            break
    text = str(exc)
    if len(blob) < 4 and "execution reverted: b" in text:
        import ast

        try:
            blob = ast.literal_eval(text.split("execution reverted: ", 1)[1])
        except (ValueError, SyntaxError):
            blob = b""
    hit = _errors().get(blob[:4]) if len(blob) >= 4 else None
    if hit is None:
        return text
    name, types = hit
    try:
        args = decode(types, blob[4:])
    except Exception:  # noqa: BLE001 - a malformed payload still names the error
        return name
    shown = [a.hex() if isinstance(a, bytes) else str(a) for a in args]
    return f"{name}({', '.join(shown)})"


def revert_errors() -> tuple[type[BaseException], ...]:
    from web3.exceptions import ContractCustomError, ContractLogicError

    errs: list[type[BaseException]] = [ContractLogicError, ContractCustomError]
    try:
        from eth_tester.exceptions import TransactionFailed

        errs.append(TransactionFailed)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def build_signed(w3: Any, fn: Any, acct: Any, *, nonce: int | None = None, gas: int | None = None) -> Any:
    """The signed transaction for a contract call (raises GuardRefused when it would revert)."""
    params: dict[str, Any] = {"from": acct.address, "chainId": w3.eth.chain_id,
                              "nonce": w3.eth.get_transaction_count(acct.address) if nonce is None else nonce}
    if gas is not None:
        params["gas"] = gas
    try:
        tx = fn.build_transaction(params)
    except revert_errors() as exc:
        raise GuardRefused(f"refused by the contract: {revert_name(exc)}", reason=revert_name(exc)) from None
    return acct.sign_transaction(tx)


def send(w3: Any, fn: Any, acct: Any) -> Any:
    """Sign locally, send, wait: the receipt; GuardRefused with the contract's error when it would revert."""
    signed = build_signed(w3, fn, acct)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=60)
    if rcpt["status"] != 1:
        raise VerificationError("transaction reverted on chain", expected="status 1", found=rcpt["status"])
    return rcpt


def deploy(w3: Any, acct: Any, name: str, *args: Any) -> Any:
    art = load_artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    rcpt = send(w3, factory.constructor(*args), acct)
    return w3.eth.contract(address=rcpt["contractAddress"], abi=art["abi"])


def at(w3: Any, name: str, address: str) -> Any:
    return w3.eth.contract(address=w3.to_checksum_address(address), abi=load_artifact(name)["abi"])


def fund(w3: Any, addresses: list[str], eth: int = 10) -> None:
    """Give fresh keys gas money from the node's first unlocked account (eth-tester and anvil both have one)."""
    src = w3.eth.accounts[0]
    for a in addresses:
        h = w3.eth.send_transaction({"from": src, "to": a, "value": eth * E18})
        w3.eth.wait_for_transaction_receipt(h)


@dataclass
class Market:
    """Two tokens, their AMM, the deny list and the agent's guard (holding the agent's funds)."""

    w3: Any
    dao: Any
    kill: Any
    agent: Any
    tokens: list[Any]
    amm: Any
    deny: Any
    guard: Any
    known: dict[str, str] = field(default_factory=dict)  # address -> label (for the detector)

    def addresses(self) -> dict[str, str]:
        return {"guard": self.guard.address, "amm": self.amm.address, "deny_list": self.deny.address,
                "token0": self.tokens[0].address, "token1": self.tokens[1].address, "agent": self.agent.address,
                "dao": self.dao.address, "kill_switch": self.kill.address}


def setup_market(w3: Any, dao: Any, kill: Any, agent: Any, *, cap: int = 1000 * E18, period: int = 86400,
                 slippage_bps: int = 100, liquidity: int = 100_000 * E18, vault: int = 10_000 * E18) -> Market:
    """Deploy tokens A/B, the AMM with ``liquidity`` of each, the deny list and the guard (DAO = ``dao``),
    fund the guard with ``vault`` of each token and let it swap on the AMM and transfer either token within
    ``cap`` per ``period``."""
    ta = deploy(w3, dao, "TestToken", "Token A", "TKA")
    tb = deploy(w3, dao, "TestToken", "Token B", "TKB")
    amm = deploy(w3, dao, "SimpleAMM", ta.address, tb.address)
    deny = deploy(w3, dao, "DenyList", dao.address)
    guard = deploy(w3, dao, "AgentGuard", dao.address, kill.address, agent.address, deny.address, slippage_bps)
    for t in (ta, tb):
        send(w3, t.functions.mint(dao.address, liquidity), dao)
        send(w3, t.functions.approve(amm.address, liquidity), dao)
        send(w3, t.functions.mint(guard.address, vault), dao)
        send(w3, guard.functions.setAllowance(t.address, cap, period), dao)
        send(w3, guard.functions.setAllowed(t.address, bytes.fromhex("a9059cbb"), True), dao)
    send(w3, amm.functions.addLiquidity(liquidity, liquidity), dao)
    send(w3, guard.functions.setAllowed(amm.address, bytes.fromhex("f3e6ea8a"), True), dao)
    m = Market(w3, dao, kill, agent, [ta, tb], amm, deny, guard)
    m.known = {a: k for k, a in m.addresses().items()}
    return m


def decode_call(data: bytes | str) -> dict[str, Any]:
    """A guard call's calldata (``execute(target, data)``) or a direct call, decoded into an intent dict.
    BadInputError for calldata the guard does not understand."""
    from eth_abi import decode

    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    if len(raw) < 4:
        raise BadInputError("calldata shorter than a selector", field="data")
    sel = raw[:4].hex()
    if sel == _execute_selector():
        target, inner = decode(["address", "bytes"], raw[4:])
        out = decode_call(inner)
        out["target"] = target.lower()
        return out
    kind = SELECTORS.get(sel)
    if kind is None:
        raise BadInputError(f"unknown selector 0x{sel}", field="data")
    if kind in ("transfer", "approve"):
        to, amount = decode(["address", "uint256"], raw[4:])
        return {"kind": kind, "selector": "0x" + sel, "to": to.lower(), "amount": str(amount)}
    token_in, amount_in, min_out, to = decode(["address", "uint256", "uint256", "address"], raw[4:])
    return {"kind": "swap", "selector": "0x" + sel, "token_in": token_in.lower(), "amount": str(amount_in),
            "min_out": str(min_out), "to": to.lower()}


@cache
def _execute_selector() -> str:
    from eth_utils import keccak

    return keccak(text="execute(address,bytes)")[:4].hex()


def load_key(spec: str, what: str = "key") -> Any:
    """An eth_account key from hex, a file holding the hex, or ``env:VAR``."""
    import os

    from eth_account import Account

    if not spec:
        raise BadInputError(f"no {what} given", field=what)
    if spec.startswith("env:"):
        val = os.environ.get(spec[4:])
        if not val:
            raise BadInputError(f"{what}: environment variable {spec[4:]} is not set", field=what)
        spec = val
    elif not spec.startswith("0x") and Path(spec).is_file():
        spec = Path(spec).read_text().strip()
    try:
        return Account.from_key(spec)
    except (ValueError, TypeError) as exc:
        raise BadInputError(f"{what} is not a private key (hex, a file or env:VAR): {exc}", field=what) from None


def connect(rpc: str) -> Any:
    from web3 import Web3

    if not rpc:
        raise BadInputError("no RPC endpoint: give --rpc URL or set $AILEDGER_RPC", field="rpc")
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 30}))
    try:
        _ = w3.eth.chain_id
    except Exception as exc:  # noqa: BLE001 - any transport failure
        raise NetworkError(f"cannot reach {rpc}: {exc}") from None
    return w3


def market_from(w3: Any, deployment: dict[str, Any], dao: Any = None, kill: Any = None, agent: Any = None) -> Market:
    """The market a deployment file names (``agent deploy --out``); keys only where a command needs them."""
    try:
        a = deployment["addresses"]
        m = Market(w3, dao, kill, agent, [at(w3, "TestToken", a["token0"]), at(w3, "TestToken", a["token1"])],
                   at(w3, "SimpleAMM", a["amm"]), at(w3, "DenyList", a["deny_list"]), at(w3, "AgentGuard", a["guard"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"not a deployment file (agent deploy --out): {exc}", field="deployment") from None
    m.known = {v.lower(): k for k, v in a.items()}
    return m


def send_unchecked(w3: Any, fn: Any, acct: Any, gas: int = 400_000) -> Any:
    """Send without the pre-flight simulation (fixed gas): the receipt, status 0 when the contract reverts.
    Shows that a refusal is the contract's own, not the sender's code."""
    tx = fn.build_transaction({"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address),
                               "chainId": w3.eth.chain_id, "gas": gas})
    h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(h, timeout=60)


POLICY_FUNCTIONS = ("setAllowance", "setAllowed", "setMaxSlippage", "unpause")


def policy_call(guard: Any, fn_name: str, *args: Any) -> tuple[list[str], list[int], list[bytes]]:
    """A policy change as the (targets, values, calldatas) of a governor proposal: the guard obeys only its DAO
    address, so on a real deployment (DAO = the governance timelock) a change happens only by an executed
    proposal."""
    if fn_name not in POLICY_FUNCTIONS:
        raise BadInputError(f"not a guard policy function: {fn_name!r} (one of {', '.join(POLICY_FUNCTIONS)})",
                            field="function")
    data = guard.encode_abi(fn_name, args=list(args))
    return [guard.address], [0], [bytes.fromhex(data[2:])]
