// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OkOwned {
    address public owner;
    constructor() { owner = msg.sender; }
    modifier onlyOwner() { require(msg.sender == owner, "not owner"); _; }
    function setOwner(address o) external onlyOwner { require(o != address(0)); owner = o; }
    function sweep() external onlyOwner { payable(owner).transfer(address(this).balance); }
    receive() external payable {}
}
