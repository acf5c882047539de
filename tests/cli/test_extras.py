"""The light install: `pip install ailedger` is the kernel (the log and offline verification); each heavy
capability is an extra, and a command whose extra is missing says which one to install and exits 2.

A missing extra is simulated in a subprocess of the full install: a meta-path finder refuses every
third-party module outside the kernel's (the kernel install, as closely as one venv can show it), or
``sys.modules[name] = None`` for one module.  tests/test_install.py installs the kernel for real in a
fresh venv (slow)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from ailedger.cli import _extras
from ailedger.cli.main import COMMANDS, _leaves, main

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

# top-level modules the kernel's distributions install (cryptography and PyNaCl bring cffi)
KERNEL_MODULES = sorted({*_extras.KERNEL.values(), "cffi", "pycparser", "ailedger"})

# a subprocess prelude: refuse every third-party module that the kernel install would not have
BLOCK_ALL_BUT_KERNEL = f"""
import sys
_ALLOWED = set({KERNEL_MODULES!r})
class _KernelOnly:
    def find_spec(self, name, path=None, target=None):
        top = name.split('.')[0]
        if top in sys.stdlib_module_names or top in _ALLOWED or top.startswith('_'):
            return None
        raise ModuleNotFoundError(f"No module named {{name!r}} (not in the kernel install)", name=name)
