"""``ailedger private``: inference on encrypted inputs (FHE, CKKS) and shared among three parties (MPC)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, json_option, ledger_option, open_ledger, out_option, read_input_file
from ailedger.errors import BadInputError


def _read_digit(path: str) -> Any:
    try:
        doc = json.loads(read_input_file(path, "input"))
    except ValueError as exc:
        raise BadInputError(f"{path} is not JSON: {exc}", field="input") from None
    return doc


def _identity(ledger: Any, name: str) -> Any:
    return ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))


def register(main: click.Group) -> None:
    @main.group("private")
    def private() -> None:
        """Private inference: encrypted inputs (FHE) and inference shared among parties (MPC)."""

    @private.command("digits-model")
    @click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--kind", type=click.Choice(["logreg", "mlp"]), default="logreg", show_default=True,
                  help="Logistic regression, or a 64-32-10 MLP with a square activation.")
    @click.option("--sample", "sample", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Also save the first test digit as this JSON file (a list of 64 values) to try the model on.")
    @json_option
    def digits_model(folder: Path, kind: str, sample: Path | None, as_json: bool) -> None:
        """Train a digits model for private inference into FOLDER (register it with `ailedger model register`)."""
        from ailedger.private.digits import save_model, test_split, train

        m = train(kind)
        save_model(m, folder)
        _, Xte, _, yte = test_split()
        acc = float((m.predict(Xte) == yte).mean())
        if sample is not None:
            sample.write_text(json.dumps([float(v) for v in Xte[0]]) + "\n")
        emit(as_json, {"ok": True, "folder": str(folder), "kind": kind, "test_accuracy": round(acc, 4),
                       "sample": str(sample) if sample else None, "sample_class": int(yte[0])},
             f"{kind} trained on digits (test accuracy {acc:.3f}) -> {folder}")

    @private.command("fhe-keygen")
    @click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
    @json_option
    def fhe_keygen(folder: Path, as_json: bool) -> None:
        """Client: make a CKKS key pair in FOLDER (secret.ctx stays here; send public.ctx to the server)."""
        from ailedger.private.fhe import keygen, save_keys

        info = save_keys(keygen(), folder)
        emit(as_json, {"ok": True, **info},
             f"CKKS keys {info['key'][:16]}... ({info['params']}) -> {folder}/secret.ctx (keep), "
             f"{folder}/public.ctx ({info['public_bytes'] / 1e6:.1f} MB, send once)")

    @private.command("fhe-encrypt")
    @click.argument("input_file", metavar="INPUT.json")
    @click.option("--keys", "keys_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="Folder of fhe-keygen.")
    @out_option("The query ciphertext envelope.", required=True)
    @json_option
    def fhe_encrypt(input_file: str, keys_dir: Path, output: str, as_json: bool) -> None:
        """Client: encrypt one digit (a JSON list of 64 values in [0, 1]), or a batch of up to 4096 (a list of
        such lists: one ciphertext per pixel, one slot per digit), into a query ciphertext."""
        from ailedger.private.fhe import digest, encrypt, encrypt_batch, load_keys

        keys = load_keys(keys_dir, secret=True)
        x = _read_digit(input_file)
        batch = isinstance(x, list) and bool(x) and all(isinstance(r, list) for r in x)
        ct = encrypt_batch(keys, x) if batch else encrypt(keys, x)
        Path(output).write_bytes(ct)
        emit(as_json, {"ok": True, "out": output, "bytes": len(ct), "sha256": digest(ct)},
             f"query ciphertext ({len(ct)} bytes) -> {output}")

    @private.command("fhe-infer")
    @click.argument("query", metavar="QUERY.ct")
    @click.option("--model", "model_name", required=True, help="Registered model name.")
    @click.option("--model-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="The model's folder (checked against its registration before use).")
    @click.option("--public-key", "public", required=True, type=click.Path(dir_okay=False, path_type=Path),
                  help="The client's public.ctx.")
    @click.option("--operator", default="inference", show_default=True, help="Identity that signs the record.")
    @click.option("--caller", default=None, help="Who asked (goes in the record).")
    @out_option("The answer ciphertext envelope.", required=True)
    @ledger_option
    @json_option
    def fhe_infer(query: str, model_name: str, model_dir: Path, public: Path, operator: str, caller: str | None,
                  output: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Server: evaluate a registered model on an encrypted query; log a record of both ciphertext digests."""
        from ailedger.inference import InferenceTrail
        from ailedger.private.binding import registered_model
        from ailedger.private.fhe import FheServer, infer_logged

        data = read_input_file(query, "query")
        with open_ledger(ledger_dir) as ledger:
            reg = registered_model(ledger, model_name, model_dir)
            server = FheServer(reg.model, read_input_file(public, "public key"))
            with InferenceTrail(ledger, reg.name, mode="durable", operator=operator, caller=caller) as trail:
                res = infer_logged(trail, server, data, caller=caller)
        Path(output).write_bytes(res.pop("answer"))
        emit(as_json, {"ok": True, "out": output, "model": reg.name, "model_index": reg.index, **res},
             f"{reg.name}: answer ({res['bytes_out']} bytes) -> {output} in {res['seconds']:.2f} s; "
             f"receipt {res['receipt']}")

    @private.command("fhe-serve")
    @click.option("--model", "model_name", required=True, help="Registered model name.")
    @click.option("--model-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="The model's folder (checked against its registration before serving).")
    @click.option("--as", "--operator", "operator", default="inference", show_default=True,
                  help="Identity that signs the inference records.")
    @click.option("--listen", default="127.0.0.1:18400", show_default=True, help="HOST:PORT to serve on.")
    @click.option("--max-keys", type=click.IntRange(1, 64), default=4, show_default=True,
                  help="Client public contexts held in memory (~43 MB each; the oldest is dropped).")
    @ledger_option
    @json_option
    def fhe_serve(model_name: str, model_dir: Path, operator: str, listen: str, max_keys: int,
                  ledger_dir: Path | None, as_json: bool) -> None:
        """Server: evaluate a registered model on encrypted queries over HTTP (POST /v1/fhe/keys, then
        POST /v1/fhe/infer); one inference record per answered query. Stops on SIGINT/SIGTERM."""
        from ailedger.inference import InferenceTrail
        from ailedger.private.binding import registered_model
        from ailedger.private.fhe_http import FheHttpServer

        host, sep, port_s = listen.rpartition(":")
        if not sep or not port_s.isdigit() or not host:
            raise BadInputError(f"--listen must be HOST:PORT, got {listen!r}", field="listen")
        with open_ledger(ledger_dir) as ledger:
            reg = registered_model(ledger, model_name, model_dir)
            with InferenceTrail(ledger, reg.name, mode="durable", operator=operator) as trail:
                srv = FheHttpServer(reg, trail, host.strip("[]"), int(port_s), max_keys=max_keys)
                emit(as_json, {"ok": True, "url": srv.url, "model": reg.name, "model_index": reg.index,
                               "pid": os.getpid()},
                     f"{reg.name} (entry {reg.index}) on {srv.url}/v1/fhe/infer (pid {os.getpid()})")
                try:
                    srv.serve_forever()
                finally:
                    srv.server_close()

    @private.command("fhe-query")
    @click.argument("url")
    @click.argument("input_file", metavar="INPUT.json")
    @click.option("--keys", "keys_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="Folder of fhe-keygen.")
    @click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per HTTP request.")
    @json_option
    def fhe_query(url: str, input_file: str, keys_dir: Path, timeout: float, as_json: bool) -> None:
        """Client: encrypt one digit, have the FHE server at URL evaluate it, decrypt the class (public.ctx is
        uploaded first when the server does not hold it)."""
        from ailedger.private.fhe import load_keys
        from ailedger.private.fhe_http import query

        res = query(url, load_keys(keys_dir, secret=True), _read_digit(input_file), timeout=timeout)
        emit(as_json, {"ok": True, **res},
             f"class {res['class']} (receipt {res['receipt']}; {res['bytes_out']} bytes up, {res['bytes_in']} down, "
             f"{res['round_trip_seconds']:.2f} s round trip)")

    @private.command("fhe-decrypt")
    @click.argument("answer", metavar="ANSWER.ct")
    @click.option("--keys", "keys_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="Folder of fhe-keygen.")
    @json_option
    def fhe_decrypt(answer: str, keys_dir: Path, as_json: bool) -> None:
        """Client: decrypt an answer ciphertext to the class and its logits (a batch: the classes)."""
        from ailedger.private.fhe import decrypt, decrypt_batch, envelope_kind, load_keys

        keys = load_keys(keys_dir, secret=True)
        data = read_input_file(answer, "answer")
        if envelope_kind(data) == "batch-answer":
            logits = decrypt_batch(keys, data)
            classes = [int(c) for c in logits.argmax(axis=1)]
            emit(as_json, {"ok": True, "classes": classes}, f"classes {' '.join(map(str, classes))}")
            return
        res = decrypt(keys, data)
        emit(as_json, {"ok": True, **res}, f"class {res['class']}")

    @private.command("mpc-run")
    @click.argument("input_file", metavar="INPUT.json")
    @click.option("--model", "model_name", required=True, help="Registered model name.")
    @click.option("--model-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="The owner's model folder (checked against its registration before use).")
    @click.option("--owner", required=True, help="Owner party's identity (signs its commitment).")
    @click.option("--client", required=True, help="Client party's identity.")
    @click.option("--helper", required=True, help="Helper party's identity.")
    @click.option("--base-port", type=int, default=18300, show_default=True,
                  help="Parties listen on 127.0.0.1 at this port and the next two.")
    @click.option("--timeout", type=float, default=120.0, show_default=True, help="Abort after this many seconds.")
    @ledger_option
    @json_option
    def mpc_run(input_file: str, model_name: str, model_dir: Path, owner: str, client: str, helper: str,
                base_port: int, timeout: float, ledger_dir: Path | None, as_json: bool) -> None:
        """Three parties on loopback compute a registered model's class on a digit; each logs a commitment."""
        from ailedger.private.binding import registered_model
        from ailedger.private.mpc import run_mpc

        x = _read_digit(input_file)
        with open_ledger(ledger_dir) as ledger:
            reg = registered_model(ledger, model_name, model_dir)
            ids = (_identity(ledger, owner), _identity(ledger, client), _identity(ledger, helper))
            res = run_mpc(ledger, reg, x, base_port=base_port, timeout=timeout, identities=ids)
        emit(as_json, res, f"class {res['class']} (run {res['run']}; commitments at "
             f"{', '.join('#' + str(i) for i in res['indices'])}; {res['seconds']:.2f} s, "
             f"{res['bytes_sent'] / 1e6:.2f} MB exchanged)")

    @private.command("mpc-audit")
    @click.argument("run")
    @click.option("--model", "model_name", required=True, help="Registered model name.")
    @click.option("--model-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="A copy of the model's folder.")
    @ledger_option
    @json_option
    def mpc_audit(run: str, model_name: str, model_dir: Path, ledger_dir: Path | None, as_json: bool) -> None:
        """Auditor: check that the weights shared in RUN were the registered model's (exit 1 if not)."""
        from ailedger.private.binding import registered_model
        from ailedger.private.mpc import audit_run

        with open_ledger(ledger_dir) as ledger:
            res = audit_run(ledger, run, registered_model(ledger, model_name, model_dir))
        emit(as_json, res, f"run {run}: the shared weights were {res['model']} (entry {res['model_index']})")
