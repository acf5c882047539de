"""``ailedger serve`` (HTTP API + explorer) and ``ailedger init-postgres`` (a PostgreSQL-backed ledger)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import click

from ailedger.cli._common import deadline_options, emit, json_option, ledger_option

__all__ = ["register"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes serving the same store (the store sequences writers).")
@click.option("--max-body", type=int, default=32 * 1024 * 1024, show_default=True, help="Largest request body (bytes).")
@click.option("--max-batch", type=int, default=10000, show_default=True, help="Most entries in one batch.")
@click.option("--time-window", type=float, default=600.0, show_default=True,
              help="New entries' time must be within this many seconds of the server clock.")
@click.option("--rate", type=float, default=20000.0, show_default=True,
              help="Entries per second per identity, shared by every worker on this host.")
@click.option("--burst", type=float, default=100000.0, show_default=True, help="Token-bucket size per identity.")
@click.option("--max-inflight", type=int, default=512, show_default=True,
              help="Requests in flight per worker before answering 503.")
@click.option("--max-writes", type=int, default=32, show_default=True,
              help="Write requests in flight per worker before answering 503.")
@click.option("--commit-window-ms", type=click.FloatRange(0, 1000), default=2.0, show_default=True,
              help="Group commit: how long a write group stays open for requests already being checked "
                   "(latency a busy writer may pay for throughput; a lone writer never waits).")
@click.option("--commit-max-entries", type=click.IntRange(1, 10_000_000), default=20000, show_default=True,
              help="Group commit: most entries in one durable transaction.")
@click.option("--allow-unregistered", is_flag=True,
              help="Accept entries whose signer never registered (an open log: anyone with a key may write).")
@click.option("--open-registration", is_flag=True,
              help="Anyone may register an identity (a public log). Default: a registration needs an operator "
                   "write token or a signature by a registered identity.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Operator write tokens that admit registrations (default: LEDGER/write-tokens; "
                   "`ailedger write-token new NAME`).")
@click.option("--checkpoint-refresh", type=click.FloatRange(min=0, max=3600), default=1.0, show_default=True,
              metavar="SECONDS",
              help="When entries were appended by another process (`ailedger append`, another server), a read of "
                   "/checkpoint signs one covering them, at most this often.")
@deadline_options
@click.option("--no-web", is_flag=True, help="Serve the API only, without the explorer pages.")
@click.option("--tiles-port", type=click.IntRange(0, 65535), default=None,
              help="Also serve the tiles from a static mirror on this port (a read-only C server, off the write "
                   "path): `tiles export --watch` into --tiles-dir plus `tiles serve`.")
@click.option("--tiles-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory of that mirror (default: LEDGER/mirror).")
@click.option("--tiles-every", type=click.FloatRange(min=0.05), default=0.5, show_default=True, metavar="SECONDS",
              help="How often the mirror exports new entries.")
@click.option("--ingest-port", type=click.IntRange(1, 65535), default=None,
              help="Also take POST /v1/entries on this port through the compiled write front (C parsing, whole "
                   "groups appended at once): for many clients that each send one entry at a time (docs/api.md).")
@click.option("--ingest-checkpoint-ms", type=click.FloatRange(0, 10000), default=100.0, show_default=True,
              help="On the ingest port, a group's transaction signs the checkpoint at most this often; the groups in "
                   "between are covered within this bound (0: every group signs its own; docs/api.md).")
@click.option("--ingest-cohorts", type=click.IntRange(1, 64), default=2, show_default=True,
              help="On the ingest port, split closed-loop writers into this many groups that take turns: one is "
                   "committed while the next is checked (1: a group waits for every open connection; docs/api.md).")
@ledger_option
@json_option
def serve(host: str, port: int, workers: int, max_body: int, max_batch: int, time_window: float, rate: float,
          burst: float, max_inflight: int, max_writes: int, commit_window_ms: float, commit_max_entries: int,
          allow_unregistered: bool, open_registration: bool, token_file: Path | None, checkpoint_refresh: float,
          head_timeout: float, body_timeout: float, min_body_rate: int, no_web: bool,
          tiles_port: int | None, tiles_dir: Path | None, tiles_every: float, ingest_port: int | None,
          ingest_checkpoint_ms: float, ingest_cohorts: int, ledger_dir: Path | None, as_json: bool) -> None:
    """Serve the ledger over HTTP: write API, C2SP tlog-tiles at the site root, proofs, search, explorer.

    With --tiles-port, a static tile mirror kept current beside it serves the same tiles (the
    monitoring prefix for heavy read traffic) from a separate read-only process."""
    import uvicorn

    from ailedger.http.app import ENV_CONFIG, ServeConfig
    from ailedger.http.server import PROTOCOL
    from ailedger.server.auth import TokenFile
    from ailedger.tlog.ledger import Ledger, resolve_ledger_dir

    path = resolve_ledger_dir(ledger_dir).resolve()
    with Ledger.open(path) as led:  # fail early (and clearly) if there is no ledger
        origin, size = led.origin, led.size
    cfg = ServeConfig(max_body=max_body, max_batch=max_batch, time_window=time_window,
                      require_registered=not allow_unregistered, rate=rate, burst=burst,
                      max_inflight=max_inflight, max_writes=max_writes, web=not no_web,
                      rate_table=str(path / "run" / "ratelimit.bin"), open_registration=open_registration,
                      token_file=str((token_file or path / "write-tokens").resolve()),
                      head_timeout=head_timeout, body_timeout=body_timeout, min_body_rate=min_body_rate,
                      checkpoint_refresh=checkpoint_refresh,
                      commit_window=commit_window_ms / 1000, commit_max_entries=commit_max_entries,
                      ingest_port=ingest_port, ingest_host=host,
                      ingest_checkpoint_every=ingest_checkpoint_ms / 1000, ingest_cohorts=ingest_cohorts)
    if ingest_port is not None:
        from ailedger.http.ingest_front import available

        if not available():
            raise click.UsageError("--ingest-port needs the compiled write front (ailedger.tlog._front, built by "
                                   "a C compiler on Linux when ailedger is installed)")
        if ingest_port == port:
            raise click.UsageError("--ingest-port must differ from --port")
    assert cfg.token_file is not None  # set just above
    TokenFile(cfg.token_file).check_file()  # a token file others can read or change stops the start, exit 2
    os.environ["AILEDGER_LEDGER"] = str(path)
    os.environ[ENV_CONFIG] = json.dumps(asdict(cfg))
    mirror = None
    if tiles_port is not None:
        from ailedger.cli._mirror import MirrorProcesses

        mirror = MirrorProcesses(path, (tiles_dir or path / "mirror").resolve(), f"{host}:{tiles_port}",
                                 every=tiles_every)
    try:
        info = {"url": f"http://{host}:{port}/", "origin": origin, "size": size, "workers": workers}
        text = f"serving {origin} ({size} entries) on http://{host}:{port}/ with {workers} worker(s)"
        if ingest_port is not None:
            info["ingest_url"] = f"http://{host}:{ingest_port}/v1/entries"
            text += f"; POST /v1/entries also on port {ingest_port} (the ingest front)"
        if mirror is not None:
            info["tiles_url"] = mirror.url
            info["tiles_dir"] = str(mirror.directory)
            text += f"; the tile mirror {mirror.directory} on {mirror.url}"
        emit(as_json, info, text)
        uvicorn.run("ailedger.http.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", access_log=False, backlog=4096, timeout_keep_alive=30,
                    timeout_graceful_shutdown=5, http=PROTOCOL)
    finally:
        if mirror is not None:
            mirror.stop()


@click.command("init-postgres")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--origin", required=True, help="Log origin, e.g. example.org/ai-ledger.")
@click.option("--dsn", required=True, help="PostgreSQL connection string, e.g. 'host=127.0.0.1 dbname=ledger'.")
@click.option("--schema", default=None, help="PostgreSQL schema (default: ailedger).")
@json_option
def init_postgres(path: Path, origin: str, dsn: str, schema: str | None, as_json: bool) -> None:
    """Create a ledger directory (keys, config) whose log lives in PostgreSQL."""
    from ailedger.tlog.ledger import Ledger

    store: dict[str, str] = {"store": "postgres", "dsn": dsn}
    if schema:
        store["schema"] = schema
    with Ledger.init(path, origin, store=store) as led:
        emit(as_json, {"path": str(path), "origin": origin, "vkey": led.vkey, "store": "postgres",
                       "schema": schema or "ailedger"},
             f"created ledger {origin} at {path} (PostgreSQL schema {schema or 'ailedger'})\nvkey {led.vkey}")


def register(main: click.Group) -> None:
    main.add_command(serve)
    main.add_command(init_postgres)


