"""The gateway's side of sampled proving (docs/zk.md, "Sampling at the gateway").

``GatewayCommitter`` is the gateway's call hook (:class:`ailedger.inference.gateway.CallHook`): for each answered
call it takes the circuit's input from the request (``input_field``, a dotted path to a list of numbers or a
one-row ``[[...]]``), runs it through the model's bound circuit (EZKL's witness, milliseconds, no proof) and
returns what the record's ``meta.zk`` carries: the ``model.zk`` index, the circuit's public commitments to input
and output, and the two field paths.  The input itself stays in the gateway's encrypted payload store, as for
every call.  After a checkpoint, :func:`ailedger.verifiable.sampling.prove_sampled` proves the calls the
checkpoint's root selects (``prove_receipt``: same witness from the stored input, the served answer's class
compared with the circuit's, a proof, an ``inference.zk`` statement).

The fields are read by :mod:`ailedger.verifiable.fields`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ailedger.authority.service import zk_setup_allowed
from ailedger.errors import BadInputError, VerificationError
from ailedger.verifiable.fields import argmax, pick_vector, served_class
from ailedger.verifiable.zk import artefact_dir, find_setup, forward

__all__ = ["GatewayCommitter"]


class GatewayCommitter:
    """The gateway's call hook: the circuit commitments of each call (see the module docstring).

    ``check_served``: also compare, at serve time, the answer's class with the circuit's and refuse (no record,
    503) a call whose answer the bound model would not give; off by default (the check is done after the fact,
    for the sampled calls, where it cannot be skipped by the operator who would hide a swap)."""

    def __init__(self, ledger: Any, setup: str | int, model: str, *, input_field: str | None,
                 output_field: str, check_served: bool = False) -> None:
        self.ledger = ledger
        self.setup = find_setup(ledger, setup)
        idx, e = self.setup
        why = zk_setup_allowed(ledger, e, idx)
        if why is not None:
            raise VerificationError(f"model.zk #{idx} has no effect: {why}")
        if e.body.get("model") != model:
            raise BadInputError(f"model.zk #{idx} binds a circuit to model {e.body.get('model')}, not to {model}",
                                field="zk_setup", expected=model, found=e.body.get("model"))
        self.input_field = input_field
        self.output_field = output_field
        self.check_served = check_served
        self.dir = artefact_dir(ledger)

    def __call__(self, request: Any, answer: Any) -> dict[str, Any]:
        x = pick_vector(request, self.input_field)
        served = served_class(answer, self.output_field)  # the answer must name a class a proof can be held to
        work = Path(tempfile.mkdtemp(prefix="zk-commit-", dir=self.dir))
        try:
            _x, parts, out = forward(self.ledger, self.setup, x, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if self.check_served and served != argmax(out):
            raise VerificationError(f"the upstream answered class {served}; the bound circuit gives {argmax(out)}")
        zk: dict[str, Any] = {"setup": self.setup[0], "in": parts["input"], "out": parts["output"],
                              "input_field": self.input_field, "output_field": self.output_field}
        if parts["params"]:
            zk["params"] = parts["params"]
        return zk
