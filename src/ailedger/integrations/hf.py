"""Hugging Face model cards that say how to verify the model offline, and the proof file they ship with.

A card is written with huggingface_hub's :class:`~huggingface_hub.ModelCard` (YAML metadata between
``---`` lines, then Markdown), the format the Hub reads.  The metadata carries the ledger facts under
``ailedger:`` (log origin and key, entry index, manifest root, signer, status, datasets); the text says in
plain words what was logged and gives the exact commands.  The offline proof file
(``ailedger-model-proof/v1``) holds the signed ``model.register`` entry and its C2SP tlog-proof bundle:
with the log's public key alone, :func:`verify_folder_offline` checks the entry's signature, its
inclusion under the log's signed checkpoint, and that every byte of a downloaded folder hashes to the
manifest root the entry signs.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from ailedger.authority.service import model_status
from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.encoding.records import parse_entry
from ailedger.errors import BadInputError, NotFoundError, VerificationError
from ailedger.provenance import MODEL_RECORD, entry_status, find_model, hash_model_dir
from ailedger.tlog.note import parse_vkey
from ailedger.tlog.proofbundle import verify_proof_bundle

__all__ = ["MODEL_PROOF", "model_card", "model_proof", "verify_folder_offline"]

MODEL_PROOF = "ailedger-model-proof/v1"


def _status(ledger: Any, name: str) -> Any:
    return model_status(ledger, name)


def model_proof(ledger: Any, index: int) -> bytes:
    """The offline proof file of the ``model.register`` entry at ``index``: its exact leaf bytes and a
    C2SP tlog-proof bundle under the ledger's latest checkpoint."""
    data = ledger.entry_bytes(index)
    e = parse_entry(data, verify=True)
    if e.type != MODEL_RECORD:
        raise BadInputError(f"entry #{index} is a {e.type}, not a {MODEL_RECORD}", field="model")
    bundle = ledger.prove(index)
    doc = {"type": MODEL_PROOF, "name": e.body.get("name"), "index": index,
           "manifest_root": e.body["manifest"]["root"], "entry": base64.b64encode(data).decode(),
           "tlog_proof": bundle.decode() if isinstance(bundle, bytes) else str(bundle)}
    return (MODEL_PROOF + "\n").encode() + canonical_json(doc) + b"\n"


def _find(ledger: Any, ref: str) -> tuple[int, Any, Any]:
    """(index, entry, status) of the registration ``ref`` names; a revoked model is still found (its card
    must say so); NotFoundError for a name this ledger never registered."""
    st = None
    if not ref.startswith("#"):
        st = _status(ledger, ref)
        if st.registration is None:
            raise NotFoundError(f"no registered model named {ref!r} in this ledger; no card written", field="model")
        return st.registration, ledger.entry(st.registration), st
    idx, e = find_model(ledger, ref)
    return idx, e, _status(ledger, str(e.body.get("name")))


