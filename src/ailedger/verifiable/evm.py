"""On-chain verification: EZKL's Solidity verifier for a bound circuit, deployed on an EVM chain, and a small
registry contract mapping each verifier's address to its ``model.zk`` entry (docs/zk.md).

EZKL's ``create_evm_verifier`` asks for solc 0.8.20 through svm-rs (``~/.svm/0.8.20/solc-0.8.20``, or
``$XDG_DATA_HOME/svm``) and downloads it when it is missing.  Offline, :func:`install_solc_wrapper` puts a small
wrapper there that runs the npm ``solc@0.8.20`` package (soljson, pinned in ``tools/zk-solc``) with node; an
existing solc binary there is left alone.  The same package compiles the verifier and the registry here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError, NotFoundError, ProofError, VerificationError
from ailedger.verifiable.zk import ZK_TYPE, find_setup, proof_digest

__all__ = ["REGISTRY_SOURCE", "SOLC_VERSION", "compile_solidity", "deploy", "deploy_verifier", "export_verifier",
           "install_solc_wrapper", "register_verifier", "registered_entry", "verify_on_chain", "web3_for"]

SOLC_VERSION = "0.8.20"
SOLC_LONG = "0.8.20+commit.a1b79de6"

_WRAPPER_JS = r"""// ailedger: solc 0.8.20 (npm soljson) behind the solc command line EZKL calls (svm-rs path)
const solc = require(process.env.AILEDGER_SOLC_JS || __SOLC_JS__);
const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write("solc, the solidity compiler commandline interface\nVersion: " + solc.version() + "\n");
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("this wrapper supports only --version and --standard-json\n");
  process.exit(2);
}
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => { input += c; });
process.stdin.on("end", () => { process.stdout.write(solc.compile(input)); });
"""

REGISTRY_SOURCE = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// Which ailedger model.zk entry each deployed EZKL verifier belongs to (written by the registry's owner,
/// the log operator or the model owner who deployed it; readers check the entry in the log).
contract ZkVerifierRegistry {
    struct Binding { uint64 entry; bytes32 vkSha256; bytes32 logOrigin; }
    address public immutable owner;
    mapping(address => Binding) public bindings;
    event Bound(address indexed verifier, uint64 entry, bytes32 vkSha256, bytes32 logOrigin);

    constructor() { owner = msg.sender; }

    function bind(address verifier, uint64 entry, bytes32 vkSha256, bytes32 logOrigin) external {
        require(msg.sender == owner, "only the owner");
        require(bindings[verifier].vkSha256 == bytes32(0), "already bound");
        require(verifier.code.length > 0, "not a contract");
        bindings[verifier] = Binding(entry, vkSha256, logOrigin);
        emit Bound(verifier, entry, vkSha256, logOrigin);
    }
}
"""


