"""An AI that advises a DAO: a small, reproducible proposal-risk classifier plus the governance whale/turnout
simulation run on the proposal's own parameters, writing a signed ``dao.advice`` entry that anyone can replay.

* :mod:`.analyst` -- training set generation, the model and its manifest root, advice, replay and the one
  reader of advice (:func:`.analyst.effective_advice`).

The analyst never votes or executes: it only appends ``dao.advice`` statements; no governance rule reads them.
See docs/dao-ai.md.
"""

from __future__ import annotations

__all__ = ["ADVICE"]

ADVICE = "dao.advice"
