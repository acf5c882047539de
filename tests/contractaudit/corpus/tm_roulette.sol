// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract TmRoulette {
    uint256 public last;
    function spin() external payable {
        require(msg.value == 1 ether && block.timestamp != last);
        last = block.timestamp;
        if (block.timestamp % 15 == 0) {
            payable(msg.sender).transfer(address(this).balance);
        }
    }
}
