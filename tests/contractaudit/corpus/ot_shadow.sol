// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OtShadow {
    uint256 public limit = 10;
    address public owner = msg.sender;
    function setLimit(uint256 limit) external {
        require(msg.sender == owner);
        limit = limit;
    }
}
