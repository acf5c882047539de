// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract ArToken {
    mapping(address => uint256) public bal;
    constructor() { bal[msg.sender] = 100; }
    function move(address to, uint256 v) external {
        unchecked {
            bal[msg.sender] -= v;
            bal[to] += v;
        }
    }
}
