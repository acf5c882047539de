"""`ailedger storage ...`: run and inspect storage nodes (see docs/storage.md)."""

from __future__ import annotations

import json
import signal
from typing import Any

import click


def _emit(obj: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(obj, indent=1, sort_keys=True))
    else:
        for ln in lines:
            click.echo(ln)


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
    @click.option("--fault", type=click.Choice(["corrupt", "vanish", "slow"]), default=None, hidden=True,
                  help="misbehave on purpose (fault-injection tests)")
    @click.option("--json", "as_json", is_flag=True, help="print the start line as JSON")
    def serve_cmd(directory: str, port: int, host: str, capacity: int | None, fault: str | None,
                  as_json: bool) -> None:
        """Serve shards over HTTP until interrupted (SIGINT/SIGTERM)."""
        from ailedger.services.blobs.node import StorageNode

        n = StorageNode(directory, host, port, capacity=capacity, fault=fault)

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
        from ailedger.services.blobs.client import NodeClient, check_url

        h = NodeClient(check_url(url), 5).health()
        _emit(h, as_json, [f"{url}: ok, {h['shards']} shards, {h['used']} bytes used"])
