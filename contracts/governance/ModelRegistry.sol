// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ailedger model registry: the on-chain kill switch.
/// @notice The DAO (its TimelockController, the `governance` address) approves and revokes models;
/// a guardian group can suspend a model at once when `guardianThreshold` distinct guardians call
/// `suspend` for it; only the DAO can then confirm (revoke) or lift the suspension.
/// Models are named by keccak256 of their ledger name.
contract ModelRegistry {
    enum State { Unknown, Approved, Suspended, Revoked, Active }

    struct Status {
        State state;
        uint64 since;
        string reason;
    }

    address public immutable governance;
    mapping(address => bool) public isGuardian;
    uint256 public immutable guardianThreshold;
    uint256 public immutable guardianCount;

    mapping(bytes32 => Status) private _status;
    mapping(bytes32 => State) private _beforeSuspension;
    /// round of suspension votes per model; a lift or confirm starts a new round
    mapping(bytes32 => uint256) public suspensionRound;
    mapping(bytes32 => mapping(uint256 => mapping(address => bool))) private _suspendVoted;
    mapping(bytes32 => mapping(uint256 => uint256)) public suspendVotes;

    event ModelApproved(bytes32 indexed model, string name);
    event ModelRevoked(bytes32 indexed model, string name, string reason);
    event SuspensionVote(bytes32 indexed model, address indexed guardian, uint256 votes);
    event ModelSuspended(bytes32 indexed model, string name, string reason);
    event SuspensionLifted(bytes32 indexed model, string name);

    error NotGovernance(address caller);
    error NotGuardian(address caller);
    error AlreadyVoted(address guardian);
    error NotSuspended(bytes32 model);
    error AlreadyStopped(bytes32 model, State state);

    constructor(address governance_, address[] memory guardians, uint256 threshold) {
        require(threshold >= 1 && threshold <= guardians.length, "threshold");
        governance = governance_;
        for (uint256 i = 0; i < guardians.length; i++) {
            require(!isGuardian[guardians[i]], "duplicate guardian");
            isGuardian[guardians[i]] = true;
        }
        guardianThreshold = threshold;
        guardianCount = guardians.length;
    }

    modifier onlyGovernance() {
        if (msg.sender != governance) revert NotGovernance(msg.sender);
        _;
    }

    function key(string memory name) public pure returns (bytes32) {
        return keccak256(bytes(name));
    }

    function status(string calldata name) external view returns (State state, uint64 since, string memory reason) {
        Status storage s = _status[key(name)];
        return (s.state, s.since, s.reason);
    }

    /// True when a model must not be served: revoked by the DAO or suspended by the guardians.
    function isBlocked(string calldata name) external view returns (bool) {
        State s = _status[key(name)].state;
        return s == State.Revoked || s == State.Suspended;
    }

    function approve(string calldata name) external onlyGovernance {
        _status[key(name)] = Status(State.Approved, uint64(block.timestamp), "");
        emit ModelApproved(key(name), name);
    }

    function revoke(string calldata name, string calldata reason) external onlyGovernance {
        _status[key(name)] = Status(State.Revoked, uint64(block.timestamp), reason);
        emit ModelRevoked(key(name), name, reason);
    }

    function suspend(string calldata name, string calldata reason) external {
        if (!isGuardian[msg.sender]) revert NotGuardian(msg.sender);
        bytes32 k = key(name);
        State cur = _status[k].state;
        if (cur == State.Suspended || cur == State.Revoked) revert AlreadyStopped(k, cur);
        uint256 round = suspensionRound[k];
        if (_suspendVoted[k][round][msg.sender]) revert AlreadyVoted(msg.sender);
        _suspendVoted[k][round][msg.sender] = true;
        uint256 n = ++suspendVotes[k][round];
        emit SuspensionVote(k, msg.sender, n);
        if (n >= guardianThreshold) {
            _beforeSuspension[k] = cur;
            _status[k] = Status(State.Suspended, uint64(block.timestamp), reason);
            emit ModelSuspended(k, name, reason);
        }
    }

    function confirmSuspension(string calldata name) external onlyGovernance {
        bytes32 k = key(name);
        if (_status[k].state != State.Suspended) revert NotSuspended(k);
        _status[k].state = State.Revoked;
        _status[k].since = uint64(block.timestamp);
        suspensionRound[k] += 1;
        emit ModelRevoked(k, name, _status[k].reason);
    }

    function liftSuspension(string calldata name) external onlyGovernance {
        bytes32 k = key(name);
        if (_status[k].state != State.Suspended) revert NotSuspended(k);
        State before = _beforeSuspension[k];
        _status[k] = Status(before == State.Unknown ? State.Active : before, uint64(block.timestamp), "");
        suspensionRound[k] += 1;
        emit SuspensionLifted(k, name);
    }
}
