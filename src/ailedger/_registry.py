"""The wiring: which capability answers which question the lower layers ask, from one explicit list.

The kernel (``tlog``) and the authority rules state their questions as small protocols and know nothing
above them; this module, at the top of the package, installs the answers when ``ailedger`` is imported
(``ailedger/__init__`` calls :func:`install`, so no ledger is ever written without its admission rules):

==========================================  ===============================================================
question (where it is asked)                answered by
==========================================  ===============================================================
may this signer sign this entry?            ``authority.service`` (``guarded``, ``admit``,
(``tlog.admission``: every write path)      ``write_genesis``)
the DAO's side of a model's status, and     ``governance.service.AuthorityView``
its judgement of governance entries
(``authority.hooks.DaoView``)
who owns a dataset name                     ``provenance.datasets.dataset_owner``
(``authority.hooks.DatasetOwner``)
may this signer sign this ``subnet.*``      ``subnets.service.judge``
entry? (``authority.hooks.use_judge``)
... this ``compute.*`` entry? (the same)    ``compute.service.judge``
... this ``agent.*`` entry? (the same)      ``defi.rules.judge``
proof kinds of ``ailedger verify``          ``ailedger-dataset-proof``: ``provenance.datasets``
(``tlog.proofkinds``)
checkpoint checks of ``ailedger verify``    ``anchor`` (``--rpc``): ``anchoring.service``
==========================================  ===============================================================

Each answer is imported on first use (the adapters below), so ``import ailedger`` stays light and a
capability whose extra is not installed fails only when its question is asked, saying which extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ailedger.authority import hooks
from ailedger.errors import AiledgerError, BadInputError
from ailedger.tlog import admission, proofkinds

__all__ = ["install"]


def _missing(extra: str, exc: ImportError) -> BadInputError:
    return BadInputError(f"this needs ailedger[{extra}], which is not installed ({exc}): "
                         f"pip install 'ailedger[{extra}]'", field="install")


# -- the kernel's admission question -> authority ------------------------------------------------------------

_authority: ModuleType | None = None


def _auth() -> ModuleType:
    global _authority
    if _authority is None:
        from ailedger.authority import service

        _authority = service
    return _authority


class _Admission:
    """tlog.admission.AdmissionPolicy, answered by ailedger.authority.service."""

    def guarded(self, record_type: str) -> bool:
        return bool(_auth().guarded(record_type))

    def admit(self, ledger: Any, entries: Sequence[Any], *,
              governance_checked: bool = False) -> list[AiledgerError | None]:
        return list(_auth().admit(ledger, entries, governance_checked=governance_checked))

    def write_genesis(self, ledger: Any, founders: Sequence[str]) -> int:
        return int(_auth().write_genesis(ledger, founders))

    def load(self) -> None:
        _auth()
        dao = hooks.dao()
        if dao is not None:
            dao.types  # noqa: B018 - loads the DAO's side too


# -- the authority rules' questions -> governance, provenance ------------------------------------------------

class _Dao:
    """authority.hooks.DaoView, answered by ailedger.governance.service.AuthorityView."""

    _view: Any = None

    def _get(self) -> Any:
        if self._view is None:
            from ailedger.governance.service import AuthorityView

            self._view = AuthorityView()
        return self._view

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._get().types)

    def model_ruling(self, ledger: Any, name: str) -> dict[str, Any] | None:
        ruling = self._get().model_ruling(ledger, name)
        return None if ruling is None else dict(ruling)

    def simulator(self, ledger: Any) -> hooks.DaoSimulator:
        sim: hooks.DaoSimulator = self._get().simulator(ledger)
        return sim


def _dataset_owner(ledger: Any, name: str) -> Any:
    from ailedger.provenance.datasets import dataset_owner

    return dataset_owner(ledger, name)


def _subnet_judge(ledger: Any, items: list[tuple[int, Any]]) -> list[Any]:
    try:
        from ailedger.subnets.service import judge
    except ImportError as exc:
        raise _missing("subnets", exc) from None
    return list(judge(ledger, items))


# -- ailedger verify -> provenance, anchoring -----------------------------------------------------------------

def _is_dataset_proof(first_line: str) -> bool:
    return first_line.startswith(("ailedger-dataset-proof", '{"format":"ailedger-dataset-proof'))


def _verify_dataset_proof(data: bytes, verifier: Any, *, candidate: bytes | None = None,
                          **_options: Any) -> dict[str, Any]:
    if candidate is None:
        raise BadInputError("a dataset proof is checked against a record: pass --candidate FILE")
    try:
        from ailedger.provenance.datasets import verify_dataset_proof_file
    except ImportError as exc:
        raise _missing("provenance", exc) from None
    result: dict[str, Any] = verify_dataset_proof_file(data, candidate, verifier.vkey)
    return result


def _anchored(note: bytes, bundle: bytes | None, verifier: Any, *, rpc: Any, contract: str,
              evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        from ailedger.anchoring.service import evidence_from_bundle, require_anchored
    except ImportError as exc:
        raise _missing("anchoring", exc) from None
    ev = evidence or (evidence_from_bundle(bundle) if bundle is not None else None)
    found: dict[str, Any] = require_anchored(note, rpc, contract, log_vkey=verifier.vkey, evidence=ev)
    return found


def _compute_judge(ledger: Any, items: list[tuple[int, Any]]) -> list[Any]:
    try:
        from ailedger.compute.service import judge
    except ImportError as exc:
        raise _missing("compute", exc) from None
    return list(judge(ledger, items))


def _defi_judge(ledger: Any, items: list[tuple[int, Any]]) -> list[Any]:
    try:
        from ailedger.defi.rules import judge
    except ImportError as exc:
        raise _missing("defi", exc) from None
    return list(judge(ledger, items))


def install() -> None:
    """Install every answer above (idempotent)."""
    admission.install(_Admission())
    hooks.use_dao(_Dao())
    hooks.use_dataset_owner(_dataset_owner)
    hooks.use_judge("subnet.", _subnet_judge)
    hooks.use_judge("compute.", _compute_judge)
    hooks.use_judge("agent.", _defi_judge)
    proofkinds.register_kind(proofkinds.ProofKind("ailedger-dataset-proof", _is_dataset_proof,
                                                  _verify_dataset_proof, extra="provenance"))
    proofkinds.register_checkpoint_check("anchor", _anchored, extra="anchoring")
