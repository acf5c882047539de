// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract AcOwner {
    address public owner;
    constructor() { owner = msg.sender; }
    function setOwner(address o) public { owner = o; }
    function sweep() external { require(msg.sender == owner); payable(owner).transfer(address(this).balance); }
    receive() external payable {}
}
