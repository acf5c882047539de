// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title A deny list in the manner of the Chainalysis sanctions oracle (isSanctioned(address)); only the
/// DAO (its timelock) edits it.
contract DenyList {
    address public immutable dao;
    mapping(address => bool) private sanctioned;

    event SanctionedAddressesAdded(address[] addrs);
    event SanctionedAddressesRemoved(address[] addrs);

    error NotDao(address caller);

    constructor(address dao_) {
        dao = dao_;
    }

    function addToSanctionsList(address[] calldata addrs) external {
        if (msg.sender != dao) revert NotDao(msg.sender);
        for (uint256 i = 0; i < addrs.length; i++) sanctioned[addrs[i]] = true;
        emit SanctionedAddressesAdded(addrs);
    }

    function removeFromSanctionsList(address[] calldata addrs) external {
        if (msg.sender != dao) revert NotDao(msg.sender);
        for (uint256 i = 0; i < addrs.length; i++) sanctioned[addrs[i]] = false;
        emit SanctionedAddressesRemoved(addrs);
    }

    function isSanctioned(address addr) external view returns (bool) {
        return sanctioned[addr];
    }
}

interface IDenyList {
    function isSanctioned(address addr) external view returns (bool);
}

interface IQuote {
    function getAmountOut(address tokenIn, uint256 amountIn) external view returns (uint256);
}

interface IERC20Approve {
    function approve(address spender, uint256 amount) external returns (bool);
}

/// @title The agent's guard: it holds the funds and is the only way the agent moves them.
/// In the manner of Safe's AllowanceModule (a per-token cap that resets every period) and Zodiac Roles
/// (allow-listed target + function selector; arguments checked per selector).  Policy changes only by the DAO
/// (its timelock); the DAO's kill switch (a guardian address) may pause at once, only the DAO unpauses.
contract AgentGuard {
    bytes4 internal constant TRANSFER = 0xa9059cbb;   // transfer(address,uint256)
    bytes4 internal constant APPROVE = 0x095ea7b3;    // approve(address,uint256)
    bytes4 internal constant SWAP = 0xf3e6ea8a;       // swap(address,uint256,uint256,address)

    struct Allowance {
        uint256 cap;      // per period, in token units
        uint64 period;    // seconds
        uint64 resetAt;   // start of the current period
        uint256 spent;    // in the current period
    }

    address public immutable dao;
    address public immutable killSwitch;
    address public immutable agent;
    IDenyList public immutable denyList;
    bool public paused;
    uint16 public maxSlippageBps;
    mapping(address => Allowance) public allowances;
    mapping(address => mapping(bytes4 => bool)) public allowed;

    event Executed(address indexed agent, address indexed target, bytes4 selector, address token, uint256 amount);
    event PolicyChanged(bytes32 indexed what, address target, bytes4 selector, uint256 value);
    event PausedBy(address indexed who, bool paused);

    error NotAgent(address caller);
    error NotDao(address caller);
    error NotKillSwitch(address caller);
    error GuardPaused();
    error TargetNotAllowed(address target, bytes4 selector);
    error SanctionedAddress(address who);
    error OverCap(address token, uint256 spent, uint256 amount, uint256 cap);
    error SlippageTooHigh(uint256 minOut, uint256 floor);
    error BadCalldata();
    error CallFailed(bytes reason);

    constructor(address dao_, address killSwitch_, address agent_, address denyList_, uint16 maxSlippageBps_) {
        dao = dao_;
        killSwitch = killSwitch_;
        agent = agent_;
        denyList = IDenyList(denyList_);
        maxSlippageBps = maxSlippageBps_;
    }

    modifier onlyDao() {
        if (msg.sender != dao) revert NotDao(msg.sender);
        _;
    }

    // -- policy: the DAO only ------------------------------------------------------------------------------
    function setAllowed(address target, bytes4 selector, bool ok) external onlyDao {
        allowed[target][selector] = ok;
        emit PolicyChanged("allowed", target, selector, ok ? 1 : 0);
    }

    function setAllowance(address token, uint256 cap, uint64 period) external onlyDao {
        Allowance storage a = allowances[token];
        a.cap = cap;
        a.period = period;
        a.resetAt = uint64(block.timestamp);
        a.spent = 0;
        emit PolicyChanged("allowance", token, bytes4(0), cap);
    }

    function setMaxSlippage(uint16 bps) external onlyDao {
        maxSlippageBps = bps;
        emit PolicyChanged("slippage", address(0), bytes4(0), bps);
    }

    function pause() external {
        if (msg.sender != killSwitch && msg.sender != dao) revert NotKillSwitch(msg.sender);
        paused = true;
        emit PausedBy(msg.sender, true);
    }

    function unpause() external onlyDao {
        paused = false;
        emit PausedBy(msg.sender, false);
    }

    // -- the agent's one entry point -----------------------------------------------------------------------
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != agent) revert NotAgent(msg.sender);
        if (paused) revert GuardPaused();
        if (data.length < 4) revert BadCalldata();
        bytes4 sel = bytes4(data[:4]);
        if (!allowed[target][sel]) revert TargetNotAllowed(target, sel);
        if (denyList.isSanctioned(target)) revert SanctionedAddress(target);
        address token;
        uint256 amount;
        if (sel == TRANSFER || sel == APPROVE) {
            if (data.length != 68) revert BadCalldata();
            (address to, uint256 value) = abi.decode(data[4:], (address, uint256));
            if (denyList.isSanctioned(to)) revert SanctionedAddress(to);
            token = target;
            amount = value;
            _spend(token, amount);
        } else if (sel == SWAP) {
            if (data.length != 132) revert BadCalldata();
            (address tokenIn, uint256 amountIn, uint256 minOut, address to) =
                abi.decode(data[4:], (address, uint256, uint256, address));
            if (to != address(this)) revert SanctionedAddress(to);  // proceeds stay in the guard
            uint256 quote = IQuote(target).getAmountOut(tokenIn, amountIn);
            uint256 floor = (quote * (10000 - uint256(maxSlippageBps))) / 10000;
            if (minOut < floor) revert SlippageTooHigh(minOut, floor);
            token = tokenIn;
            amount = amountIn;
            _spend(token, amount);
            IERC20Approve(tokenIn).approve(target, amountIn);
        }
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) revert CallFailed(ret);
        emit Executed(msg.sender, target, sel, token, amount);
        return ret;
    }

    function _spend(address token, uint256 amount) internal {
        Allowance storage a = allowances[token];
        if (a.period != 0 && block.timestamp >= uint256(a.resetAt) + a.period) {
            uint256 periods = (block.timestamp - a.resetAt) / a.period;
            a.resetAt += uint64(periods * a.period);
            a.spent = 0;
        }
        if (a.spent + amount > a.cap) revert OverCap(token, a.spent, amount, a.cap);
        a.spent += amount;
    }
}
