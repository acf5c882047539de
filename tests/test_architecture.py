"""The import rules of docs/ARCHITECTURE.md, enforced on the source (tools/importgraph.py parses every
module's imports with ``ast``): no upward import, no circle between folders or modules, no import inside
a function between folders outside the shells.  The checker itself is tested on small made-up packages,
so a rule that stopped finding anything would fail here too."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("importgraph", REPO / "tools" / "importgraph.py")
assert _spec is not None and _spec.loader is not None
ig = importlib.util.module_from_spec(_spec)
sys.modules["importgraph"] = ig
_spec.loader.exec_module(ig)

EDGES = ig.edges()
FOUND = ig.violations(EDGES)


@pytest.mark.parametrize("rule", sorted(FOUND))
def test_rule_holds(rule: str) -> None:
    assert FOUND[rule] == [], f"{rule}:\n" + "\n".join(FOUND[rule])


def test_every_folder_has_a_layer() -> None:
    folders = {ig.folder_of(m) for m in ig.modules()}
    assert folders <= set(ig.LAYER_OF), folders - set(ig.LAYER_OF)
    assert set(ig.LAYER_OF) <= folders, set(ig.LAYER_OF) - folders  # no stale entry in the table


def test_the_kernel_imports_only_below_it() -> None:
    below = {"errors", "_lazy", "encoding", "server", "tlog"}
    above = sorted({(e.src, e.dst, e.where()) for e in EDGES
                    if ig.folder_of(e.src) in below and ig.folder_of(e.dst) not in below})
    assert above == []


def test_the_kernel_starts_no_cli() -> None:
    """The tile server (and every kernel module) never runs the command line in a subprocess."""
    for m, path in ig.modules().items():
        if ig.folder_of(m) in ("tlog", "encoding", "errors", "_lazy", "server"):
            assert "ailedger.cli" not in path.read_text(encoding="utf-8"), path


def test_import_ailedger_installs_the_answers_and_stays_light() -> None:
    code = textwrap.dedent("""
        import sys, ailedger
        from ailedger.tlog import admission, proofkinds
        from ailedger.authority import hooks
        assert admission.installed()
        assert hooks.dao() is not None and hooks.dataset_owner() is not None
        assert [k.name for k in proofkinds.kinds()] == ["ailedger-dataset-proof"]
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in (
            "numpy", "web3", "sklearn", "starlette", "click", "cryptography", "matplotlib"))
        loaded = sorted(m for m in sys.modules if m.startswith("ailedger."))
        print(heavy, loaded)
        assert heavy == [], heavy
        assert all(m.split(".")[1] in ("errors", "_lazy", "tlog", "authority", "_registry") for m in loaded), loaded
        for name in ailedger.__all__:
            getattr(ailedger, name)
        assert ailedger.Ledger.__module__ == "ailedger.tlog.ledger"
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


# -- the checker finds what it should ---------------------------------------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "src"
    for rel, text in files.items():
        p = src / "ailedger" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    for d in [p for p in (src / "ailedger").rglob("*") if p.is_dir()] + [src / "ailedger"]:
        (d / "__init__.py").touch()
    return src


def test_checker_finds_an_upward_import(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"tlog/verify.py": "from ailedger.provenance import datasets\n",
                           "provenance/datasets.py": "X = 1\n"})
    found = ig.violations(ig.edges(src))
    assert any("tlog may not import provenance" in v and "tlog/verify.py:1" in v for v in found["upward import"])


def test_checker_finds_a_lazy_import_between_capabilities(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"screening/removal.py": "def f():\n    from ailedger.provenance import datasets\n",
                           "provenance/datasets.py": "X = 1\n",
                           "cli/screen.py": "def g():\n    from ailedger.screening import removal\n"})
    found = ig.violations(ig.edges(src))
    assert found["upward import"] == []  # screening -> provenance is an allowed peer edge
    assert [v.split(" (")[0] for v in found["lazy import between folders"]] == \
        ["ailedger.screening.removal -> ailedger.provenance.datasets"]  # the shell's lazy import is fine


def test_checker_finds_circles(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"http/app.py": "def f():\n    from ailedger.http.explorer import x\n",
                           "http/explorer.py": "from ailedger.http import app\nx = 1\n",
                           "governance/service.py": "from ailedger.provenance import models\n",
                           "provenance/models.py": "import ailedger.governance.service\n"})
    found = ig.violations(ig.edges(src))
    assert any("ailedger.http.app <-> ailedger.http.explorer" in v for v in found["module circle"])
    assert found["folder circle"] == ["governance <-> provenance"]


def test_type_only_imports_close_no_circle_but_still_point_down(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"tlog/ledger.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                             "    from ailedger.governance import state\n",
                           "governance/state.py": "from ailedger.tlog import ledger\n"})
    found = ig.violations(ig.edges(src))
    assert found["folder circle"] == []
    assert len(found["upward import"]) == 1


def test_third_party_lazy_imports_are_fine(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"content/media.py": "def f():\n    import numpy\n    from PIL import Image\n"})
    assert sum(len(v) for v in ig.violations(ig.edges(src)).values()) == 0


def test_architecture_page_shows_the_layers() -> None:
    """docs/ARCHITECTURE.md carries the picture the table in tools/importgraph.py draws."""
    page = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert ig.ascii_picture() in page
    assert "img/layers.svg" in page
    svg = (REPO / "docs" / "img" / "layers.svg").read_text(encoding="utf-8")
    assert svg == ig.svg_picture(EDGES), "docs/img/layers.svg is stale: python tools/importgraph.py --svg " \
                                         "docs/img/layers.svg"


@pytest.mark.parametrize("folder", sorted(f for f in ig.LAYER_OF if (ig.SRC / "ailedger" / f).is_dir()))
def test_each_folder_names_its_public_interface(folder: str) -> None:
    """Every folder's __init__ declares __all__, and every name in it resolves (a stale name fails).  The CLI's
    interface is the command line (docs/cli.md), so its __all__ is empty on purpose."""
    code = (f"import ailedger.{folder} as m\n"
            f"assert m.__all__ or {folder == 'cli'}, 'empty __all__'\n"
            "missing = [n for n in m.__all__ if not hasattr(m, n)]\n"
            "assert not missing, missing\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
