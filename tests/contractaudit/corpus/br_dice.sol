// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract BrDice {
    uint256 private seed;
    function roll() external payable returns (uint256) {
        seed = uint256(keccak256(abi.encodePacked(seed, block.prevrandao, msg.sender)));
        uint256 r = seed % 6;
        if (r == 5) { payable(msg.sender).transfer(msg.value * 2); }
        return r;
    }
}
