"""Front-running rules (DASP 7): each of the four patterns is found on the line that carries it, and the safe
variants next to them are not reported.  Contracts written for this test (solc 0.8)."""

from __future__ import annotations

import pytest

from ailedger.contractaudit.analyse import run_slither

H = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
SOURCES = {
    # -- found --
    "Reward.sol": """contract Reward {
    address public owner = msg.sender;
    uint256 public prize;
    bool public done;
    function setPrize() external payable { require(msg.sender == owner && !done); prize = msg.value; }
    function claim(uint256 guess) external {
        require(!done && guess * guess == 1764);
        done = true;
        payable(msg.sender).transfer(prize);
    }
}""",
    "Shop.sol": """contract Shop {
    address public owner = msg.sender;
    uint256 public rate = 100;
    mapping(address => uint256) public units;
    function setRate(uint256 r) external { require(msg.sender == owner); rate = r; }
    function order(uint256 n) external payable {
        require(msg.value == n * rate, "pay the rate");
        units[msg.sender] += n;
    }
}""",
    "Allow.sol": """contract Allow {
    mapping(address => mapping(address => uint256)) public allowance;
    function approve(address who, uint256 amount) external returns (bool) {
        allowance[msg.sender][who] = amount;
        return true;
    }
}""",
    "Riddle.sol": """contract Riddle {
    bytes32 public constant ANSWER = keccak256("fourty-two");
    function answer(string calldata word) external {
        if (keccak256(bytes(word)) == ANSWER) {
            payable(msg.sender).transfer(address(this).balance);
        }
    }
    receive() external payable {}
}""",
    "Duel.sol": """contract Duel {
    address[2] public who;
    uint256[2] public pick;
    uint256 public n;
    function enter(uint256 choice) external payable {
        require(msg.value == 1 ether && n < 2);
        who[n] = msg.sender;
        pick[n] = choice;
        n += 1;
        if (n == 2) settle();
    }
    function settle() internal {
        uint256 w = (pick[0] + pick[1]) % 2;
        n = 0;
        payable(who[w]).transfer(2 ether);
    }
}""",
    # -- not found --
    "SafeAllow.sol": """contract SafeAllow {
    mapping(address => mapping(address => uint256)) public allowance;
    function approve(address who, uint256 amount) external returns (bool) {
        require(amount == 0 || allowance[msg.sender][who] == 0, "set to 0 first");
        allowance[msg.sender][who] = amount;
        return true;
    }
}""",
    "Committed.sol": """contract Committed {
    bytes32 public constant ANSWER = keccak256("fourty-two");
    mapping(address => bytes32) public commits;
    function commit(bytes32 c) external { commits[msg.sender] = c; }
    function reveal(string calldata word) external {
        require(commits[msg.sender] == keccak256(abi.encodePacked(word, msg.sender)));
        if (keccak256(bytes(word)) == ANSWER) payable(msg.sender).transfer(address(this).balance);
    }
    receive() external payable {}
}""",
    "Vault.sol": """contract Vault {
    mapping(address => uint256) public balances;
    uint256 public total;
    function deposit() external payable { balances[msg.sender] += msg.value; total += msg.value; }
    function withdraw(uint256 amount) external {
        require(balances[msg.sender] >= amount);
        balances[msg.sender] -= amount;
        total -= amount;
        payable(msg.sender).transfer(amount);
    }
}""",
    "Fixed.sol": """contract Fixed {
    uint256 public constant PRICE = 1 ether;
    mapping(address => uint256) public units;
    function order(uint256 n) external payable { require(msg.value == n * PRICE); units[msg.sender] += n; }
}""",
}
WANT = {  # file -> (rule, line of the statement)
    "Reward.sol": [("revealed-solution", 7), ("tx-order-dependence", 9)],  # anyone's answer; and the prize can change
    "Shop.sol": [("tx-order-dependence", 7)],
    "Allow.sol": [("erc20-approve-race", 4)],
    "Riddle.sol": [("revealed-solution", 4)],
    "Duel.sol": [("revealed-choice", 8)],
}


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    d = tmp_path_factory.mktemp("fr")
    paths = []
    for name, body in SOURCES.items():
        (d / name).write_text(H + body + "\n")
        paths.append(d / name)
    run = run_slither(paths)
    return {p.name: [(f["rule"], f["line"] - 2) for f in run.rules[str(p.resolve())]] for p in paths}, run


def test_each_pattern_is_found_on_its_line(found):
    got, _ = found
    for name, want in WANT.items():
        assert got[name] == want, (name, got[name])


def test_safe_variants_are_not_reported(found):
    got, _ = found
    for name in SOURCES:
        if name not in WANT:
            assert got[name] == [], (name, got[name])


def test_findings_are_front_running_with_function_ranges_and_explanations(found):
    _, run = found
    fs = [f for fl in run.rules.values() for f in fl]
    assert fs and all(f["category"] == "front_running" and f["tool"] == "ailedger" for f in fs)
    assert all(f["start_line"] <= f["line"] <= f["end_line"] and f["explanation"] for f in fs)
    # none of these is a Slither finding: front-running has no Slither detector
    assert not any(f["category"] == "front_running" for fl in run.findings.values() for f in fl)
