// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract SaCoin {
    mapping(address => uint256) public balances;
    constructor() { balances[msg.sender] = 1e24; }
    function sendCoin(address to, uint256 amount) public returns (bool) {
        if (balances[msg.sender] < amount) return false;
        balances[msg.sender] -= amount;
        balances[to] += amount;
        return true;
    }
}
