// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract UlBatch {
    address public owner = msg.sender;
    function airdrop(address payable[] calldata to, uint256 v) external {
        require(msg.sender == owner);
        for (uint256 i = 0; i < to.length; i++) {
            to[i].send(v);
        }
    }
    receive() external payable {}
}
