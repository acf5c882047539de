"""On-chain mode of the DAO: the same kill switch enforced by Solidity contracts built on OpenZeppelin's
Governor, ERC20Votes and TimelockController (sources in contracts/governance/, compiled with the pinned npm solc;
the artifacts ship in the package, ``ailedger/governance/contracts/``).

``ChainDAO.deploy`` wires AiGovToken -> AiGovernor -> AiTimelock -> ModelRegistry (the registry obeys only the
timelock; k-of-n guardians can suspend at once).  Works on any web3 endpoint: the in-process EVM
(``EthereumTesterProvider``) and anvil.  Transactions are signed locally with eth_account keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError, NotFoundError, VerificationError

__all__ = ["REGISTRY_STATES", "STATES", "ChainDAO", "advance", "deploy", "load_artifact", "send"]

# package data (pyproject.toml), so a wheel install finds them; scripts/compile-governance-contracts.sh writes here
BUILD = Path(__file__).resolve().with_name("contracts")
# IGovernor.ProposalState order
STATES = ("pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed")
REGISTRY_STATES = ("unknown", "approved", "suspended", "revoked", "active")
SUPPORT = {"against": 0, "for": 1, "abstain": 2}


def load_artifact(name: str) -> dict[str, Any]:
    p = BUILD / f"{name}.json"
    if not p.exists():
        raise NotFoundError(f"contract artifact {p} missing: run scripts/compile-governance-contracts.sh")
    return json.loads(p.read_text())


def send(w3: Any, fn: Any, acct: Any, value: int = 0) -> Any:
    """Build, sign locally and send a contract call (or constructor); the receipt, or raise with the
    revert reason (nothing is sent when the call would revert)."""
    try:
        tx = fn.build_transaction({"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address),
                                   "chainId": w3.eth.chain_id, "value": value})
    except _revert_errors() as exc:
        raise BadInputError(f"transaction would revert: {_reason(exc)}", field="transaction") from None
    signed = acct.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=60)
    if rcpt["status"] != 1:
        raise VerificationError("transaction reverted on chain", expected="status 1", found=rcpt["status"])
    return rcpt


def _revert_errors() -> tuple[type[BaseException], ...]:
    from web3.exceptions import ContractCustomError, ContractLogicError

    errs: list[type[BaseException]] = [ContractLogicError, ContractCustomError]
    try:  # the in-process EVM raises its own error type from eth_estimateGas
        from eth_tester.exceptions import TransactionFailed

        errs.append(TransactionFailed)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


_ERRORS: dict[bytes, str] = {}


def _error_names() -> dict[bytes, str]:
    """4-byte selectors of every custom error in the governance contracts' ABIs."""
    if not _ERRORS:
        from eth_utils import keccak

        for name in ("AiGovToken", "AiGovernor", "AiTimelock", "ModelRegistry"):
            for item in load_artifact(name)["abi"]:
                if item.get("type") == "error":
                    sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                    _ERRORS[keccak(text=sig)[:4]] = item["name"]
    return _ERRORS


def _reason(exc: BaseException) -> str:
    """The revert reason, with custom errors named (e.g. TimelockUnexpectedOperationState)."""
    raw = getattr(exc, "data", None)
    if raw is None and exc.args:
        raw = exc.args[0]
    text = str(getattr(exc, "message", None) or exc)
    blob = b""
    if isinstance(raw, (bytes, bytearray)):
        blob = bytes(raw)
    elif isinstance(raw, str) and raw.startswith("0x"):
        try:
            blob = bytes.fromhex(raw[2:])
        except ValueError:
            blob = b""
    if not blob and "execution reverted: b" in text:
        import ast

        try:
            blob = ast.literal_eval(text.split("execution reverted: ", 1)[1])
        except (ValueError, SyntaxError):
            blob = b""
    if len(blob) >= 4 and blob[:4] in _error_names():
        return f"{_error_names()[blob[:4]]} (execution reverted)"
    return text


def deploy(w3: Any, acct: Any, name: str, *args: Any) -> Any:
    art = load_artifact(name)
    c = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    rcpt = send(w3, c.constructor(*args), acct)
    return w3.eth.contract(address=rcpt["contractAddress"], abi=art["abi"])


def advance(w3: Any, *, blocks: int = 0, seconds: int = 0) -> None:
    """Move the chain forward: time then blocks (eth-tester or anvil)."""
    tester = getattr(w3.provider, "ethereum_tester", None)
    if tester is not None:
        if seconds:
            ts = w3.eth.get_block("latest")["timestamp"]
            tester.time_travel(ts + seconds)
        if blocks:
            tester.mine_blocks(blocks)
        return
    if seconds:
        w3.provider.make_request("evm_increaseTime", [seconds])
        if not blocks:
            blocks = 1
    for _ in range(blocks):
        w3.provider.make_request("evm_mine", [])


