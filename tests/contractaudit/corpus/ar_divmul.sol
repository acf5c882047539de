// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract ArFee {
    uint256 public rate = 3;
    function fee(uint256 amount) public view returns (uint256) {
        return amount / 1000 * rate;
    }
}
