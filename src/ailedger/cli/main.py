"""The ``ailedger`` command: a click group; the modules named in ``COMMANDS`` add their commands."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ailedger import __version__
from ailedger.cli._common import GlobalOption
from ailedger.cli._extras import guard
from ailedger.cli._grammar import apply as apply_grammar
from ailedger.cli._grammar import apply_below
from ailedger.errors import AiledgerError, VerificationError


class _Group(click.Group):
    """The root group.  Its command modules (``COMMANDS``) are imported on demand: running ``ailedger NAME ...``
    loads only the modules that add to NAME (``_TOUCHES``, with what those modules add to elsewhere, in
    ``COMMANDS`` order); any other look at ``commands`` (``--help``, an unknown name, code that walks the tree)
    loads them all first, so the tree seen is always the whole one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loading = False
        self._loaded: set[str] = set()
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        if not self._loading and len(self._loaded) < len(COMMANDS):
            _load_modules([name for name, _, _ in COMMANDS])
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _load_modules(_modules_for(cmd_name))
        return self._commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]  # the command line after the global options
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # a usage error (unknown option, a value of the wrong form) is bad input too: JSON with --json
            if ctx.meta.get("ailedger.json") or "--json" in rest:
                click.echo(json.dumps({"ok": False, "error": {"code": "bad_input", "message": exc.format_message()}}))
            raise
        except AiledgerError as exc:
            from ailedger.cli._hints import hint_for

            hint = exc.details.get("hint") or hint_for(exc, ctx)
            if hint:
                exc.details["hint"] = hint
            as_json = bool(ctx.meta.get("ailedger.json")) or "--json" in sys.argv
            if as_json:
                click.echo(json.dumps({"ok": False, "error": exc.to_dict()}, default=str))
            click.echo(f"error: {exc.message}" + (f"; {hint}" if hint else ""), err=True)
            if os.environ.get("AILEDGER_DEBUG"):
                raise
            ctx.exit(1 if isinstance(exc, VerificationError) else 2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="ailedger")
