"""Shared plumbing for CLI modules: the grammar's options and value types (docs/cli.md), output,
progress bars, errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ailedger.errors import AiledgerError, BadInputError, NotFoundError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "INDEX",
    "VKEY",
    "GlobalOption",
    "emit",
    "emit_lines",
    "json_option",
    "ledger_option",
    "log_verifier",
    "open_ledger",
    "out_option",
    "progress",
    "read_input_file",
    "read_vkey",
    "with_hint",
]


class GlobalOption(click.Option):
    """``--ledger`` and ``--json``: accepted after the subcommand (its own option) or before it (an option of
    a group above it, ``ailedger --ledger DIR checkpoint``).  The value given nearest the command wins: the
    command's own, then the nearest group's, then the environment (``$AILEDGER_LEDGER``), then the default.
    cli/_grammar.py makes every ``--ledger`` and ``--json`` option of the tree one of these."""

    def global_key(self) -> str:
        return "--ledger" if "--ledger" in self.opts else "--json"

    def consume_value(self, ctx: click.Context, opts: Any) -> tuple[Any, ParameterSource]:
        value, source = super().consume_value(ctx, opts)
        if source == ParameterSource.COMMANDLINE:
            return value, source
        key = self.global_key()
        parent = ctx.parent
        while parent is not None:
            for p in parent.command.params:
                if isinstance(p, GlobalOption) and p.global_key() == key and p.name in parent.params \
                        and parent.get_parameter_source(p.name) == ParameterSource.COMMANDLINE:
                    return parent.params[p.name], ParameterSource.COMMANDLINE
            parent = parent.parent
        return value, source

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        value = super().process_value(ctx, value)
        if self.global_key() == "--json":
            # what the error handler of cli/main.py needs once the command's context is gone
            ctx.meta["ailedger.command"] = ctx.command_path
            if value:
                ctx.meta["ailedger.json"] = True
        return value


def ledger_option(f: F) -> F:
    return click.option(
        "--ledger", "ledger_dir", cls=GlobalOption, envvar="AILEDGER_LEDGER", metavar="DIR",
        type=click.Path(file_okay=False, path_type=Path),
        help="Ledger directory (default: $AILEDGER_LEDGER); also accepted before the command.",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", cls=GlobalOption, is_flag=True,
                        help="Print machine-readable JSON; also accepted before the command.")(f)


def out_option(help: str, *, required: bool = False, name: str = "output", **kw: Any) -> Callable[[F], F]:
    """The command's output file: ``-o/--out FILE`` (``--output`` is kept as an alias)."""
    kw.setdefault("metavar", "FILE")
    return click.option("-o", "--out", "--output", name, required=required, help=help, **kw)


class _VkeyType(click.ParamType):
    """A signed-note verifier key given inline (``name+keyid+key``, what `ailedger vkey` prints) or as a
    file holding one; the value is the key text, checked (its key id must match its name and key)."""

    name = "KEY|FILE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ailedger.tlog.note import parse_vkey

        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]
        text = value
        p = Path(value)
        try:
            is_file = p.is_file()
        except OSError:
            is_file = False
        if is_file:
            try:
                text = p.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                self.fail(f"cannot read verifier key file {value}: {exc}", param, ctx)
            what = f"file {value} does not hold a verifier key"
        elif "+" not in value:
            self.fail(f"{value!r} is neither a verifier key (name+keyid+key) nor an existing file", param, ctx)
        else:
            what = f"{value!r} is not a verifier key"
        try:
            return parse_vkey(text).vkey
        except BadInputError as exc:
            self.fail(f"{what}: {exc.message}", param, ctx)


VKEY = _VkeyType()


class _IndexType(click.ParamType):
    """A log entry index as the CLI prints it (``#12``) or bare (``12``)."""

    name = "INDEX"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from ailedger.encoding.refs import entry_ref

        try:
            idx = entry_ref(str(value).strip(), "index", bare=True)
        except BadInputError:
            idx = None
        if idx is None:
            self.fail(f"{value!r} is not an entry index (N or #N)", param, ctx)
        return idx


INDEX = _IndexType()


def with_hint(exc: AiledgerError, hint: str) -> AiledgerError:
    """``exc`` carrying the fix (printed after its message; ``hint`` in its JSON)."""
    exc.details["hint"] = hint
    return exc


def log_verifier(vkey: str | None, ledger_dir: Path | str | None) -> Any:
    """The log verifier an offline check uses: ``--vkey`` (key or file), else the ledger's own key."""
    import os

    from ailedger.tlog.ledger import Ledger

    if vkey:
        return read_vkey(vkey)

    if ledger_dir is None and not os.environ.get("AILEDGER_LEDGER"):
        raise with_hint(BadInputError("no --vkey given: this check needs the log's verifier key", field="vkey"),
                        "pass --vkey KEY|FILE (what `ailedger vkey` prints where the ledger is), or --ledger DIR")
    with Ledger.open(ledger_dir, read_only=True) as led:
        return led.verifier


def open_ledger(ledger_dir: Path | None, **kw: Any) -> Any:
    from ailedger.tlog.ledger import Ledger

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
    from ailedger.tlog.note import parse_vkey

    p = Path(value)
    if "+" not in value or p.exists():
        if not p.exists():
            raise NotFoundError(f"verifier key file {value} does not exist", field="vkey")
        value = p.read_text().strip()
    return parse_vkey(value)


def handle_errors(f: F) -> F:
    @functools.wraps(f)
    def wrapper(*a: Any, **kw: Any) -> Any:
        return f(*a, **kw)
    return wrapper  # type: ignore[return-value]


def deadline_options(f: F) -> F:
    """--head-timeout / --body-timeout / --min-body-rate for every HTTP server command
    (ailedger.server.guard.Deadlines; docs/api.md "Deadlines")."""
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
