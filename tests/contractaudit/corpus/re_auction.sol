// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract ReAuction {
    address public leader;
    uint256 public best;
    mapping(address => uint256) public refunds;
    function bid() external payable { require(msg.value > best); refunds[leader] += best; leader = msg.sender; best = msg.value; }
    function refund() external {
        uint256 r = refunds[msg.sender];
        if (r > 0) {
            (bool ok, ) = msg.sender.call{value: r}("");
            if (ok) { refunds[msg.sender] = 0; }
        }
    }
}
