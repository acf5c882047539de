// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract DosRefunds {
    address[] public backers;
    mapping(address => uint256) public gave;
    function back() external payable { backers.push(msg.sender); gave[msg.sender] += msg.value; }
    function refundAll() external {
        for (uint256 i = 0; i < backers.length; i++) {
            require(payable(backers[i]).send(gave[backers[i]]));
        }
    }
}
