// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract FrMarket {
    address public owner = msg.sender;
    uint256 public price = 1 ether;
    mapping(address => uint256) public stock;
    function setPrice(uint256 p) external { require(msg.sender == owner); price = p; }
    function buy(uint256 n) external payable {
        require(msg.value >= n * price);
        stock[msg.sender] += n;
    }
}
