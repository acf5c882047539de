"""`signing_mod`: the same signature as a Flower client mod on a ClientApp (Message API); the wrapper
accepts what it signs and refuses a reply changed after it."""

from __future__ import annotations

import time

import pytest
from flwr.app import Context, Message, Metadata, RecordDict
from flwr.app.message_type import MessageType
from flwr.client import ClientApp
from flwr.client.mod import fixedclipping_mod
from flwr.common import FitRes, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common import recorddict_compat as compat

from ailedger.errors import BadInputError
from ailedger.federated.client import DigitsClient, InProcessProxy, signing_mod
from ailedger.federated.params import digest

from .test_bad_input import Rig, _reasons


def _app(rig, k, mods):
    return ClientApp(client_fn=lambda ctx: DigitsClient(rig.split.clients[k], epochs=3).to_client(), mods=mods)


def _msg(fitins, node=1):
    """A training instruction as a SuperNode would hand it to the ClientApp."""
    meta = Metadata(run_id=1, message_id=f"m{node}", src_node_id=0, dst_node_id=node, reply_to_message_id="",
                    group_id="1", created_at=time.time(), ttl=3600.0, message_type=MessageType.TRAIN)
    return Message(content=compat.fitins_to_recorddict(fitins, keep_input=True), metadata=meta)


def _call(app, fitins, node=1):
    msg = _msg(fitins, node)
    out = app(msg, Context(run_id=1, node_id=node, node_config={}, state=RecordDict(), run_config={}))
    assert not out.has_error(), out.error
    return compat.recorddict_to_fitres(out.content, keep_input=True)


def test_a_clientapp_with_the_signing_mod_is_accepted(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    ins, _ = rig.good_round(1, rig.init)
    by_did = {p.cid: i for p, i in ins}
    results = []
    for k, ident in enumerate(rig.idents):
        res = _call(_app(rig, k, [signing_mod(ident)]), by_did[ident.did], node=k + 1)
        assert res.metrics["ailedger.did"] == ident.did and res.metrics["ailedger.digest"] == digest(res.parameters.tensors)
        results.append((InProcessProxy(ident.did, None), res))
    # a reply changed after signing (another mod, or the transport) is refused
    last = results[-1][1]
    arrays = parameters_to_ndarrays(last.parameters)
    arrays[1] = arrays[1] + 0.5
    results[-1] = (results[-1][0], FitRes(last.status, ndarrays_to_parameters(arrays), last.num_examples,
                                          dict(last.metrics)))
    rig.strategy.aggregate_fit(1, results, [])
    body = rig.entry(rig.ctx.rounds[-1].entry)
    assert [c["did"] for c in body["clients"]] == sorted(i.did for i in rig.idents[:-1])
    assert "do not match the signed digest" in _reasons(body)[rig.idents[-1].did]


def test_the_mod_signs_after_clipping_and_needs_the_ailedger_config(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    ins, _ = rig.good_round(1, rig.init)
    ident = rig.idents[0]
    fitins = {p.cid: i for p, i in ins}[ident.did]
    fitins.config["clipping_norm"] = 0.01
    # mods run outermost first: the signing mod sees the reply after fixedclipping_mod clipped it
    res = _call(_app(rig, 0, [signing_mod(ident), fixedclipping_mod]), fitins)
    sent, base = parameters_to_ndarrays(res.parameters), parameters_to_ndarrays(rig.init)
    assert sum(float(((a - b) ** 2).sum()) for a, b in zip(sent, base)) ** 0.5 == pytest.approx(0.01, rel=1e-6)
    rig.strategy.aggregate_fit(1, [(InProcessProxy(ident.did, None), res)], [])
    body = rig.entry(rig.ctx.rounds[-1].entry)
    assert [c["did"] for c in body["clients"]] == [ident.did]
    plain = {k: v for k, v in fitins.config.items() if not k.startswith("ailedger.")}
    fitins.config.clear()
    fitins.config.update(plain)
    msg = _msg(fitins)
    with pytest.raises(BadInputError, match="the server sent no ailedger.run"):
        _app(rig, 0, [signing_mod(ident)])(msg, Context(run_id=1, node_id=1, node_config={}, state=RecordDict(),
                                                        run_config={}))
