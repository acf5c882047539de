"""`ailedger fl ...`: federated learning with Flower, every round on the ledger (docs/federated.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit_lines as _emit
from ailedger.cli._common import json_option, ledger_option, progress
from ailedger.errors import BadInputError


def _short(did: str) -> str:
    return did.removeprefix("did:key:")[:12] + "..."


def _server(ledger: Any, name: str) -> Any:
    if ledger.identities.did_of(name) is None:
        ident, _ = ledger.new_identity(name)
        return ident
    return ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))


def _store_arg(value: str | None) -> tuple[str | None, list[str] | None]:
    """``--store``: (folder, None) or (None, the blob store's node URLs / s3:// targets)."""
    if value is None or not value.startswith("blob:"):
        return value, None
    nodes = [u.strip() for u in value.removeprefix("blob:").split(",") if u.strip()]
    if not nodes:
        raise BadInputError("--store blob: needs at least one storage node URL or s3:// target "
                            "(blob:http://HOST:PORT[,...])", field="store")
    return None, nodes


def _chart(view: Any, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [b["round"] for _, b in view.rounds]
    acc = [b.get("accuracy") for _, b in view.rounds]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    a1.plot(rounds, acc, marker="o")
    a1.set_ylabel("test accuracy")
    a1.set_title(f"run {view.index}: {view.body.get('rule', {}).get('name')}")
    clients = view.body.get("clients", [])
    for k, did in enumerate(clients):
        xs = [b["round"] for _, b in view.rounds for c in b.get("clients", []) if c["did"] == did]
        ys = [c["score"] for _, b in view.rounds for c in b.get("clients", []) if c["did"] == did]
        a2.plot(xs, ys, marker=".", label=f"client {k + 1}")
    thr = view.body.get("flag_threshold")
    if thr:
        a2.axhline(thr, color="red", linestyle="--", label="flag threshold")
    a2.set_ylabel("anomaly score")
    a2.set_xlabel("round")
    a2.legend(fontsize=6, ncol=4)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def register(main: click.Group) -> None:
    @main.group("fl")
    def fl() -> None:
        """Federated learning (Flower): every round logged, updates signed, replayable, poisoning flagged."""

    @fl.command("run")
    @click.option("--clients", default=10, show_default=True, help="number of clients (each an ailedger identity)")
    @click.option("--rounds", default=20, show_default=True, help="federated rounds")
    @click.option("--poisoned", default=2, show_default=True, help="how many clients are poisoned (the last ones)")
    @click.option("--attack", type=click.Choice(["flip", "scale", "both"]), default="flip", show_default=True,
                  help="label flips (y -> 9-y), a scaled update (x10), or both")
    @click.option("--strategy", "rule", type=click.Choice(["fedavg", "fedprox", "fedadam", "median", "trimmed",
                                                            "krum"]), default="fedavg", show_default=True,
                  help="the Flower strategy inside the ailedger wrapper")
    @click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                  help="a strategy parameter (proximal_mu, beta, eta, num_malicious_clients...)")
    @click.option("--dp-clip", type=float, help="DP: clip each update's L2 norm to this")
    @click.option("--dp-noise", type=float, help="DP: Gaussian noise multiplier (needs --dp-clip)")
    @click.option("--dp-delta", type=float, default=1e-5, show_default=True, help="DP: delta of the epsilon logged")
    @click.option("--flag-threshold", type=float, default=3.0, show_default=True,
                  help="flag an update whose anomaly score is above this")
    @click.option("--store", "store_root", metavar="DIR|blob:URL[,URL...]",
                  help="where the updates are kept: a folder (default LEDGER/fl-store), or blob:URL[,URL...] for "
                       "ailedger's blob store on those storage nodes / s3:// targets (encrypted, content-addressed)")
    @click.option("--reader", "readers", multiple=True,
                  help="blob store: another identity (name or did:key) that may read the stored updates")
    @click.option("--encrypt", is_flag=True, help="encrypt stored updates (AES-256-GCM; key in LEDGER/fl-keys); "
                                                  "the blob store always encrypts")
    @click.option("--seed", default=0, show_default=True, help="data split seed")
    @click.option("--as", "identity", default="fl-server", show_default=True,
                  help="the server's identity (created when missing); it signs fl.run and fl.round")
    @ledger_option
    @json_option
    def run_cmd(clients: int, rounds: int, poisoned: int, attack: str, rule: str, params: tuple[str, ...],
                dp_clip: float | None, dp_noise: float | None, dp_delta: float, flag_threshold: float,
                store_root: str | None, readers: tuple[str, ...], encrypt: bool, seed: int, identity: str, ledger_dir: Path | None,
                as_json: bool) -> None:
        """Run a federated simulation on scikit-learn digits (non-IID) in this process and log every round."""
        from ailedger.federated.dp import DPConfig
        from ailedger.federated.service import run_simulation
        from ailedger.tlog.ledger import Ledger

        rp: dict[str, Any] = {}
        for p in params:
            k, sep, v = p.partition("=")
            if not sep or not k:
                raise BadInputError(f"--param {p!r}: expected KEY=VALUE", field="param")
            try:
                rp[k] = int(v)
            except ValueError:
                try:
                    rp[k] = float(v)
                except ValueError:
                    raise BadInputError(f"--param {p!r}: the value must be a number", field="param") from None
        if (dp_clip is None) != (dp_noise is None):
            raise BadInputError("DP needs both --dp-clip and --dp-noise", field="dp")
        dp = DPConfig(dp_clip, dp_noise, dp_delta) if dp_clip is not None and dp_noise is not None else None
        folder, nodes = _store_arg(store_root)
        if readers and nodes is None:
            raise BadInputError("--reader is for the blob store (--store blob:URL[,URL...])", field="reader")
        ledger = Ledger.open(ledger_dir)
        try:
            server = _server(ledger, identity)
            with progress(rounds, "rounds", not as_json) as bar:
                s = run_simulation(ledger, server, clients=clients, rounds=rounds, poisoned=poisoned, attack=attack,
                                   rule=rule, rule_params=rp, dp=dp, store_root=folder, encrypt=encrypt,
                                   blob_nodes=nodes, blob_readers=readers,
                                   seed=seed, flag_threshold=flag_threshold, progress=bar)
        finally:
            ledger.close()
        lines = [(f"run {s['run']}: {rule}, {clients} clients ({poisoned} poisoned: {attack}), {s['rounds']} rounds "
                 f"in {s['seconds']:.1f} s, entries {s['entries'][0]}..{s['entries'][-1]}"),
                 f"  test accuracy {s['accuracy']:.4f}; final model root {s['final_root'][:16]}...",
                 f"  poisoned clients: {', '.join(_short(d) for d in s['poisoned']) or '(none)'}"]
        for d, rs in s["flagged"].items():
            lines.append(f"  flagged {_short(d)} in {len(rs)} rounds: {rs[:10]}{' ...' if len(rs) > 10 else ''}"
                         + ("  (poisoned)" if d in s["poisoned"] else ""))
        if s["epsilon"] is not None:
            lines.append(f"  DP: epsilon {s['epsilon']:.3f} at delta {dp_delta:g} after {s['rounds']} rounds")
        lines.append(f"  updates stored in {s['store']}" + (" (encrypted)" if s["encrypted"] else "")
                     + f"; check with: ailedger fl replay {s['run']}")
        _emit(s, as_json, lines)

    @fl.command("replay")
    @click.argument("run", type=int)
    @click.option("--store", "store_root", type=click.Path(file_okay=False),
                  help="the folder the updates were kept in (default LEDGER/fl-store); a run kept in the blob "
                       "store needs none: its entries name every blob")
    @click.option("--as", "identity", default="fl-server", show_default=True,
                  help="blob store: the identity that reads the updates (the run's server or a --reader)")
    @ledger_option
    @json_option
    def replay_cmd(run: int, store_root: str | None, identity: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Recompute every round of RUN from the stored updates; exit 1 unless each equals its logged root."""
        from ailedger.federated.audit import replay
        from ailedger.federated.service import store_for, uses_blob_store
        from ailedger.tlog.ledger import Ledger

        ledger = Ledger.open(ledger_dir, read_only=True)
        try:
            ident = (ledger.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
                     if uses_blob_store(ledger, run) else None)
            store = store_for(ledger, run, store_root, ident=ident)
            try:
                with progress(None, "rounds", not as_json) as bar:
                    r = replay(ledger, run, store, progress=bar)
            finally:
                store.close()
        finally:
            ledger.close()
        lines = [(f"run {run}: {r['rounds']} rounds recomputed from the stored updates in {r['seconds']:.2f} s; every "
                 f"aggregate equals its logged root, bit for bit"),
                 f"  final model root {r['final_root']}"]
        if r["ignored"]:
            lines.append(f"  {len(r['ignored'])} entries without effect were not replayed (see fl show {run})")
        _emit(r, as_json, lines)

    @fl.command("show")
    @click.argument("run", type=int, required=False)
    @click.option("--chart", type=click.Path(dir_okay=False), help="write accuracy and anomaly scores (PNG/SVG)")
    @ledger_option
    @json_option
    def show_cmd(run: int | None, chart: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """List the runs, or show RUN: rounds, accuracy, flagged and removed clients, epsilon."""
        from ailedger.federated.audit import run_view, runs
        from ailedger.tlog.ledger import Ledger

        ledger = Ledger.open(ledger_dir, read_only=True)
        try:
            if run is None:
                views = [run_view(ledger, i) for i in runs(ledger)]
                data: Any = {"runs": [v.summary() for v in views]}
                lines = [f"run {v.index}: {v.body.get('name')} {v.body.get('rule', {}).get('name')}, "
                         f"{len(v.body.get('clients', []))} clients, {len(v.rounds)} rounds"
                         + (f", accuracy {v.rounds[-1][1].get('accuracy')}" if v.rounds else "") for v in views]
                if not views:
                    lines = ["no federated runs in this log (start one with: ailedger fl run)"]
            else:
                v = run_view(ledger, run)
                data = v.summary()
                if chart:
                    _chart(v, chart)
                    data["chart"] = chart
                lines = [f"run {run}: {v.body.get('rule')}, server {_short(v.server)}, {len(v.rounds)} rounds, "
                         f"updates kept {'in the blob store' if data['store'] == 'blob' else 'in a folder'}"
                         + (" (encrypted)" if data["store"] in ("blob", "aes-256-gcm") else "")]
                for rr in data["round_list"]:
                    lines.append(f"  round {rr['round']:>3} (entry {rr['entry']}): {rr['accepted']} updates, "
                                 f"accuracy {rr['accuracy']}"
                                 + (f", flagged {', '.join(_short(d) for d in rr['flagged'])}" if rr["flagged"] else "")
                                 + (f", refused {len(rr['refused'])}" if rr["refused"] else "")
                                 + (f", epsilon {rr['epsilon']:.3f}" if rr["epsilon"] is not None else ""))
                for rm in data["removed"]:
                    lines.append(f"  removed {_short(rm['client'])} at entry {rm['entry']} ({rm['reason']}): its updates "
                                 f"went into rounds {rm['rounds']}")
                for ig in data["ignored"]:
                    lines.append(f"  entry {ig['entry']} has no effect: {ig['why']}")
                if chart:
                    lines.append(f"  chart: {chart}")
        finally:
            ledger.close()
        _emit(data, as_json, lines)

    @fl.command("remove")
    @click.argument("run", type=int)
    @click.argument("client")
    @click.option("--reason", required=True, help="why (e.g. 'flagged in 12 rounds; label flips confirmed')")
    @click.option("--as", "identity", default="fl-server", show_default=True, help="the run's server identity")
    @ledger_option
    @json_option
    def remove_cmd(run: int, client: str, reason: str, identity: str, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """Remove CLIENT (did:key or identity name) from RUN; names the rounds its updates went into."""
        from ailedger.federated.audit import remove_client
        from ailedger.tlog.ledger import Ledger

        ledger = Ledger.open(ledger_dir)
        try:
            did = ledger.did_for(client)
            server = ledger.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
            r = remove_client(ledger, run, did, server, reason=reason)
        finally:
            ledger.close()
        lines = [f"removed {did} from run {run} (entry {r['entry']})",
                 f"  its updates went into rounds {r['rounds'] or '(none)'}; flagged in {r['flagged_in'] or '(none)'}",
                 (f"  the global models of rounds {r['tainted_rounds'][0]}-{r['tainted_rounds'][-1]} descend from them"
                  if r["tainted_rounds"] else "  no round's model descends from it")]
        _emit(r, as_json, lines)
