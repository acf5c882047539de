"""The ComputeMarket contract from Python (web3): deploy, every move of the game, reads, and time travel.

Works on any web3 endpoint: the in-process EVM (``EthereumTesterProvider``) and anvil.  Transactions are
signed locally with eth_account keys; a call that would revert is refused before anything is sent, with the
contract's custom error named (``WrongPhase``, ``TooEarly``, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError, NetworkError, NotFoundError, VerificationError

__all__ = ["ARTIFACT", "PHASES", "Market", "advance", "connect", "load_account", "load_artifact"]

ARTIFACT = Path(__file__).resolve().with_name("contracts") / "ComputeMarket.json"
PHASES = ("none", "open", "accepted", "submitted", "disputed", "settled")


def load_artifact() -> dict[str, Any]:
    if not ARTIFACT.exists():
        raise NotFoundError(f"contract artifact {ARTIFACT} missing: run scripts/compile-compute-contracts.sh")
    out: dict[str, Any] = json.loads(ARTIFACT.read_text())
    return out


def connect(rpc: str) -> Any:
    """A web3 connection to ``rpc`` (``http://...``), checked to answer."""
    from web3 import HTTPProvider, Web3

    w3 = Web3(HTTPProvider(rpc, request_kwargs={"timeout": 30}))
    try:
        w3.eth.chain_id  # noqa: B018 - a first call that fails fast
    except Exception as exc:  # noqa: BLE001 - requests/urllib errors of every kind
        raise NetworkError(f"no Ethereum node answers at {rpc}: {exc}") from None
    return w3


def load_account(key: str) -> Any:
    """An eth_account from a hex key, a file holding it, or ``env:VAR``."""
    import os

    from eth_account import Account

    raw = key
    if key.startswith("env:"):
        raw = os.environ.get(key[4:], "")
        if not raw:
            raise BadInputError(f"environment variable {key[4:]} is empty", field="key")
    elif not key.startswith("0x") and Path(key).is_file():
        raw = Path(key).read_text().strip()
    try:
        return Account.from_key(raw)
    except Exception:  # noqa: BLE001 - eth_account raises several types for a bad key
        raise BadInputError("not an Ethereum private key (hex, a file holding it, or env:VAR)", field="key") from None


_ERRORS: dict[bytes, tuple[str, list[str]]] = {}


def _errors() -> dict[bytes, tuple[str, list[str]]]:
    if not _ERRORS:
        from eth_utils import keccak

        for item in load_artifact()["abi"]:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                _ERRORS[keccak(text=f"{item['name']}({','.join(types)})")[:4]] = (item["name"], types)
    return _ERRORS


def _reason(exc: BaseException) -> str:
    """The revert reason with the custom error and its arguments (``WrongPhase(2, 5)``)."""
    raw = getattr(exc, "data", None)
    text = str(getattr(exc, "message", None) or exc)
    blob = b""
    if isinstance(raw, (bytes, bytearray)):
        blob = bytes(raw)
    elif isinstance(raw, str) and raw.startswith("0x"):
        try:
            blob = bytes.fromhex(raw[2:])
        except ValueError:
            blob = b""
    if not blob:
        import re

        m = re.search(r"0x[0-9a-fA-F]{8,}", text)
        if m:
            blob = bytes.fromhex(m.group(0)[2:])
        elif "execution reverted: b" in text:
            import ast

            try:
                blob = ast.literal_eval(text.split("execution reverted: ", 1)[1])
            except (ValueError, SyntaxError):
                blob = b""
    if len(blob) >= 4 and blob[:4] in _errors():
        from eth_abi import decode

        name, types = _errors()[blob[:4]]
        try:
            args = decode(types, blob[4:])
        except Exception:  # noqa: BLE001
            args = ()
        shown = [PHASES[a] if name == "WrongPhase" and isinstance(a, int) and a < len(PHASES) else a for a in args]
        return f"{name}({', '.join(str(a) for a in shown)})"
    return text


def _revert_errors() -> tuple[type[BaseException], ...]:
    from web3.exceptions import ContractCustomError, ContractLogicError

    errs: list[type[BaseException]] = [ContractLogicError, ContractCustomError]
    try:
        from eth_tester.exceptions import TransactionFailed

        errs.append(TransactionFailed)
    except ImportError:  # pragma: no cover - eth-tester is a test dependency
        pass
    return tuple(errs)


def send(w3: Any, fn: Any, acct: Any, value: int = 0, gas: int | None = None) -> Any:
    """Build, sign locally and send; the receipt.  A call that would revert raises BadInputError naming the
    contract's error, and nothing is sent.  ``gas``: send with this limit, without an estimate."""
    base = {"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address), "chainId": w3.eth.chain_id,
            "value": value}
    try:
        tx = fn.build_transaction({**base, "gas": gas} if gas else base)
    except _revert_errors() as exc:
        raise BadInputError(f"the contract refuses: {_reason(exc)}", field="transaction") from None
    if not gas:
        tx["gas"] = int(tx["gas"] * 1.25) + 20_000  # headroom over the estimate (made on the latest block)
    signed = acct.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=60)
    if rcpt["status"] != 1:
        raise VerificationError(f"transaction {h.hex()} reverted on chain (gas used {rcpt['gasUsed']} of {tx['gas']})",
                                expected="status 1", found=rcpt["status"])
    return rcpt


