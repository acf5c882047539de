// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract TmBonus {
    mapping(address => uint256) public points;
    function act() external {
        uint256 bonus = block.timestamp % 60 < 5 ? 10 : 1;
        points[msg.sender] += bonus;
    }
}
