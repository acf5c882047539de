// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title CheckpointAnchor
/// @notice Public, append-only anchor for transparency-log checkpoints.
///
/// A log is named by logId = sha256(origin line of its C2SP checkpoint). For each (submitter, log)
/// the contract keeps the latest anchored tree size and root and only lets the size grow, so an
/// anchored head can never be replaced by a smaller (rolled back) one. Every accepted anchor emits
/// an event with the full (size, root) pair, so the whole anchoring history of a log can be read
/// back from the chain's event logs, not only the latest state.
///
/// Heads are kept per submitter so that nobody can squat a log id or block another anchorer: an
/// anchor proves "this (size, root) existed by this block's time" whoever sent it, and verifiers
/// match the anchored root against a checkpoint whose Ed25519 log signature they check off-chain
/// (Ed25519 is not an EVM precompile, so the contract does not check it).
contract CheckpointAnchor {
    struct Head {
        uint64 treeSize;
        uint64 anchoredAt; // block timestamp of the latest anchor (packed with treeSize in one slot)
        bytes32 root;
    }

    mapping(address => mapping(bytes32 => Head)) private heads;

    /// @notice Emitted once per accepted anchor.
    event Anchored(
        bytes32 indexed logId, address indexed submitter, uint64 treeSize, bytes32 root, uint64 timestamp
    );

    /// @notice The offered tree size does not exceed the one already anchored by this submitter.
    error SizeMustGrow(bytes32 logId, uint64 anchoredSize, uint64 offeredSize);

    /// @notice Anchor (treeSize, root) for logId. Reverts unless treeSize exceeds the anchored size.
    function anchor(bytes32 logId, uint64 treeSize, bytes32 root) external {
        Head storage h = heads[msg.sender][logId];
        if (treeSize <= h.treeSize) {
            revert SizeMustGrow(logId, h.treeSize, treeSize);
        }
        uint64 t = uint64(block.timestamp);
        h.treeSize = treeSize;
        h.anchoredAt = t;
        h.root = root;
        emit Anchored(logId, msg.sender, treeSize, root, t);
    }

    /// @notice The latest head of logId anchored by submitter (all zero if never anchored).
    function latest(address submitter, bytes32 logId)
        external
        view
        returns (uint64 treeSize, bytes32 root, uint64 anchoredAt)
    {
        Head storage h = heads[submitter][logId];
        return (h.treeSize, h.root, h.anchoredAt);
    }
}
