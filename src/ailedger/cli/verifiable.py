"""Verifiable inference (docs/zk.md): ``model zk-setup``, ``inference prove / verify-zk / zk-sample`` and
the ``eval`` group (commit, reveal, verify).  Registered after ``model`` and ``inference``: it adds its
commands to those groups."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, json_option, ledger_option, open_ledger, out_option, read_input_file
from ailedger.encoding.canonical import parse_json
from ailedger.errors import BadInputError, VerificationError


def _identity(ledger: Any, name: str) -> Any:
    return ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))


def _json_file(path: str, what: str) -> Any:
    return parse_json(read_input_file(path, what), what=what)


def _write(path: str | None, doc: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(doc, sort_keys=True) + "\n")


def _group(main: click.Group, name: str) -> click.Group:
    g = main.commands.get(name)
    if not isinstance(g, click.Group):
        raise TypeError(f"the {name} command group must be registered before verifiable")
    return g


def _sampling_options(verb: str) -> Any:
    """--model, --rate, --at and --demand of the sampling commands (``verb``: what is done to a demanded call)."""
    def deco(f: Any) -> Any:
        for opt in reversed([
            click.option("--model", required=True, help="Model name."),
            click.option("--rate", type=float, required=True, help="Fraction of calls to prove (0..1)."),
            click.option("--at", type=int, default=None, help="The seeding checkpoint's tree size (default: the "
                         "log's size); only calls logged before it are sampled."),
            click.option("--demand", multiple=True, metavar="RECEIPT", help=f"Also {verb} this call, whether "
                         "selected or not (an auditor's demand; repeatable)."),
        ]):
            f = opt(f)
        return f
    return deco


def _seed(res: dict[str, Any], rate: float) -> str:
    """The sampling commands' first line: the seeding checkpoint and how many calls it selects."""
    return (f"seed: checkpoint at size {res['seed_size']} root {res['seed_root'][:16]}...; "
            f"{len(res['selected'])} of {res['calls']} calls selected at rate {rate}")