def model_card(ledger: Any, ref: str, *, repo_id: str | None = None, proof_name: str = "ailedger-model.proof",
               vkey_name: str = "log.vkey", log_url: str | None = None) -> tuple[str, dict[str, Any]]:
    """The card text (huggingface_hub ModelCard format) for model ``ref`` and the facts it states."""
    from huggingface_hub import ModelCard, ModelCardData

    idx, e, st = _find(ledger, ref)
    body = e.body
    name = str(body.get("name"))
    lineage = body.get("lineage") or {}
    datasets = [d for d in lineage.get("datasets", []) if isinstance(d, dict)]
    rec = entry_status(ledger, idx)
    vkey = str(ledger.vkey)
    revoked = not st.usable
    facts: dict[str, Any] = {
        "model": name, "entry": idx, "manifest_root": body["manifest"]["root"],
        "chunk_size": body["manifest"].get("chunk_size"), "signer": rec["signer"], "logged_at": rec["time"],
        "log": {"origin": rec["checkpoint"]["origin"], "vkey": vkey, "url": log_url},
        "status": st.state, "usable": st.usable, "status_detail": st.describe(),
        "datasets": [{"name": d.get("name"), "entry": d.get("index"), "root": d.get("root")} for d in datasets],
    }
    if not log_url:
        facts["log"].pop("url")
    base = lineage.get("base") if isinstance(lineage.get("base"), dict) else None
    data = ModelCardData(tags=["ailedger", *(["revoked"] if revoked else [])],
                         datasets=[str(d["name"]) for d in facts["datasets"] if d["name"]] or None,
                         base_model=(str(base["name"]) if base and base.get("name") else None), ailedger=facts)
    title = repo_id or name
    lines = [f"# {title}", ""]
    if revoked:
        lines += [(f"> **REVOKED: do not use this model.** {st.describe()}. The ledger entries below still prove "
                  "which bytes were registered, but their owner (or the log's governance) has withdrawn them."), ""]
    lines += [
        (f"This model's files were registered in an append-only, signed transparency log (ailedger) as entry "
        f"#{idx} of the log `{facts['log']['origin']}`, signed by `{rec['signer']}` at {rec['time']}. The entry "
        f"signs a Merkle root over every byte of every file: `{facts['manifest_root']}`."),
        "",
    ]
    if facts["datasets"]:
        lines.append("It was trained on these committed datasets (each a signed root over its records):")
        lines += [f"- `{d['name']}`: entry #{d['entry']}, root `{d['root']}`" for d in facts["datasets"]]
        lines.append("")
    lines += [
        "## Verify this model offline",
        "",
        ("You do not need to trust this page, the hub or us. You need three things: the model's files, the "
        f"proof file `{proof_name}` shipped next to this card, and the log's public key (below; compare it "
        "with the one the log's operator publishes elsewhere). Nothing goes over the network."),
        "",
        "1. Save the log's public key:",
        "",
        "```sh",
        f"echo '{vkey}' > {vkey_name}",
        "```",
        "",
        ("2. Check that the proof is signed by that log, that the entry is in it, and that every byte of the "
        "folder you downloaded hashes to the registered root (run it in the model's folder):"),
        "",
        "```sh",
        "pip install ailedger",
        f"ailedger model verify-offline . --proof {proof_name} --vkey {vkey_name} --ignore README.md --ignore {vkey_name} --ignore .cache",
        "```",
        "",
        ("It prints `OK` and the entry it matched, or names each file that differs, and exits 1. This card "
        "(README.md), the proof, the key and the hub's `.cache` and `.gitattributes` are not model files "
        "and are left out."),
        "",
    ]
    if facts["datasets"]:
        lines += [
            ("3. To check whether a record was in a training dataset, ask the dataset's curator for a membership or "
            "absence proof and check it offline:"),
            "",
            "```sh",
            f"ailedger dataset verify record.proof --candidate RECORD_FILE --vkey {vkey_name}",
            "```",
            "",
        ]
    lines += [
        "The proof says what the log held when this card was written. Whether the model was revoked since is "
        "a question for the log itself: `ailedger model verify . --name " + name + "` against a copy of it "
        "refuses a revoked model." if not revoked else
        "The proof file still verifies the bytes; `ailedger model verify` against the log refuses this model "
        "because it was revoked.",
        "",
    ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    return str(card), facts


def verify_folder_offline(path: str | os.PathLike[str], proof: bytes, vkey: str, *,
                          ignore: tuple[str, ...] = (), progress: bool = False) -> dict[str, Any]:
    """Check ``proof`` (``ailedger-model-proof/v1``) with the log key ``vkey`` alone, then re-hash every
    byte of ``path`` and compare with the manifest root the entry signs.  BadInputError for a file that is
    not such a proof; VerificationError when the proof or the folder does not hold."""
    head = (MODEL_PROOF + "\n").encode()
    if not proof.startswith(head):
        raise BadInputError(f"not an {MODEL_PROOF} file", field="proof")
    doc = parse_json(proof[len(head):], what="model proof")
    try:
        entry_bytes = base64.b64decode(doc["entry"], validate=True)
        bundle = str(doc["tlog_proof"]).encode()
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError("the model proof needs its entry (base64) and tlog_proof (text)", field="proof") from exc
    e = parse_entry(entry_bytes, verify=True)
    if e.type != MODEL_RECORD:
        raise BadInputError(f"the proof's entry is a {e.type}, not a {MODEL_RECORD}", field="proof")
    b, cp = verify_proof_bundle(bundle, parse_vkey(vkey), entry=entry_bytes)
    want = str(e.body["manifest"]["root"])
    m = hash_model_dir(path, chunk_size=int(e.body["manifest"]["chunk_size"]), progress=progress, strict=False,
                       ignore=ignore)
    got = m.root.hex()
    rep: dict[str, Any] = {"ok": got == want, "name": e.body.get("name"), "index": b.index, "signer": e.signer,
                           "time": e.time, "manifest_root": got, "expected_root": want, "files": len(m.files),
                           "bytes": m.total_bytes,
                           "checkpoint": {"origin": cp.origin, "size": cp.size, "root": cp.root.hex()}}
    if got != want:
        listed = {f["path"]: f.get("root") for f in e.body.get("files", []) if isinstance(f, dict)}
        have = {f.path: f.root.hex() for f in m.files}
        diffs = sorted({p for p in set(listed) | set(have) if listed.get(p) != have.get(p)}) if listed else []
        rep["differences"] = diffs
        raise VerificationError(f"{path} is not the registered model {e.body.get('name')}: its manifest root is "
                                f"{got[:16]}..., the entry signs {want[:16]}..."
                                + (f" (differs: {', '.join(diffs[:8])})" if diffs else ""),
                                expected=want, found=got, report=rep)
    return rep
