// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract TmSale {
    uint256 public end = 1700000000;
    mapping(address => uint256) public paid;
    function buy() external payable {
        require(block.timestamp < end);
        paid[msg.sender] += msg.value;
    }
}
