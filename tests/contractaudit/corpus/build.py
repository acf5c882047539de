"""Writes the labelled corpus: one .sol per contract and labels.json ({file, line, category}).

Each source below marks its vulnerable line with a trailing ``//!category``; the marker is removed from the
written .sol (so no analyser sees it) and its line goes to labels.json.  Every contract is our own code,
written for this corpus, small, for solc 0.8.x.  Run: python tests/contractaudit/corpus/build.py
"""
from __future__ import annotations

import json
import re
from pathlib import Path

H = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
C: dict[str, str] = {}

# -- reentrancy --
C["re_bank"] = """contract ReBank {
    mapping(address => uint256) public balances;
    function deposit() external payable { balances[msg.sender] += msg.value; }
    function withdraw() external {
        uint256 amount = balances[msg.sender];
        (bool ok, ) = msg.sender.call{value: amount}(""); //!reentrancy
        require(ok);
        balances[msg.sender] = 0;
    }
}"""
C["re_vault"] = """contract ReVault {
    mapping(address => uint256) private credit;
    uint256 public total;
    function put() public payable { credit[msg.sender] += msg.value; total += msg.value; }
    function take(uint256 amount) public {
        require(credit[msg.sender] >= amount, "low");
        (bool sent, ) = payable(msg.sender).call{value: amount}(""); //!reentrancy
        require(sent, "fail");
        credit[msg.sender] -= amount;
        total -= amount;
    }
}"""
C["re_token_hook"] = """interface IReceiver { function onReceive(address from, uint256 v) external; }
contract ReHookToken {
    mapping(address => uint256) public bal;
    constructor() { bal[msg.sender] = 1000; }
    function send(address to, uint256 v) external {
        require(bal[msg.sender] >= v);
        IReceiver(to).onReceive(msg.sender, v); //!reentrancy
        bal[msg.sender] -= v;
        bal[to] += v;
    }
}"""
C["re_auction"] = """contract ReAuction {
    address public leader;
    uint256 public best;
    mapping(address => uint256) public refunds;
    function bid() external payable { require(msg.value > best); refunds[leader] += best; leader = msg.sender; best = msg.value; }
    function refund() external {
        uint256 r = refunds[msg.sender];
        if (r > 0) {
            (bool ok, ) = msg.sender.call{value: r}(""); //!reentrancy
            if (ok) { refunds[msg.sender] = 0; }
        }
    }
}"""
C["re_pool"] = """contract RePool {
    mapping(address => uint256) public shares;
    mapping(address => bool) public claimed;
    uint256 public reward = 1 ether;
    function join() external payable { shares[msg.sender] += msg.value; }
    function claim() external {
        require(!claimed[msg.sender] && shares[msg.sender] > 0);
        (bool ok, ) = msg.sender.call{value: reward}(""); //!reentrancy
        require(ok);
        claimed[msg.sender] = true;
    }
}"""
# -- access control --
C["ac_owner"] = """contract AcOwner {
    address public owner;
    constructor() { owner = msg.sender; }
    function setOwner(address o) public { owner = o; } //!access_control
    function sweep() external { require(msg.sender == owner); payable(owner).transfer(address(this).balance); }
    receive() external payable {}
}"""
C["ac_txorigin"] = """contract AcTxOrigin {
    address public owner;
    constructor() { owner = msg.sender; }
    function pay(address payable to, uint256 v) external {
        require(tx.origin == owner); //!access_control
        to.transfer(v);
    }
    receive() external payable {}
}"""
C["ac_kill"] = """contract AcKill {
    address public admin;
    constructor() { admin = msg.sender; }
    function close() external {
        selfdestruct(payable(msg.sender)); //!access_control
    }
    receive() external payable {}
}"""
C["ac_mint"] = """contract AcMint {
    mapping(address => uint256) public balanceOf;
    uint256 public totalSupply;
    address public minter;
    constructor() { minter = msg.sender; }
    function mint(address to, uint256 v) external {
        balanceOf[to] += v; //!access_control
        totalSupply += v;
    }
}"""
C["ac_delegate"] = """contract AcProxy {
    address public owner;
    constructor() { owner = msg.sender; }
    function forward(address impl, bytes calldata data) external {
        (bool ok, ) = impl.delegatecall(data); //!access_control
        require(ok);
    }
}"""
C["ac_init"] = """contract AcWallet {
    address public owner;
    bool public ready;
    function init(address o) external {
        owner = o; //!access_control
        ready = true;
    }
    function drain(address payable to) external { require(msg.sender == owner); to.transfer(address(this).balance); }
    receive() external payable {}
}"""
# -- arithmetic --
C["ar_underflow"] = """contract ArToken {
    mapping(address => uint256) public bal;
    constructor() { bal[msg.sender] = 100; }
    function move(address to, uint256 v) external {
        unchecked {
            bal[msg.sender] -= v; //!arithmetic
            bal[to] += v;
        }
    }
}"""
C["ar_mul"] = """contract ArSale {
    mapping(address => uint256) public bought;
    uint256 public price = 1e15;
    function buy(uint256 n) external payable {
        uint256 cost;
        unchecked { cost = n * price; } //!arithmetic
        require(msg.value == cost);
        bought[msg.sender] += n;
    }
}"""
C["ar_lock"] = """contract ArTimeLock {
    mapping(address => uint256) public until;
    mapping(address => uint256) public held;
    function lock() external payable { held[msg.sender] += msg.value; until[msg.sender] = 1 weeks; }
    function extend(uint256 more) external {
        unchecked { until[msg.sender] += more; } //!arithmetic
    }
}"""
C["ar_divmul"] = """contract ArFee {
    uint256 public rate = 3;
    function fee(uint256 amount) public view returns (uint256) {
        return amount / 1000 * rate; //!arithmetic
    }
}"""
C["ar_cast"] = """contract ArCast {
    mapping(address => uint8) public level;
    function setLevel(uint256 x) external {
        level[msg.sender] = uint8(x); //!arithmetic
    }
}"""
# -- unchecked low level calls --
C["ul_send"] = """contract UlPayout {
    address payable public winner;
    function setWinner(address payable w) external { winner = w; }
    function pay() external {
        winner.send(address(this).balance); //!unchecked_low_level_calls
    }
    receive() external payable {}
}"""
C["ul_call"] = """contract UlCall {
    function give(address to, uint256 v) external {
        payable(to).call{value: v}(""); //!unchecked_low_level_calls
    }
    receive() external payable {}
}"""
C["ul_exec"] = """contract UlExec {
    address public owner = msg.sender;
    function exec(address target, bytes calldata data) external {
        require(msg.sender == owner);
        target.call(data); //!unchecked_low_level_calls
    }
}"""
C["ul_batch"] = """contract UlBatch {
    address public owner = msg.sender;
    function airdrop(address payable[] calldata to, uint256 v) external {
        require(msg.sender == owner);
        for (uint256 i = 0; i < to.length; i++) {
            to[i].send(v); //!unchecked_low_level_calls
        }
    }
    receive() external payable {}
}"""
C["ul_refund"] = """contract UlRefund {
    mapping(address => uint256) public owed;
    function owe() external payable { owed[msg.sender] += msg.value; }
    function refund() external {
        uint256 v = owed[msg.sender];
        owed[msg.sender] = 0;
        payable(msg.sender).send(v); //!unchecked_low_level_calls
    }
}"""
# -- denial of service --
C["dos_king"] = """contract DosKing {
    address payable public king;
    uint256 public prize;
    function claim() external payable {
        require(msg.value > prize);
        require(king.send(prize)); //!denial_of_service
        king = payable(msg.sender);
        prize = msg.value;
    }
}"""
C["dos_payall"] = """contract DosPayAll {
    address payable[] public payees;
    function join() external payable { require(msg.value == 1 ether); payees.push(payable(msg.sender)); }
    function payAll() external {
        for (uint256 i = 0; i < payees.length; i++) {
            payees[i].transfer(0.1 ether); //!denial_of_service
        }
    }
}"""
C["dos_clear"] = """contract DosQueue {
    uint256[] public items;
    function add(uint256 x) external { items.push(x); }
    function total() external view returns (uint256 s) {
        for (uint256 i = 0; i < items.length; i++) { //!denial_of_service
            s += items[i];
        }
    }
}"""
C["dos_refund"] = """contract DosRefunds {
    address[] public backers;
    mapping(address => uint256) public gave;
    function back() external payable { backers.push(msg.sender); gave[msg.sender] += msg.value; }
    function refundAll() external {
        for (uint256 i = 0; i < backers.length; i++) {
            require(payable(backers[i]).send(gave[backers[i]])); //!denial_of_service
        }
    }
}"""
# -- bad randomness --
C["br_lottery"] = """contract BrLottery {
    address[] public players;
    function enter() external payable { require(msg.value == 0.01 ether); players.push(msg.sender); }
    function draw() external {
        uint256 i = uint256(keccak256(abi.encodePacked(block.timestamp, block.prevrandao, players.length))) % players.length; //!bad_randomness
        payable(players[i]).transfer(address(this).balance);
    }
}"""
C["br_blockhash"] = """contract BrGuess {
    function guess(uint8 n) external payable {
        require(msg.value == 0.1 ether);
        uint8 answer = uint8(uint256(blockhash(block.number - 1))); //!bad_randomness
        if (n == answer) { payable(msg.sender).transfer(0.2 ether); }
    }
}"""
C["br_coin"] = """contract BrCoinFlip {
    uint256 public wins;
    function flip(bool side) external returns (bool) {
        bool coin = (block.number % 2) == 0; //!bad_randomness
        if (coin == side) { wins++; return true; }
        wins = 0;
        return false;
    }
}"""
C["br_dice"] = """contract BrDice {
    uint256 private seed;
    function roll() external payable returns (uint256) {
        seed = uint256(keccak256(abi.encodePacked(seed, block.prevrandao, msg.sender))); //!bad_randomness
        uint256 r = seed % 6;
        if (r == 5) { payable(msg.sender).transfer(msg.value * 2); }
        return r;
    }
}"""
# -- front running --
C["fr_puzzle"] = """contract FrPuzzle {
    bytes32 public hash = 0xb5b5b97fafd9855eec9b41f74dfb6c38f5951141f9a3ecd7f44d5479b630ee0a;
    function solve(string memory answer) external {
        require(keccak256(abi.encodePacked(answer)) == hash); //!front_running
        payable(msg.sender).transfer(address(this).balance);
    }
    receive() external payable {}
}"""
C["fr_approve"] = """contract FrToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    function approve(address spender, uint256 v) external returns (bool) {
        allowance[msg.sender][spender] = v; //!front_running
        return true;
    }
    function transferFrom(address f, address t, uint256 v) external returns (bool) {
        allowance[f][msg.sender] -= v; balanceOf[f] -= v; balanceOf[t] += v; return true;
    }
}"""
C["fr_price"] = """contract FrMarket {
    address public owner = msg.sender;
    uint256 public price = 1 ether;
    mapping(address => uint256) public stock;
    function setPrice(uint256 p) external { require(msg.sender == owner); price = p; }
    function buy(uint256 n) external payable {
        require(msg.value >= n * price); //!front_running
        stock[msg.sender] += n;
    }
}"""
C["fr_claim"] = """contract FrBounty {
    address public finder;
    function submit(uint256 a, uint256 b) external {
        require(finder == address(0) && a * b == 899 && a > 1 && b > 1); //!front_running
        finder = msg.sender;
        payable(msg.sender).transfer(address(this).balance);
    }
    receive() external payable {}
}"""
# -- time manipulation --
C["tm_roulette"] = """contract TmRoulette {
    uint256 public last;
    function spin() external payable {
        require(msg.value == 1 ether && block.timestamp != last);
        last = block.timestamp;
        if (block.timestamp % 15 == 0) { //!time_manipulation
            payable(msg.sender).transfer(address(this).balance);
        }
    }
}"""
C["tm_sale"] = """contract TmSale {
    uint256 public end = 1700000000;
    mapping(address => uint256) public paid;
    function buy() external payable {
        require(block.timestamp < end); //!time_manipulation
        paid[msg.sender] += msg.value;
    }
}"""
C["tm_bonus"] = """contract TmBonus {
    mapping(address => uint256) public points;
    function act() external {
        uint256 bonus = block.timestamp % 60 < 5 ? 10 : 1; //!time_manipulation
        points[msg.sender] += bonus;
    }
}"""
C["tm_game"] = """contract TmGame {
    uint256 public startedAt;
    address public player;
    function start() external payable { require(msg.value == 1 ether); startedAt = block.timestamp; player = msg.sender; }
    function win() external {
        require(msg.sender == player && block.timestamp == startedAt + 1 hours); //!time_manipulation
        payable(player).transfer(address(this).balance);
    }
}"""
# -- short addresses --
C["sa_coin"] = """contract SaCoin {
    mapping(address => uint256) public balances;
    constructor() { balances[msg.sender] = 1e24; }
    function sendCoin(address to, uint256 amount) public returns (bool) {
        if (balances[msg.sender] < amount) return false;
        balances[msg.sender] -= amount; //!short_addresses
        balances[to] += amount;
        return true;
    }
}"""
C["sa_token"] = """contract SaToken {
    mapping(address => uint256) public balanceOf;
    constructor() { balanceOf[msg.sender] = 1000000; }
    function transfer(address dst, uint256 wad) external returns (bool) {
        require(balanceOf[msg.sender] >= wad);
        balanceOf[dst] += wad; //!short_addresses
        balanceOf[msg.sender] -= wad;
        return true;
    }
}"""
C["sa_points"] = """contract SaPoints {
    mapping(address => uint256) public pts;
    constructor() { pts[msg.sender] = 500; }
    function give(address who, uint256 n) public {
        require(pts[msg.sender] >= n);
        pts[msg.sender] -= n; //!short_addresses
        pts[who] += n;
    }
}"""
C["sa_credit"] = """contract SaCredit {
    mapping(address => uint256) public credit;
    constructor() { credit[msg.sender] = 1e18; }
    function pass(address to, uint256 value) external {
        credit[to] += value; //!short_addresses
        credit[msg.sender] -= value;
    }
}"""
# -- other --
C["ot_shadow"] = """contract OtShadow {
    uint256 public limit = 10;
    address public owner = msg.sender;
    function setLimit(uint256 limit) external {
        require(msg.sender == owner);
        limit = limit; //!other
    }
}"""
C["ot_equal"] = """contract OtGoal {
    uint256 public goal = 10 ether;
    function fund() external payable {}
    function reached() external view returns (bool) {
        return address(this).balance == goal; //!other
    }
}"""
C["ot_uninit"] = """contract OtUninit {
    address payable public beneficiary;
    function payout() external {
        beneficiary.transfer(address(this).balance); //!other
    }
    receive() external payable {}
}"""
C["ot_packed"] = """contract OtPacked {
    mapping(bytes32 => bool) public seen;
    function register(string calldata a, string calldata b) external {
        bytes32 k = keccak256(abi.encodePacked(a, b)); //!other
        require(!seen[k]);
        seen[k] = true;
    }
}"""
# -- safe contracts (no labels) --
C["ok_bank"] = """contract OkBank {
    mapping(address => uint256) public balances;
    function deposit() external payable { balances[msg.sender] += msg.value; }
    function withdraw() external {
        uint256 amount = balances[msg.sender];
        balances[msg.sender] = 0;
        (bool ok, ) = msg.sender.call{value: amount}("");
        require(ok, "send failed");
    }
}"""
C["ok_owned"] = """contract OkOwned {
    address public owner;
    constructor() { owner = msg.sender; }
    modifier onlyOwner() { require(msg.sender == owner, "not owner"); _; }
    function setOwner(address o) external onlyOwner { require(o != address(0)); owner = o; }
    function sweep() external onlyOwner { payable(owner).transfer(address(this).balance); }
    receive() external payable {}
}"""
C["ok_counter"] = """contract OkCounter {
    mapping(address => uint256) public count;
    function bump(uint256 n) external { require(n < 100); count[msg.sender] += n; }
    function reset() external { count[msg.sender] = 0; }
}"""
C["ok_pull"] = """contract OkPull {
    mapping(address => uint256) public owed;
    address public owner = msg.sender;
    function credit(address who) external payable { require(msg.sender == owner); owed[who] += msg.value; }
    function pull() external {
        uint256 v = owed[msg.sender];
        owed[msg.sender] = 0;
        (bool ok, ) = payable(msg.sender).call{value: v}("");
        require(ok);
    }
}"""
C["ok_registry"] = """contract OkRegistry {
    mapping(bytes32 => address) public ownerOf;
    function claim(bytes32 name) external { require(ownerOf[name] == address(0)); ownerOf[name] = msg.sender; }
    function release(bytes32 name) external { require(ownerOf[name] == msg.sender); delete ownerOf[name]; }
}"""
C["ok_math"] = """contract OkMath {
    function mulDiv(uint256 a, uint256 b, uint256 d) external pure returns (uint256) {
        require(d != 0);
        return a * b / d;
    }
    function avg(uint256 a, uint256 b) external pure returns (uint256) { return (a & b) + (a ^ b) / 2; }
}"""


def main() -> None:
    here = Path(__file__).parent
    labels = []
    for name, body in sorted(C.items()):
        out_lines = []
        for i, line in enumerate((H + body + "\n").splitlines(), start=1):
            m = re.search(r"\s*//!(\w+)\s*$", line)
            if m:
                labels.append({"file": f"{name}.sol", "line": i, "category": m.group(1)})
                line = line[: m.start()]
            out_lines.append(line)
        (here / f"{name}.sol").write_text("\n".join(out_lines) + "\n")
    (here / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    print(f"{len(C)} contracts, {len(labels)} labels")


if __name__ == "__main__":
    main()
