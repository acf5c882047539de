// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

interface IERC20Min {
    function balanceOf(address who) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title The issuer's subscription and redemption desk: it sells and buys the asset's token against the stable
/// at the net asset value its oracle posts (stable units per whole token, 18 decimals), less a spread.  The
/// interface of a pool (`getAmountOut`, `swap(tokenIn, amountIn, minOut, to)`) so a guard can bound slippage
/// against its quote.  The desk holds both tokens, so it must be a verified holder of the asset's token.
contract NavDesk {
    uint256 internal constant ONE = 1e18;
    address public immutable stable;
    address public immutable rwa;
    address public immutable oracle;
    uint16 public immutable spreadBps;
    uint256 public nav;
    uint64 public navTime;

    event NavPosted(uint256 nav, uint64 time);
    event Swapped(address indexed who, address tokenIn, uint256 amountIn, uint256 amountOut, address to);

    error NotOracle(address caller);
    error UnknownToken(address token);
    error NoNav();
    error InsufficientOutput(uint256 out, uint256 minOut);
    error InsufficientInventory(address token, uint256 have, uint256 need);

    constructor(address stable_, address rwa_, address oracle_, uint16 spreadBps_, uint256 nav_) {
        stable = stable_;
        rwa = rwa_;
        oracle = oracle_;
        spreadBps = spreadBps_;
        nav = nav_;
        navTime = uint64(block.timestamp);
        emit NavPosted(nav_, navTime);
    }

    function postNav(uint256 nav_) external {
        if (msg.sender != oracle) revert NotOracle(msg.sender);
        nav = nav_;
        navTime = uint64(block.timestamp);
        emit NavPosted(nav_, navTime);
    }

    function getAmountOut(address tokenIn, uint256 amountIn) public view returns (uint256) {
        if (nav == 0) revert NoNav();
        uint256 gross;
        if (tokenIn == stable) gross = (amountIn * ONE) / nav;
        else if (tokenIn == rwa) gross = (amountIn * nav) / ONE;
        else revert UnknownToken(tokenIn);
        return (gross * (10000 - uint256(spreadBps))) / 10000;
    }

    function swap(address tokenIn, uint256 amountIn, uint256 minOut, address to) external returns (uint256 out) {
        out = getAmountOut(tokenIn, amountIn);
        if (out < minOut) revert InsufficientOutput(out, minOut);
        address tokenOut = tokenIn == stable ? rwa : stable;
        uint256 have = IERC20Min(tokenOut).balanceOf(address(this));
        if (have < out) revert InsufficientInventory(tokenOut, have, out);
        IERC20Min(tokenIn).transferFrom(msg.sender, address(this), amountIn);
        IERC20Min(tokenOut).transfer(to, out);
        emit Swapped(msg.sender, tokenIn, amountIn, out, to);
    }
}
