// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract RePool {
    mapping(address => uint256) public shares;
    mapping(address => bool) public claimed;
    uint256 public reward = 1 ether;
    function join() external payable { shares[msg.sender] += msg.value; }
    function claim() external {
        require(!claimed[msg.sender] && shares[msg.sender] > 0);
        (bool ok, ) = msg.sender.call{value: reward}("");
        require(ok);
        claimed[msg.sender] = true;
    }
}
