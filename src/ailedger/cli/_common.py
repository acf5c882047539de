"""Shared plumbing for CLI modules: options, output, progress bars, errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ailedger.core.errors import AiledgerError, BadInputError, NotFoundError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["ledger_option", "json_option", "emit", "emit_lines", "open_ledger", "progress", "read_input_file", "read_vkey"]


def ledger_option(f: F) -> F:
    return click.option(
        "--ledger", "ledger_dir", envvar="AILEDGER_LEDGER", type=click.Path(file_okay=False, path_type=Path),
        help="Ledger directory (default: $AILEDGER_LEDGER).",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


def open_ledger(ledger_dir: Path | None, **kw: Any) -> Any:
    from ailedger.services.ledger import Ledger

    return Ledger.open(ledger_dir, **kw)


def emit(as_json: bool, data: dict[str, Any], text: str | Callable[[], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=None, sort_keys=True, default=str))
    else:
        click.echo(text() if callable(text) else text)


def emit_lines(obj: Any, as_json: bool, lines: list[str]) -> None:
    """JSON (indented, sorted) for scripts, or the given lines for people."""
    if as_json:
        click.echo(json.dumps(obj, indent=1, sort_keys=True))
    else:
        for ln in lines:
            click.echo(ln)


def progress(total: int | None, desc: str, enabled: bool = True) -> Any:
    """A tqdm bar on stderr when it is a terminal (and not in --json mode)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="entry", unit_scale=True, file=sys.stderr,
                disable=not (enabled and sys.stderr.isatty()), leave=False)


def read_input_file(path: str | Path, what: str) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{what} file {p} does not exist") from None
    except IsADirectoryError:
        raise BadInputError(f"{what} {p} is a directory, not a file") from None
    except PermissionError:
        raise BadInputError(f"{what} file {p} is not readable") from None


def read_vkey(value: str) -> Any:
    """A verifier key given inline (name+id+key) or as a file holding one."""
    from ailedger.core.note import parse_vkey

    p = Path(value)
    if "+" not in value or p.exists():
        if not p.exists():
            raise NotFoundError(f"verifier key file {value} does not exist", field="vkey")
        value = p.read_text().strip()
    return parse_vkey(value)


def handle_errors(f: F) -> F:
    @functools.wraps(f)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return f(*a, **kw)
        except AiledgerError:
            raise
    return wrapper  # type: ignore[return-value]


def deadline_options(f: F) -> F:
    """--head-timeout / --body-timeout / --min-body-rate for every HTTP server command
    (ailedger.services.httpguard.Deadlines; docs/api.md "Deadlines")."""
    for opt in reversed([
        click.option("--head-timeout", type=click.FloatRange(min=0.01, max=86400), default=10.0, show_default=True,
                     metavar="SECONDS", help="A request head must arrive whole within this time of its first byte."),
        click.option("--body-timeout", type=click.FloatRange(min=0.01, max=86400), default=10.0, show_default=True,
                     metavar="SECONDS", help="A request body must arrive within this time after its head, plus "
                                             "1 s per --min-body-rate bytes received."),
        click.option("--min-body-rate", type=click.IntRange(min=1), default=65536, show_default=True,
                     metavar="BYTES/S", help="Slowest average rate a request body may arrive at."),
    ]):
        f = opt(f)
    return f