sys.meta_path.insert(0, _KernelOnly())
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AILEDGER_LEDGER", None)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli(args: list[str], cwd: Path, prelude: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
    code = prelude + "\nfrom ailedger.cli.main import main\nmain(sys.argv[1:], prog_name='ailedger')\n"
    p = subprocess.run([sys.executable, "-c", "import sys\n" + code, *args], cwd=cwd, env=_env(),
                       capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def block(*modules: str) -> str:
    return "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger with one identity and two records, made by the full install; a proof of entry 1.  Shared
    by the tests of this module: none of them may change it."""
    tmp_path = tmp_path_factory.mktemp("extras")
    cli(["init", "led", "--origin", "example.org/extras"], tmp_path)
    cli(["--ledger", "led", "identity", "new", "alice"], tmp_path)
    for i in range(2):
        (tmp_path / f"r{i}.json").write_text(json.dumps({"type": "dataset.note", "body": {"n": i}}))
        cli(["--ledger", "led", "append", "--as", "alice", f"r{i}.json"], tmp_path)
    cli(["--ledger", "led", "prove", "1", "-o", "p.tlog-proof"], tmp_path)
    cli(["--ledger", "led", "entry", "1", "-o", "e1.bin"], tmp_path)
    (tmp_path / "log.vkey").write_text(cli(["--ledger", "led", "vkey"], tmp_path).stdout)
    return tmp_path


def _snapshot(cwd: Path) -> dict[str, bytes]:
    """Every file of the ledger directory with its bytes."""
    return {str(p.relative_to(cwd)): p.read_bytes() for p in sorted((cwd / "led").rglob("*")) if p.is_file()}


# -- the table agrees with pyproject.toml and with the command tree ------------------------------------------

def _dist(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower()


def test_pyproject_extras_match_the_table():
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_dist(r) for r in proj["dependencies"]) == sorted(_extras.KERNEL)
    opt = proj["optional-dependencies"]
    for extra, dists in _extras.EXTRAS.items():
        own = [_dist(r) for r in opt[extra] if not r.startswith("ailedger[")]
        assert sorted(own) == sorted(dists), extra
        assert set(_extras.PROBES[extra]) == set(dists.values()) - {"uvloop"}, extra
    everything = {e for r in opt["all"] for e in re.findall(r"ailedger\[(.*)\]", r)[0].split(",")}
    # every extra but federated and contractaudit (Flower and Slither pin older libraries than the rest is
    # tested with: pyproject.toml, docs/federated.md, docs/contract-audit.md)
    assert everything == set(_extras.EXTRAS) - {"federated", "contractaudit"}, "all must gather every extra but two"
    heavy = {"web3", "scikit-learn", "torch", "numpy", "matplotlib", "starlette", "av", "c2pa-python", "cleanlab"}
    assert not heavy & {_dist(r) for r in proj["dependencies"]}


def test_every_command_module_is_listed_and_every_command_tagged():
    modules = {p.stem for p in (SRC / "ailedger" / "cli").glob("*.py") if not p.stem.startswith("_")} - {"main"}
    assert {name for name, _, _ in COMMANDS} == modules
    leaves = {path: cmd for path, cmd in _leaves(main).values()}
    for _, extra, overrides in COMMANDS:
        assert extra is None or extra in _extras.EXTRAS
        for path, over in overrides.items():
            assert path in leaves, f"override for unknown command {path!r}"
            assert over is None or over in _extras.EXTRAS
    untagged = [p for p, c in leaves.items() if not hasattr(c, "ailedger_extra")]
    assert not untagged
    kernel = {p for p, c in leaves.items() if c.ailedger_extra is None}  # type: ignore[attr-defined]
    assert {"verify", "prove", "append", "init", "checkpoint", "consistency", "audit", "witness verify"} <= kernel
    assert leaves["content register"].ailedger_extra == "content"  # type: ignore[attr-defined]
    assert leaves["serve"].ailedger_extra == "server"  # type: ignore[attr-defined]


def test_extra_for_module():
    assert _extras.extra_for_module("sklearn.neighbors") == "screening"
    assert _extras.extra_for_module("numpy", prefer="content") == "content"
    assert _extras.extra_for_module("numpy", prefer="anchoring") in {"content", "screening", "provenance"}
    assert _extras.extra_for_module("web3.exceptions") == "anchoring"
    assert _extras.extra_for_module("web3", prefer="governance") == "governance"
    assert _extras.extra_for_module("yaml") is None  # not ours: a real bug, not a missing extra


# -- the kernel alone ------------------------------------------------------------------------------------------

def test_cli_startup_imports_only_the_kernel():
    """Starting the CLI (every command registered) and importing the kernel loads no third-party module
    outside the kernel's dependencies."""
    code = ("import sys, ailedger, ailedger.cli.main, ailedger.tlog.verify, ailedger.tlog.ledger, "
            "ailedger.tlog.witness, ailedger.tlog.mirror, ailedger.tlog.proofbundle, ailedger.encoding.records\n"
            "assert len(ailedger.cli.main.main.commands) >= 40  # every command module loaded (they load on demand)\n"
            "import json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    tops = {m for m in json.loads(out.stdout) if not m.startswith("_") and m not in sys.stdlib_module_names}
    assert tops <= set(KERNEL_MODULES), tops - set(KERNEL_MODULES)


def test_kernel_alone_makes_and_verifies_proofs(ledger: Path, tmp_path: Path):
    """With every non-kernel module refused: verify a proof made by the full install, and run the log's
    commands (init, append, prove, verify, checkpoint, audit, tiles export)."""
    for name in ("p.tlog-proof", "e1.bin", "log.vkey", "r0.json", "r1.json"):
        (tmp_path / name).write_bytes((ledger / name).read_bytes())
    cwd = tmp_path
    k = BLOCK_ALL_BUT_KERNEL
    res = json.loads(cli(["verify", "p.tlog-proof", "--vkey", "log.vkey", "--entry", "e1.bin", "--json"], cwd, k)
                     .stdout)
    assert res["ok"] and res["index"] == 1 and res["signature"] == "valid"
    bad = bytearray((cwd / "e1.bin").read_bytes())
    bad[-3] ^= 1
    (cwd / "bad.bin").write_bytes(bytes(bad))
    assert cli(["verify", "p.tlog-proof", "--vkey", "log.vkey", "--entry", "bad.bin"], cwd, k, check=False).returncode == 1
    cli(["init", "k", "--origin", "example.org/kernel"], cwd, k)
    cli(["--ledger", "k", "identity", "new", "bob"], cwd, k)
    cli(["--ledger", "k", "append", "--as", "bob", "r0.json"], cwd, k)
    cli(["--ledger", "k", "append", "--as", "bob", "r1.json"], cwd, k)
    cli(["--ledger", "k", "checkpoint", "-o", "cp2"], cwd, k)
    cli(["--ledger", "k", "prove", "0", "-o", "k0.tlog-proof"], cwd, k)
    cli(["--ledger", "k", "entry", "0", "-o", "k0.bin"], cwd, k)
    (cwd / "k.vkey").write_text(cli(["--ledger", "k", "vkey"], cwd, k).stdout)
    cli(["verify", "k0.tlog-proof", "--vkey", "k.vkey", "--entry", "k0.bin"], cwd, k)
    assert json.loads(cli(["--ledger", "k", "audit", "--json"], cwd, k).stdout)["ok"]
    cli(["--ledger", "k", "tiles", "export", "site"], cwd, k)
    assert (cwd / "site" / "checkpoint").read_bytes().startswith(b"example.org/kernel\n3\n")  # the identity and two records
    # and the full install verifies what the kernel made
    cli(["verify", "k0.tlog-proof", "--vkey", "k.vkey", "--entry", "k0.bin"], cwd)


# -- a missing extra -------------------------------------------------------------------------------------------

CASES = [
    # (modules refused, command line, the extra named)
    (("numpy",), ["content", "register", "a.txt", "--as", "alice"], "content"),
    (("starlette",), ["serve", "--port", "18501"], "server"),
    (("sklearn",), ["dataset", "screen", "a.txt"], "screening"),
    (("web3",), ["anchor", "deploy", "--rpc", "http://127.0.0.1:18502", "--key", "0x01"], "anchoring"),
    (("zfec",), ["storage", "node", "serve", "--dir", "nd", "--port", "18503"], "blobs"),
    (("matplotlib",), ["inference", "report", "-o", "r.pdf"], "inference"),
    # a kernel command reaching an optional path: --rpc needs web3
    (("web3",), ["verify", "p.tlog-proof", "--vkey", "log.vkey", "--entry", "e1.bin", "--rpc",
                 "http://127.0.0.1:18504", "--contract", "0x" + "00" * 20], "anchoring"),
]


@pytest.mark.parametrize("refused,args,extra", CASES, ids=[" ".join(c[1][:2]) for c in CASES])
def test_missing_extra_names_it_and_changes_nothing(ledger: Path, refused, args, extra):
    cwd = ledger
    (cwd / "a.txt").write_text("hello\n")
    before = _snapshot(cwd)
    p = cli(["--ledger", "led", *args], cwd, block(*refused), check=False)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert f"install ailedger[{extra}]" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert _snapshot(cwd) == before
    assert not (cwd / "nd").exists() and not (cwd / "r.pdf").exists()
    j = cli(["--ledger", "led", "--json", *args], cwd, block(*refused), check=False)
    assert j.returncode == 2
    err = json.loads(j.stdout.strip().splitlines()[-1])["error"]
    assert err["code"] == "missing_extra" and err["extra"] == extra and err["module"] == refused[0]


def test_missing_extra_through_a_meta_path_finder(ledger: Path):
    """The kernel-only finder (the kernel install) gives the same message for a capability command."""
    cwd = ledger
    (cwd / "a.txt").write_text("hello\n")
    p = cli(["--ledger", "led", "content", "register", "a.txt", "--as", "alice"], cwd, BLOCK_ALL_BUT_KERNEL,
            check=False)
    assert p.returncode == 2 and "install ailedger[content]" in p.stderr, p.stderr
    p = cli(["--ledger", "led", "gov", "simulate", "--png", "c.png"], cwd, BLOCK_ALL_BUT_KERNEL, check=False)
    assert p.returncode == 2 and "install ailedger[governance]" in p.stderr, p.stderr


def test_a_missing_module_that_is_no_extras_is_not_disguised(ledger: Path):
    """A ModuleNotFoundError for a module no extra installs is a bug: it is not turned into advice."""
    prelude = ("import ailedger.tlog.verify as v\n"
               "def boom(*a, **k):\n    import not_a_real_module_xyz\n"
               "v.verify_file = boom\n")
    p = cli(["verify", "p.tlog-proof", "--vkey", "log.vkey", "--entry", "e1.bin"], ledger, prelude, check=False)
    assert p.returncode != 0 and "not_a_real_module_xyz" in p.stderr and "install ailedger[" not in p.stderr


def test_kernel_alone_verifies_dataset_and_model_records(ledger: Path, tmp_path: Path):
    """The offline checks of provenance records are the kernel's: a dataset proof (`dataset verify`, and the
    generic `verify`) and a model directory against its record (`model verify`), made by the full install."""
    import shutil

    shutil.copytree(ledger / "led", tmp_path / "led")
    (tmp_path / "log.vkey").write_bytes((ledger / "log.vkey").read_bytes())
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "d.jsonl").write_text('{"a":1}\n{"a":2}\n')
    (tmp_path / "cand.json").write_text('{"a":2}\n')
    (tmp_path / "md").mkdir()
    (tmp_path / "md" / "w.bin").write_bytes(b"weights")
    cli(["--ledger", "led", "dataset", "commit", "ds/d.jsonl", "--name", "d1", "--as", "alice"], tmp_path)
    cli(["--ledger", "led", "dataset", "prove", "d1", "cand.json", "-o", "dp.json"], tmp_path)
    cli(["--ledger", "led", "model", "register", "md", "--name", "m1", "--as", "alice"], tmp_path)
    k = BLOCK_ALL_BUT_KERNEL
    assert "member" in cli(["dataset", "verify", "dp.json", "--candidate", "cand.json", "--vkey", "log.vkey"],
                           tmp_path, k).stdout
    cli(["verify", "dp.json", "--candidate", "cand.json", "--vkey", "log.vkey"], tmp_path, k)
    cli(["--ledger", "led", "model", "verify", "md", "--name", "m1"], tmp_path, k)
    (tmp_path / "md" / "w.bin").write_bytes(b"weightz")
    assert cli(["--ledger", "led", "model", "verify", "md", "--name", "m1"], tmp_path, k, check=False).returncode == 1


def test_kernel_alone_verifies_screening_and_removal_proofs(tmp_path: Path):
    """`dataset verify-screening` and `dataset verify-removal` check signatures, inclusion and hashes only:
    with every non-kernel module refused (no numpy, scikit-learn, matplotlib) they verify proofs made by the
    full install and catch an edited one; only the charts of `--html` need the screening extra."""
    import base64
    import random

    from ailedger.provenance import commit_dataset
    from ailedger.screening import log_screening, screen_path, screening_proof
    from ailedger.screening.removal import remove_paths
    from ailedger.tlog.ledger import Ledger

    rng = random.Random(1)
    rows = "".join(f"{rng.gauss(3 * (i % 2), 1):.3f},{rng.gauss(0, 1):.3f},{i % 2},{'ab'[i % 3 == 0]}\n"
                   for i in range(60))
    (tmp_path / "d.csv").write_text("x,y,label,source\n" + rows)
    report = screen_path(str(tmp_path / "d.csv"), loo=False)  # the full install's engine (numpy, scikit-learn)
    for d, n in (("a", 3), ("b", 2)):
        (tmp_path / d).mkdir()
        for i in range(n):
            (tmp_path / d / f"{i}.txt").write_text(f"{d} record {i}\n")
    with Ledger.init(tmp_path / "led", origin="example.org/screening-kernel") as led:
        alice = led.identities.create("alice")
        log_screening(led, alice, report, dataset="books", html="<p>")
        (tmp_path / "s.proof").write_bytes(screening_proof(led, "books")[0])
        commit_dataset(led, [str(tmp_path / "a"), str(tmp_path / "b")], "books", alice, workers=1)
        removal, _ = remove_paths(led, alice, "books", [str(tmp_path / "a"), str(tmp_path / "b")],
                                  [str(tmp_path / "b")], new_name="books-v2", workers=1)
        (tmp_path / "r.proof").write_bytes(removal)
        (tmp_path / "log.vkey").write_text(led.vkey)
    k = BLOCK_ALL_BUT_KERNEL
    probe = "\nimport ailedger.screening\nassert 'numpy' not in sys.modules\n"
    ok = json.loads(cli(["--json", "dataset", "verify-screening", "s.proof", "--vkey", "log.vkey",
                         "--report", "rep.json"], tmp_path, k + probe).stdout)
    assert ok["ok"] and ok["dataset"] == "books" and ok["verdict"] == report["verdict"]
    assert json.loads((tmp_path / "rep.json").read_text())["dataset"]["sha256"] == report["dataset"]["sha256"]
    rem = json.loads(cli(["--json", "dataset", "verify-removal", "r.proof", "--vkey", "log.vkey"], tmp_path, k).stdout)
    assert rem["removed_keys"] == 2 and rem["new_dataset"] == "books-v2"

    head, body = (tmp_path / "s.proof").read_bytes().split(b"\n", 1)
    doc = json.loads(body)
    edited = json.loads(base64.b64decode(doc["report"]))
    edited["verdict"] = "pass" if report["verdict"] != "pass" else "fail"
    doc["report"] = base64.b64encode(json.dumps(edited).encode()).decode()
    (tmp_path / "bad.proof").write_bytes(head + b"\n" + json.dumps(doc).encode())
    bad = cli(["dataset", "verify-screening", "bad.proof", "--vkey", "log.vkey"], tmp_path, k, check=False)
    assert bad.returncode == 1 and "not the one the screening record commits to" in bad.stderr + bad.stdout

    charts = cli(["dataset", "verify-screening", "s.proof", "--vkey", "log.vkey", "--html", "r.html"], tmp_path, k,
                 check=False)
    assert charts.returncode == 2 and "install ailedger[screening]" in charts.stderr, charts.stderr
    assert "Traceback" not in charts.stderr and not (tmp_path / "r.html").exists()
    # and with the full install the same command renders the page
    cli(["dataset", "verify-screening", "s.proof", "--vkey", "log.vkey", "--html", "r.html"], tmp_path)
    assert "<svg" in (tmp_path / "r.html").read_text()
