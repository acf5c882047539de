// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OkPull {
    mapping(address => uint256) public owed;
    address public owner = msg.sender;
    function credit(address who) external payable { require(msg.sender == owner); owed[who] += msg.value; }
    function pull() external {
        uint256 v = owed[msg.sender];
        owed[msg.sender] = 0;
        (bool ok, ) = payable(msg.sender).call{value: v}("");
        require(ok);
    }
}
