// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OkMath {
    function mulDiv(uint256 a, uint256 b, uint256 d) external pure returns (uint256) {
        require(d != 0);
        return a * b / d;
    }
    function avg(uint256 a, uint256 b) external pure returns (uint256) { return (a & b) + (a ^ b) / 2; }
}
