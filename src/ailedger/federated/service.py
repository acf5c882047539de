"""One federated run end to end, offline and in-process: the ``fl.run`` entry, the clients (each an
ailedger identity registered on the ledger), Flower's own server loop (``flwr.server.Server``) with the
chosen Flower strategy inside :class:`~ailedger.federated.strategy.LedgerStrategy`, and a summary."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError
from ailedger.federated import data as datam
from ailedger.federated import model
from ailedger.federated.dp import DPConfig
from ailedger.federated.params import model_root, serialize
from ailedger.federated.store import Store, UpdateStore
from ailedger.tlog.identities import Identity

__all__ = ["client_identities", "key_path", "run_simulation", "store_for", "uses_blob_store"]

ATTACKS = ("flip", "scale", "both")


def key_path(ledger: Any, run: int) -> Path:
    return Path(ledger.path) / "fl-keys" / f"run-{run}.key"


def default_store(ledger: Any) -> Path:
    return Path(ledger.path) / "fl-store"


def uses_blob_store(ledger: Any, run: int) -> bool:
    """Whether ``run`` (an ``fl.run`` index) keeps its updates in the blob store."""
    if not 0 <= run < ledger.size:
        return False
    e = ledger.entry(run)
    return bool(e.type == "fl.run" and e.body.get("store") == "blob")


def store_for(ledger: Any, run: int, root: str | os.PathLike[str] | None = None, *,
              ident: Identity | None = None) -> Store:
    """The update store of ``run``: its folder (the key read from the ledger's folder when the run was
    encrypted), or, for a run kept in the blob store, the blobs its entries name, read as ``ident`` (an
    identity the blob keys are wrapped for: the run's server or a reader it named)."""
    if uses_blob_store(ledger, run):
        if root is not None:
            raise BadInputError(f"run {run} keeps its updates in the blob store, not in a folder: drop --store",
                                field="store")
        if ident is None:
            raise BadInputError(f"run {run} keeps its updates in the blob store: reading them needs an identity "
                                "their keys are wrapped for (--as SERVER or a reader)", field="as")
        from ailedger.federated.blobstore import BlobUpdateStore

        return BlobUpdateStore.for_run(ledger, run, ident)
    kp = key_path(ledger, run)
    return UpdateStore(root or default_store(ledger), run, key=kp.read_bytes() if kp.exists() else None)


def client_identities(ledger: Any, n: int, prefix: str = "fl-client") -> list[Identity]:
    """``n`` client identities ``PREFIX-1..n`` on this ledger, created and registered when missing."""
    out = []
    for k in range(1, n + 1):
        name = f"{prefix}-{k}"
        if ledger.identities.did_of(name) is None:
            ident, _ = ledger.new_identity(name)
        else:
            ident = ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))
        out.append(ident)
    return out


