// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
interface IReceiver { function onReceive(address from, uint256 v) external; }
contract ReHookToken {
    mapping(address => uint256) public bal;
    constructor() { bal[msg.sender] = 1000; }
    function send(address to, uint256 v) external {
        require(bal[msg.sender] >= v);
        IReceiver(to).onReceive(msg.sender, v);
        bal[msg.sender] -= v;
        bal[to] += v;
    }
}
