// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract DosPayAll {
    address payable[] public payees;
    function join() external payable { require(msg.value == 1 ether); payees.push(payable(msg.sender)); }
    function payAll() external {
        for (uint256 i = 0; i < payees.length; i++) {
            payees[i].transfer(0.1 ether);
        }
    }
}
