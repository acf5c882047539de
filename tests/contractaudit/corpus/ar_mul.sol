// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract ArSale {
    mapping(address => uint256) public bought;
    uint256 public price = 1e15;
    function buy(uint256 n) external payable {
        uint256 cost;
        unchecked { cost = n * price; }
        require(msg.value == cost);
        bought[msg.sender] += n;
    }
}
