// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract AcWallet {
    address public owner;
    bool public ready;
    function init(address o) external {
        owner = o;
        ready = true;
    }
    function drain(address payable to) external { require(msg.sender == owner); to.transfer(address(this).balance); }
    receive() external payable {}
}
