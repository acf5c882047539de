"""The solc shim picks, per source, the highest installed npm compiler its pragma allows: a 0.4 pragma compiles
with npm solc 0.4.26 (and Slither analyses it), an exact 0.4.24 pin gets 0.4.24, a compiler without the compact
AST (0.4.9) still feeds Slither, and a pragma no installed compiler satisfies is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailedger.contractaudit.solc import (
    compile_source,
    compiler_for,
    installed_compilers,
    pragma_ranges,
    satisfies,
)
from ailedger.errors import BadInputError

LEGACY = Path(__file__).resolve().parents[2] / "tools" / "solc-versions" / "node_modules"
needs_legacy = pytest.mark.skipif(not (LEGACY / "solc-0.4.26").is_dir(),
                                  reason="older npm solc not installed: bash scripts/setup.d/12-solc-versions.sh")


@pytest.mark.parametrize(("version", "rng", "ok"), [
    ("0.4.26", "^0.4.24", True), ("0.5.0", "^0.4.24", False), ("0.4.23", "^0.4.24", False),
    ("0.4.24", "0.4.24", True), ("0.4.26", "0.4.24", False), ("0.4.24", "=0.4.24", True),
    ("0.5.17", ">=0.4.22 <0.6.0", True), ("0.6.0", ">=0.4.22 <0.6.0", False), ("0.5.17", ">= 0.4.22 < 0.6.0", True),
    ("0.4.26", "^0.4", True), ("0.8.28", "^0.8.0", True), ("0.9.0", "^0.8.0", False),
    ("0.4.26", "~0.4.0", True), ("0.5.1", "~0.4.0", False), ("0.4.26", "0.4.x", True), ("0.4.26", "0.4", True),
    ("0.5.17", "0.4.x || ^0.5", True), ("0.6.1", "0.4.x || ^0.5", False), ("0.4.26", "0.4.20 - 0.4.26", True),
    ("0.4.19", "0.4.20 - 0.4.26", False), ("0.0.3", "^0.0.3", True), ("0.0.4", "^0.0.3", False),
    ("0.4.26", ">0.4", False), ("0.5.0", ">0.4", True), ("0.4.26", "<=0.4", True), ("0.5.0", "<=0.4", False),
    ("1.2.0", "^1.0", True), ("2.0.0", "^1.0", False), ("0.4.26", "*", True),
])
def test_pragma_ranges_read_as_npm_semver(version, rng, ok):
    assert satisfies(version, rng) is ok


def test_pragmas_in_comments_are_ignored_and_garbage_is_refused():
    src = "// pragma solidity ^0.3.0;\n/* pragma solidity 0.1.0;\n */\npragma solidity ^0.4.19;\ncontract A {}\n"
    assert pragma_ranges(src) == ["^0.4.19"]
    with pytest.raises(BadInputError, match="is not a version"):
        satisfies("0.4.26", "^banana")


def test_a_pragma_no_installed_compiler_satisfies_is_a_clear_error():
    with pytest.raises(BadInputError, match=r"Old\.sol: pragma solidity \^0\.3\.0 is not satisfied by any installed "
                                            r"compiler \(installed: solc .*0\.8\.28\)"):
        compile_source("pragma solidity ^0.3.0;\ncontract A {}\n", "Old.sol")
    with pytest.raises(BadInputError, match="is not satisfied"):
        compiler_for("pragma solidity ^0.4.0;\npragma solidity ^0.8.0;\ncontract A {}\n")  # both must hold


def test_no_pragma_gets_the_newest():
    assert compiler_for("contract A {}\n").semver == installed_compilers()[-1][0]


@needs_legacy
def test_pick_the_highest_allowed_version():
    picks = {src: compiler_for(f"pragma solidity {src};\ncontract A {{}}\n").version.split("+")[0]
             for src in ("^0.4.19", "0.4.24", "^0.4.25", "^0.5.0", ">=0.4.22 <0.6.0", "^0.8.0", "0.4.9")}
    assert picks == {"^0.4.19": "0.4.26", "0.4.24": "0.4.24", "^0.4.25": "0.4.26", "^0.5.0": "0.5.17",
                     ">=0.4.22 <0.6.0": "0.5.17", "^0.8.0": "0.8.28", "0.4.9": "0.4.9"}


OLD_BANK = """pragma solidity ^0.4.24;
contract OldBank {
    mapping(address => uint) balances;
    function deposit() public payable { balances[msg.sender] += msg.value; }
    function withdraw() public {
        uint amount = balances[msg.sender];
        require(msg.sender.call.value(amount)());
        balances[msg.sender] = 0;
    }
}
"""


@needs_legacy
def test_a_0_4_source_compiles_with_npm_solc_0_4_26():
    res = compile_source(OLD_BANK, "OldBank.sol")
    assert res["compiler"].startswith("0.4.26+") and res["sources"]["OldBank.sol"]["ast"]["nodeType"] == "SourceUnit"
    with pytest.raises(BadInputError, match=r"does not compile: .*TypeError"):  # 0.4 code is still checked
        compile_source(OLD_BANK.replace("balances[msg.sender] = 0;", "balances[msg.sender] = true;"), "OldBank.sol")


@needs_legacy
@pytest.mark.slow
def test_a_0_4_source_is_audited(tmp_path):
    from ailedger.contractaudit.audit import audit_source
    p = tmp_path / "OldBank.sol"
    p.write_text(OLD_BANK)
    rep = audit_source(p)
    assert rep["compiler"].startswith("solc 0.4.26+")
    assert any(f["category"] == "reentrancy" and f.get("start_line", f["line"]) <= 7 <= f["end_line"]
               for f in rep["findings"]), rep["findings"]


@needs_legacy
def test_a_compiler_without_the_compact_ast_still_feeds_slither(tmp_path):
    """solc 0.4.9 has no standard-JSON entry point and only the legacy AST: the wrapper translates, the shim
    hands the legacy AST over as `ast`, and Slither reads it."""
    from ailedger.contractaudit.analyse import run_slither
    p = tmp_path / "Kill.sol"
    p.write_text("pragma solidity 0.4.9;\ncontract Kill {\n    function kill() { selfdestruct(msg.sender); }\n}\n")
    run = run_slither([p])
    k = str(p.resolve())
    assert run.compilers[k].startswith("0.4.9+")
    assert [f["rule"] for f in run.findings[k]] == ["suicidal"]
    assert [r.function for r in run.functions[k]] == ["kill()"]
