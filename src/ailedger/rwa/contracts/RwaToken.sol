// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Identity registry of verified holders, in the manner of ERC-3643 (T-REX) `IIdentityRegistry`:
/// `registerIdentity`, `deleteIdentity`, `updateCountry`, `contains`, `identity`, `investorCountry`,
/// `isVerified`, and the same events.  Owned (EIP-173) by the DAO, the agent of record; its agents
/// (the transfer agent, the KYC desk) register holders.  T-REX's `isVerified` also checks ONCHAINID claims of
/// trusted issuers; here a holder is verified while registered and its verification has not expired.
contract IdentityRegistry {
    address public owner;
    mapping(address => bool) public isAgent;
    mapping(address => address) private _identity;
    mapping(address => uint16) private _country;
    mapping(address => uint64) public validUntil;

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event AgentAdded(address indexed agent);
    event AgentRemoved(address indexed agent);
    event IdentityRegistered(address indexed investorAddress, address indexed identity);
    event IdentityRemoved(address indexed investorAddress, address indexed identity);
    event CountryUpdated(address indexed investorAddress, uint16 indexed country);

    error NotOwner(address caller);
    error NotRegistryAgent(address caller);
    error AlreadyRegistered(address user);
    error NotRegistered(address user);
    error ZeroAddress();

    constructor(address owner_) {
        owner = owner_;
        emit OwnershipTransferred(address(0), owner_);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyAgent() {
        if (!isAgent[msg.sender] && msg.sender != owner) revert NotRegistryAgent(msg.sender);
        _;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function addAgent(address agent) external onlyOwner {
        isAgent[agent] = true;
        emit AgentAdded(agent);
    }

    function removeAgent(address agent) external onlyOwner {
        isAgent[agent] = false;
        emit AgentRemoved(agent);
    }

    /// @param validUntil_ end of the verification (unix seconds; 0: no expiry)
    function registerIdentity(address userAddress, address identity_, uint16 country, uint64 validUntil_)
        external onlyAgent
    {
        if (userAddress == address(0) || identity_ == address(0)) revert ZeroAddress();
        if (_identity[userAddress] != address(0)) revert AlreadyRegistered(userAddress);
        _identity[userAddress] = identity_;
        _country[userAddress] = country;
        validUntil[userAddress] = validUntil_;
        emit IdentityRegistered(userAddress, identity_);
        emit CountryUpdated(userAddress, country);
    }

    function deleteIdentity(address userAddress) external onlyAgent {
        address id = _identity[userAddress];
        if (id == address(0)) revert NotRegistered(userAddress);
        delete _identity[userAddress];
        delete _country[userAddress];
        delete validUntil[userAddress];
        emit IdentityRemoved(userAddress, id);
    }

    function updateCountry(address userAddress, uint16 country) external onlyAgent {
        if (_identity[userAddress] == address(0)) revert NotRegistered(userAddress);
        _country[userAddress] = country;
        emit CountryUpdated(userAddress, country);
    }

    function contains(address userAddress) external view returns (bool) {
        return _identity[userAddress] != address(0);
    }

    function identity(address userAddress) external view returns (address) {
        return _identity[userAddress];
    }

    function investorCountry(address userAddress) external view returns (uint16) {
        return _country[userAddress];
    }

    function isVerified(address userAddress) public view returns (bool) {
        if (_identity[userAddress] == address(0)) return false;
        uint64 until = validUntil[userAddress];
        return until == 0 || block.timestamp <= until;
    }
}

interface IIdentityRegistry {
    function isVerified(address userAddress) external view returns (bool);
    function investorCountry(address userAddress) external view returns (uint16);
}

/// @title Compliance in the manner of ERC-3643 `ICompliance`: `bindToken`, `canTransfer(from, to, amount)`
/// and the hooks the token calls after a move (`transferred`, `created`, `destroyed`).  Two rules, set by the
/// DAO: countries whose residents may not receive the token, and a maximum balance per holder.
contract Compliance {
    address public immutable dao;
    address public token;
    uint256 public maxBalance;               // 0: no limit
    mapping(uint16 => bool) public countryBlocked;

    event TokenBound(address token);
    event RuleChanged(bytes32 indexed what, uint256 value);

    error NotDao(address caller);
    error NotToken(address caller);
    error AlreadyBound(address token);

    constructor(address dao_, uint256 maxBalance_) {
        dao = dao_;
        maxBalance = maxBalance_;
    }

    function bindToken(address token_) external {
        if (msg.sender != dao && msg.sender != token_) revert NotDao(msg.sender);
        if (token != address(0)) revert AlreadyBound(token);
        token = token_;
        emit TokenBound(token_);
    }

    function setMaxBalance(uint256 value) external {
        if (msg.sender != dao) revert NotDao(msg.sender);
        maxBalance = value;
        emit RuleChanged("maxBalance", value);
    }

    function setCountryBlocked(uint16 country, bool blocked) external {
        if (msg.sender != dao) revert NotDao(msg.sender);
        countryBlocked[country] = blocked;
        emit RuleChanged(blocked ? bytes32("block") : bytes32("unblock"), country);
    }

    /// @notice whether a move of `amount` from `from` to `to` obeys the rules (`from` is 0 for a mint)
    function canTransfer(address, address to, uint256 amount) external view returns (bool) {
        IToken t = IToken(token);
        if (countryBlocked[IIdentityRegistry(t.identityRegistry()).investorCountry(to)]) return false;
        if (maxBalance != 0 && t.balanceOf(to) + amount > maxBalance) return false;
        return true;
    }

    function transferred(address, address, uint256) external view {
        if (msg.sender != token) revert NotToken(msg.sender);
    }

    function created(address, uint256) external view {
        if (msg.sender != token) revert NotToken(msg.sender);
    }

    function destroyed(address, uint256) external view {
        if (msg.sender != token) revert NotToken(msg.sender);
    }
}

interface IToken {
    function identityRegistry() external view returns (address);
    function balanceOf(address who) external view returns (uint256);
}

interface ICompliance {
    function canTransfer(address from, address to, uint256 amount) external view returns (bool);
    function transferred(address from, address to, uint256 amount) external;
    function created(address to, uint256 amount) external;
    function destroyed(address from, uint256 amount) external;
}

/// @title A permissioned token representing shares of a real-world asset, in the manner of ERC-3643's `IToken`:
/// ERC-20 (EIP-20 events and return values) where every transfer, transferFrom, mint and forced transfer checks
/// in the token itself that the receiver is verified in the identity registry, that neither side is frozen,
/// that the token is not paused and that the compliance contract allows it.  A move that fails reverts here,
/// whoever sends it.  Agents (the issuer's transfer agent) mint, burn, freeze, pause and force transfers; the
/// owner (the DAO) names the agents.
contract RwaToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    string public constant version = "ailedger-rwa-1";
    uint256 public totalSupply;
    address public owner;
    address public onchainID;
    IIdentityRegistry public identityRegistry;
    ICompliance public compliance;
    bool public paused;
    mapping(address => bool) public isAgent;
    mapping(address => bool) public isFrozen;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event IdentityRegistryAdded(address indexed identityRegistry);
    event ComplianceAdded(address indexed compliance);
    event AddressFrozen(address indexed userAddress, bool indexed isFrozen, address indexed owner);
    event Paused(address userAddress);
    event Unpaused(address userAddress);
    event AgentAdded(address indexed agent);
    event AgentRemoved(address indexed agent);

    error NotOwner(address caller);
    error NotTokenAgent(address caller);
    error UnverifiedHolder(address holder);
    error TransferNotCompliant(address from, address to, uint256 amount);
    error TokenPaused();
    error FrozenHolder(address holder);
    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    constructor(string memory name_, string memory symbol_, address owner_, address registry_, address compliance_,
                address onchainID_) {
        name = name_;
        symbol = symbol_;
        owner = owner_;
        onchainID = onchainID_;
        identityRegistry = IIdentityRegistry(registry_);
        compliance = ICompliance(compliance_);
        emit IdentityRegistryAdded(registry_);
        emit ComplianceAdded(compliance_);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyAgent() {
        if (!isAgent[msg.sender]) revert NotTokenAgent(msg.sender);
        _;
    }

    function addAgent(address agent) external onlyOwner {
        isAgent[agent] = true;
        emit AgentAdded(agent);
    }

    function removeAgent(address agent) external onlyOwner {
        isAgent[agent] = false;
        emit AgentRemoved(agent);
    }

    function setIdentityRegistry(address registry_) external onlyOwner {
        identityRegistry = IIdentityRegistry(registry_);
        emit IdentityRegistryAdded(registry_);
    }

    function setCompliance(address compliance_) external onlyOwner {
        compliance = ICompliance(compliance_);
        emit ComplianceAdded(compliance_);
    }

    function pause() external onlyAgent {
        paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyAgent {
        paused = false;
        emit Unpaused(msg.sender);
    }

    function setAddressFrozen(address userAddress, bool freeze) external onlyAgent {
        isFrozen[userAddress] = freeze;
        emit AddressFrozen(userAddress, freeze, msg.sender);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        if (paused) revert TokenPaused();
        _check(msg.sender, to, amount);
        _move(msg.sender, to, amount);
        compliance.transferred(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        if (paused) revert TokenPaused();
        _check(from, to, amount);
        uint256 a = allowance[from][msg.sender];
        if (a != type(uint256).max) {
            if (a < amount) revert InsufficientAllowance(msg.sender, a, amount);
            allowance[from][msg.sender] = a - amount;
        }
        _move(from, to, amount);
        compliance.transferred(from, to, amount);
        return true;
    }

    /// @notice T-REX's pre-check: whether `transfer(to, amount)` from `from` would pass the token's own checks
    function canTransfer(address from, address to, uint256 amount) external view returns (bool) {
        return !paused && !isFrozen[from] && !isFrozen[to] && identityRegistry.isVerified(to)
            && balanceOf[from] >= amount && compliance.canTransfer(from, to, amount);
    }

    function mint(address to, uint256 amount) external onlyAgent {
        if (!identityRegistry.isVerified(to)) revert UnverifiedHolder(to);
        if (!compliance.canTransfer(address(0), to, amount)) revert TransferNotCompliant(address(0), to, amount);
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
        compliance.created(to, amount);
    }

    function burn(address userAddress, uint256 amount) external onlyAgent {
        uint256 b = balanceOf[userAddress];
        if (b < amount) revert InsufficientBalance(userAddress, b, amount);
        unchecked { balanceOf[userAddress] = b - amount; }
        totalSupply -= amount;
        emit Transfer(userAddress, address(0), amount);
        compliance.destroyed(userAddress, amount);
    }

    /// @notice the agent moves tokens (a court order, a lost key); the receiver must still be verified
    function forcedTransfer(address from, address to, uint256 amount) external onlyAgent returns (bool) {
        if (!identityRegistry.isVerified(to)) revert UnverifiedHolder(to);
        _move(from, to, amount);
        compliance.transferred(from, to, amount);
        return true;
    }

    function _check(address from, address to, uint256 amount) internal view {
        if (isFrozen[from]) revert FrozenHolder(from);
        if (isFrozen[to]) revert FrozenHolder(to);
        if (!identityRegistry.isVerified(to)) revert UnverifiedHolder(to);
        if (!compliance.canTransfer(from, to, amount)) revert TransferNotCompliant(from, to, amount);
    }

    function _move(address from, address to, uint256 amount) internal {
        uint256 b = balanceOf[from];
        if (b < amount) revert InsufficientBalance(from, b, amount);
        unchecked { balanceOf[from] = b - amount; }
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
