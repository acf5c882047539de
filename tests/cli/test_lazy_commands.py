"""The root command loads its command modules on demand (cli/main.py ``_Group``): `ailedger NAME ...` imports
only the modules that add to NAME.  Each top-level command, loaded alone in a new process, must be exactly
what it is in a full load (every node, option spelling, help text, extra tag), and the module table must be
what a full load records."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# prints {top-level name: description of its tree}; argv[1:] = names to load one by one (none: a full load)
DUMP = textwrap.dedent("""
    import json, sys
    import click
    from ailedger.cli.main import COMMANDS, main

    def tree(cmd, path, ctx):
        sub = click.Context(cmd, info_name=path.split()[-1], parent=ctx)
        out = {path: {"help": cmd.get_help(sub), "extra": getattr(cmd, "ailedger_extra", "-"),
                      "params": [[type(p).__name__, p.opts, p.secondary_opts, p.metavar, type(p.type).__name__, p.type.name]
                                 for p in cmd.params]}}
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.commands):
                out.update(tree(cmd.commands[name], path + " " + name, sub))
        return out

    root = click.Context(main, info_name="ailedger")
    names = sys.argv[1:]
    if names:
        got = {}
        for name in names:
            cmd = main.get_command(root, name)
            loaded = sorted(main._loaded)
            got[name] = {"tree": tree(cmd, name, root), "loaded": loaded}
    else:
        got = {name: {"tree": tree(main.commands[name], name, root)} for name in main.commands}
        got["__modules__"] = sorted(sys.modules)
    print(json.dumps(got))
""")


def _dump(*names: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "COLUMNS": "100"}
    env.pop("AILEDGER_LEDGER", None)
    r = subprocess.run([sys.executable, "-c", DUMP, *names], env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_each_command_loaded_alone_is_the_same_as_in_a_full_load():
    full = _dump()
    full.pop("__modules__")
    from ailedger.cli.main import _modules_for

    # one process per group of names that share no module, so each name is loaded alone in its process
    pending = sorted(full)
    batches: list[list[str]] = []
    while pending:
        batch: list[str] = []
        used: set[str] = set()
        for name in list(pending):
            mods = set(_modules_for(name))
            if not mods & used:
                batch.append(name)
                used |= mods
                pending.remove(name)
        batches.append(batch)
    for batch in batches:
        alone = _dump(*batch)
        for name in batch:
            assert alone[name]["tree"] == full[name]["tree"], name
    # `dataset` does not need the 28 modules
    assert len(_modules_for("dataset")) < 10 and "gov" not in _modules_for("dataset")


def test_lazy_command_table_matches_a_full_load():
    """``_TOUCHES`` (module -> the top-level commands it adds to or changes) is what registering every module
    records; a module added to COMMANDS without its row, or a row gone stale, fails here."""
    code = ("import json\nfrom ailedger.cli import main as m\n"
            "t = m._load_modules([n for n, _, _ in m.COMMANDS])\n"
            "print(json.dumps({k: sorted(v) for k, v in t.items()}))\n")
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    from ailedger.cli.main import _TOUCHES, COMMANDS

    assert json.loads(r.stdout) == {k: sorted(v) for k, v in _TOUCHES.items()}
    assert list(_TOUCHES) == [name for name, _, _ in COMMANDS]


def test_a_command_loads_only_its_modules():
    code = ("import sys\nfrom ailedger.cli.main import main\n"
            "try:\n    main(['vkey', '--help'], prog_name='ailedger')\nexcept SystemExit:\n    pass\n"
            "print(sorted(main._loaded), file=sys.stderr)\n"
            "print(sorted(m for m in sys.modules if m.startswith('ailedger.cli.')), file=sys.stderr)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    loaded, modules = r.stderr.strip().splitlines()[-2:]
    assert loaded == "['log']"
    assert "ailedger.cli.gov" not in modules and "ailedger.cli.log" in modules
    # --help at the root lists every command, so it loads them all
    code2 = code.replace("['vkey', '--help']", "['--help']")
    r = subprocess.run([sys.executable, "-c", code2], env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "dataset" in r.stdout and "gov" in r.stdout, r.stderr[-2000:]
    from ailedger.cli.main import COMMANDS

    assert ast.literal_eval(r.stderr.strip().splitlines()[-2]) == sorted(name for name, _, _ in COMMANDS)
