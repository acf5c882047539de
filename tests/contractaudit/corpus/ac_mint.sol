// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract AcMint {
    mapping(address => uint256) public balanceOf;
    uint256 public totalSupply;
    address public minter;
    constructor() { minter = msg.sender; }
    function mint(address to, uint256 v) external {
        balanceOf[to] += v;
        totalSupply += v;
    }
}
