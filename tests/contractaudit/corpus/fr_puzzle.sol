// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract FrPuzzle {
    bytes32 public hash = 0xb5b5b97fafd9855eec9b41f74dfb6c38f5951141f9a3ecd7f44d5479b630ee0a;
    function solve(string memory answer) external {
        require(keccak256(abi.encodePacked(answer)) == hash);
        payable(msg.sender).transfer(address(this).balance);
    }
    receive() external payable {}
}
