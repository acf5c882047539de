"""What the authority rules read of the capabilities above them: the model-status protocol.

The rules (this folder) sit below governance and provenance, yet two answers need them:

* a model's status combines its owner's ruling with the DAO's (an executed proposal, a guardians'
  suspension): the DAO's side comes through :class:`DaoView`, which ``ailedger.governance`` provides;
* admission judges governance entries (who may vote, propose, stake) by the DAO's own rules on a private
  copy of its state (:meth:`DaoView.simulator`), and dataset entries by the dataset's first committer
  (:data:`DatasetOwner`, from ``ailedger.provenance``).

They are installed by ``ailedger/_registry.py`` (an explicit list) when the package is imported.  When
no DAO is installed a model's status is its owner's ruling alone and governance entries are refused
(nothing could judge them); when no dataset owner lookup is installed dataset names are not owned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["CapabilityJudge", "DaoSimulator", "DaoView", "DatasetOwner", "dao", "dataset_owner", "judge_for",
           "use_dao", "use_dataset_owner", "use_judge"]


class DaoSimulator(Protocol):
    def apply(self, index: int, entry: Any) -> Any:
        """Apply one entry as the DAO fold would; raises NotAuthorisedError when its signer lacks standing."""
        ...


class DaoView(Protocol):
    """The DAO as the authority rules see it."""

    @property
    def types(self) -> frozenset[str]:
        """The entry types the DAO judges (gov.*, stake.* and the context types it folds)."""
        ...

    def model_ruling(self, ledger: Any, name: str) -> dict[str, Any] | None:
        """The DAO's ruling on model ``name`` (e.g. revoked by proposal 3), or None."""
        ...

    def simulator(self, ledger: Any) -> DaoSimulator:
        """A private copy of the DAO state at ``ledger.size`` that admission may apply entries to."""
        ...


DatasetOwner = Callable[[Any, str], Any]
"""(ledger, dataset name) -> the did:key of its first committer, or None; NotFoundError when unknown."""

CapabilityJudge = Callable[[Any, list[tuple[int, Any]]], list[Any]]
"""(ledger, [(index, entry), ...] in log order) -> one verdict per entry: None when its signer may sign it
with effect, appended at ``index`` after the ones before it, else the NotAuthorisedError saying why not.
A capability's own rules (e.g. ``subnet.*``: ailedger.subnets)."""

_dao: DaoView | None = None
_dataset_owner: DatasetOwner | None = None
_judges: dict[str, CapabilityJudge] = {}


def use_dao(view: DaoView | None) -> None:
    global _dao
    _dao = view


def use_dataset_owner(fn: DatasetOwner | None) -> None:
    global _dataset_owner
    _dataset_owner = fn


def dao() -> DaoView | None:
    return _dao


def dataset_owner() -> DatasetOwner | None:
    return _dataset_owner


def use_judge(prefix: str, fn: CapabilityJudge | None) -> None:
    """Entry types starting with ``prefix`` (e.g. ``"subnet."``) are judged at admission by ``fn``."""
    if fn is None:
        _judges.pop(prefix, None)
    else:
        _judges[prefix] = fn


def judge_for(record_type: str) -> CapabilityJudge | None:
    for prefix, fn in _judges.items():
        if record_type.startswith(prefix):
            return fn
    return None
