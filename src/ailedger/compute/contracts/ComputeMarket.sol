// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ComputeMarket: escrowed compute jobs with a bisection dispute game down to one step.
/// @notice A client posts a job (the hash of its spec, the initial state root r_0, the number of steps S)
/// with the price; providers bid with a bond; the client accepts one. The provider submits the final state
/// root r_S and the trace root (RFC 6962 root over r_0..r_S). In the challenge window anyone may challenge
/// with an equal bond: the provider then reveals the root at the midpoint of the disputed range (with its
/// inclusion proof in the trace root, so every root it reveals is the one it committed to) and the
/// challenger says whether it agrees, halving the range each round (ceil(log2 S) rounds) until one step
/// [lo, lo+1] is left, where the challenger agrees with r_lo and not with r_lo+1. The job's referee
/// re-executes that one step and rules. Every move has a deadline; whoever misses it loses.
/// Payouts are credited and withdrawn (pull payments): nothing is paid twice, nothing is left stuck.
contract ComputeMarket {
    enum Phase { None, Open, Accepted, Submitted, Disputed, Settled }

    struct Job {
        address client;
        address referee;
        address provider;
        address challenger;
        uint256 price;
        uint256 bond;
        uint64 steps;
        uint64 runWindow;
        uint64 challengeWindow;
        uint64 moveWindow;
        uint64 deadline;
        uint64 lastMove;
        bytes32 specHash;
        bytes32 initRoot;
        bytes32 finalRoot;
        bytes32 traceRoot;
        uint64 lo;
        uint64 hi;
        bytes32 loRoot;
        bytes32 hiRoot;
        bytes32 midRoot;
        bool midRevealed;
        Phase phase;
    }

    mapping(uint256 => Job) private jobs;
    mapping(uint256 => mapping(address => uint256)) public bids;
    mapping(address => uint256) public credit;
    uint256 public jobCount;

    event Posted(uint256 indexed job, address indexed client, bytes32 specHash, uint256 price, uint256 bond, uint64 steps);
    event Bid(uint256 indexed job, address indexed provider);
    event Accepted(uint256 indexed job, address indexed provider, uint64 deadline);
    event Submitted(uint256 indexed job, bytes32 finalRoot, bytes32 traceRoot, uint64 windowEnd);
    event Challenged(uint256 indexed job, address indexed challenger);
    event Revealed(uint256 indexed job, uint64 step, bytes32 root);
    event Responded(uint256 indexed job, uint64 step, bool agree, uint64 lo, uint64 hi);
    event Settled(uint256 indexed job, string outcome, address winner);
    event Withdrawn(address indexed who, uint256 amount);

    error WrongPhase(uint8 expected, uint8 found);
    error NotClient();
    error NotProvider();
    error NotChallenger();
    error NotReferee();
    error ProviderCannotChallenge();
    error BadPrice();
    error BadSteps();
    error BadBond();
    error BadReferee();
    error BadWindow();
    error AlreadyBid();
    error NoBidFromProvider();
    error NotProvidersMove();
    error NotChallengersMove();
    error NotDownToOneStep();
    error BadProof(uint64 step);
    error TooLate(uint64 deadline);
    error TooEarly(uint64 deadline);
    error NothingToWithdraw();

    function _phase(Job storage j, Phase p) private view {
        if (j.phase != p) revert WrongPhase(uint8(p), uint8(j.phase));
    }

    function post(bytes32 specHash, bytes32 initRoot, uint64 steps, uint256 bond, address referee,
                  uint64 runWindow, uint64 challengeWindow, uint64 moveWindow) external payable returns (uint256 id) {
        if (msg.value == 0) revert BadPrice();
        if (steps == 0) revert BadSteps();
        if (bond == 0) revert BadBond();
        if (referee == address(0)) revert BadReferee();
        if (runWindow == 0 || challengeWindow == 0 || moveWindow == 0) revert BadWindow();
        id = ++jobCount;
        Job storage j = jobs[id];
        j.client = msg.sender;
        j.referee = referee;
        j.price = msg.value;
        j.bond = bond;
        j.steps = steps;
        j.runWindow = runWindow;
        j.challengeWindow = challengeWindow;
        j.moveWindow = moveWindow;
        j.specHash = specHash;
        j.initRoot = initRoot;
        j.phase = Phase.Open;
        emit Posted(id, msg.sender, specHash, msg.value, bond, steps);
    }

    function bid(uint256 id) external payable {
        Job storage j = jobs[id];
        _phase(j, Phase.Open);
        if (msg.value != j.bond) revert BadBond();
        if (bids[id][msg.sender] != 0) revert AlreadyBid();
        bids[id][msg.sender] = msg.value;
        emit Bid(id, msg.sender);
    }

    /// A bidder takes its bond back (any time unless it is the accepted provider: then it is escrowed).
    function withdrawBid(uint256 id) external {
        uint256 amount = bids[id][msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        bids[id][msg.sender] = 0;
        credit[msg.sender] += amount;
    }

    function accept(uint256 id, address provider) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Open);
        if (msg.sender != j.client) revert NotClient();
        if (bids[id][provider] != j.bond) revert NoBidFromProvider();
        bids[id][provider] = 0;
        j.provider = provider;
        j.deadline = uint64(block.timestamp) + j.runWindow;
        j.phase = Phase.Accepted;
        emit Accepted(id, provider, j.deadline);
    }

    /// The client takes a job nobody was accepted for back.
    function cancel(uint256 id) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Open);
        if (msg.sender != j.client) revert NotClient();
        j.phase = Phase.Settled;
        credit[j.client] += j.price;
        emit Settled(id, "cancelled", j.client);
    }

    /// RFC 9162 section 2.1.3.2: is `root` the leaf at `index` of the tree of `size` leaves with root `tree`?
    /// (Leaf hash SHA-256(0x00 || root), node hash SHA-256(0x01 || left || right), as the ledger's trace root.)
    function _included(bytes32 tree, uint256 size, uint256 index, bytes32 root, bytes32[] calldata proof)
        private pure returns (bool)
    {
        if (index >= size) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = sha256(abi.encodePacked(bytes1(0x00), root));
        for (uint256 i = 0; i < proof.length; i++) {
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                r = sha256(abi.encodePacked(bytes1(0x01), proof[i], r));
                if (fn & 1 == 0) {
                    while (fn != 0 && fn & 1 == 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = sha256(abi.encodePacked(bytes1(0x01), r, proof[i]));
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == tree;
    }

    /// The provider's result: the final root r_S and the trace root over r_0..r_S, with proofs that r_0 (the
    /// job's initial root) and r_S are its first and last leaves.
    function submit(uint256 id, bytes32 finalRoot, bytes32 traceRoot, bytes32[] calldata initProof,
                    bytes32[] calldata finalProof) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Accepted);
        if (msg.sender != j.provider) revert NotProvider();
        if (block.timestamp > j.deadline) revert TooLate(j.deadline);
        if (!_included(traceRoot, uint256(j.steps) + 1, 0, j.initRoot, initProof)) revert BadProof(0);
        if (!_included(traceRoot, uint256(j.steps) + 1, j.steps, finalRoot, finalProof)) revert BadProof(j.steps);
        j.finalRoot = finalRoot;
        j.traceRoot = traceRoot;
        j.deadline = uint64(block.timestamp) + j.challengeWindow;
        j.phase = Phase.Submitted;
        emit Submitted(id, finalRoot, traceRoot, j.deadline);
    }

    /// The provider never answered: price and the provider's bond go to the client.
    function claimTimeout(uint256 id) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Accepted);
        if (block.timestamp <= j.deadline) revert TooEarly(j.deadline);
        j.phase = Phase.Settled;
        credit[j.client] += j.price + j.bond;
        emit Settled(id, "provider timed out", j.client);
    }

    /// No challenge in the window: the provider is paid and gets its bond back. Once.
    function finish(uint256 id) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Submitted);
        if (block.timestamp <= j.deadline) revert TooEarly(j.deadline);
        j.phase = Phase.Settled;
        credit[j.provider] += j.price + j.bond;
        emit Settled(id, "finished", j.provider);
    }

    function challenge(uint256 id) external payable {
        Job storage j = jobs[id];
        _phase(j, Phase.Submitted);
        if (block.timestamp > j.deadline) revert TooLate(j.deadline);
        if (msg.sender == j.provider) revert ProviderCannotChallenge();
        if (msg.value != j.bond) revert BadBond();
        j.challenger = msg.sender;
        j.lo = 0;
        j.hi = j.steps;
        j.loRoot = j.initRoot;
        j.hiRoot = j.finalRoot;
        j.lastMove = uint64(block.timestamp);
        j.phase = Phase.Disputed;
        emit Challenged(id, msg.sender);
    }

    /// The provider's move: its root after step (lo + hi) / 2, proved to be that leaf of its trace root.
    function reveal(uint256 id, bytes32 root, bytes32[] calldata proof) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Disputed);
        if (msg.sender != j.provider) revert NotProvider();
        if (j.midRevealed || j.hi - j.lo <= 1) revert NotProvidersMove();
        uint64 mid = (j.lo + j.hi) / 2;
        if (!_included(j.traceRoot, uint256(j.steps) + 1, mid, root, proof)) revert BadProof(mid);
        j.midRoot = root;
        j.midRevealed = true;
        j.lastMove = uint64(block.timestamp);
        emit Revealed(id, mid, root);
    }

    /// The challenger's move: does it agree with the revealed root?
    function respond(uint256 id, bool agree) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Disputed);
        if (msg.sender != j.challenger) revert NotChallenger();
        if (!j.midRevealed) revert NotChallengersMove();
        uint64 mid = (j.lo + j.hi) / 2;
        if (agree) {
            j.lo = mid;
            j.loRoot = j.midRoot;
        } else {
            j.hi = mid;
            j.hiRoot = j.midRoot;
        }
        j.midRevealed = false;
        j.lastMove = uint64(block.timestamp);
        emit Responded(id, mid, agree, j.lo, j.hi);
    }

    /// The referee has re-executed step lo from the state with root loRoot: does it give hiRoot?
    function rule(uint256 id, bool providerRight) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Disputed);
        if (msg.sender != j.referee) revert NotReferee();
        if (j.hi - j.lo != 1) revert NotDownToOneStep();
        _settleDispute(id, j, providerRight, providerRight ? "referee: provider right" : "referee: provider wrong");
    }

    /// Whoever's move it is missed the move window and loses; a silent referee returns everything.
    function timeoutDispute(uint256 id) external {
        Job storage j = jobs[id];
        _phase(j, Phase.Disputed);
        uint64 until = j.lastMove + j.moveWindow;
        if (block.timestamp <= until) revert TooEarly(until);
        if (j.hi - j.lo == 1) {
            j.phase = Phase.Settled;
            credit[j.client] += j.price;
            credit[j.provider] += j.bond;
            credit[j.challenger] += j.bond;
            emit Settled(id, "referee timed out: all refunded", address(0));
        } else if (j.midRevealed) {
            _settleDispute(id, j, true, "challenger timed out");
        } else {
            _settleDispute(id, j, false, "provider timed out in dispute");
        }
    }

    function _settleDispute(uint256 id, Job storage j, bool providerWins, string memory outcome) private {
        j.phase = Phase.Settled;
        if (providerWins) {
            credit[j.provider] += j.price + 2 * j.bond;
            emit Settled(id, outcome, j.provider);
        } else {
            credit[j.client] += j.price;
            credit[j.challenger] += 2 * j.bond;
            emit Settled(id, outcome, j.challenger);
        }
    }

    function withdraw() external {
        uint256 amount = credit[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        credit[msg.sender] = 0;
        (bool ok, ) = msg.sender.call{value: amount}("");
        require(ok, "transfer failed");
        emit Withdrawn(msg.sender, amount);
    }

    function parties(uint256 id) external view returns (address client, address referee, address provider,
                                                        address challenger, uint8 phase) {
        Job storage j = jobs[id];
        return (j.client, j.referee, j.provider, j.challenger, uint8(j.phase));
    }

    function terms(uint256 id) external view returns (uint256 price, uint256 bond, uint64 steps, uint64 deadline,
                                                     uint64 lastMove, uint64 moveWindow) {
        Job storage j = jobs[id];
        return (j.price, j.bond, j.steps, j.deadline, j.lastMove, j.moveWindow);
    }

    function roots(uint256 id) external view returns (bytes32 specHash, bytes32 initRoot, bytes32 finalRoot,
                                                     bytes32 traceRoot) {
        Job storage j = jobs[id];
        return (j.specHash, j.initRoot, j.finalRoot, j.traceRoot);
    }

    function dispute(uint256 id) external view returns (uint64 lo, uint64 hi, bytes32 loRoot, bytes32 hiRoot,
                                                       bytes32 midRoot, bool midRevealed) {
        Job storage j = jobs[id];
        return (j.lo, j.hi, j.loRoot, j.hiRoot, j.midRoot, j.midRevealed);
    }
}
