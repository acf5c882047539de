// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title RecordRegistry
/// @notice Benchmark baseline only: registers records on chain one by one (one transaction per
/// record), the design that checkpoint anchoring replaces. `register` stores the record hash with
/// its block time; `emitOnly` is the cheapest possible variant (an event, no storage).
contract RecordRegistry {
    mapping(bytes32 => uint64) public registeredAt;

    event Registered(bytes32 indexed recordHash, address indexed submitter);

    error AlreadyRegistered(bytes32 recordHash);

    function register(bytes32 recordHash) external {
        if (registeredAt[recordHash] != 0) revert AlreadyRegistered(recordHash);
        registeredAt[recordHash] = uint64(block.timestamp);
        emit Registered(recordHash, msg.sender);
    }

    function emitOnly(bytes32 recordHash) external {
        emit Registered(recordHash, msg.sender);
    }
}
