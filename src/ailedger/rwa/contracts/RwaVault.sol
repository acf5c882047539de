// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

interface IERC20V {
    function balanceOf(address who) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function approve(address spender, uint256 amount) external returns (bool);
}

interface IRegistryV {
    function isVerified(address userAddress) external view returns (bool);
}

interface IDeskV {
    function nav() external view returns (uint256);
    function getAmountOut(address tokenIn, uint256 amountIn) external view returns (uint256);
    function swap(address tokenIn, uint256 amountIn, uint256 minOut, address to) external returns (uint256);
}

/// @title A tokenized vault (EIP-4626) whose `asset()` is a stable token and which holds a second position, a
/// permissioned real-world-asset token (ERC-3643 style), valued at the desk's posted NAV.  Shares are ERC-20 and
/// follow the asset token's rule: only verified holders of the identity registry receive them (`maxDeposit` and
/// `maxMint` are 0 for anyone else).  Withdrawals are paid in the stable asset, up to what the vault holds.
/// The position between the two tokens is changed only by `swap(tokenIn, amountIn, minOut, to)`, callable only by
/// the vault's manager: the agent's guard (AgentGuard), so the guard's caps per period, allow-list, slippage bound
/// and pause apply to every rebalance.  `to` must name the caller (the guard's rule that a swap's proceeds stay
/// with it): the proceeds never leave the vault.  Only the DAO replaces the manager.
contract RwaVault {
    uint256 internal constant ONE = 1e18;
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    address public immutable dao;
    IERC20V internal immutable _asset;
    IERC20V public immutable rwa;
    IRegistryV public immutable registry;
    IDeskV public immutable desk;
    address public manager;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event Deposit(address indexed sender, address indexed owner, uint256 assets, uint256 shares);
    event Withdraw(address indexed sender, address indexed receiver, address indexed owner, uint256 assets,
                   uint256 shares);
    event Rebalanced(address indexed manager, address tokenIn, uint256 amountIn, uint256 amountOut);
    event ManagerChanged(address manager);

    error NotDao(address caller);
    error NotManager(address caller);
    error ProceedsMustStay(address to);
    error UnknownToken(address token);
    error UnverifiedHolder(address holder);
    error ExceedsMax(bytes32 what, uint256 amount, uint256 max);
    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    constructor(address asset_, address rwa_, address registry_, address desk_, address manager_, address dao_,
                string memory name_, string memory symbol_) {
        _asset = IERC20V(asset_);
        rwa = IERC20V(rwa_);
        registry = IRegistryV(registry_);
        desk = IDeskV(desk_);
        manager = manager_;
        dao = dao_;
        name = name_;
        symbol = symbol_;
    }

    // -- EIP-4626 --------------------------------------------------------------------------------------------
    function asset() external view returns (address) {
        return address(_asset);
    }

    /// @notice stable held plus the asset tokens held at the posted NAV
    function totalAssets() public view returns (uint256) {
        return _asset.balanceOf(address(this)) + (rwa.balanceOf(address(this)) * desk.nav()) / ONE;
    }

    function convertToShares(uint256 assets) public view returns (uint256) {
        return _toShares(assets, false);
    }

    function convertToAssets(uint256 shares) public view returns (uint256) {
        return _toAssets(shares, false);
    }

    function maxDeposit(address receiver) public view returns (uint256) {
        return registry.isVerified(receiver) ? type(uint256).max : 0;
    }

    function maxMint(address receiver) public view returns (uint256) {
        return registry.isVerified(receiver) ? type(uint256).max : 0;
    }

    function maxWithdraw(address owner) public view returns (uint256) {
        uint256 own = _toAssets(balanceOf[owner], false);
        uint256 cash = _asset.balanceOf(address(this));
        return own < cash ? own : cash;
    }

    function maxRedeem(address owner) public view returns (uint256) {
        uint256 cashShares = _toShares(_asset.balanceOf(address(this)), false);
        uint256 own = balanceOf[owner];
        return own < cashShares ? own : cashShares;
    }

    function previewDeposit(uint256 assets) public view returns (uint256) {
        return _toShares(assets, false);
    }

    function previewMint(uint256 shares) public view returns (uint256) {
        return _toAssets(shares, true);
    }

    function previewWithdraw(uint256 assets) public view returns (uint256) {
        return _toShares(assets, true);
    }

    function previewRedeem(uint256 shares) public view returns (uint256) {
        return _toAssets(shares, false);
    }

    function deposit(uint256 assets, address receiver) external returns (uint256 shares) {
        uint256 max = maxDeposit(receiver);
        if (max == 0) revert UnverifiedHolder(receiver);
        if (assets > max) revert ExceedsMax("deposit", assets, max);
        shares = previewDeposit(assets);
        _asset.transferFrom(msg.sender, address(this), assets);
        _mint(receiver, shares);
        emit Deposit(msg.sender, receiver, assets, shares);
    }

    function mint(uint256 shares, address receiver) external returns (uint256 assets) {
        uint256 max = maxMint(receiver);
        if (max == 0) revert UnverifiedHolder(receiver);
        if (shares > max) revert ExceedsMax("mint", shares, max);
        assets = previewMint(shares);
        _asset.transferFrom(msg.sender, address(this), assets);
        _mint(receiver, shares);
        emit Deposit(msg.sender, receiver, assets, shares);
    }

    function withdraw(uint256 assets, address receiver, address owner) external returns (uint256 shares) {
        uint256 max = maxWithdraw(owner);
        if (assets > max) revert ExceedsMax("withdraw", assets, max);
        shares = previewWithdraw(assets);
        _spendAllowance(owner, shares);
        _burn(owner, shares);
        _asset.transfer(receiver, assets);
        emit Withdraw(msg.sender, receiver, owner, assets, shares);
    }

    function redeem(uint256 shares, address receiver, address owner) external returns (uint256 assets) {
        uint256 max = maxRedeem(owner);
        if (shares > max) revert ExceedsMax("redeem", shares, max);
        assets = previewRedeem(shares);
        _spendAllowance(owner, shares);
        _burn(owner, shares);
        _asset.transfer(receiver, assets);
        emit Withdraw(msg.sender, receiver, owner, assets, shares);
    }

    // -- the rebalance path: the manager (the agent's guard) only ---------------------------------------------
    function getAmountOut(address tokenIn, uint256 amountIn) external view returns (uint256) {
        return desk.getAmountOut(tokenIn, amountIn);
    }

    function swap(address tokenIn, uint256 amountIn, uint256 minOut, address to) external returns (uint256 out) {
        if (msg.sender != manager) revert NotManager(msg.sender);
        if (to != msg.sender) revert ProceedsMustStay(to);
        if (tokenIn != address(_asset) && tokenIn != address(rwa)) revert UnknownToken(tokenIn);
        IERC20V(tokenIn).approve(address(desk), amountIn);
        out = desk.swap(tokenIn, amountIn, minOut, address(this));
        emit Rebalanced(msg.sender, tokenIn, amountIn, out);
    }

    function setManager(address manager_) external {
        if (msg.sender != dao) revert NotDao(msg.sender);
        manager = manager_;
        emit ManagerChanged(manager_);
    }

    // -- shares: ERC-20, receivers verified like the asset token's ------------------------------------------
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        if (msg.sender != from) {
            uint256 a = allowance[from][msg.sender];
            if (a != type(uint256).max) {
                if (a < amount) revert InsufficientAllowance(msg.sender, a, amount);
                allowance[from][msg.sender] = a - amount;
            }
        }
        _move(from, to, amount);
        return true;
    }

    // -- internals -------------------------------------------------------------------------------------------
    // One virtual share and one virtual unit of assets (the offset of OpenZeppelin's ERC4626 with decimals
    // offset 0), so a first depositor cannot inflate the share price against the next.
    function _toShares(uint256 assets, bool up) internal view returns (uint256) {
        return _mulDiv(assets, totalSupply + 1, totalAssets() + 1, up);
    }

    function _toAssets(uint256 shares, bool up) internal view returns (uint256) {
        return _mulDiv(shares, totalAssets() + 1, totalSupply + 1, up);
    }

    function _mulDiv(uint256 x, uint256 y, uint256 d, bool up) internal pure returns (uint256) {
        uint256 p = x * y;
        uint256 q = p / d;
        return (up && q * d != p) ? q + 1 : q;
    }

    function _spendAllowance(address owner, uint256 shares) internal {
        if (msg.sender == owner) return;
        uint256 a = allowance[owner][msg.sender];
        if (a != type(uint256).max) {
            if (a < shares) revert InsufficientAllowance(msg.sender, a, shares);
            allowance[owner][msg.sender] = a - shares;
        }
    }

    function _mint(address to, uint256 shares) internal {
        totalSupply += shares;
        balanceOf[to] += shares;
        emit Transfer(address(0), to, shares);
    }

    function _burn(address from, uint256 shares) internal {
        uint256 b = balanceOf[from];
        if (b < shares) revert InsufficientBalance(from, b, shares);
        unchecked { balanceOf[from] = b - shares; }
        totalSupply -= shares;
        emit Transfer(from, address(0), shares);
    }

    function _move(address from, address to, uint256 amount) internal {
        if (!registry.isVerified(to)) revert UnverifiedHolder(to);
        uint256 b = balanceOf[from];
        if (b < amount) revert InsufficientBalance(from, b, amount);
        unchecked { balanceOf[from] = b - amount; }
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
