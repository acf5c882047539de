"""The CLI grammar (docs/cli.md), applied to the whole command tree once every module has registered.

Modules declare their options as they like; this makes the parts of the grammar that are spellings and
value forms hold for every command, including commands added later:

- every ``--ledger`` and ``--json`` option is a :class:`GlobalOption` (accepted before or after the
  subcommand);
- every output-file option answers to ``-o`` and ``--out`` (and ``--output``, the older spelling);
- every ``--vkey`` / ``--log-vkey`` / ``--witness-vkey`` option takes a key or a file holding one.

``tests/cli/test_grammar.py`` walks the tree through ``--help`` and checks the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from ailedger.cli._common import VKEY, GlobalOption

__all__ = ["OutOption", "apply", "apply_below", "walk"]

OUT_SPELLINGS = ("-o", "--out", "--output")
VKEY_OPTIONS = {"--vkey", "--log-vkey", "--witness-vkey"}
HIDDEN_ALIASES = {"--output", "--log-vkey"}
LEDGER_HELP = "Ledger directory (default: $AILEDGER_LEDGER); also accepted before the command."


def walk(group: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree with its path of names (groups too, before their children)."""
    yield path, group
    if isinstance(group, click.Group):
        for name in sorted(group.commands):
            yield from walk(group.commands[name], (*path, name))


class OutOption(click.Option):
    """An output-file option: its help shows ``-o, --out``; the older ``--output`` still parses."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        keep = self.opts
        self.opts = [o for o in keep if o not in HIDDEN_ALIASES] or keep
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = keep


class _VkeyOption(OutOption):
    """A key option whose older spelling (``--log-vkey``) still parses but is not shown."""


def _upgrade(opt: click.Option, cls: type[click.Option]) -> None:
    if type(opt) is click.Option:  # a subclass means its author chose its behaviour; leave it
        opt.__class__ = cls


def apply(root: click.Group) -> click.Group:
    _apply(root, root)
    return root


def apply_below(top: click.Command) -> None:
    """The grammar for one command (and its tree) under the root: what ``apply`` does to that part of the tree."""
    _apply(top, None)


def _apply(start: click.Command, root: click.Command | None) -> None:
    for _, cmd in walk(start):
        for p in cmd.params:
            if not isinstance(p, click.Option):
                continue
            names = set(p.opts) | set(p.secondary_opts)
            if "--ledger" in names or "--json" in names:
                _upgrade(p, GlobalOption)
                if "--ledger" in names and cmd is not root:
                    p.metavar = "DIR"
                    p.help = LEDGER_HELP
            elif names & set(OUT_SPELLINGS):
                p.opts = [*OUT_SPELLINGS, *(o for o in p.opts if o not in OUT_SPELLINGS)]
                _upgrade(p, OutOption)
                if p.metavar is None and isinstance(p.type, (click.Path, click.types.StringParamType)):
                    p.metavar = "FILE"
            elif names & VKEY_OPTIONS:
                if isinstance(p.type, click.types.StringParamType):
                    p.type = VKEY
                if p.type is VKEY:
                    p.metavar = None  # one spelling in every --help: the type's KEY|FILE
                _upgrade(p, _VkeyOption)


def option_names(cmd: click.Command) -> dict[str, Any]:
    """Every spelling a command's options answer to -> the option."""
    return {o: p for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
