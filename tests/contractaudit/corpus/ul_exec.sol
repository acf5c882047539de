// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract UlExec {
    address public owner = msg.sender;
    function exec(address target, bytes calldata data) external {
        require(msg.sender == owner);
        target.call(data);
    }
}