def solc_js_dir() -> Path:
    env = os.environ.get("AILEDGER_SOLC_JS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "tools" / "zk-solc" / "node_modules" / "solc"


def _svm_dir() -> Path:
    home = Path.home() / ".svm"
    if home.exists():
        return home
    xdg = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "svm"
    return xdg if xdg.exists() else home


def install_solc_wrapper() -> Path:
    """Make ``solc 0.8.20`` available to EZKL offline (see the module docstring); returns its path."""
    js = solc_js_dir()
    if not (js / "soljson.js").is_file():
        raise NotFoundError(f"npm solc@{SOLC_VERSION} is not installed at {js}: run `npm ci --prefix tools/zk-solc` "
                            "(or set AILEDGER_SOLC_JS to its folder)", field="solc")
    if shutil.which("node") is None:
        raise NotFoundError("node is not on the PATH; the solc wrapper needs it", field="solc")
    d = _svm_dir() / SOLC_VERSION
    exe = d / f"solc-{SOLC_VERSION}"
    wrapper = d / "ailedger-solc-wrapper.js"
    if exe.exists() and not wrapper.exists():
        return exe  # a real solc installed by svm: use it
    d.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(_WRAPPER_JS.replace("__SOLC_JS__", json.dumps(str(js))))
    node = shutil.which("node")
    exe.write_text(f'#!/bin/sh\nexec "{node}" "{wrapper}" "$@"\n')
    exe.chmod(0o755)
    return exe


def compile_solidity(source: str, contract: str) -> dict[str, Any]:
    """Compile with the pinned solc 0.8.20 (optimizer on, 200 runs): ``{"abi", "bytecode", "runtime_bytes"}``."""
    return dict(_compile(source, contract))


@functools.lru_cache(maxsize=8)
def _compile(source: str, contract: str) -> dict[str, Any]:
    exe = install_solc_wrapper()
    req = {"language": "Solidity", "sources": {"C.sol": {"content": source}},
           "settings": {"optimizer": {"enabled": True, "runs": 200},
                        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}}}}
    p = subprocess.run([str(exe), "--standard-json"], input=json.dumps(req), capture_output=True, text=True,
                       timeout=600, check=False)
    if p.returncode != 0:
        raise BadInputError(f"solc failed: {p.stderr.strip()[:500]}")
    out = json.loads(p.stdout)
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BadInputError("solc: " + "; ".join(e.get("formattedMessage", e.get("message", "")) for e in errors)[:800])
    c = out["contracts"]["C.sol"].get(contract)
    if c is None:
        raise BadInputError(f"no contract {contract} in the source", field="contract")
    return {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"],
            "runtime_bytes": len(c["evm"]["deployedBytecode"]["object"]) // 2}


def _run(fn: Any, *args: Any) -> Any:
    """Call an EZKL function that needs a running asyncio loop (it returns an awaitable)."""
    import asyncio

    async def go() -> Any:
        return await fn(*args)

    return asyncio.run(go())


def export_verifier(ledger: Any, setup_ref: str | int, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """EZKL's Solidity verifier of a bound circuit, written to ``out_dir`` (Verifier.sol, abi.json) and compiled."""
    import ezkl

    idx, e = find_setup(ledger, setup_ref)
    d = Path(ledger.path) / "zk" / e.body["vk_sha256"][:32]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    install_solc_wrapper()
    sol, abi = out / "Verifier.sol", out / "abi.json"
    t0 = time.perf_counter()
    ok = _run(ezkl.create_evm_verifier, str(d / "vk.key"), str(d / "settings.json"), str(sol), str(abi),
              str(d / "kzg.srs"))
    if ok is not True:
        raise VerificationError("EZKL did not create the EVM verifier")
    source = sol.read_text()
    name = "Halo2Verifier"
    for line in source.splitlines():
        if line.startswith("contract "):
            name = line.split()[1]
    built = compile_solidity(source, name)
    (out / "Verifier.json").write_text(json.dumps({"contract": name, **built}))
    return {"ok": True, "setup": idx, "model": e.body["model"], "contract": name, "sol": str(sol),
            "runtime_bytes": built["runtime_bytes"], "seconds": round(time.perf_counter() - t0, 2)}


def deploy(w3: Any, abi: list[Any], bytecode: str, *args: Any) -> tuple[str, int]:
    """Deploy from the node's first account: (address, gas used)."""
    c = w3.eth.contract(abi=abi, bytecode=bytecode)
    tx = c.constructor(*args).transact({"from": w3.eth.accounts[0]})
    r = w3.eth.wait_for_transaction_receipt(tx)
    if r.status != 1:
        raise VerificationError("the deployment transaction failed")
    return str(r.contractAddress), int(r.gasUsed)


def verify_on_chain(w3: Any, verifier: str, proof: dict[str, Any]) -> dict[str, Any]:
    """Send the proof to the deployed verifier in a transaction; ProofError when it rejects it."""
    import ezkl

    with tempfile.TemporaryDirectory() as tmp:
        pp = Path(tmp) / "proof.json"
        pp.write_text(json.dumps(proof))
        calldata = bytes(ezkl.encode_evm_calldata(str(pp), str(Path(tmp) / "calldata.bin"), None))
    tx = {"from": w3.eth.accounts[0], "to": w3.to_checksum_address(verifier), "data": "0x" + calldata.hex()}
    try:
        ret = w3.eth.call(tx)
    except Exception as exc:  # a reverting verifier: web3 raises ContractLogicError and kin
        raise ProofError(f"the on-chain verifier rejected the proof: {exc}") from exc
    if int.from_bytes(bytes(ret)[-32:] or b"\0", "big") != 1:
        raise ProofError("the on-chain verifier returned false")
    h = w3.eth.send_transaction({**tx, "gas": 3_000_000})
    r = w3.eth.wait_for_transaction_receipt(h)
    if r.status != 1:
        raise ProofError("the verification transaction reverted")
    return {"ok": True, "gas": int(r.gasUsed), "calldata_bytes": len(calldata), "proof_sha256": proof_digest(proof)}


def register_verifier(w3: Any, registry: str, verifier: str, setup_index: int, vk_sha256: str, origin: str) -> int:
    """Bind ``verifier`` to ``model.zk`` entry ``setup_index`` in the registry; returns the gas used."""
    c = w3.eth.contract(address=w3.to_checksum_address(registry), abi=compile_solidity(REGISTRY_SOURCE,
                                                                                          "ZkVerifierRegistry")["abi"])
    tag = hashlib.sha256(origin.encode()).digest()
    h = c.functions.bind(w3.to_checksum_address(verifier), setup_index, bytes.fromhex(vk_sha256), tag).transact(
        {"from": w3.eth.accounts[0]})
    r = w3.eth.wait_for_transaction_receipt(h)
    if r.status != 1:
        raise VerificationError("the registry refused the binding")
    return int(r.gasUsed)


def registered_entry(ledger: Any, w3: Any, registry: str, verifier: str) -> tuple[int, Any]:
    """The ``model.zk`` entry the registry names for ``verifier``, checked against the log (its vk digest)."""
    c = w3.eth.contract(address=w3.to_checksum_address(registry), abi=compile_solidity(REGISTRY_SOURCE,
                                                                                          "ZkVerifierRegistry")["abi"])
    entry, vk, _origin = c.functions.bindings(w3.to_checksum_address(verifier)).call()
    if bytes(vk) == b"\0" * 32:
        raise NotFoundError(f"verifier {verifier} is not in the registry", field="verifier")
    idx, e = find_setup(ledger, int(entry))
    if e.type != ZK_TYPE or e.body.get("vk_sha256") != bytes(vk).hex():
        raise VerificationError("the registry's key digest differs from the logged model.zk",
                                expected=e.body.get("vk_sha256"), found=bytes(vk).hex())
    return idx, e


def web3_for(rpc: str) -> Any:
    """A Web3 on an HTTP JSON-RPC endpoint (anvil, a node), or ``tester``: an in-process EthereumTesterProvider."""
    from web3 import EthereumTesterProvider, Web3

    if rpc == "tester":
        return Web3(EthereumTesterProvider())
    if not rpc.startswith(("http://", "https://")):
        raise BadInputError("--rpc must be an http(s) URL or 'tester'", field="rpc", found=rpc)
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 60}))
    if not w3.is_connected():
        raise BadInputError(f"no Ethereum node answers at {rpc}", field="rpc")
    return w3


def deploy_verifier(ledger: Any, w3: Any, setup_ref: str | int, out_dir: str | os.PathLike[str],
                    registry: str | None = None) -> dict[str, Any]:
    """Export (when not yet in ``out_dir``) and deploy the verifier of a bound circuit, deploy a registry when
    none is given, and bind the verifier to its ``model.zk`` entry in it."""
    idx, e = find_setup(ledger, setup_ref)
    built_p = Path(out_dir) / "Verifier.json"
    if not built_p.exists():
        export_verifier(ledger, idx, out_dir)
    built = json.loads(built_p.read_text())
    addr, gas = deploy(w3, built["abi"], built["bytecode"])
    reg_gas = None
    if registry is None:
        r = compile_solidity(REGISTRY_SOURCE, "ZkVerifierRegistry")
        registry, reg_gas = deploy(w3, r["abi"], r["bytecode"])
    bind_gas = register_verifier(w3, registry, addr, idx, e.body["vk_sha256"], ledger.origin)
    return {"ok": True, "setup": idx, "model": e.body["model"], "verifier": addr, "registry": registry,
            "deploy_gas": gas, "registry_deploy_gas": reg_gas, "bind_gas": bind_gas,
            "runtime_bytes": built["runtime_bytes"]}
