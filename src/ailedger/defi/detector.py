"""Fraud and anomaly detection over blocks, in the manner of Forta bots: :meth:`Detector.handle_transaction`
returns findings for one transaction (its receipt's logs decoded), :meth:`Detector.handle_block` those that need
a whole block (sandwiches).  Findings are logged as signed ``agent.finding`` entries (a statement by the
detector's key).

Patterns (each a plain rule over ERC-20 ``Transfer``/``Approval`` and the AMM's ``Swap`` events):

* ``unknown-spender-approval`` -- an ``Approval`` with a non-zero amount to a spender that is not a known
  contract (phishing "approve" is how most drains start);
* ``drain`` -- a ``transferFrom`` by a third party (the sender of the transaction is not the owner) moving at
  least half of the owner's balance of that token to an unknown address;
* ``sandwich`` -- in one block, an address swaps the same way just before a victim's swap (at least as much) and
  sells back 80-120% of what it bought just after;
* ``address-poisoning`` -- a zero-value transfer between a watched address and a look-alike (same first and
  last four hex digits) of one of its earlier counterparties.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["FINDING", "PATTERNS", "Detector", "Finding", "chain_balance", "evaluate", "log_findings", "run_scenario", "scan"]

FINDING = "agent.finding"
PATTERNS = ("unknown-spender-approval", "drain", "sandwich", "address-poisoning")
DRAIN_FRACTION = 0.5
BACKRUN_MATCH = (0.8, 1.2)  # back-run input / front-run output


@dataclass
class Finding:
    pattern: str
    tx: str
    block: int
    severity: str
    description: str
    addresses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TxEvent:
    """What a handler sees: the transaction and its decoded logs, in block order."""

    hash: str
    block: int
    index: int
    sender: str
    transfers: list[tuple[str, str, str, int]]  # token, from, to, value
    approvals: list[tuple[str, str, str, int]]  # token, owner, spender, value
    swaps: list[tuple[str, str, str, int, int]]  # pool, sender, token_in, amount_in, amount_out


def _lookalike(a: str, b: str) -> bool:
    return a != b and a[2:6] == b[2:6] and a[-4:] == b[-4:]


class Detector:
    """Stateful over the blocks it is fed in order (balances and counterparties come from the Transfer events it
    has seen, so it needs no archive node)."""

    def __init__(self, known: dict[str, str] | None = None, watched: set[str] | None = None,
                 balance_of: Callable[[str, str, int], int] | None = None) -> None:
        self.known = {k.lower(): v for k, v in (known or {}).items()}
        self.watched = {w.lower() for w in watched} if watched else None  # None: every address
        self.balances: dict[tuple[str, str], int] = {}
        self.counterparties: dict[str, set[str]] = defaultdict(set)
        # an address's balance the first time it is seen (at the end of the block before); after that the
        # detector folds the Transfer events itself
        self.balance_of = balance_of

    def _balance(self, token: str, who: str, block: int) -> int:
        key = (token, who)
        if key not in self.balances:
            self.balances[key] = self.balance_of(token, who, block - 1) if self.balance_of and block > 0 else 0
        return self.balances[key]

    def _watch(self, a: str) -> bool:
        return self.watched is None or a in self.watched

    def handle_transaction(self, tx: TxEvent) -> list[Finding]:
        out: list[Finding] = []
        for token, owner, spender, value in tx.approvals:
            if value > 0 and spender not in self.known and self._watch(owner):
                out.append(Finding("unknown-spender-approval", tx.hash, tx.block, "high",
                                   f"{owner} approved {value} of token {token} to unknown spender {spender}",
                                   [owner, spender, token]))
        for token, src, dst, value in tx.transfers:
            before = self._balance(token, src, tx.block)
            self._balance(token, dst, tx.block)
            if (value > 0 and src != tx.sender and src != "0x" + "0" * 40 and dst not in self.known
                    and self._watch(src) and before > 0 and value >= DRAIN_FRACTION * before):
                out.append(Finding("drain", tx.hash, tx.block, "critical",
                                   f"{tx.sender} moved {value} of {before} {token} from {src} to {dst}",
                                   [src, dst, tx.sender, token]))
            if value == 0:
                for watched, other in ((src, dst), (dst, src)):
                    if self._watch(watched) and any(_lookalike(other, c) for c in self.counterparties[watched]):
                        out.append(Finding("address-poisoning", tx.hash, tx.block, "medium",
                                           f"zero-value transfer between {watched} and {other}, a look-alike of "
                                           "an earlier counterparty", [watched, other, token]))
                        break
            else:
                self.counterparties[src].add(dst)
                self.counterparties[dst].add(src)
            self.balances[(token, src)] -= value
            self.balances[(token, dst)] += value
        return out

    def handle_block(self, txs: list[TxEvent]) -> list[Finding]:
        out: list[Finding] = []
        swaps = [(i, s) for i, tx in enumerate(txs) for s in tx.swaps]
        for k, (vi, (pool, victim, tin, ain, _aout)) in enumerate(swaps):
            for fi, (fpool, front, ftin, fa, fo) in swaps[:k]:
                # the front-run: same pool, same direction, before the victim, at least as large
                if fpool != pool or front == victim or ftin != tin or fi >= vi or fa < ain:
                    continue
                # the back-run: the same address sells back roughly what the front-run bought
                back = [bi for bi, (bp, bs, btin, ba, _bo) in swaps[k + 1:]
                        if bp == pool and bs == front and btin != tin and bi > vi
                        and BACKRUN_MATCH[0] * fo <= ba <= BACKRUN_MATCH[1] * fo]
                if back:
                    out.append(Finding("sandwich", txs[vi].hash, txs[vi].block, "high",
                                       f"{front} swapped before and after {victim}'s swap on pool {pool}",
                                       [victim, front, pool]))
                    break
        return out


_SIGS: dict[str, str] = {}


def _topics() -> dict[str, str]:
    if not _SIGS:
        from eth_utils import keccak

        for name, sig in (("transfer", "Transfer(address,address,uint256)"),
                          ("approval", "Approval(address,address,uint256)"),
                          ("swap", "Swap(address,address,uint256,uint256,address)")):
            _SIGS["0x" + keccak(text=sig).hex()] = name
    return _SIGS


def _hex(v: Any) -> str:
    return "0x" + bytes(v).hex() if not isinstance(v, str) else (v if v.startswith("0x") else "0x" + v).lower()


def _addr_topic(t: Any) -> str:
    return "0x" + _hex(t)[-40:]


def tx_events(w3: Any, n: int) -> list[TxEvent]:
    blk = w3.eth.get_block(n, full_transactions=True)
    out = []
    for i, tx in enumerate(blk["transactions"]):
        h = _hex(tx["hash"])
        rc = w3.eth.get_transaction_receipt(h)
        ev = TxEvent(h, n, i, str(tx["from"]).lower(), [], [], [])
        for lg in rc["logs"]:
            topics = [_hex(t) for t in lg["topics"]]
            kind = _topics().get(topics[0]) if topics else None
            data = bytes.fromhex(_hex(lg["data"])[2:])
            addr = str(lg["address"]).lower()
            if kind in ("transfer", "approval") and len(topics) == 3 and len(data) == 32:
                rec = (addr, _addr_topic(topics[1]), _addr_topic(topics[2]), int.from_bytes(data, "big"))
                (ev.transfers if kind == "transfer" else ev.approvals).append(rec)
            elif kind == "swap" and len(topics) == 4 and len(data) == 64:
                ev.swaps.append((addr, _addr_topic(topics[1]), _addr_topic(topics[2]),
                                 int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big")))
        out.append(ev)
    return out


def chain_balance(w3: Any) -> Callable[[str, str, int], int]:
    """``balanceOf(who)`` of an ERC-20 at a past block (anvil and the in-process EVM keep the state)."""
    from eth_abi import decode, encode

    sel = bytes.fromhex("70a08231")  # balanceOf(address)

    def get(token: str, who: str, block: int) -> int:
        try:
            out = w3.eth.call({"to": w3.to_checksum_address(token), "data": sel + encode(["address"], [who])},
                              block_identifier=block)
            return int(decode(["uint256"], bytes(out))[0]) if len(out) >= 32 else 0
        except Exception:  # noqa: BLE001 - not a token, or no state at that block: unknown balance
            return 0

    return get


def scan(w3: Any, detector: Detector, from_block: int = 0, to_block: int | None = None,
         progress: bool = False) -> list[Finding]:
    """Feed blocks ``from_block..to_block`` (inclusive) to the detector; every finding, in block order."""
    end = w3.eth.block_number if to_block is None else to_block
    if from_block < 0 or end < from_block:
        raise BadInputError(f"bad block range {from_block}..{end}", field="from")
    from tqdm import tqdm

    out: list[Finding] = []
    for n in tqdm(range(from_block, end + 1), desc="blocks", unit="blk", disable=not progress, leave=False):
        txs = tx_events(w3, n)
        for tx in txs:
            out += detector.handle_transaction(tx)
        out += detector.handle_block(txs)
    return out


def log_findings(ledger: Any, identity: Any, findings: list[Finding], *, chain_id: int) -> list[int]:
    """One signed ``agent.finding`` per finding; the indices."""
    out = []
    for f in findings:
        body = {"detector": "ailedger.defi.detector/1", "chain_id": chain_id, **f.to_dict()}
        out.append(ledger.append_record(FINDING, body, identity).index)
    return out


def evaluate(findings: list[Finding], labels: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """Precision and recall per pattern against the scenario's labels (tx hash -> injected patterns)."""
    out: dict[str, dict[str, Any]] = {}
    for p in PATTERNS:
        found = {f.tx for f in findings if f.pattern == p}
        truth = {h for h, ps in labels.items() if p in ps}
        tp = len(found & truth)
        out[p] = {"tp": tp, "fp": len(found - truth), "fn": len(truth - found), "labelled": len(truth),
                  "precision": tp / len(found) if found else (1.0 if not truth else 0.0),
                  "recall": tp / len(truth) if truth else 1.0}
    return out


