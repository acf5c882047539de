"""The wheel carries what the installed package reads at run time: the compiled contract artifacts of the
governance and anchoring capabilities are package data (``ailedger/<capability>/contracts/*.json``), found
next to the installed modules, not under a source checkout's ``contracts/`` folder.

One wheel is built (``pip wheel``, isolated build: pip fetches setuptools from PyPI, as a user's install
does; ~8 s here, most of it the C extensions), its contents are checked, and the package is imported from
the unpacked wheel alone, far from this tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_install import IGNORE

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "ailedger"
ARTIFACTS = {
    "ailedger/anchoring/contracts/CheckpointAnchor.json": SRC / "anchoring" / "contracts" / "CheckpointAnchor.json",
    **{f"ailedger/governance/contracts/{n}.json": SRC / "governance" / "contracts" / f"{n}.json"
       for n in ("AiGovToken", "AiGovernor", "AiTimelock", "ModelRegistry")},
    "ailedger/compute/contracts/ComputeMarket.json": SRC / "compute" / "contracts" / "ComputeMarket.json",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    where = tmp_path_factory.mktemp("wheel")
    src = where / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(where / "out"), str(src)],
                       cwd=where, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert p.returncode == 0, "pip wheel failed (it needs PyPI for setuptools):\n" + p.stderr[-4000:]
    (whl,) = (where / "out").glob("ailedger-*.whl")
    return whl


def test_the_wheel_holds_the_contract_artifacts(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for inside, source in ARTIFACTS.items():
            assert inside in names, f"{inside} is not in {wheel.name}"
            assert z.read(inside) == source.read_bytes(), f"{inside} differs from {source}"
        # the sources and the benchmark's baseline contract stay out of the wheel
        assert not [n for n in names if n.startswith("contracts/") or "RecordRegistry" in n]


def test_the_installed_package_loads_its_artifacts(wheel: Path, tmp_path: Path):
    """Imported from the unpacked wheel only (no source tree anywhere near it), both capabilities load
    their artifacts; the governance one also reads every ABI's custom errors."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    code = (
        "import json, ailedger.governance.chain as chain, ailedger.anchoring.service as anchor\n"
        "out = {'chain': chain.__file__, 'anchor': anchor.__file__,\n"
        "       'governance': [chain.load_artifact(n)['contractName'] for n in\n"
        "                      ('AiGovToken', 'AiGovernor', 'AiTimelock', 'ModelRegistry')],\n"
        "       'errors': len(chain._error_names()), 'anchoring': anchor.load_artifact()['contractName'],\n"
        "       'build': str(chain.BUILD), 'artifact': str(anchor.ARTIFACT)}\n"
        "print(json.dumps(out))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("AILEDGER_ANCHOR_ARTIFACT", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(site)  # the venv's site-packages still give the third-party libraries
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in ("chain", "anchor", "build", "artifact"):
        assert Path(out[key]).is_relative_to(site), (key, out[key])
    assert out["governance"] == ["AiGovToken", "AiGovernor", "AiTimelock", "ModelRegistry"]
    assert out["anchoring"] == "CheckpointAnchor"
    assert out["errors"] > 0
