// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OkRegistry {
    mapping(bytes32 => address) public ownerOf;
    function claim(bytes32 name) external { require(ownerOf[name] == address(0)); ownerOf[name] = msg.sender; }
    function release(bytes32 name) external { require(ownerOf[name] == msg.sender); delete ownerOf[name]; }
}
