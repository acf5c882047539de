// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract TmGame {
    uint256 public startedAt;
    address public player;
    function start() external payable { require(msg.value == 1 ether); startedAt = block.timestamp; player = msg.sender; }
    function win() external {
        require(msg.sender == player && block.timestamp == startedAt + 1 hours);
        payable(player).transfer(address(this).balance);
    }
}
