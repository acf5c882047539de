// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract DosKing {
    address payable public king;
    uint256 public prize;
    function claim() external payable {
        require(msg.value > prize);
        require(king.send(prize));
        king = payable(msg.sender);
        prize = msg.value;
    }
}
