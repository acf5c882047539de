// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract AcProxy {
    address public owner;
    constructor() { owner = msg.sender; }
    function forward(address impl, bytes calldata data) external {
        (bool ok, ) = impl.delegatecall(data);
        require(ok);
    }
}
