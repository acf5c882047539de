// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OkCounter {
    mapping(address => uint256) public count;
    function bump(uint256 n) external { require(n < 100); count[msg.sender] += n; }
    function reset() external { count[msg.sender] = 0; }
}
