// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract ArCast {
    mapping(address => uint8) public level;
    function setLevel(uint256 x) external {
        level[msg.sender] = uint8(x);
    }
}
