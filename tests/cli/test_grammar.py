"""The CLI grammar of docs/cli.md, checked over the `--help` of every command of the real tree, and the
behaviour behind it (global options before or after the command, --vkey as a key or a file, "no --vkey
given", entry indexes as N or #N), with real subprocesses where the shell matters."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ailedger.cli._common import INDEX, GlobalOption
from ailedger.cli._grammar import walk
from ailedger.cli.main import main

COMMANDS = [(path, cmd) for path, cmd in walk(main) if path and not isinstance(cmd, click.Group)]
IDS = [" ".join(p) for p, _ in COMMANDS]
# outputs that are not the command's main output file: named for what they hold (docs/cli.md)
SECONDARY_OUTPUTS = {"--html", "--report", "--svg", "--png", "--output-data", "--embed", "--sidecar"}
OUTPUT_HELP = re.compile(r"\bwrite\b.*\b(here|to this file)\b|\b(file|folder) to (write|create)\b|\bwhere to write\b"
                         r"|^output file\b|\bproof file to write\b", re.IGNORECASE)
INDEX_ARGS = {"index", "proposal", "claim_id", "dispute_id"}


def _help(path: tuple[str, ...]) -> str:
    r = CliRunner().invoke(main, [*path, "--help"], terminal_width=200)
    assert r.exit_code == 0, (path, r.output)
    return r.output


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], str]:
    return {path: _help(path) for path, _ in COMMANDS}


def _option_lines(text: str) -> dict[str, str]:
    """Each option line of a --help text: its first spelling -> the line."""
    out: dict[str, str] = {}
    section = text.split("\nOptions:\n", 1)[-1]
    for line in section.splitlines():
        m = re.match(r"\s{1,4}(-{1,2}[\w-]+)", line)
        if m:
            out[m.group(1)] = line
    return out


def test_the_tree_is_big_enough_to_mean_something() -> None:
    assert len(COMMANDS) > 90
    top = _help(())
    assert "--ledger DIR" in top and "--json" in top


@pytest.mark.parametrize("i", range(len(COMMANDS)), ids=IDS)
def test_every_command_takes_json_and_a_global_ledger(helps: dict, i: int) -> None:
    path, cmd = COMMANDS[i]
    text = helps[path]
    lines = _option_lines(text)
    assert "--json" in lines, f"{' '.join(path)} has no --json"
    for p in cmd.params:
        if isinstance(p, click.Option) and ({"--ledger", "--json"} & set(p.opts)):
            assert isinstance(p, GlobalOption), f"{' '.join(path)} {p.opts} is not accepted before the command"
    if "--ledger" in lines:
        assert "--ledger DIR" in lines["--ledger"]


@pytest.mark.parametrize("i", range(len(COMMANDS)), ids=IDS)
def test_output_files_are_o_out(helps: dict, i: int) -> None:
    path, cmd = COMMANDS[i]
    lines = _option_lines(helps[path])
    for line in lines.values():
        if re.search(r"(^|[\s,])(-o|--out|--output)([\s,]|$)", line.split("  ")[1] if "  " in line else line):
            assert line.strip().startswith("-o, --out "), f"{' '.join(path)}: {line.strip()}"
    mains = 0
    for p in cmd.params:
        if not isinstance(p, click.Option) or p.is_flag or not p.help:
            continue
        spellings = set(p.opts) | set(p.secondary_opts)
        is_main = "-o" in spellings
        mains += is_main
        if OUTPUT_HELP.search(p.help):
            assert is_main or spellings & SECONDARY_OUTPUTS, \
                f"{' '.join(path)} writes a file with {p.opts}: spell it -o/--out (docs/cli.md)"
        if is_main:
            assert p.opts[:2] == ["-o", "--out"] and "--output" in p.opts, p.opts
    assert mains <= 1


@pytest.mark.parametrize("i", range(len(COMMANDS)), ids=IDS)
def test_keys_are_key_or_file_and_indexes_take_hash(helps: dict, i: int) -> None:
    path, cmd = COMMANDS[i]
    lines = _option_lines(helps[path])
    for name in ("--vkey", "--witness-vkey"):
        if name in lines:
            assert "KEY|FILE" in lines[name], f"{' '.join(path)}: {lines[name].strip()}"
    assert "--log-vkey" not in lines  # the older spelling parses but is not shown
    for p in cmd.params:
        if isinstance(p, click.Argument) and p.name in INDEX_ARGS:
            assert p.type is INDEX, f"{' '.join(path)} {p.name} does not take #N"
        if isinstance(p, click.Option) and p.name == "entry" and isinstance(p.type, click.types.IntParamType):
            pytest.fail(f"{' '.join(path)} --entry does not take #N")


# -- behaviour, through real processes ------------------------------------------------------------------------

def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AILEDGER_LEDGER"}
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, code: int = 0) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "ailedger", *args], cwd=cwd, env=env or _env(), capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("grammar")
    cli("init", "a", "--origin", "example.org/a", cwd=d)
    cli("init", "b", "--origin", "example.org/b", cwd=d)
    cli("--ledger", "a", "identity", "new", "alice", cwd=d)
    (d / "r.json").write_text(json.dumps({"type": "note", "body": {"n": 1}}))
    cli("--ledger", "a", "append", "--as", "alice", "r.json", cwd=d)
    return d


def test_ledger_and_json_before_or_after_the_command(ledger: Path) -> None:
    d = ledger
    before = cli("--ledger", "a", "checkpoint", cwd=d).stdout
    after = cli("checkpoint", "--ledger", "a", cwd=d).stdout
    assert before == after and before.startswith("example.org/a\n2\n")
    j1 = json.loads(cli("--json", "--ledger", "a", "vkey", cwd=d).stdout)
    j2 = json.loads(cli("vkey", "--ledger", "a", "--json", cwd=d).stdout)
    j3 = json.loads(cli("--json", "vkey", "--ledger", "a", cwd=d).stdout)
    assert j1 == j2 == j3 and j1["vkey"].startswith("example.org/a+")
    # nearest wins: the command's own, then the one before it, then $AILEDGER_LEDGER
    env_b = _env(AILEDGER_LEDGER=str(d / "b"))
    assert cli("vkey", cwd=d, env=env_b).stdout.startswith("example.org/b+")
    assert cli("--ledger", "a", "vkey", cwd=d, env=env_b).stdout.startswith("example.org/a+")
    assert cli("--ledger", "a", "vkey", "--ledger", "b", cwd=d).stdout.startswith("example.org/b+")
    # nested groups: before the group, after the subcommand
    assert json.loads(cli("--ledger", "a", "--json", "identity", "list", cwd=d).stdout)["identities"][0]["name"] \
        == "alice"
    # errors in JSON when --json came first
    p = cli("--json", "--ledger", "a", "entry", "9", cwd=d, code=2)
    assert json.loads(p.stdout)["ok"] is False and "error: no entry 9" in p.stderr


def test_entry_indexes_take_n_or_hash_n(ledger: Path) -> None:
    d = ledger
    out = json.loads(cli("--ledger", "a", "append", "--as", "alice", "r.json", "--json", cwd=d).stdout)
    n = out["index"]
    assert json.loads(cli("--ledger", "a", "entry", f"#{n}", "--json", cwd=d).stdout)["index"] == n
    assert json.loads(cli("--ledger", "a", "entry", str(n), "--json", cwd=d).stdout)["index"] == n
    cli("--ledger", "a", "prove", f"#{n}", "-o", "p.tlog-proof", cwd=d)
    cli("--ledger", "a", "prove", str(n), "--out", "p2.tlog-proof", cwd=d)
    cli("--ledger", "a", "prove", str(n), "--output", "p3.tlog-proof", cwd=d)
    assert (d / "p.tlog-proof").read_bytes() == (d / "p2.tlog-proof").read_bytes() == (d / "p3.tlog-proof").read_bytes()
    p = cli("--ledger", "a", "entry", "#x", cwd=d, code=2)
    assert "is not an entry index (N or #N)" in p.stderr
    # a usage error is bad input: JSON too with --json, before or after the command
    for args in (("--json", "entry", "#x"), ("entry", "#x", "--json")):
        err = json.loads(cli("--ledger", "a", *args, cwd=d, code=2).stdout)["error"]
        assert err["code"] == "bad_input" and "not an entry index" in err["message"]


def test_vkey_is_a_key_or_a_file_and_without_it_the_error_says_so(ledger: Path) -> None:
    d = ledger
    vk = cli("--ledger", "a", "vkey", cwd=d).stdout.strip()
    (d / "a.vkey").write_text(vk + "\n")
    cli("--ledger", "a", "prove", "1", "-o", "e1.tlog-proof", cwd=d)
    p = cli("verify", "e1.tlog-proof", "--vkey", vk, cwd=d, code=2)  # the proof alone does not carry the entry
    assert "`ailedger entry N -o FILE`" in p.stderr
    cli("--ledger", "a", "entry", "#1", "-o", "e1.bin", cwd=d)
    for form in (vk, "a.vkey"):
        assert json.loads(cli("verify", "e1.tlog-proof", "--entry", "e1.bin", "--vkey", form, "--json",
                              cwd=d).stdout)["ok"]
    # the other log's key: a verification failure, exit 1
    other = cli("--ledger", "b", "vkey", cwd=d).stdout.strip()
    cli("verify", "e1.tlog-proof", "--entry", "e1.bin", "--vkey", other, cwd=d, code=1)
    # neither a file nor a key; a file that holds no key; a key whose id does not match
    p = cli("verify", "e1.tlog-proof", "--vkey", "nosuchfile", cwd=d, code=2)
    assert "neither a verifier key" in p.stderr
    p = cli("verify", "e1.tlog-proof", "--vkey", "r.json", cwd=d, code=2)
    assert "does not hold a verifier key" in p.stderr
    name, _, key = vk.split("+", 2)
    p = cli("verify", "e1.tlog-proof", "--vkey", f"{name}+00000000+{key}", cwd=d, code=2)
    assert "not a verifier key" in p.stderr
    # no --vkey and no ledger
    p = cli("verify", "e1.tlog-proof", cwd=d, code=2)
    assert "no --vkey given" in p.stderr and "no ledger given" not in p.stderr
    cli("checkpoint", "--ledger", "a", "-o", "cp1", cwd=d)
    cli("--ledger", "a", "append", "--as", "alice", "r.json", "--type", "other", cwd=d)
    cli("checkpoint", "--ledger", "a", "-o", "cp2", cwd=d)
    old, new = ((d / f).read_text().split("\n")[1] for f in ("cp1", "cp2"))
    proof = cli("--ledger", "a", "consistency", old, new, cwd=d).stdout
    (d / "c.proof").write_text(proof)
    assert "extends" in cli("consistency", "--old", "cp1", "--new", "cp2", "--proof", "c.proof", "--vkey", "a.vkey",
                            cwd=d).stdout
    p = cli("consistency", "--old", "cp1", "--new", "cp2", "--proof", "c.proof", cwd=d, code=2)
    assert "no --vkey given" in p.stderr


# every offline check, with no --vkey and no ledger: "no --vkey given" (they said "no ledger given")
OFFLINE = [
    ["verify", "F"],
    ["consistency", "--old", "F", "--new", "F", "--proof", "F"],
    ["dataset", "verify", "F", "--record", "x"],
    ["dataset", "verify-removal", "F"],
    ["dataset", "verify-screening", "F"],
    ["model", "verify-part", "F", "F"],
    ["inference", "verify", "F"],
]


@pytest.mark.parametrize("args", OFFLINE, ids=[" ".join(a[:2]) for a in OFFLINE])
def test_offline_checks_without_a_key_say_no_vkey_given(tmp_path: Path, args: list[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AILEDGER_LEDGER", raising=False)
    f = tmp_path / "F"
    f.write_text("anything\n")
    r = CliRunner().invoke(main, [str(f) if a == "F" else a for a in args])
    assert r.exit_code == 2, r.output
    assert "no --vkey given" in r.output and "no ledger given" not in r.output, r.output
    assert "pass --vkey KEY|FILE" in r.output


def test_vkey_file_is_taken_by_every_key_option(tmp_path: Path) -> None:
    """The key-taking options other than `verify`'s, fed a key file (dataset verify-removal refused one)."""
    d = tmp_path
    cli("init", "L", "--origin", "example.org/l", cwd=d)
    env = _env(AILEDGER_LEDGER=str(d / "L"))
    cli("identity", "new", "alice", cwd=d, env=env)
    vk = cli("vkey", cwd=d, env=env).stdout.strip()
    (d / "log.vkey").write_text(vk + "\n")
    (d / "a.jsonl").write_text('{"t": "kept"}\n')
    (d / "b.jsonl").write_text('{"t": "cut"}\n')
    cli("dataset", "commit", "a.jsonl", "b.jsonl", "--name", "d1", "--as", "alice", cwd=d, env=env)
    cli("dataset", "remove-path", "d1", "a.jsonl", "b.jsonl", "--drop", "b.jsonl", "--name", "d2", "--as", "alice",
        "-o", "rm.proof", cwd=d, env=env)
    for form in ("log.vkey", vk):
        rep = json.loads(cli("dataset", "verify-removal", "rm.proof", "--vkey", form, "--json", cwd=d).stdout)
        assert rep["removed_keys"] == 1 and rep["new_dataset"] == "d2"
    p = cli("dataset", "verify-removal", "rm.proof", cwd=d, code=2)
    assert "no --vkey given" in p.stderr
    # a witness's key, as a file, for `witness configure` (it took only inline keys)
    cli("witness", "init", "w", "--name", "w.example/w", cwd=d)
    (d / "w.vkey").write_text(cli("witness", "vkey", "--witness", "w", cwd=d).stdout)
    out = json.loads(cli("witness", "configure", "--url", "http://127.0.0.1:9/", "--vkey", "w.vkey", "--json",
                         cwd=d, env=env).stdout)
    assert out[0]["vkey"] == (d / "w.vkey").read_text().strip()