def advance(w3: Any, seconds: int) -> None:
    """Move the chain's clock ``seconds`` forward and mine a block (eth-tester or anvil)."""
    tester = getattr(w3.provider, "ethereum_tester", None)
    if tester is not None:
        tester.time_travel(w3.eth.get_block("latest")["timestamp"] + seconds)
        tester.mine_blocks(1)
        return
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


@dataclass
class Market:
    w3: Any
    contract: Any
    gas: dict[str, int]

    @classmethod
    def deploy(cls, w3: Any, acct: Any) -> Market:
        art = load_artifact()
        c = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        rcpt = send(w3, c.constructor(), acct)
        m = cls.at(w3, rcpt["contractAddress"])
        m.gas["deploy"] = int(rcpt["gasUsed"])
        return m

    @classmethod
    def at(cls, w3: Any, address: str) -> Market:
        from web3 import Web3

        if not Web3.is_address(address):
            raise BadInputError(f"not a contract address: {address!r}", field="contract")
        if not w3.eth.get_code(Web3.to_checksum_address(address)):
            raise NotFoundError(f"no contract at {address} on chain {w3.eth.chain_id}", field="contract")
        return cls(w3, w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact()["abi"]), {})

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def _tx(self, name: str, acct: Any, *args: Any, value: int = 0, gas: int | None = None) -> Any:
        rcpt = send(self.w3, getattr(self.contract.functions, name)(*args), acct, value, gas)
        self.gas[name] = int(rcpt["gasUsed"])
        return rcpt

    def _after(self, name: str, acct: Any, job: int, deadline: int) -> Any:
        """A move allowed only after ``deadline``.  A node estimates gas on its latest block, whose time can
        be older than the clock when no block was mined for a while (anvil): then it is sent with a fixed
        limit, to be mined in a new block; a move really too early is refused without sending."""
        import time

        latest = int(self.w3.eth.get_block("latest")["timestamp"])
        if latest <= deadline < time.time():
            return self._tx(name, acct, job, gas=250_000)
        return self._tx(name, acct, job)

    # -- moves ------------------------------------------------------------------------------------------
    def post(self, client: Any, spec_hash: bytes, init_root: bytes, steps: int, price: int, bond: int,
             referee: str, run_window: int, challenge_window: int, move_window: int) -> int:
        rcpt = self._tx("post", client, spec_hash, init_root, steps, bond, referee, run_window, challenge_window,
                        move_window, value=price)
        ev = self.contract.events.Posted().process_receipt(rcpt)
        return int(ev[0]["args"]["job"])

    def bid(self, provider: Any, job: int) -> Any:
        return self._tx("bid", provider, job, value=self.terms(job)["bond"])

    def accept(self, client: Any, job: int, provider: str) -> Any:
        return self._tx("accept", client, job, provider)

    def submit(self, provider: Any, job: int, roots: list[bytes]) -> Any:
        """Submit a trace r_0..r_S: its final root, trace root and the proofs of its first and last leaves."""
        from ailedger.compute.job import trace_proof, trace_root

        return self.submit_raw(provider, job, roots[-1], trace_root(roots), trace_proof(roots, 0),
                               trace_proof(roots, len(roots) - 1))

    def submit_raw(self, provider: Any, job: int, final_root: bytes, trace_root: bytes, init_proof: list[bytes],
                   final_proof: list[bytes]) -> Any:
        return self._tx("submit", provider, job, final_root, trace_root, init_proof, final_proof)

    def challenge(self, challenger: Any, job: int) -> Any:
        return self._tx("challenge", challenger, job, value=self.terms(job)["bond"])

    def reveal(self, provider: Any, job: int, root: bytes, proof: list[bytes]) -> Any:
        return self._tx("reveal", provider, job, root, proof)

    def respond(self, challenger: Any, job: int, agree: bool) -> Any:
        return self._tx("respond", challenger, job, agree)

    def rule(self, referee: Any, job: int, provider_right: bool) -> Any:
        return self._tx("rule", referee, job, provider_right)

    def finish(self, acct: Any, job: int) -> Any:
        return self._after("finish", acct, job, self.terms(job)["deadline"])

    def claim_timeout(self, acct: Any, job: int) -> Any:
        return self._after("claimTimeout", acct, job, self.terms(job)["deadline"])

    def timeout_dispute(self, acct: Any, job: int) -> Any:
        t = self.terms(job)
        return self._after("timeoutDispute", acct, job, t["last_move"] + t["move_window"])

    def withdraw(self, acct: Any) -> int:
        amount = self.credit(acct.address)
        self._tx("withdraw", acct)
        return amount

    # -- reads ------------------------------------------------------------------------------------------
    def credit(self, address: str) -> int:
        return int(self.contract.functions.credit(address).call())

    def terms(self, job: int) -> dict[str, int]:
        price, bond, steps, deadline, last_move, move_window = self.contract.functions.terms(job).call()
        return {"price": price, "bond": bond, "steps": steps, "deadline": deadline, "last_move": last_move,
                "move_window": move_window}

    def status(self, job: int) -> dict[str, Any]:
        """Everything the contract holds about ``job``, as JSON-ready values."""
        f = self.contract.functions
        if not 1 <= job <= int(f.jobCount().call()):
            raise NotFoundError(f"no job {job} in contract {self.address}", field="job")
        client, referee, provider, challenger, phase = f.parties(job).call()
        spec_hash, init_root, final_root, trace_root = f.roots(job).call()
        lo, hi, lo_root, hi_root, mid_root, mid_revealed = f.dispute(job).call()
        zero = "0x" + "00" * 20
        out: dict[str, Any] = {
            "job": job, "contract": self.address, "chain_id": int(self.w3.eth.chain_id), "phase": PHASES[phase],
            "client": client, "referee": referee, "provider": None if provider == zero else provider,
            "challenger": None if challenger == zero else challenger, **self.terms(job),
            "spec_hash": spec_hash.hex(), "init_root": init_root.hex(),
            "final_root": final_root.hex() if any(final_root) else None,
            "trace_root": trace_root.hex() if any(trace_root) else None,
        }
        if out["challenger"]:
            mid = (lo + hi) // 2
            out["dispute"] = {"lo": lo, "hi": hi, "lo_root": lo_root.hex(), "hi_root": hi_root.hex(),
                              "mid": mid if hi - lo > 1 else None,
                              "mid_root": mid_root.hex() if mid_revealed else None,
                              "turn": ("referee" if hi - lo == 1 else "challenger" if mid_revealed else "provider")
                              if PHASES[phase] == "disputed" else None}
        return out

    def settlement(self, job: int) -> dict[str, Any] | None:
        """The Settled event of ``job`` (outcome, winner), or None."""
        logs = self.contract.events.Settled().get_logs(from_block=0, argument_filters={"job": job})
        if not logs:
            return None
        a = logs[-1]["args"]
        return {"outcome": a["outcome"], "winner": a["winner"], "block": int(logs[-1]["blockNumber"])}
