// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract UlRefund {
    mapping(address => uint256) public owed;
    function owe() external payable { owed[msg.sender] += msg.value; }
    function refund() external {
        uint256 v = owed[msg.sender];
        owed[msg.sender] = 0;
        payable(msg.sender).send(v);
    }
}
