"""The proof kinds ``ailedger verify`` knows beyond the kernel's own, registered by the capabilities.

The kernel verifies C2SP tlog-proof files itself (:mod:`ailedger.tlog.verify`).  A capability that writes
another kind of proof file (a dataset membership proof, ...) registers it here with a test on the file's
first line, and one that can check a checkpoint against something outside the log (an anchor on a chain)
registers a checkpoint check.  The kernel stays ignorant of them: it looks them up by name or first line.
The package registers them from one explicit list when it is imported (``ailedger/_registry.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["CheckpointCheck", "ProofKind", "checkpoint_check", "find_kind", "kinds", "register_checkpoint_check",
           "register_kind"]

ProofVerifier = Callable[..., dict[str, Any]]
"""(data, verifier, **options) -> the result dict ("ok", "summary", ...); raises on a bad proof.
Options a kind does not use are ignored; one it needs and lacks is a BadInputError naming the flag."""

CheckpointCheck = Callable[..., dict[str, Any]]
"""(note, bundle, verifier, **options) -> what was found; raises when the checkpoint does not pass."""


@dataclass(frozen=True)
class ProofKind:
    name: str
    matches: Callable[[str], bool]  # given the file's first line (stripped)
    verify: ProofVerifier
    extra: str = ""                 # the install extra that provides it, for the error when it is missing


_kinds: dict[str, ProofKind] = {}
_checks: dict[str, tuple[CheckpointCheck, str]] = {}


def register_kind(kind: ProofKind) -> None:
    _kinds[kind.name] = kind


def register_checkpoint_check(name: str, check: CheckpointCheck, *, extra: str = "") -> None:
    _checks[name] = (check, extra)


def kinds() -> list[ProofKind]:
    return list(_kinds.values())


def find_kind(first_line: str) -> ProofKind | None:
    for k in _kinds.values():
        if k.matches(first_line):
            return k
    return None


def checkpoint_check(name: str, *, flag: str) -> CheckpointCheck:
    """The registered check ``name``; BadInputError naming ``flag`` when no capability provides it."""
    try:
        return _checks[name][0]
    except KeyError:
        raise BadInputError(f"{flag} needs the {name} check, which no installed capability provides "
                            f"(install ailedger[anchoring])", field=flag.lstrip("-")) from None
