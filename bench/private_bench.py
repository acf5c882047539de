"""Private inference figures: FHE (TenSEAL CKKS) and three-party MPC (MPyC) on the digits test set.

FHE: every digit of the test split (540) through a registered logistic regression and a 64-32-10 MLP with a
square activation, in one batch (one ciphertext per pixel, one slot per digit), and ``--fhe-limit`` digits
one query each: agreement with plaintext, client encrypt / server evaluate / client decrypt latency,
bytes per query and answer, the one-time public context; the same run's plaintext inference is the
reference, with the TenSEAL paper's (an encrypted MNIST CNN in under 1 s, under 0.5 MB per query).
MPC: ``--mpc-runs`` digits per model through three parties on 127.0.0.1: latency (process start included),
bytes every party sent, agreement.  Every query is logged (an inference record per FHE query, three
``mpc.commit`` entries per MPC run) in a fresh ledger.

HTTP: ``--http-queries`` digits per model through the FHE server on 127.0.0.1 (:mod:`ailedger.private.fhe_http`,
the server of ``ailedger private fhe-serve``): round-trip latency and bytes on the wire per query, against the
same run's in-process query.  ``--mpc-runs 0`` leaves MPC out.

    python bench/private_bench.py [--fhe-limit 60] [--mpc-runs N] [--base-port 18360] [--http-queries 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fhe-limit", type=int, default=60,
                    help="digits per model sent one per query (0: the whole test split; the batch always has it all)")
    ap.add_argument("--mpc-runs", type=int, default=20)
    ap.add_argument("--base-port", type=int, default=18360)
    ap.add_argument("--http-queries", type=int, default=20,
                    help="digits per model sent one per query over HTTP to `fhe-serve`'s server (0: none)")
    ap.add_argument("--http-port", type=int, default=19860)
    args = ap.parse_args()

    import numpy as np
    from tqdm import tqdm

    from ailedger.inference import InferenceTrail
    from ailedger.private import FheServer, decrypt, encrypt, keygen, registered_model, run_mpc
    from ailedger.private.digits import save_model, test_split, train
    from ailedger.private.fhe import decrypt_batch, encrypt_batch, infer_logged
    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger

    _, Xte, _, yte = test_split()
    n_fhe = len(Xte) if args.fhe_limit <= 0 else min(args.fhe_limit, len(Xte))
    out: dict[str, object] = {"bench": "private", "test_digits": len(Xte)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        led = Ledger.init(root / "ledger", origin="bench.example/private")
        ids = tuple(led.new_identity(n)[0] for n in ("owner", "client", "helper"))
        t = time.perf_counter()
        keys = keygen()
        keygen_s = time.perf_counter() - t
        out["fhe_keygen_s"] = round(keygen_s, 3)
        out["fhe_public_context_bytes"] = len(keys.public)
        print(f"CKKS keygen {keygen_s:.2f} s; public context (evaluation keys, sent once) {len(keys.public) / 1e6:.1f} MB")
        for kind in ("logreg", "mlp"):
            model = train(kind)
            save_model(model, root / kind)
            register_model(led, root / kind, f"digits-{kind}", ids[0])
            reg = registered_model(led, f"digits-{kind}", root / kind)
            plain_pred = reg.model.predict(Xte)
            t = time.perf_counter()
            for i in range(n_fhe):
                reg.model.predict(Xte[i:i + 1])
            plain_s = (time.perf_counter() - t) / n_fhe
            server = FheServer(reg.model, keys.public)
            enc_s, eval_s, dec_s, q_bytes, a_bytes, agree = [], [], [], [], [], 0
            with InferenceTrail(led, reg.name, mode="fast", caller="bench") as trail:
                for i in tqdm(range(n_fhe), desc=f"FHE {kind}", file=sys.stderr, leave=False):
                    t0 = time.perf_counter()
                    q = encrypt(keys, Xte[i])
                    t1 = time.perf_counter()
                    r = infer_logged(trail, server, q)
                    t2 = time.perf_counter()
                    got = decrypt(keys, r["answer"])
                    t3 = time.perf_counter()
                    enc_s.append(t1 - t0)
                    eval_s.append(r["seconds"])
                    dec_s.append(t3 - t2)
                    q_bytes.append(len(q))
                    a_bytes.append(len(r["answer"]))
                    agree += got["class"] == int(plain_pred[i])
            total = [a + b + c for a, b, c in zip(enc_s, eval_s, dec_s)]
            # the whole test split in one batch (column packing: one ciphertext per pixel, one slot per digit)
            t0 = time.perf_counter()
            bq = encrypt_batch(keys, Xte)
            t1 = time.perf_counter()
            with InferenceTrail(led, reg.name, mode="fast", caller="bench") as trail:
                br = infer_logged(trail, server, bq)
            t2 = time.perf_counter()
            logits = decrypt_batch(keys, br["answer"])
            t3 = time.perf_counter()
            b_agree = int((logits.argmax(axis=1) == plain_pred).sum())
            out[f"fhe_batch_{kind}"] = {
                "n": len(Xte), "agreement": round(b_agree / len(Xte), 4), "encrypt_s": round(t1 - t0, 3),
                "server_eval_s": round(br["seconds"], 3), "decrypt_s": round(t3 - t2, 3),
                "query_bytes": len(bq), "answer_bytes": len(br["answer"]),
                "per_digit_ms": round(1000 * (t3 - t0) / len(Xte), 2),
                "per_digit_bytes": round((len(bq) + len(br["answer"])) / len(Xte)),
                "ratio_per_digit_to_plaintext": round((t3 - t0) / len(Xte) / plain_s, 1)}
            print(f"FHE {kind}, whole test split in one batch: same class as plaintext on {b_agree}/{len(Xte)}; "
                  f"{t3 - t0:.1f} s in all ({1000 * (t3 - t0) / len(Xte):.1f} ms and "
                  f"{(len(bq) + len(br['answer'])) / len(Xte) / 1e3:.0f} kB per digit)")
            f = {"n": n_fhe, "agreement": round(agree / n_fhe, 4),
                 "plaintext_accuracy": round(float((plain_pred == yte).mean()), 4),
                 "encrypt_ms": round(1000 * statistics.median(enc_s), 2),
                 "server_eval_ms": round(1000 * statistics.median(eval_s), 1),
                 "decrypt_ms": round(1000 * statistics.median(dec_s), 2),
                 "total_ms_median": round(1000 * statistics.median(total), 1),
                 "query_bytes": int(statistics.median(q_bytes)), "answer_bytes": int(statistics.median(a_bytes)),
                 "plaintext_ms": round(1000 * plain_s, 4),
                 "ratio_fhe_to_plaintext": round(statistics.median(total) / plain_s, 1)}
            out[f"fhe_{kind}"] = f
            print(f"FHE {kind}: same class as plaintext on {agree}/{n_fhe} ({f['agreement']:.2%}); "
                  f"per query {f['total_ms_median']} ms (server {f['server_eval_ms']} ms), "
                  f"{(f['query_bytes'] + f['answer_bytes']) / 1e6:.2f} MB; plaintext {f['plaintext_ms']} ms "
                  f"(x{f['ratio_fhe_to_plaintext']})")
            if args.http_queries > 0:
                out[f"fhe_http_{kind}"] = _http(led, reg, keys, Xte, plain_pred, args, f["total_ms_median"])
            if args.mpc_runs <= 0:
                continue
            rng = np.random.default_rng(1)
            picks = rng.choice(len(Xte), min(args.mpc_runs, len(Xte)), replace=False)
            lat, sent, m_agree = [], [], 0
            for j, i in enumerate(tqdm(picks, desc=f"MPC {kind}", file=sys.stderr, leave=False)):
                res = run_mpc(led, reg, Xte[i], base_port=args.base_port + 3 * (j % 10), identities=ids)
                lat.append(res["seconds"])
                sent.append(res["bytes_sent"])
                m_agree += res["class"] == int(plain_pred[i])
            m = {"runs": len(picks), "agreement": round(m_agree / len(picks), 4),
                 "latency_s_median": round(statistics.median(lat), 3), "bytes_sent_median": int(statistics.median(sent)),
                 "ratio_mpc_to_plaintext": round(statistics.median(lat) / plain_s, 1)}
            out[f"mpc_{kind}"] = m
            print(f"MPC {kind}: same class on {m_agree}/{len(picks)}; {m['latency_s_median']} s per run (three "
                  f"processes started, connected and stopped), {m['bytes_sent_median'] / 1e6:.2f} MB sent by all parties")
        led.close()
    out["reference"] = {"tenseal_paper_encrypted_mnist_cnn": {"latency_s": "< 1", "communication_MB": "< 0.5"}}
    lr = out["fhe_logreg"]
    assert isinstance(lr, dict)
    out["ratios_to_reference"] = {
        f"fhe_{k}": {"latency_vs_1s": round(out[f"fhe_{k}"]["total_ms_median"] / 1000, 3),  # type: ignore[index]
                     "bytes_vs_0.5MB": round((out[f"fhe_{k}"]["query_bytes"]  # type: ignore[index]
                                              + out[f"fhe_{k}"]["answer_bytes"]) / 0.5e6, 2)}  # type: ignore[index]
        for k in ("logreg", "mlp")}
    print(json.dumps(out, sort_keys=True))


def _http(led: Any, reg: Any, keys: Any, Xte: Any, plain_pred: Any, args: argparse.Namespace,
          inproc_ms: float) -> dict[str, Any]:
    """Per-query latency and bytes over HTTP (a real server on 127.0.0.1), against the in-process query."""
    from tqdm import tqdm

    from ailedger.inference import InferenceTrail
    from ailedger.private.fhe_http import FheHttpServer, query

    n = min(args.http_queries, len(Xte))
    with InferenceTrail(led, reg.name, mode="fast", caller="bench") as trail:
        srv = FheHttpServer(reg, trail, "127.0.0.1", args.http_port)
        srv.start_background()
        try:
            t = time.perf_counter()
            first = query(srv.url, keys, Xte[0])
            upload_s = time.perf_counter() - t
            rt, tot, up, down, agree = [], [], [], [], 0
            for i in tqdm(range(n), desc=f"HTTP {reg.name}", file=sys.stderr, leave=False):
                r = query(srv.url, keys, Xte[i])
                rt.append(r["round_trip_seconds"])
                tot.append(r["seconds"])
                up.append(r["bytes_out"])
                down.append(r["bytes_in"])
                agree += r["class"] == int(plain_pred[i])
        finally:
            srv.shutdown()
            srv.server_close()
    h = {"n": n, "agreement": round(agree / n, 4), "first_query_with_context_upload_s": round(upload_s, 3),
         "context_upload_bytes": first["key_bytes_uploaded"],
         "round_trip_ms_median": round(1000 * statistics.median(rt), 1),
         "client_total_ms_median": round(1000 * statistics.median(tot), 1),
         "request_bytes": int(statistics.median(up)), "response_body_bytes": int(statistics.median(down)),
         "ratio_http_to_in_process": round(1000 * statistics.median(tot) / inproc_ms, 2)}
    print(f"FHE over HTTP {reg.name}: same class on {agree}/{n}; per query {h['client_total_ms_median']} ms "
          f"(round trip {h['round_trip_ms_median']} ms), {(h['request_bytes'] + h['response_body_bytes']) / 1e6:.2f} MB; "
          f"first query {upload_s:.2f} s with the {first['key_bytes_uploaded'] / 1e6:.0f} MB context upload "
          f"(x{h['ratio_http_to_in_process']} the in-process query)")
    return h


if __name__ == "__main__":
    main()
