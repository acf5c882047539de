"""The admission policy: the one place the kernel asks "may this signer sign this entry, with effect?".

Who may sign what is not the kernel's business (it lives in :mod:`ailedger.authority`, above the kernel),
but every write path of the kernel must ask it before appending: ``Ledger.admit`` / ``append_entry`` /
``append_entries`` and the HTTP ingest.  So the kernel states the question here as a small protocol and
the package installs the answer when it is imported (``ailedger/_registry.py``, from an explicit list).
A kernel with no policy installed refuses to judge rather than admit everything: :func:`policy` raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ailedger.errors import AiledgerError

__all__ = ["TIME_SKEW_SECONDS", "AdmissionPolicy", "install", "installed", "policy"]

TIME_SKEW_SECONDS = 600
"""Every writer (HTTP, CLI, Ledger API) refuses an entry whose signed time is further than this from its
own clock, so the governance clock (signed entry times) runs at most this far ahead of real time."""


class AdmissionPolicy(Protocol):
    """What the kernel needs of the authority rules."""

    def guarded(self, record_type: str) -> bool:
        """Does the signer's standing matter for entries of this type (so their body must be read)?"""
        ...

    def admit(self, ledger: Any, entries: Sequence[Any], *,
              governance_checked: bool = False) -> list[AiledgerError | None]:
        """For each entry, taken in order as if appended at ``ledger.size`` onwards: None, or the error
        saying why its signer may not sign it with effect.  Nothing is changed."""
        ...

    def write_genesis(self, ledger: Any, founders: Sequence[str]) -> int:
        """Log the operator's ``log.genesis`` naming who may found the DAO; its index."""
        ...

    def load(self) -> None:
        """Load now whatever the policy needs (a server calls this before it serves)."""
        ...


_policy: AdmissionPolicy | None = None


def install(p: AdmissionPolicy) -> None:
    """Make ``p`` the policy every write path of every ledger in this process asks."""
    global _policy
    _policy = p


def installed() -> bool:
    return _policy is not None


def policy() -> AdmissionPolicy:
    if _policy is None:
        raise AiledgerError("no admission policy is installed, so no entry can be judged: import ailedger "
                            "(its __init__ installs the authority rules) before writing to a ledger")
    return _policy
