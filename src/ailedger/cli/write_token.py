"""``ailedger write-token ...``: operator-issued bearer tokens that admit writes (docs/api.md "Authentication").

A token file holds only SHA-256 hashes of the tokens, is created mode 0600, and is read by
``ailedger serve`` (default LEDGER/write-tokens: admits identity registrations) and by
``ailedger storage node serve --token-file`` (admits shard writes). A token is printed once, at
creation; revoking it takes effect on the servers' next request (they re-read the file).
"""

from __future__ import annotations

from pathlib import Path

import click

from ailedger.cli._common import emit, emit_lines, json_option, ledger_option

__all__ = ["register"]


def _file(token_file: Path | None, ledger_dir: Path | None) -> Path:
    if token_file is not None:
        return token_file
    from ailedger.tlog.ledger import resolve_ledger_dir

    return resolve_ledger_dir(ledger_dir) / "write-tokens"


_file_option = click.option("--file", "token_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                            help="Token file (default: LEDGER/write-tokens, what `ailedger serve` reads).")


def register(main: click.Group) -> None:
    @main.group("write-token")
    def write_token() -> None:
        """Operator-issued tokens that admit writes to ailedger servers (Authorization: Bearer)."""

    @write_token.command("new")
    @click.argument("name")
    @_file_option
    @ledger_option
    @json_option
    def new_cmd(name: str, token_file: Path | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Issue a token named NAME and print it (only once: the file keeps its SHA-256)."""
        from ailedger.server.auth import TokenFile

        path = _file(token_file, ledger_dir)
        token = TokenFile(path).issue(name)
        emit(as_json, {"name": name, "token": token, "file": str(path)}, token)
        if not as_json:  # the token alone on stdout, so that TOKEN=$(ailedger write-token new NAME) works
            click.echo(f"(write token {name!r} in {path}; send it as Authorization: Bearer <token>; it is not "
                       "shown again)", err=True)

    @write_token.command("list")
    @_file_option
    @ledger_option
    @json_option
    def list_cmd(token_file: Path | None, ledger_dir: Path | None, as_json: bool) -> None:
        """List the issued tokens (names, ids and creation times; never the tokens)."""
        from ailedger.server.auth import TokenFile

        path = _file(token_file, ledger_dir)
        rows = TokenFile(path).entries()
        emit_lines({"file": str(path), "tokens": rows}, as_json,
                   [f"{r['name']}\t{r['id']}\t{r['created']}" for r in rows] or [f"no write tokens in {path}"])

    @write_token.command("revoke")
    @click.argument("name")
    @_file_option
    @ledger_option
    @json_option
    def revoke_cmd(name: str, token_file: Path | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Revoke every token named NAME."""
        from ailedger.server.auth import TokenFile

        path = _file(token_file, ledger_dir)
        gone = TokenFile(path).revoke(name)
        emit(as_json, {"name": name, "revoked": gone, "file": str(path)}, f"revoked {gone} write token(s) {name!r}")