@dataclass
class ChainDAO:
    w3: Any
    token: Any
    timelock: Any
    governor: Any
    registry: Any

    @classmethod
    def deploy(cls, w3: Any, deployer: Any, holders: dict[str, int], guardians: list[str], threshold: int, *,
               voting_delay: int = 1, voting_period: int = 10, quorum_percent: int = 4, timelock_delay: int = 3600,
               cap_bps: int = 0) -> ChainDAO:
        addrs = list(holders)
        token = deploy(w3, deployer, "AiGovToken", "ailedger DAO", "AIL", addrs, [holders[a] for a in addrs])
        zero = "0x" + "00" * 20
        timelock = deploy(w3, deployer, "AiTimelock", timelock_delay, [], [zero], deployer.address)
        governor = deploy(w3, deployer, "AiGovernor", token.address, timelock.address, voting_delay, voting_period,
                          quorum_percent, cap_bps)
        for role in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
            r = getattr(timelock.functions, role)().call()
            send(w3, timelock.functions.grantRole(r, governor.address), deployer)
        admin = timelock.functions.DEFAULT_ADMIN_ROLE().call()
        send(w3, timelock.functions.renounceRole(admin, deployer.address), deployer)
        registry = deploy(w3, deployer, "ModelRegistry", timelock.address, guardians, threshold)
        return cls(w3, token, timelock, governor, registry)

    # -- proposals ------------------------------------------------------------------------------------
    def _call(self, fn_name: str, *args: Any) -> tuple[list[str], list[int], list[bytes]]:
        data = self.registry.encode_abi(fn_name, args=list(args))
        return [self.registry.address], [0], [bytes.fromhex(data[2:])]

    def proposal_args(self, action: str, model: str, reason: str = "") -> tuple[list[str], list[int], list[bytes]]:
        if action == "model.revoke":
            return self._call("revoke", model, reason)
        if action == "model.approve":
            return self._call("approve", model)
        if action == "suspension.confirm":
            return self._call("confirmSuspension", model)
        if action == "suspension.lift":
            return self._call("liftSuspension", model)
        raise BadInputError(f"unknown on-chain action {action!r}", field="action")

    def propose(self, acct: Any, action: str, model: str, description: str, reason: str = "") -> dict[str, Any]:
        t, v, c = self.proposal_args(action, model, reason)
        rcpt = send(self.w3, self.governor.functions.propose(t, v, c, description), acct)
        ev = self.governor.events.ProposalCreated().process_receipt(rcpt)[0]["args"]
        return {"id": ev["proposalId"], "targets": t, "values": v, "calldatas": c, "description": description,
                "snapshot": ev["voteStart"], "deadline": ev["voteEnd"]}

    def vote(self, acct: Any, pid: int, support: str) -> int:
        rcpt = send(self.w3, self.governor.functions.castVote(pid, SUPPORT[support]), acct)
        return int(self.governor.events.VoteCast().process_receipt(rcpt)[0]["args"]["weight"])

    def _desc_hash(self, p: dict[str, Any]) -> bytes:
        from web3 import Web3

        return Web3.keccak(text=p["description"])

    def queue(self, acct: Any, p: dict[str, Any]) -> Any:
        return send(self.w3, self.governor.functions.queue(p["targets"], p["values"], p["calldatas"],
                                                           self._desc_hash(p)), acct)

    def execute(self, acct: Any, p: dict[str, Any]) -> Any:
        return send(self.w3, self.governor.functions.execute(p["targets"], p["values"], p["calldatas"],
                                                             self._desc_hash(p)), acct)

    def state(self, pid: int) -> str:
        return STATES[self.governor.functions.state(pid).call()]

    def tally(self, pid: int) -> dict[str, int]:
        a, f, ab = self.governor.functions.proposalVotes(pid).call()
        return {"for": f, "against": a, "abstain": ab}

    # -- registry -------------------------------------------------------------------------------------
    def suspend(self, guardian: Any, model: str, reason: str) -> Any:
        return send(self.w3, self.registry.functions.suspend(model, reason), guardian)

    def model_status(self, model: str) -> dict[str, Any] | None:
        state, since, reason = self.registry.functions.status(model).call()
        if state == 0:
            return None
        return {"state": REGISTRY_STATES[state], "since": since, "reason": reason,
                "blocked": self.registry.functions.isBlocked(model).call()}
