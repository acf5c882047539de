// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OtPacked {
    mapping(bytes32 => bool) public seen;
    function register(string calldata a, string calldata b) external {
        bytes32 k = keccak256(abi.encodePacked(a, b));
        require(!seen[k]);
        seen[k] = true;
    }
}
