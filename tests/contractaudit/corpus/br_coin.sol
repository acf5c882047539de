// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract BrCoinFlip {
    uint256 public wins;
    function flip(bool side) external returns (bool) {
        bool coin = (block.number % 2) == 0;
        if (coin == side) { wins++; return true; }
        wins = 0;
        return false;
    }
}
