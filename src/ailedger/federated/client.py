"""Flower clients: the digits trainer, the ailedger signing wrapper, and an in-process proxy.

:class:`SignedClient` wraps any Flower ``Client`` (a ``NumPyClient`` after ``.to_client()``): after the
inner client's ``fit`` it computes the digest of the returned parameters and signs
``fl_update_statement(run, round, digest, n, base)`` with the client's ailedger identity, where run, round
and base (the global model's root) come from the server's ``FitIns.config`` (``ailedger.run``,
``ailedger.round``, ``ailedger.base``).  The signature and the signer's did:key travel in
``FitRes.metrics`` (``ailedger.did``, ``ailedger.sig``, ``ailedger.digest``), so any Flower transport
carries them unchanged.  :func:`signing_mod` does the same as a Flower client mod, for a ``ClientApp`` on
Flower's Message API."""

from __future__ import annotations

import base64
from typing import Any

from flwr.client import Client, NumPyClient
from flwr.common import (
    Code,
    DisconnectRes,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    ReconnectIns,
    Status,
)
from flwr.server.client_proxy import ClientProxy

from ailedger.authority.rules import fl_update_statement
from ailedger.errors import BadInputError
from ailedger.federated import model
from ailedger.federated.data import ClientData
from ailedger.federated.params import digest
from ailedger.tlog.identities import Identity

__all__ = ["DigitsClient", "InProcessProxy", "SignedClient", "signing_mod"]


class DigitsClient(NumPyClient):
    """Trains the softmax model on one client's shard; ``scale`` != 1 makes it a model-poisoning client
    (it sends ``global + scale * (local - global)``)."""

    def __init__(self, data: ClientData, *, epochs: int = 20, lr: float = 0.5, scale: float = 1.0) -> None:
        self.data = data
        self.epochs = epochs
        self.lr = lr
        self.scale = scale

    def get_parameters(self, config: dict[str, Any]) -> list[Any]:
        return model.init_params()

    def fit(self, parameters: list[Any], config: dict[str, Any]) -> tuple[list[Any], int, dict[str, Any]]:
        mu = float(config.get("proximal_mu", 0.0))
        new = model.train(parameters, self.data.x, self.data.y, epochs=self.epochs, lr=self.lr, mu=mu)
        if self.scale != 1.0:
            new = [p + self.scale * (q - p) for p, q in zip(parameters, new)]
        return new, len(self.data.y), {}

    def evaluate(self, parameters: list[Any], config: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
        acc = model.accuracy(parameters, self.data.x, self.data.y)
        return 1.0 - acc, len(self.data.y), {"accuracy": acc}


def _sign_fitres(res: FitRes, cfg: dict[str, Any], identity: Identity) -> FitRes:
    """``res`` with the ailedger metrics: the signer, the update's digest, the round, and the signature over
    ``fl_update_statement(run, round, digest, n, base)`` (run, round, base from the server's ``cfg``)."""
    d = digest(res.parameters.tensors)
    rnd = int(cfg["ailedger.round"])
    msg = fl_update_statement(int(cfg["ailedger.run"]), rnd, d, int(res.num_examples), str(cfg["ailedger.base"]))
    metrics = dict(res.metrics)
    metrics.update({"ailedger.did": identity.did, "ailedger.digest": d, "ailedger.round": rnd,
                    "ailedger.sig": base64.b64encode(identity.sign(msg)).decode()})
    return FitRes(status=res.status, parameters=res.parameters, num_examples=res.num_examples, metrics=metrics)


def signing_mod(identity: Identity) -> Any:
    """A Flower client mod (``ClientApp(client_fn, mods=[signing_mod(identity)])``, Flower's Message API)
    that signs every training reply as :class:`SignedClient` does: the reply's parameters (as the server
    will read them back, ``recorddict_to_fitres``) are hashed and the update statement signed with
    ``identity``; the four ``ailedger.*`` metrics ride in the reply's metrics record. Put it last among
    mods that change parameters (after ``fixedclipping_mod``), so it signs what is sent."""
    from flwr.app import Context, Message
    from flwr.app.message_type import MessageType
    from flwr.compat.common import recorddict_compat as compat

    def mod(msg: Message, ctxt: Context, call_next: Any) -> Message:
        if msg.metadata.message_type != MessageType.TRAIN:
            return call_next(msg, ctxt)  # type: ignore[no-any-return]
        cfg = compat.recorddict_to_fitins(msg.content, keep_input=True).config
        out: Message = call_next(msg, ctxt)
        if out.has_error():
            return out
        if not all(k in cfg for k in ("ailedger.run", "ailedger.round", "ailedger.base")):
            raise BadInputError("signing_mod: the server sent no ailedger.run / ailedger.round / ailedger.base "
                                "(it is not an ailedger LedgerStrategy)", field="config")
        res = compat.recorddict_to_fitres(out.content, keep_input=True)
        out.content = compat.fitres_to_recorddict(_sign_fitres(res, dict(cfg), identity), keep_input=True)
        return out

    mod.__name__ = "ailedger_signing_mod"
    return mod


class SignedClient(Client):
    """Signs every update of ``inner`` with ``identity`` (see the module's text)."""

    def __init__(self, inner: Client, identity: Identity) -> None:
        self.inner = inner
        self.identity = identity

    def get_properties(self, ins: GetPropertiesIns) -> GetPropertiesRes:
        return self.inner.get_properties(ins)

    def get_parameters(self, ins: GetParametersIns) -> GetParametersRes:
        return self.inner.get_parameters(ins)

    def fit(self, ins: FitIns) -> FitRes:
        return _sign_fitres(self.inner.fit(ins), dict(ins.config), self.identity)

    def evaluate(self, ins: EvaluateIns) -> EvaluateRes:
        return self.inner.evaluate(ins)


class InProcessProxy(ClientProxy):
    """A Flower ``ClientProxy`` that calls a ``Client`` in this process (Flower's own server loop drives
    it; no Ray, no gRPC).  ``client`` None: a placeholder carrying the cid only (replay)."""

    def __init__(self, cid: str, client: Client | None) -> None:
        super().__init__(cid)
        self.client = client

    def _c(self) -> Client:
        if self.client is None:
            raise RuntimeError(f"client {self.cid} is not reachable in this process")
        return self.client

    def get_properties(self, ins: GetPropertiesIns, timeout: float | None,
                       group_id: int | None) -> GetPropertiesRes:
        return self._c().get_properties(ins)

    def get_parameters(self, ins: GetParametersIns, timeout: float | None,
                       group_id: int | None) -> GetParametersRes:
        return self._c().get_parameters(ins)

    def fit(self, ins: FitIns, timeout: float | None, group_id: int | None) -> FitRes:
        return self._c().fit(ins)

    def evaluate(self, ins: EvaluateIns, timeout: float | None, group_id: int | None) -> EvaluateRes:
        return self._c().evaluate(ins)

    def reconnect(self, ins: ReconnectIns, timeout: float | None, group_id: int | None) -> DisconnectRes:
        return DisconnectRes(reason="")


OK = Status(code=Code.OK, message="")
