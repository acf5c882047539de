// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract BrGuess {
    function guess(uint8 n) external payable {
        require(msg.value == 0.1 ether);
        uint8 answer = uint8(uint256(blockhash(block.number - 1)));
        if (n == answer) { payable(msg.sender).transfer(0.2 ether); }
    }
}
