// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract DosQueue {
    uint256[] public items;
    function add(uint256 x) external { items.push(x); }
    function total() external view returns (uint256 s) {
        for (uint256 i = 0; i < items.length; i++) {
            s += items[i];
        }
    }
}