@click.option("--ledger", "ledger_dir", cls=GlobalOption, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Ledger directory for the command (default: $AILEDGER_LEDGER); also accepted after it.")
@click.option("--json", "as_json", cls=GlobalOption, is_flag=True,
              help="Machine-readable JSON output; also accepted after the command.")
def main(ledger_dir: Path | None, as_json: bool) -> None:
    """ailedger: a verifiable, append-only ledger for AI artifacts and decisions.

    Every command finds its ledger by --ledger DIR or $AILEDGER_LEDGER and takes --json; both may
    come before or after the command. The grammar every command follows is docs/cli.md.
    """


# Every command module, in the order it registers (``log`` first: the kernel's commands), with the extra
# its commands need beyond the kernel (None: none) and the commands that differ from it.  A command whose
# extra is missing says ``install ailedger[<extra>]`` and exits 2 (cli/_extras.py).
COMMANDS: tuple[tuple[str, str | None, dict[str, str | None]], ...] = (
    ("log", None, {}),
    ("anchor", "anchoring", {}),
    ("audit_contract", "contractaudit", {}),
    ("blob", "blobs", {"blob cid": None, "blob car": None}),
    ("compute", "compute", {"compute replay": "compute"}),
    ("content", "content", {}),
    ("dataset", "provenance", {"dataset verify": None, "dataset show": None}),
    ("defi", "defi", {}),
    ("epcis", "supplychain", {}),
    ("fl", "federated", {}),
    ("gateway", "inference", {"gateway extraction-test": "extraction", "gateway check-alarm": "extraction"}),
    ("gov", "governance", {}),
    ("daoai", "daoai", {}),  # after gov: adds gov advise / advice / advice-replay
    ("inference", None, {"inference report": "inference"}),
    ("monitor", None, {}),
    ("model", "provenance", {"model verify": None, "model verify-part": None}),
    ("integrations", "huggingface", {"mlflow register": "mlflow", "model verify-offline": "provenance"}),
    ("private", "private", {}),
    ("report", "reports", {"report verify": None}),
    ("screen", "screening", {"dataset verify-screening": None, "dataset verify-removal": None}),
    ("serve", "server", {}),
    ("stake", "governance", {}),
    ("storage", "blobs", {}),
    ("subnet", "subnets", {}),
    ("witness", None, {}),
    ("write_token", None, {}),
    ("vault", "defi", {"vault policy": "provenance"}),
    ("verifiable", "zk", {"eval commit": None, "eval reveal": None, "eval verify": "eval"}),
)


# module -> the top-level commands it adds to or changes (checked against a full load by
# tests/cli/test_extras.py::test_lazy_command_table_matches_a_full_load)
_TOUCHES: dict[str, tuple[str, ...]] = {
    "log": ("append", "audit", "checkpoint", "consistency", "doctor", "entry", "find", "identity", "init", "prove",
            "tiles", "verify", "vkey"),
    "anchor": ("anchor",),
    "audit_contract": ("audit-contract", "audit-eval"),
    "blob": ("blob",),
    "compute": ("compute",),
    "content": ("content",),
    "dataset": ("dataset",),
    "defi": ("agent",),
    "epcis": ("epcis",),
    "fl": ("fl",),
    "gateway": ("gateway",),
    "gov": ("gov",),
    "daoai": ("gov",),
    "inference": ("inference",),
    "monitor": ("monitor",),
    "model": ("model",),
    "integrations": ("mlflow", "model"),
    "private": ("private",),
    "report": ("report",),
    "screen": ("dataset",),
    "serve": ("init-postgres", "serve"),
    "stake": ("stake",),
    "storage": ("dataset", "model", "storage"),
    "subnet": ("subnet",),
    "witness": ("witness",),
    "write_token": ("write-token",),
    "vault": ("vault",),
    "verifiable": ("eval", "inference", "model"),
}


def _leaves(group: click.Command, path: tuple[str, ...] = ()) -> dict[int, tuple[str, click.Command]]:
    if isinstance(group, click.Group):
        out: dict[int, tuple[str, click.Command]] = {}
        for name, cmd in group.commands.items():
            out.update(_leaves(cmd, (*path, name)))
        return out
    return {id(group): (" ".join(path), group)}


def _modules_for(cmd_name: str) -> list[str]:
    """The command modules to load for top-level command ``cmd_name``: those that touch it, and (so each
    module finds the groups it extends) those that touch anything they touch; in ``COMMANDS`` order."""
    names = {cmd_name}
    while True:
        mods = {m for m, touched in _TOUCHES.items() if names & set(touched)}
        more = {t for m in mods for t in _TOUCHES[m]} - names
        if not more:
            break
        names |= more
    return [name for name, _, _ in COMMANDS if name in mods]


def _load_modules(names: list[str]) -> dict[str, set[str]]:
    """Import and register the command modules ``names`` not loaded yet (in ``COMMANDS`` order), guard their
    new commands and apply the grammar to what they touched; returns module -> the top-level names it touched."""
    group = main
    todo = [row for row in COMMANDS if row[0] in names and row[0] not in group._loaded]
    touched: dict[str, set[str]] = {}
    if not todo or group._loading:
        return touched
    group._loading = True
    try:
        for name, extra, overrides in todo:
            group._loaded.add(name)
            before = _leaves(main)
            shape = {n: _shape(c) for n, c in group._commands.items()}
            try:
                module = importlib.import_module(f"ailedger.cli.{name}")
            except Exception as exc:  # noqa: BLE001 - one broken module must not take the CLI down
                click.echo(f"warning: command module {name} failed to load: {exc}", err=True)
                continue
            module.register(main)
            for key, (path, cmd) in _leaves(main).items():
                if key not in before:
                    guard(cmd, overrides.get(path, extra), path, home=extra)
            touched[name] = {n for n, c in group._commands.items() if shape.get(n) != _shape(c)}
        for top in sorted({t for ts in touched.values() for t in ts}):
            apply_below(group._commands[top])
    finally:
        group._loading = False
    return touched


def _shape(cmd: click.Command) -> tuple[Any, ...]:
    """What registering a module can change under a top-level command: its nodes, their callbacks, their
    parameters."""
    nodes = []
    stack: list[tuple[str, click.Command]] = [("", cmd)]
    while stack:
        path, c = stack.pop()
        nodes.append((path, id(c), id(c.callback), tuple(id(p) for p in c.params)))
        if isinstance(c, click.Group):
            stack.extend((f"{path} {n}", sub) for n, sub in c.commands.items())
    return tuple(sorted(nodes))


main._loading = True
try:
    apply_grammar(main)  # the root's own options here; each top-level command's tree when its modules load
finally:
    main._loading = False

if __name__ == "__main__":
    main()
