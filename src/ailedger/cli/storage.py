"""`ailedger storage ...`: run and inspect storage nodes; and `model push/pull`, `dataset push/pull`
(see docs/storage.md). This module's name sorts after model.py and dataset.py, so their groups exist
when ``register`` runs and the push/pull commands are attached to them."""

from __future__ import annotations

import signal
from typing import Any

import click

from ailedger.cli._common import deadline_options
from ailedger.cli._common import emit_lines as _emit


def register(main: click.Group) -> None:
    @main.group("storage")
    def storage() -> None:
        """Storage nodes that hold encrypted, erasure-coded shards."""

    @storage.group("node")
    def node() -> None:
        """Run or query a storage node."""

    @node.command("serve")
    @click.option("--dir", "directory", required=True, type=click.Path(file_okay=False),
                  help="where the node keeps its shards")
    @click.option("--port", type=int, default=0, show_default=True, help="TCP port (0: any free port)")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--capacity", type=int, default=None, help="refuse uploads past this many bytes (HTTP 507)")
    @click.option("--fault", type=click.Choice(["corrupt", "vanish", "slow", "hang"]), default=None, hidden=True,
                  help="misbehave on purpose (fault-injection tests)")
    @click.option("--allow", "allow", multiple=True, metavar="DID",
                  help="a did:key whose signed requests may store and delete shards (repeat)")
    @click.option("--allow-file", type=click.Path(dir_okay=False), default=None,
                  help="file of did:keys that may write, one per line (re-read when it changes)")
    @click.option("--token-file", type=click.Path(dir_okay=False), default=None,
                  help="operator write tokens (ailedger write-token new NAME --file FILE), mode 0600")
    @deadline_options
    @click.option("--json", "as_json", is_flag=True, help="print the start line as JSON")
    def serve_cmd(directory: str, port: int, host: str, capacity: int | None, fault: str | None,
                  allow: tuple[str, ...], allow_file: str | None, token_file: str | None, head_timeout: float,
                  body_timeout: float, min_body_rate: int, as_json: bool) -> None:
        """Serve shards over HTTP until interrupted (SIGINT/SIGTERM).

        Writes (store, delete) are taken only from the identities named with --allow/--allow-file
        (RFC 9421 signed requests; `blob put` signs with its --as identity) or from holders of a
        token in --token-file; reads are open (shards are ciphertext named by their hash)."""
        from ailedger.blobs.node import StorageNode
        from ailedger.errors import BadInputError
        from ailedger.server.guard import Deadlines

        if not (allow or allow_file or token_file):
            raise BadInputError("a storage node takes writes only from writers its operator names: give --allow DID, "
                                "--allow-file FILE or --token-file FILE", field="allow")
        n = StorageNode(directory, host, port, capacity=capacity, fault=fault, allow=allow, allow_file=allow_file,
                        token_file=token_file,
                        deadlines=Deadlines(head=head_timeout, body=body_timeout, min_rate=min_body_rate))

        def stop(*_: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        _emit({"url": n.url, "dir": directory, "capacity": capacity}, as_json,
              [f"storage node listening on {n.url} (dir {directory})"])
        try:
            n.httpd.serve_forever(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            n.httpd.server_close()

    @node.command("health")
    @click.argument("url")
    @click.option("--json", "as_json", is_flag=True)
    def health_cmd(url: str, as_json: bool) -> None:
        """Ask a node how it is (shards held, bytes used)."""
        from ailedger.blobs.client import NodeClient, check_url

        h = NodeClient(check_url(url), 5).health()
        _emit(h, as_json, [f"{url}: ok, {h['shards']} shards, {h['used']} bytes used"])

    _attach_artifact_commands(main)


def _split(s: str | None) -> list[str]:
    return [x.strip() for x in (s or "").split(",") if x.strip()]


def _put_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--nodes", required=True, help="comma-separated storage node URLs"),
        click.option("--k", "k", type=int, default=None,
                     help="shards needed to read back (default: from n, so that a third of the nodes, at least one, "
                          "may be lost: 3 nodes -> 2, 30 -> 20)"),
        click.option("--n", "n", type=int, default=None,
                     help="shards stored, one per distinct node (default: the number of --nodes)"),
        click.option("--readers", default="", help="comma-separated identities or did:keys allowed to read"),
        click.option("--as", "who", required=True, help="identity that owns the stored copy"),
        click.option("--ledger", "ledger_path", envvar="AILEDGER_LEDGER", default=None),
        click.option("--json", "as_json", is_flag=True),
    ]):
        f = opt(f)
    return f


