// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract BrLottery {
    address[] public players;
    function enter() external payable { require(msg.value == 0.01 ether); players.push(msg.sender); }
    function draw() external {
        uint256 i = uint256(keccak256(abi.encodePacked(block.timestamp, block.prevrandao, players.length))) % players.length;
        payable(players[i]).transfer(address(this).balance);
    }
}
