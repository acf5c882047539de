// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract AcTxOrigin {
    address public owner;
    constructor() { owner = msg.sender; }
    function pay(address payable to, uint256 v) external {
        require(tx.origin == owner);
        to.transfer(v);
    }
    receive() external payable {}
}
