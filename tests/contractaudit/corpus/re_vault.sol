// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract ReVault {
    mapping(address => uint256) private credit;
    uint256 public total;
    function put() public payable { credit[msg.sender] += msg.value; total += msg.value; }
    function take(uint256 amount) public {
        require(credit[msg.sender] >= amount, "low");
        (bool sent, ) = payable(msg.sender).call{value: amount}("");
        require(sent, "fail");
        credit[msg.sender] -= amount;
        total -= amount;
    }
}