# -- the scripted scenario: normal traffic + injected attacks -----------------------------------------------

class _Batch:
    """Transactions mined together, in the given order (automine off; on anvil, descending priority fees)."""

    def __init__(self, w3: Any) -> None:
        self.w3 = w3
        self.items: list[tuple[Any, Any]] = []

    def add(self, fn: Any, acct: Any) -> int:
        self.items.append((fn, acct))
        return len(self.items) - 1

    def mine(self) -> list[str]:
        w3 = self.w3
        tester = getattr(w3.provider, "ethereum_tester", None)
        nonces: dict[str, int] = {}
        base = int(w3.eth.get_block("latest").get("baseFeePerGas", 10**9) or 10**9)
        signed = []
        n = len(self.items)
        for i, (fn, acct) in enumerate(self.items):
            nonce = nonces.get(acct.address, w3.eth.get_transaction_count(acct.address))
            nonces[acct.address] = nonce + 1
            tip = (n - i) * 10**9
            tx = fn.build_transaction({"from": acct.address, "nonce": nonce, "gas": 300_000,
                                       "chainId": w3.eth.chain_id, "maxPriorityFeePerGas": tip,
                                       "maxFeePerGas": 2 * base + tip})
            signed.append(acct.sign_transaction(tx))
        if tester is not None:
            tester.disable_auto_mine_transactions()
        else:
            w3.provider.make_request("evm_setAutomine", [False])
        try:
            hashes = [_hex(w3.eth.send_raw_transaction(s.raw_transaction)) for s in signed]
            if tester is not None:
                tester.mine_blocks(1)
            else:
                w3.provider.make_request("evm_mine", [])
        finally:
            if tester is not None:
                tester.enable_auto_mine_transactions()
            else:
                w3.provider.make_request("evm_setAutomine", [True])
        self.items = []
        return hashes


