"""Commit policy: what ``dataset commit --screen`` does with a screening verdict.

Report verdicts (engine): ``fail`` when a source's verdict is ``remove``, a class is suspected of a
backdoor, or more than 10% of records are flagged; ``warn`` when anything is flagged or a source is to
``review``; ``pass`` otherwise.

Policies:
  ``default``  refuse on fail, commit with a warning on warn, commit on pass;
  ``strict``   refuse on fail or warn;
  ``warn``     never refuse; warn on fail or warn (the screening record still says what was found).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ailedger.errors import BadInputError

POLICIES = ("default", "strict", "warn")


class ScreeningRefused(BadInputError):
    """The screening policy refuses to commit this data set; nothing was logged."""

    code = "screening_refused"


@dataclass(frozen=True)
class Decision:
    action: str  # allow | warn | refuse
    policy: str
    verdict: str
    reasons: tuple[str, ...]


def reasons_of(report: dict[str, Any]) -> list[str]:
    out = []
    sm = report["summary"]
    if sm["flagged"]:
        out.append(f"{sm['flagged']} of {report['dataset']['records']} records flagged "
                   f"({', '.join(f'{k} {v}' for k, v in sorted(sm['by_reason'].items()))})")
    for s in report["sources"]:
        if s["verdict"] != "keep":
            out.append(f"source {s['source']!r}: {s['verdict']} ({'; '.join(s['reasons'])})")
    if sm["backdoor_suspected_classes"]:
        out.append("backdoor suspected in class(es) " + ", ".join(map(str, sm["backdoor_suspected_classes"])))
    return out


def decide(report: dict[str, Any], policy: str = "default") -> Decision:
    if policy not in POLICIES:
        raise BadInputError(f"screening policy must be one of {', '.join(POLICIES)}", field="policy")
    v = report["verdict"]
    if v == "pass":
        action = "allow"
    elif policy == "warn":
        action = "warn"
    elif v == "fail" or policy == "strict":
        action = "refuse"
    else:
        action = "warn"
    return Decision(action=action, policy=policy, verdict=v, reasons=tuple(reasons_of(report)))
