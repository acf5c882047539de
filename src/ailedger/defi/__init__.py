"""AI agents in DeFi: guarded execution on-chain, every action on the record, fraud detection, honest backtests.

* :mod:`.chain` -- the guard contract (per-token caps per period, allow-listed targets and selectors, a deny
  list, slippage bounds, a pause the DAO's kill switch pulls), a test ERC-20 and a constant-product AMM;
* :mod:`.actions` -- ``agent.action`` entries logged before a transaction is sent, and the audit matching the
  chain against them;
* :mod:`.detector` -- Forta-style findings (unknown-spender approvals, drains, sandwiches, address poisoning),
  signed ``agent.finding`` entries, and a scripted labelled scenario;
* :mod:`.backtest` -- purged, embargoed walk-forward CV committed before scoring, deflated Sharpe, PBO.

See docs/defi.md.  Third-party libraries (web3, numpy, scikit-learn, scipy) are imported by the submodules, so
importing this package costs nothing.
"""

from __future__ import annotations

__all__ = ["ACTION", "FINDING", "PLAN", "RESULT"]

ACTION = "agent.action"
FINDING = "agent.finding"
PLAN = "agent.backtest.plan"
RESULT = "agent.backtest.result"