def run_scenario(w3: Any, market: Any, *, seed: int = 0, blocks: int = 12, users: int = 4,
                 attack_rate: float = 0.5) -> tuple[dict[str, set[str]], dict[str, Any]]:
    """Normal traffic (user swaps and transfers, the agent's guarded swaps, benign approvals and large own
    transfers as hard negatives) with injected attacks (sandwiches around the agent, phishing approvals followed
    by drains, zero-value address poisoning).  The labels: tx hash -> the patterns injected there."""
    from eth_account import Account

    from .chain import E18, fund, send

    rng = random.Random(seed)
    ta, tb = market.tokens
    amm = market.amm
    people = [Account.from_key(bytes([7, i + 1] + [0] * 29 + [seed % 256])) for i in range(users)]
    attacker = Account.from_key(bytes([9] * 31 + [seed % 256 + 1]))
    router = Account.from_key(bytes([11] * 31 + [seed % 256 + 1])).address  # a legit new spender
    fund(w3, [p.address for p in people] + [attacker.address])
    for p in [*people, attacker]:
        for t in (ta, tb):
            send(w3, t.functions.mint(p.address, 5_000 * E18), market.dao)
            send(w3, t.functions.approve(amm.address, 2**255), p)
    labels: dict[str, set[str]] = defaultdict(set)
    met: dict[str, set[str]] = defaultdict(set)  # counterparties each user has paid
    pending_drain: list[Any] = []
    start = w3.eth.block_number + 1
    counts: dict[str, int] = defaultdict(int)

    def swap(b: _Batch, who: Any, tok: Any, amount: int) -> int:
        return b.add(amm.functions.swap(tok.address, amount, 0, who.address), who)

    def agent_swap(b: _Batch, tok: Any, amount: int) -> int:
        from .actions import calldata

        # the agent's own slippage bound: the guard's, from the quote before the block
        quote = amm.functions.getAmountOut(tok.address, amount).call()
        it = {"kind": "swap", "selector": "0xf3e6ea8a", "token_in": tok.address.lower(), "amount": str(amount),
              "min_out": str(quote * (10000 - bps) // 10000), "to": market.guard.address.lower()}
        return b.add(market.guard.functions.execute(amm.address, calldata(it)), market.agent)

    bps = int(market.guard.functions.maxSlippageBps().call())
    for _ in range(blocks):
        b = _Batch(w3)
        roles: list[tuple[int, str]] = []
        for _k in range(rng.randint(2, 4)):
            p = rng.choice(people)
            r = rng.random()
            if r < 0.5:
                swap(b, p, rng.choice((ta, tb)), rng.randint(1, 50) * E18)
            elif r < 0.85:
                q = rng.choice([x for x in people if x is not p])
                b.add(rng.choice((ta, tb)).functions.transfer(q.address, rng.randint(1, 20) * E18), p)
                met[p.address].add(q.address.lower())
            elif r < 0.93:  # hard negative: a big transfer of one's own funds
                q = rng.choice([x for x in people if x is not p])
                b.add(ta.functions.transfer(q.address, 1_000 * E18), p)
                met[p.address].add(q.address.lower())
            else:  # hard negative (the detector flags it: a false positive by design): a legit new router
                b.add(tb.functions.approve(router, 100 * E18), p)
        tok = rng.choice((ta, tb))
        other = tb if tok is ta else ta
        attack = rng.random() < attack_rate
        kind = rng.choice(("sandwich", "phish", "poison")) if attack else "none"
        # the agent trades every block; sometimes bystanders swap around it (not a sandwich: different senders)
        if kind == "sandwich":
            swap(b, attacker, tok, 400 * E18)
            roles.append((agent_swap(b, tok, rng.randint(20, 80) * E18), "sandwich"))
            swap(b, attacker, other, 350 * E18)
        else:
            if rng.random() < 0.4:
                swap(b, people[0], tok, 30 * E18)
                agent_swap(b, tok, rng.randint(20, 80) * E18)
                swap(b, people[1], other, 30 * E18)
            else:
                agent_swap(b, tok, rng.randint(20, 80) * E18)
        if kind == "phish":
            victim = rng.choice(people)
            roles.append((b.add(ta.functions.approve(attacker.address, 2**200), victim), "unknown-spender-approval"))
            pending_drain.append(victim)
        elif pending_drain and rng.random() < 0.8:
            victim = pending_drain.pop(0)
            bal = ta.functions.balanceOf(victim.address).call()
            roles.append((b.add(ta.functions.transferFrom(victim.address, attacker.address, bal * 6 // 10),
                                attacker), "drain"))
        if kind == "poison" and any(met[p.address] for p in people):
            # a look-alike of someone the victim really paid (earlier, or earlier in this block)
            victim = rng.choice([p for p in people if met[p.address]])
            real = rng.choice(sorted(met[victim.address]))
            fake = "0x" + real[2:6] + "".join(rng.choice("0123456789abcdef") for _ in range(32)) + real[-4:]
            roles.append((b.add(ta.functions.transferFrom(victim.address, w3.to_checksum_address(fake), 0),
                                attacker), "address-poisoning"))
        hashes = b.mine()
        for pos, pat in roles:
            labels[hashes[pos]].add(pat)
            counts[pat] += 1
    return dict(labels), {"start_block": start, "end_block": w3.eth.block_number, "injected": dict(counts),
                          "attacker": attacker.address.lower(), "users": [p.address.lower() for p in people]}
