// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract OtUninit {
    address payable public beneficiary;
    function payout() external {
        beneficiary.transfer(address(this).balance);
    }
    receive() external payable {}
}
