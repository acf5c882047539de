// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract FrBounty {
    address public finder;
    function submit(uint256 a, uint256 b) external {
        require(finder == address(0) && a * b == 899 && a > 1 && b > 1);
        finder = msg.sender;
        payable(msg.sender).transfer(address(this).balance);
    }
    receive() external payable {}
}
