"""AI inspection at a read point: a registered image classifier looks at items; each inference is logged as a
record of the project's inference trail (``inference.InferenceTrail``: an ``inference.batch`` entry signed by the
inspector, holding salted commitments to the image and to the verdict, the record naming the model, its
registration entry and the item), and each verdict is an EPCIS ObjectEvent (bizStep ``inspecting``, disposition
``conformant`` / ``non_conformant``) carrying an inspection extension that names the registered model (name,
registration entry, manifest root), the verdict and score, and references the inference record (its receipt id
and the log index of its batch entry).  Traces check that reference (``service.check_inference``).

A model later revoked or suspended (``authority.service.model_status``) makes its verdicts *suspect*: traces and
recall reports say so for every such event, as they do for a verdict whose inference record does not check.

The demonstration classifier is a scikit-learn logistic regression on scikit-learn's bundled 8x8 digits images
with synthetic defects (a scratch drawn across the image) -- small, offline and quick to train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ailedger.authority.service import model_registration, model_status
from ailedger.errors import BadInputError, VerificationError
from ailedger.inference.receipts import receipt_proof
from ailedger.inference.sdk import InferenceTrail
from ailedger.provenance.hashing import hash_model_dir

from .events import INSPECTION_NS, inspection_of, validate_document
from .service import Captured, capture

__all__ = ["INSPECTION_NS", "MODEL_FILE", "defect_images", "inspect", "inspection_of", "train_inspector"]

PREFIX = "ailinsp"
MODEL_FILE = "inspector.joblib"
SHAPE = (8, 8)
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {PREFIX: INSPECTION_NS}]


def defect_images(n: int, seed: int = 0) -> tuple[Any, Any]:
    """``n`` 8x8 images from scikit-learn's digits, about half with a synthetic defect (a bright scratch along
    a random row, column or diagonal): (images [n, 8, 8] in 0..16, labels 1 = defect)."""
    import numpy as np
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits().images
    imgs = digits[rng.integers(0, len(digits), n)].copy()
    labels = rng.random(n) < 0.5
    for img, bad in zip(imgs, labels):
        if not bad:
            continue
        k, pos = int(rng.integers(0, 3)), int(rng.integers(0, 8))
        if k == 0:
            img[pos, :] = 16.0
        elif k == 1:
            img[:, pos] = 16.0
        else:
            np.fill_diagonal(img if rng.random() < 0.5 else img[:, ::-1], 16.0)
    return imgs, labels.astype(int)


def train_inspector(out_dir: str | Path, *, n: int = 1500, seed: int = 0) -> dict[str, Any]:
    """Train the demonstration inspector and write it to ``out_dir/inspector.joblib``; its held-out accuracy."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = defect_images(n, seed)
    xtr, xte, ytr, yte = train_test_split(x.reshape(len(x), -1), y, test_size=0.25, random_state=seed)
    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(clf, out / MODEL_FILE)
    return {"path": str(out / MODEL_FILE), "accuracy": float(clf.score(xte, yte)), "train": len(ytr),
            "test": len(yte)}


def _load_image(item: Any) -> Any:
    import numpy as np

    if isinstance(item, (str, Path)):
        p = Path(item)
        try:
            arr = np.load(p, allow_pickle=False) if p.suffix == ".npy" else None
        except (OSError, ValueError) as exc:
            raise BadInputError(f"cannot read image {p}: {exc}", field="image") from None
        if arr is None:
            try:
                from PIL import Image
                with Image.open(p) as im:
                    arr = np.asarray(im.convert("L").resize(SHAPE), dtype=float) * (16.0 / 255.0)
            except (OSError, ValueError) as exc:
                raise BadInputError(f"cannot read image {p}: {exc}", field="image") from None
        item = arr
    arr = np.asarray(item, dtype=float)
    if arr.shape != SHAPE or not np.isfinite(arr).all():
        raise BadInputError(f"an inspection image is {SHAPE[0]}x{SHAPE[1]} finite values; got shape {arr.shape}",
                            field="image")
    return arr


