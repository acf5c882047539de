// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract SaPoints {
    mapping(address => uint256) public pts;
    constructor() { pts[msg.sender] = 500; }
    function give(address who, uint256 n) public {
        require(pts[msg.sender] >= n);
        pts[msg.sender] -= n;
        pts[who] += n;
    }
}
