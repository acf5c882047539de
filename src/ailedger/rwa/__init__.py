"""Tokenized real-world assets managed by an AI agent within limits (issue 33, part 2).

* :mod:`.chain` -- the permissioned asset token (ERC-3643 style: identity registry, compliance, checks in the
  token itself), the issuer's NAV desk, the EIP-4626 vault holding the stable asset and the asset token, and
  the DeFi guard (``defi``'s AgentGuard) as the vault's only manager;
* :mod:`.agent` -- the registered rebalancing policy (volatility targeting, reproducible), the seeded price
  series logged as ``rwa.series``, each decision logged as an ``agent.action`` before its transaction (through
  ``defi.actions.act``), and the tracking error against the policy's target weights.

See docs/rwa-vault.md.  web3 and eth-account are imported by the submodules' functions.
"""

from __future__ import annotations

__all__ = ["SERIES"]

SERIES = "rwa.series"
