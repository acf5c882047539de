// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OtGoal {
    uint256 public goal = 10 ether;
    function fund() external payable {}
    function reached() external view returns (bool) {
        return address(this).balance == goal;
    }
}