def run_simulation(ledger: Any, server: Identity, *, clients: int = 10, rounds: int = 20, poisoned: int = 2,
                   attack: str = "flip", scale: float = 10.0, rule: str = "fedavg",
                   rule_params: dict[str, Any] | None = None, dp: DPConfig | None = None,
                   store_root: str | os.PathLike[str] | None = None, encrypt: bool = False, seed: int = 0,
                   flag_threshold: float = 3.0, name: str = "digits", epochs: int = 20,
                   identities: list[Identity] | None = None, enrolled: list[str] | None = None,
                   blob_nodes: Sequence[str] | None = None, blob_readers: Sequence[str] = (),
                   progress: Any = None) -> dict[str, Any]:
    """Run ``rounds`` rounds with ``clients`` clients (the last ``poisoned`` of them poisoned by
    ``attack``); log ``fl.run`` then one ``fl.round`` per round.  Returns the run's summary.

    ``blob_nodes`` (storage node URLs / ``s3://`` targets): keep the updates in the blob store
    (:class:`~ailedger.federated.store.BlobUpdateStore`, always encrypted; keys wrapped for the server and
    ``blob_readers``) instead of the folder ``store_root``."""
    from flwr.common import Parameters, ndarrays_to_parameters
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.server import Server

    from ailedger.federated.client import DigitsClient, InProcessProxy, SignedClient
    from ailedger.federated.strategy import (
        MEAN_RULES,
        RULE_NAMES,
        LedgerStrategy,
        RunContext,
        default_params,
        make_strategy,
    )

    if not 2 <= clients <= 100:
        raise BadInputError("--clients must be between 2 and 100", field="clients")
    if not 1 <= rounds <= 1000:
        raise BadInputError("--rounds must be between 1 and 1000", field="rounds")
    if not 0 <= poisoned < clients:
        raise BadInputError("--poisoned must be at least 0 and fewer than --clients", field="poisoned")
    if attack not in ATTACKS:
        raise BadInputError(f"--attack must be one of {', '.join(ATTACKS)}", field="attack")
    if rule not in RULE_NAMES:
        raise BadInputError(f"unknown aggregation rule {rule!r} (one of {', '.join(RULE_NAMES)})", field="strategy")
    if dp is not None:
        if rule not in MEAN_RULES:
            raise BadInputError(f"--dp-noise needs a mean rule ({', '.join(MEAN_RULES)}): the noise is calibrated "
                                f"to a weighted mean's sensitivity, not to {rule}'s", field="dp")
        if not (dp.clip > 0 and dp.noise_multiplier > 0 and 0 < dp.delta < 1):
            raise BadInputError("--dp-clip and --dp-noise must be > 0 and --dp-delta in (0, 1)", field="dp")
    if blob_nodes is not None:
        if store_root is not None:
            raise BadInputError("give either a folder or the blob store (blob:URL[,URL...]) as --store, not both",
                                field="store")
        if not blob_nodes:
            raise BadInputError("--store blob: needs at least one storage node URL or s3:// target "
                                "(blob:http://HOST:PORT[,...])", field="store")
    params = {**default_params(rule, poisoned), **(rule_params or {})}
    split = datam.split_digits(clients, poisoned=poisoned, attack=attack, seed=seed)
    idents = identities or client_identities(ledger, clients)
    init = ndarrays_to_parameters(model.init_params())
    init_root = model_root(init.tensors)
    rule_body = {"name": rule, "params": params}
    blob_store = None
    if blob_nodes is not None:
        from ailedger.federated.blobstore import BlobUpdateStore

        # the initial model goes first: its CID is part of the fl.run entry
        blob_store = BlobUpdateStore(ledger, server, nodes=blob_nodes, readers=blob_readers)
        blob_store.put_init(serialize(init.tensors))
    run_body: dict[str, Any] = {
        "name": name, "rule": rule_body, "clients": enrolled or [i.did for i in idents], "rounds": rounds,
        "init_root": init_root, "model": "softmax regression, 64 -> 10 (float64), scikit-learn digits",
        "store": "blob" if blob_store is not None else "aes-256-gcm" if encrypt else "plain", "flag_threshold": flag_threshold,
        "data": {"source": "sklearn.datasets.load_digits", "test_size": 0.25, "split": "dirichlet per class",
                 "alpha": 0.5, "seed": seed},
        "subjects": [i.did for i in idents]}
    if blob_store is not None:
        run_body["init_blob"] = blob_store.refs["init"]
    if dp is not None:
        run_body["dp"] = dp.as_dict()
    from importlib.metadata import version

    run_body["flower"] = version("flwr")
    run = ledger.append_record("fl.run", run_body, server).index
    key = None
    store: Store
    if blob_store is not None:
        store = blob_store
    elif encrypt:
        key = os.urandom(32)
        kp = key_path(ledger, run)
        kp.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
    if blob_store is None:
        store = UpdateStore(store_root or default_store(ledger), run, key=key)
        store.put_init(serialize(init.tensors))

    def evaluate(arrays: list[Any]) -> float:
        return model.accuracy(arrays, split.x_test, split.y_test)

    ctx = RunContext(ledger, server, run, set(run_body["clients"]), store, rule_body, dp, flag_threshold, evaluate)
    inner = make_strategy(rule, params, n_clients=clients,
                          initial=Parameters(tensors=list(init.tensors), tensor_type="numpy.ndarray"))
    strategy = LedgerStrategy(inner, ctx)
    cm = SimpleClientManager()
    for k, (ident, cd) in enumerate(zip(idents, split.clients)):
        sc = scale if cd.poisoned and attack in ("scale", "both") else 1.0
        c = SignedClient(DigitsClient(cd, epochs=epochs, scale=sc).to_client(), ident)
        cm.register(InProcessProxy(ident.did, c))

    server_loop = Server(client_manager=cm, strategy=strategy)
    server_loop.set_max_workers(1)
    t0 = time.perf_counter()
    if progress is not None:
        orig = strategy.aggregate_fit

        def step(*a: Any, **kw: Any) -> Any:
            out = orig(*a, **kw)
            progress.update(1)
            return out

        strategy.aggregate_fit = step  # type: ignore[method-assign]
    _quiet_flower()
    try:
        server_loop.fit(num_rounds=rounds, timeout=None)
    finally:
        if blob_store is not None:
            blob_store.close()
    elapsed = time.perf_counter() - t0
    poisoned_dids = [i.did for i, cd in zip(idents, split.clients) if cd.poisoned]
    rs = ctx.rounds
    return {
        "run": run, "rule": rule_body, "clients": [i.did for i in idents], "poisoned": poisoned_dids,
        "attack": attack if poisoned else None, "rounds": len(rs),
        "accuracy": rs[-1].accuracy if rs else None, "accuracy_per_round": [r.accuracy for r in rs],
        "final_root": rs[-1].root_after if rs else init_root,
        "flagged": {d: [r.round for r in rs if d in r.flagged] for d in sorted({f for r in rs for f in r.flagged})},
        "refused": [{"round": r.round, **x} for r in rs for x in r.refused],
        "epsilon": rs[-1].epsilon if rs else None, "seconds": round(elapsed, 4),
        "round_seconds": [round(r.round_seconds, 6) for r in rs], "log_seconds": [round(r.log_seconds, 6) for r in rs],
        "entries": [r.entry for r in rs],
        "store": "blob:" + ",".join(blob_nodes) if blob_nodes else str(getattr(store, "dir", "")),
        "encrypted": encrypt or blob_store is not None,
    }


def _quiet_flower() -> None:
    import logging

    logging.getLogger("flwr").setLevel(logging.WARNING)
