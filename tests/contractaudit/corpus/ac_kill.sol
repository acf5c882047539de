// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract AcKill {
    address public admin;
    constructor() { admin = msg.sender; }
    function close() external {
        selfdestruct(payable(msg.sender));
    }
    receive() external payable {}
}