def inspect(ledger: Any, identity: Any, model: str, model_dir: str | Path, items: list[tuple[str, Any]], *,
            read_point: str, event_time: str | None = None, passphrase: str | None = None) -> list[dict[str, Any]]:
    """Inspect ``items`` ((EPC, image) pairs) with registered model ``model`` (its files in ``model_dir``, which
    must be the registered bytes): log each inference as a record of an inference trail signed by ``identity``
    (one ``inference.batch`` entry), then capture one ObjectEvent per item referencing its record.  A model that
    is not usable now (revoked, suspended) or files that are not the registered model: ``VerificationError``;
    a bad image or read point: ``BadInputError``; either way nothing logged."""
    import joblib
    import numpy as np

    if not items:
        raise BadInputError("nothing to inspect", field="items")
    idx, reg = model_registration(ledger, model)
    name = str(reg.body["name"])
    status = model_status(ledger, name)
    if not status.usable:
        raise VerificationError(f"model {name} may not be used: {status.describe()}", expected="a usable model",
                                found=status.state)
    root = hash_model_dir(model_dir).root.hex()
    if root != reg.body["manifest"]["root"]:
        raise VerificationError(f"the files in {model_dir} are not registered model {name} (entry #{idx})",
                                expected=reg.body["manifest"]["root"], found=root)
    clf = joblib.load(Path(model_dir) / MODEL_FILE)
    images = [(epc, _load_image(img)) for epc, img in items]
    x = np.stack([im.reshape(-1) for _, im in images])
    scores = clf.predict_proba(x)[:, 1]
    when = event_time or ledger.now()
    events: list[dict[str, Any]] = []
    verdicts: list[tuple[str, str]] = []
    for (epc, _im), score in zip(images, scores):
        defect = bool(score >= 0.5)
        verdicts.append(("defect" if defect else "ok", f"{float(score):.4f}"))
        events.append({
            "type": "ObjectEvent", "eventTime": when, "eventTimeZoneOffset": "+00:00", "epcList": [epc],
            "action": "OBSERVE", "bizStep": "inspecting", "disposition": "non_conformant" if defect else "conformant",
            "readPoint": {"id": read_point},
            f"{PREFIX}:inspection": {
                f"{PREFIX}:model": name, f"{PREFIX}:modelRecord": f"#{idx}", f"{PREFIX}:manifestRoot": root,
                f"{PREFIX}:verdict": verdicts[-1][0], f"{PREFIX}:score": verdicts[-1][1],
                f"{PREFIX}:inferenceRecord": "-", f"{PREFIX}:inferenceEntry": "#0",
            },
        })
    doc = {"@context": CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": when,
           "epcisBody": {"eventList": events}}
    validate_document(doc)  # a bad read point or EPC is refused before anything is logged
    # the inferences first: one record each (the image and the verdict committed, the item in the record's meta)
    with InferenceTrail(ledger, name, mode="fast", operator=identity.name, passphrase=passphrase,
                        caller="epcis-inspect") as trail:
        rids = [trail.record(np.ascontiguousarray(im, dtype="<f8").tolist(), {"verdict": v, "score": sc},
                             meta={"epc": epc, "readPoint": read_point}).id
                for (epc, im), (v, sc) in zip(images, verdicts)]
    for ev, rid in zip(events, rids):
        ext = ev[f"{PREFIX}:inspection"]
        ext[f"{PREFIX}:inferenceRecord"] = rid
        ext[f"{PREFIX}:inferenceEntry"] = f"#{receipt_proof(ledger, rid)['batch_index']}"
    res: list[Captured] = capture(ledger, identity, doc)
    return [dict(c.as_dict(), epc=epc, verdict=v, score=sc, receipt=rid)
            for c, (epc, _), (v, sc), rid in zip(res, images, verdicts, rids)]
