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
from ailedger.errors import AiledgerError, VerificationError


class _Group(click.Group):
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


def _leaves(group: click.Command, path: tuple[str, ...] = ()) -> dict[int, tuple[str, click.Command]]:
    if isinstance(group, click.Group):
        out: dict[int, tuple[str, click.Command]] = {}
        for name, cmd in group.commands.items():
            out.update(_leaves(cmd, (*path, name)))
        return out
    return {id(group): (" ".join(path), group)}


def _load_commands() -> None:
    for name, extra, overrides in COMMANDS:
        before = _leaves(main)
        try:
            module = importlib.import_module(f"ailedger.cli.{name}")
        except Exception as exc:  # noqa: BLE001 - one broken module must not take the CLI down
            click.echo(f"warning: command module {name} failed to load: {exc}", err=True)
            continue
        module.register(main)
        for key, (path, cmd) in _leaves(main).items():
            if key not in before:
                guard(cmd, overrides.get(path, extra), path, home=extra)


_load_commands()
apply_grammar(main)

if __name__ == "__main__":
    main()
