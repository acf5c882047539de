// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract SaToken {
    mapping(address => uint256) public balanceOf;
    constructor() { balanceOf[msg.sender] = 1000000; }
    function transfer(address dst, uint256 wad) external returns (bool) {
        require(balanceOf[msg.sender] >= wad);
        balanceOf[dst] += wad;
        balanceOf[msg.sender] -= wad;
        return true;
    }
}
