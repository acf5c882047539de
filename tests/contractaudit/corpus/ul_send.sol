// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract UlPayout {
    address payable public winner;
    function setWinner(address payable w) external { winner = w; }
    function pay() external {
        winner.send(address(this).balance);
    }
    receive() external payable {}
}