def _ledger(path: str | None) -> Any:
    from ailedger.tlog.ledger import Ledger

    return Ledger.open(path)


def _ident(ledger: Any, who: str) -> Any:
    import os

    return ledger.identities.load(who, os.environ.get("AILEDGER_PASSPHRASE"))


def _attach_artifact_commands(main: click.Group) -> None:
    model = main.commands.get("model")
    dataset = main.commands.get("dataset")

    if isinstance(model, click.Group):
        @model.command("push")
        @click.argument("model_ref")
        @click.argument("directory", type=click.Path(exists=True, file_okay=False))
        @_put_options
        def model_push(model_ref: str, directory: str, nodes: str, k: int | None, n: int | None, readers: str,
                       who: str,
                       ledger_path: str | None, as_json: bool) -> None:
            """Check DIRECTORY against the registered MODEL_REF, then store it encrypted on nodes."""
            from ailedger.blobs.artifacts import push_model

            with _ledger(ledger_path) as ledger:
                r = push_model(ledger, model_ref, directory, _split(nodes), _ident(ledger, who), k=k, n=n,
                               readers=_split(readers))
            _emit(r, as_json, [r["cid"], (f"model {r['model']} (entry #{r['record']}) stored; "
                                          f"blob.put #{r['put_index']}, blob.attach #{r['attach_index']}")])

        @model.command("pull")
        @click.argument("model_ref")
        @click.option("-o", "--output", required=True, help="folder to create")
        @click.option("--as", "who", required=True, help="a reader identity")
        @click.option("--ledger", "ledger_path", envvar="AILEDGER_LEDGER", default=None)
        @click.option("--json", "as_json", is_flag=True)
        def model_pull(model_ref: str, output: str, who: str, ledger_path: str | None, as_json: bool) -> None:
            """Fetch the stored copy of MODEL_REF, check it against its manifest, write it to OUTPUT."""
            from ailedger.blobs.artifacts import pull_model

            with _ledger(ledger_path) as ledger:
                r = pull_model(ledger, model_ref, output, _ident(ledger, who))
            _emit(r, as_json, [(f"{output}: model {r['model']} (entry #{r['record']}), manifest "
                                f"{r['manifest_root'][:16]}... verified")])

    if isinstance(dataset, click.Group):
        @dataset.command("push")
        @click.argument("dataset_ref")
        @click.argument("paths", nargs=-1, required=True)
        @_put_options
        def dataset_push(dataset_ref: str, paths: tuple[str, ...], nodes: str, k: int | None, n: int | None,
                         readers: str,
                         who: str, ledger_path: str | None, as_json: bool) -> None:
            """Check PATHS against the committed DATASET_REF root, then store them encrypted on nodes."""
            from ailedger.blobs.artifacts import push_dataset

            with _ledger(ledger_path) as ledger:
                r = push_dataset(ledger, dataset_ref, list(paths), _split(nodes), _ident(ledger, who), k=k, n=n,
                                 readers=_split(readers))
            _emit(r, as_json, [r["cid"], (f"dataset {r['dataset']} (entry #{r['record']}) stored; "
                                          f"blob.put #{r['put_index']}, blob.attach #{r['attach_index']}")])

        @dataset.command("pull")
        @click.argument("dataset_ref")
        @click.option("-o", "--output", required=True, help="folder to create (one entry per source)")
        @click.option("--as", "who", required=True, help="a reader identity")
        @click.option("--ledger", "ledger_path", envvar="AILEDGER_LEDGER", default=None)
        @click.option("--json", "as_json", is_flag=True)
        def dataset_pull(dataset_ref: str, output: str, who: str, ledger_path: str | None, as_json: bool) -> None:
            """Fetch the stored copy of DATASET_REF, re-hash its records against the root, write it."""
            from ailedger.blobs.artifacts import pull_dataset

            with _ledger(ledger_path) as ledger:
                r = pull_dataset(ledger, dataset_ref, output, _ident(ledger, who))
            _emit(r, as_json, [(f"{output}: dataset {r['dataset']} (entry #{r['record']}), root "
                                f"{r['root'][:16]}... verified")])
