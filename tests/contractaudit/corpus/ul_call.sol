// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract UlCall {
    function give(address to, uint256 v) external {
        payable(to).call{value: v}("");
    }
    receive() external payable {}
}