def register(main: click.Group) -> None:
    model = _group(main, "model")
    inference = _group(main, "inference")

    @model.command("zk-setup")
    @click.argument("onnx_file", type=click.Path(dir_okay=False))
    @click.option("--name", required=True, help="The registered model the ONNX file belongs to.")
    @click.option("--as", "identity", required=True, help="The model owner's identity (signs model.zk).")
    @click.option("--input-visibility", type=click.Choice(["hashed", "public", "private"]), default="hashed",
                  show_default=True, help="What the proof reveals of the input.")
    @click.option("--output-visibility", type=click.Choice(["hashed", "public", "private"]), default="hashed",
                  show_default=True, help="What the proof reveals of the output.")
    @click.option("--param-visibility", type=click.Choice(["fixed", "hashed", "private"]), default="fixed",
                  show_default=True, help="Weights fixed in the circuit (public), or a witness with only their "
                  "hash public (hashed), or hidden.")
    @click.option("--calibration", default=None, metavar="FILE",
                  help="JSON list of typical inputs (lists of numbers); the first calibrates the circuit's scales.")
    @click.option("--srs", default=None, metavar="FILE", help="The SRS file for the circuit's size (a public "
                  "ceremony's). Default: a local test-only SRS made here (anyone holding it can forge proofs).")
    @ledger_option
    @json_option
    def zk_setup(onnx_file: str, name: str, identity: str, input_visibility: str, output_visibility: str,
                 param_visibility: str, calibration: str | None, srs: str | None, ledger_dir: Path | None,
                 as_json: bool) -> None:
        """Compile ONNX_FILE (a file of registered model NAME) into a ZK circuit, set up its keys and log a
        model.zk entry binding them to the model."""
        from tqdm import tqdm

        from ailedger.verifiable.zk import setup_circuit

        cal = _json_file(calibration, "calibration") if calibration else None
        if cal is not None and not isinstance(cal, list):
            raise BadInputError("--calibration must be a JSON list of inputs", field="calibration")
        bar = tqdm(total=5, desc="zk-setup", disable=as_json, unit="step")

        def step(msg: str) -> None:
            bar.set_postfix_str(msg)
            bar.update(1)

        with open_ledger(ledger_dir) as ledger:
            try:
                res = setup_circuit(ledger, onnx_file, name, _identity(ledger, identity),
                                    input_visibility=input_visibility, output_visibility=output_visibility,
                                    param_visibility=param_visibility, calibration=cal, srs=srs, progress=step)
            finally:
                bar.close()
        emit(as_json, res, f"model.zk #{res['index']}: circuit for model {name} (entry #{res['model_index']}), "
                           f"logrows {res['logrows']}, vk {res['vk_sha256'][:16]}..., SRS {res['srs']}\n"
                           f"keys in {res['dir']}")

    @model.command("zk-verifier")
    @click.argument("setup")
    @out_option("Folder for Verifier.sol, abi.json and the compiled Verifier.json.", required=True)
    @click.option("--rpc", default=None, help="Also deploy it on this chain (http://127.0.0.1:PORT, or 'tester' for "
                  "an in-process EthereumTesterProvider) and bind it to its model.zk entry in a registry.")
    @click.option("--registry", default=None, metavar="ADDRESS", help="An existing ZkVerifierRegistry (default: "
                  "deploy a new one).")
    @ledger_option
    @json_option
    def zk_verifier(setup: str, output: str, rpc: str | None, registry: str | None, ledger_dir: Path | None,
                    as_json: bool) -> None:
        """Export EZKL's Solidity verifier for SETUP (a model name or #INDEX of its model.zk), compile it with
        the pinned solc 0.8.20, and optionally deploy it and bind it to the model.zk entry on chain."""
        from ailedger.verifiable.evm import deploy_verifier, export_verifier, web3_for

        with open_ledger(ledger_dir) as ledger:
            res = export_verifier(ledger, setup, output)
            if rpc is not None:
                res.update(deploy_verifier(ledger, web3_for(rpc), setup, output, registry))
        text = f"verifier for model {res['model']} (model.zk #{res['setup']}): {res['runtime_bytes']} bytes of code"
        if rpc is not None:
            text += (f"\ndeployed at {res['verifier']} ({res['deploy_gas']} gas); registry {res['registry']} binds "
                     f"it to model.zk #{res['setup']} ({res['bind_gas']} gas)")
        emit(as_json, res, text)

    @inference.command("prove")
    @click.option("--model", default=None, help="Run and prove one new call of this model (with --input).")
    @click.option("--input", "input_file", default=None, metavar="FILE", help="The call's input: a JSON list of "
                  "numbers.")
    @click.option("--defer", is_flag=True, help="Log the call with its circuit commitments only; prove later "
                  "(sampling) with --receipt.")
    @click.option("--receipt", default=None, help="Prove this already logged call from its stored input.")
    @click.option("--as", "identity", default="inference", show_default=True,
                  help="The operator identity (logs the call, or the inference.zk statement).")
    @out_option("Write the proof bundle here.")
    @ledger_option
    @json_option
    def prove(model: str | None, input_file: str | None, defer: bool, receipt: str | None, identity: str,
              output: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Prove an inference with the model's bound circuit, and log it."""
        from ailedger.verifiable.zk import prove_call, prove_receipt

        if (receipt is None) == (model is None):
            raise BadInputError("give either --model with --input (a new call) or --receipt (a logged call)",
                                field="model")
        with open_ledger(ledger_dir) as ledger:
            if receipt is not None:
                res = prove_receipt(ledger, receipt, _identity(ledger, identity))
            else:
                if input_file is None:
                    raise BadInputError("--model needs --input FILE", field="input")
                res = prove_call(ledger, str(model), _json_file(input_file, "input"), operator=identity, defer=defer)
        if "proof" in res:
            _write(output, res)
        short = {k: v for k, v in res.items() if k != "proof"}
        emit(as_json, {"ok": True, **short, "out": output},
             f"call {res['receipt']} of model {res['model']}: "
             + (f"proof {res['proof_sha256'][:16]}... in {res['prove_seconds']} s" if "proof" in res
                else "logged with its circuit commitments (proof deferred)")
             + (f" -> {output}" if output and "proof" in res else ""))

    @inference.command("verify-zk")
    @click.argument("proof_file")
    @click.option("--vk", default=None, metavar="FILE", help="Verifying key (default: the ledger's copy).")
    @click.option("--settings", default=None, metavar="FILE", help="Circuit settings (default: the ledger's copy).")
    @click.option("--srs", default=None, metavar="FILE", help="SRS file (default: the ledger's copy).")
    @click.option("--rpc", default=None, help="Also verify on chain, on this node (http://127.0.0.1:PORT).")
    @click.option("--verifier", default=None, metavar="ADDRESS", help="With --rpc: the deployed verifier.")
    @click.option("--registry", default=None, metavar="ADDRESS",
                  help="With --rpc: the registry that must bind the verifier to the proof's model.zk entry.")
    @ledger_option
    @json_option
    def verify_zk_cmd(proof_file: str, vk: str | None, settings: str | None, srs: str | None, rpc: str | None,
                      verifier: str | None, registry: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Check a proof bundle offline: the proof, the logged key, the model's status and the call's
        commitments (and, with --rpc, on chain).  Exit 1 when any check fails."""
        from ailedger.verifiable.zk import verify_zk

        if rpc is not None and (verifier is None or registry is None):
            raise BadInputError("--rpc needs --verifier and --registry", field="rpc")
        bundle = _json_file(proof_file, "proof bundle")
        with open_ledger(ledger_dir) as ledger:
            res = verify_zk(ledger, bundle, vk=vk, settings=settings, srs=srs)
            if rpc is not None:
                from ailedger.verifiable.evm import registered_entry, verify_on_chain, web3_for

                w3 = web3_for(rpc)
                idx, _e = registered_entry(ledger, w3, str(registry), str(verifier))
                if idx != res["setup"]:
                    raise VerificationError(f"the registry binds verifier {verifier} to model.zk #{idx}, not to the "
                                            f"proof's #{res['setup']}", expected=res["setup"], found=idx)
                res["on_chain"] = verify_on_chain(w3, str(verifier), bundle["proof"])
        text = (f"OK: call {res['receipt']} was computed by model {res['model']} "
                f"(circuit model.zk #{res['setup']}, {res['status']}); EZKL verify "
                f"{res['ezkl_verify_seconds']} s, binding checks {res['binding_seconds']} s")
        if "on_chain" in res:
            text += f"\non chain: verifier {verifier} accepted it ({res['on_chain']['gas']} gas)"
        emit(as_json, res, text)

    @inference.command("zk-sample")
    @_sampling_options("check")
    @ledger_option
    @json_option
    def zk_sample(model: str, rate: float, at: int | None, demand: tuple[str, ...], ledger_dir: Path | None,
                  as_json: bool) -> None:
        """The calls a later checkpoint selects for proving, and whether each has a logged proof; a selected
        call without one is a finding (exit 1)."""
        from ailedger.verifiable.sampling import sample_audit

        with open_ledger(ledger_dir) as ledger:
            res = sample_audit(ledger, model, rate, at, demand)
        if as_json:
            click.echo(json.dumps(res, sort_keys=True))
        else:
            click.echo(f"{_seed(res, rate)} ({res['pending']} later calls wait for a later checkpoint)")
            for it in res["selected"]:
                click.echo(f"  {it['receipt']}  " + ("proof " + it["proofs"][0][:16] + "..." if it["proofs"]
                                                     else "MISSING PROOF"))
        if not res["ok"]:
            raise VerificationError(f"{len(res['findings'])} selected or demanded call(s) without a proof: "
                                    + "; ".join(res["findings"][:5]), findings=res["findings"])

    @inference.command("zk-prove-sampled")
    @_sampling_options("prove")
    @click.option("--as", "identity", default="inference", show_default=True,
                  help="The operator identity (signs the inference.zk statements).")
    @out_option("Folder for the proof bundles (RECEIPT.zkproof.json each).", metavar="DIR")
    @ledger_option
    @json_option
    def zk_prove_sampled(model: str, rate: float, at: int | None, demand: tuple[str, ...], identity: str,
                         output: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Prove, after a checkpoint, the calls its root selects (and the demanded ones) that have no proof yet,
        logging inference.zk for each; a call that cannot be proven is a finding (exit 1)."""
        from tqdm import tqdm

        from ailedger.verifiable.sampling import prove_sampled

        with open_ledger(ledger_dir) as ledger, tqdm(desc="proving", unit="call", disable=as_json) as bar:
            res = prove_sampled(ledger, model, rate, _identity(ledger, identity), at, demand, progress=bar.update,
                                out_dir=output)
        if as_json:
            click.echo(json.dumps(res, sort_keys=True))
        else:
            click.echo(f"{_seed(res, rate)}; {len(res['proven'])} proven now ({res['pending']} later calls wait "
                       "for a later checkpoint)")
            for it in res["proven"]:
                click.echo(f"  {it['receipt']}  proof {it['proof_sha256'][:16]}... (inference.zk #{it['index']}, "
                           f"{it['prove_seconds']} s)")
        if not res["ok"]:
            raise VerificationError(f"{len(res['findings'])} call(s) could not be proven: "
                                    + "; ".join(res["findings"][:5]), findings=res["findings"])

    @main.group("eval")
    def eval_group() -> None:
        """Verified evaluation with delayed publication: commit, reveal, verify."""

    @eval_group.command("commit")
    @click.argument("evaluation")
    @click.option("--role", type=click.Choice(["model", "data"]), required=True,
                  help="model: a model and its claimed scores; data: a hidden test set.")
    @click.option("--model", "model_file", default=None, metavar="FILE", help="The ONNX model (role model).")
    @click.option("--scores", default=None, metavar="FILE", help="JSON object of claimed scores, e.g. "
                  "{\"accuracy\": 0.93} (role model).")
    @click.option("--manifest-root", default=None, help="The model's registered manifest root (role model), or "
                  "NAME / #INDEX of its registration in this ledger.")
    @click.option("--data", default=None, metavar="FILE", help="The test set, .npz with X and y (role data).")
    @click.option("--reveal-by", required=True, help="Reveal deadline, RFC 3339 UTC (2026-12-31T00:00:00Z).")
    @click.option("--as", "identity", required=True, help="Identity that signs the commitment.")
    @out_option("Where to keep the opening (salt and content): secret until the reveal.", required=True)
    @ledger_option
    @json_option
    def eval_commit(evaluation: str, role: str, model_file: str | None, scores: str | None,
                    manifest_root: str | None, data: str | None, reveal_by: str, identity: str, output: str,
                    ledger_dir: Path | None, as_json: bool) -> None:
        """Log a salted commitment for EVALUATION; keep the opening file secret until the reveal."""
        from ailedger.verifiable.evalreveal import commit

        sc = _json_file(scores, "scores") if scores else None
        if sc is not None and not isinstance(sc, dict):
            raise BadInputError("--scores must be a JSON object", field="scores")
        with open_ledger(ledger_dir) as ledger:
            res, opening = commit(ledger, evaluation, role, _identity(ledger, identity), deadline=reveal_by,
                                  model=model_file, scores=sc, data=data, manifest_root=manifest_root)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(opening, sort_keys=True) + "\n")
        emit(as_json, {**res, "opening": output},
             f"eval.commit #{res['index']} ({role}) for {evaluation}, reveal by {reveal_by}; opening -> {output}")

    @eval_group.command("reveal")
    @click.argument("opening_file")
    @click.option("--as", "identity", required=True, help="The committer's identity.")
    @ledger_option
    @json_option
    def eval_reveal(opening_file: str, identity: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Log the reveal of a commitment (refused, exit 1, when it does not open it or comes late)."""
        from ailedger.verifiable.evalreveal import reveal

        opening = _json_file(opening_file, "opening")
        with open_ledger(ledger_dir) as ledger:
            res = reveal(ledger, opening, _identity(ledger, identity))
        emit(as_json, res, f"eval.reveal #{res['index']} opens #{res['commit']} ({res['role']}) of {res['evaluation']}")

    @eval_group.command("verify")
    @click.argument("evaluation")
    @click.option("--model", "model_file", default=None, metavar="FILE", help="The published ONNX model.")
    @click.option("--data", default=None, metavar="FILE", help="The published test set (.npz).")
    @ledger_option
    @json_option
    def eval_verify(evaluation: str, model_file: str | None, data: str | None, ledger_dir: Path | None,
                    as_json: bool) -> None:
        """Recompute EVALUATION's scores from the revealed files and judge the commit-reveal; exit 1 on any
        finding (late, mismatched or missing reveal, other files, other scores)."""
        from ailedger.verifiable.evalreveal import verify_eval

        with open_ledger(ledger_dir) as ledger:
            res = verify_eval(ledger, evaluation, model=model_file, data=data)
        if not res["ok"]:
            raise VerificationError(f"evaluation {evaluation}: " + "; ".join(res["findings"]),
                                    findings=res["findings"])
        emit(as_json, res, f"OK: evaluation {evaluation}: commitments #{res['commits']['model'][0]} (model) and "
                           f"#{res['commits']['data'][0]} (data) both before the reveals, opened on time; "
                           f"recomputed {res['recomputed']} = claimed {res['opened']['model'].get('scores')}")
