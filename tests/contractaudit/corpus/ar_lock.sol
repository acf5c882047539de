// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract ArTimeLock {
    mapping(address => uint256) public until;
    mapping(address => uint256) public held;
    function lock() external payable { held[msg.sender] += msg.value; until[msg.sender] = 1 weeks; }
    function extend(uint256 more) external {
        unchecked { until[msg.sender] += more; }
    }
}
