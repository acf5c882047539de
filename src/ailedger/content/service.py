"""Content authenticity: register media with a signed identity and time, find it again later.

The ledger records are the truth; the fingerprint index (``<ledger>/content/index.sqlite``)
is derived state, rebuilt from ``content.register`` entries by :meth:`ContentService.sync_index`
so anyone holding the log recomputes the same index.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from ailedger.authority.service import model_registration
from ailedger.content import audio_watermark as awm
from ailedger.content import c2pa_io
from ailedger.content import fingerprint as fp
from ailedger.content import watermark as wm
from ailedger.content.index import KIND_BITS, FingerprintStore, StoreHit
from ailedger.content.media import Media, decode_image_bytes, encode_wav, fingerprints, load_media
from ailedger.encoding.records import parse_entry
from ailedger.errors import AiledgerError, BadInputError, NotFoundError
from ailedger.governance.staking import claims_for

RECORD_TYPE = "content.register"
WM_KEY_FILE = "watermark.key"

# Match thresholds (Hamming distance, inclusive), calibrated in bench/content_bench.py:
# at these radii no unrelated image/text/audio matched in the bench's negative sets.
IMAGE_PHASH_MATCH = 10      # of 64 bits, and dct256 must agree too
IMAGE_DCT256_MATCH = 64     # of 256 bits
IMAGE_PHASH_SEARCH = 12
CROP_PHASH_MATCH = 8        # suspect's global phash64 vs a registered crop-grid window ...
CROP_DCT256_MATCH = 72      # ... confirmed by the same window's dct256
TEXT_SIMHASH_MATCH = 18     # of 64 bits (candidate search), confirmed by MinHash Jaccard >= 0.5
AUDIO_PHASH_MATCH = 10
FRAME_PHASH_MATCH = 10
# Alignments decoded when the watermark's sync peak is under threshold.  A false accept needs the
# CRC-16 to hold by chance (2^-16 per read) AND the 32-bit id to be one this ledger registered:
# at most WEAK_READS * 2^-16 * marks / 2^32 per lookup (about 3e-9 with 10^6 marks).
WATERMARK_WEAK_READS = 12


def find_disputes(ledger: Any, entry_index: int) -> dict[str, Any]:
    """The stake/dispute hook: what the ledger says against (or for) registration ``entry_index``.

    Subject convention shared with the staking feature: ``entry:<index>``.  Two sources:
    ``ailedger.governance.staking.claims_for`` (the folded staking state, when that feature is
    present) and, as a floor, every raw ``stake.*`` / ``dispute.*`` record naming the subject.
    Returns {"claims": [...], "records": [...], "disputed": bool}.
    """
    subject = f"entry:{entry_index}"
    records: list[dict[str, Any]] = []
    for idx, e in ledger.find(term=f"subject:{subject}"):
        if e.type.startswith(("stake.", "dispute.")):
            records.append({"entry": idx, "type": e.type, "signer": e.signer, "time": e.time})
    claims: list[dict[str, Any]] = []
    note = None
    if records:
        try:
            claims = claims_for(ledger, subject)
        except AiledgerError as exc:
            note = f"staking state could not be evaluated: {exc.message}"
    disputed = any(c.get("dispute") for c in claims) or any(
        r["type"].startswith("stake.dispute") or r["type"].startswith("dispute.") for r in records)
    out: dict[str, Any] = {"claims": claims, "records": records, "disputed": disputed}
    if note:
        out["note"] = note
    return out


def _hex_to_int(h: str) -> int:
    return int(h, 16)


def _registered_sha256(body: dict[str, Any]) -> set[str]:
    """The byte digests a content.register body vouches for: the file and its watermarked copy."""
    mark = body.get("watermark") or {}
    return {d for d in (body.get("sha256"), mark.get("marked_sha256")) if isinstance(d, str)}


def _body_codes(body: dict[str, Any], kind: str) -> list[int]:
    """The ``kind`` codes a content.register body holds (as ``_index_entry`` indexes them)."""
    out: list[int] = []
    for fps in (body.get("fingerprints") or {}, (body.get("watermark") or {}).get("marked_fingerprints") or {}):
        val = fps.get(kind)
        vals = list(val) if isinstance(val, list) else [val] if isinstance(val, str) else []
        if kind == "crop_phash64":
            vals += list((fps.get("crop_grid") or {}).get("phash64", []))
        out += [_hex_to_int(v) for v in vals if isinstance(v, str)]
    return out


class ContentService:
    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.dir = Path(ledger.path) / "content"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = FingerprintStore(self.dir / "index.sqlite")
        self.sync_index()

    def close(self) -> None:
        self.store.close()

    # -- keys and index ---------------------------------------------------------------
    def watermark_key(self, create: bool = False) -> wm.WatermarkKey | None:
        p = self.dir / WM_KEY_FILE
        if not p.exists():
            if not create:
                return None
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        return wm.WatermarkKey(p.read_bytes())

    def _index_entry(self, idx: int, body: dict[str, Any]) -> None:
        fps_list = [body.get("fingerprints") or {}]
        mark = body.get("watermark") or {}
        if mark.get("marked_fingerprints"):
            fps_list.append(mark["marked_fingerprints"])
        for fps in fps_list:
            for kind, val in fps.items():
                if kind not in KIND_BITS:
                    continue
                for v in (val if isinstance(val, list) else [val]):
                    self.store.add(kind, _hex_to_int(v), idx)
            for v in (fps.get("crop_grid") or {}).get("phash64", []):
                self.store.add("crop_phash64", _hex_to_int(v), idx)
        if mark.get("id"):
            self.store.add_watermark(int(mark["id"], 16), idx)
            dims = body.get("dims") or {}
            if dims.get("width") and dims.get("height") and mark.get("chip"):
                self.store.add_geometry(idx, int(dims["width"]), int(dims["height"]), int(mark["chip"]))

    def sync_index(self) -> int:
        """Index content.register entries the index has not seen yet; returns how many."""
        last = self.store.max_entry()
        n = 0
        top = last
        after = last
        while True:
            # the store's term index lets us start after the last indexed entry (no full scan)
            idxs = self.ledger.store.find(f"type:{RECORD_TYPE}", after, 1000)
            if not idxs:
                break
            for idx in idxs:
                self._index_entry(idx, self.ledger.entry(idx).body)
                top = max(top, idx)
                n += 1
            after = idxs[-1]
        if top > last:
            self.store.mark_synced(top)
        return n

    # -- index lookups, confirmed by the entries themselves ----------------------------------
    # The index is derived state kept beside the log, outside every signature: a stale, foreign
    # or edited row must never become a match.  Each hit is re-checked against the entry's body.
    def _search(self, kind: str, code: int, radius: int) -> list[StoreHit]:
        out = []
        for h in self.store.search(kind, code, radius):
            e = self.ledger.entry(h.entry)
            d = min((fp.hamming(code, c) for c in _body_codes(e.body, kind)), default=None) \
                if e.type == RECORD_TYPE else None
            if d is not None and d <= radius:
                out.append(StoreHit(kind, h.entry, d))
        return sorted(out, key=lambda h: (h.distance, h.entry))

    def _watermark_entry(self, wm_id: int) -> int | None:
        idx = self.store.watermark_entry(wm_id)
        if idx is None or idx >= self.ledger.size:
            return None
        e = self.ledger.entry(idx)
        ok = e.type == RECORD_TYPE and (e.body.get("watermark") or {}).get("id") == f"{wm_id:08x}"
        return idx if ok else None

    # -- helpers --------------------------------------------------------------------------
    def _model_record(self, name: str) -> int | None:
        """The model's effective registration (its owner's latest version; services.authority)."""
        try:
            return model_registration(self.ledger, name)[0]
        except NotFoundError:
            return None

    def _new_watermark_id(self) -> int:
        for _ in range(100):
            cand = secrets.randbits(32)
            if self.store.watermark_entry(cand) is None and not any(
                    True for _ in self.ledger.find(term=f"wm:{cand:08x}", limit=1)):
                return cand
        raise BadInputError("could not allocate a fresh watermark id")  # pragma: no cover

    # -- register ----------------------------------------------------------------------------
    def register(self, path: str | Path | None, identity: Any, *, generator: str | None = None,
                 marked_out: str | Path | None = None, data: bytes | None = None, name: str | None = None,
                 sidecar: bytes | None = None, jpeg_quality: int = 92) -> dict[str, Any]:
        m = load_media(path, data=data, name=name or (Path(path).name if path else ""))
        fps = fingerprints(m)
        body: dict[str, Any] = {
            "kind": m.kind,
            "name": name or (Path(path).name if path else ""),
            "media_type": m.mime,
            "sha256": m.sha256,
            "bytes": len(m.data),
            "creator": getattr(identity, "name", None),
            "fingerprints": fps,
        }
        if m.kind == "image":
            body["dims"] = dict(m.info)
        elif m.info:
            body["media"] = dict(m.info)
        terms = [f"sha256:{m.sha256}", f"content:{m.kind}"]
        if m.kind == "text":
            terms.append(f"textnorm:{fps['text_sha256']}")
        if generator:
            body["generator"] = {"model": generator, "model_record": self._model_record(generator)}
            terms.append(f"generator:{generator}")
        summary = c2pa_io.read_manifest(m.data, m.mime, sidecar)
        if summary is not None:
            body["c2pa"] = summary
        marked_bytes: bytes | None = None
        if marked_out is not None and m.kind == "audio":
            marked_bytes = self._mark_audio(m, Path(marked_out), body, terms)
        elif marked_out is not None:
            if m.kind != "image":
                raise BadInputError(f"watermarking is supported for images and audio only, not {m.kind}",
                                    field="-o")
            assert m.image is not None
            key = self.watermark_key(create=True)
            assert key is not None
            wm_id = self._new_watermark_id()
            marked, params = wm.embed(m.image, wm_id, key)
            marked_bytes = _encode_image(marked, Path(marked_out), jpeg_quality)
            marr, mmime = decode_image_bytes(marked_bytes, str(marked_out))
            det = wm.Detector(key).detect(marr, period_hints=[32.0 * params.chip])
            body["watermark"] = {
                "scheme": wm.SCHEME, "id": f"{wm_id:08x}", "chip": params.chip,
                "strength_milli": round(params.strength * 1000),
                "psnr_centi_db": round(params.psnr_db * 100),
                "selfcheck": det.payload_id == wm_id,
                "marked_sha256": hashlib.sha256(marked_bytes).hexdigest(),
                "marked_media_type": mmime,
                "marked_fingerprints": {"phash64": f"{fp.phash64(marr):016x}",
                                        "dct256": f"{fp.dct256(marr):064x}"},
            }
            terms += [f"wm:{wm_id:08x}", f"sha256:{body['watermark']['marked_sha256']}"]
        body["subjects"] = sorted({t for t in terms if t.startswith("sha256:")})
        res = self.ledger.append_record(RECORD_TYPE, body, identity, terms=terms)
        if marked_out is not None and marked_bytes is not None:
            Path(marked_out).write_bytes(marked_bytes)
        self._index_entry(res.index, body)
        self.store.mark_synced(max(res.index, self.store.max_entry()))
        return {"entry": res.index, "duplicate": res.duplicate, "signer": identity.did, "record": body,
                "marked": str(marked_out) if marked_out else None}

    def _mark_audio(self, m: Media, dest: Path, body: dict[str, Any], terms: list[str]) -> bytes:
        assert m.samples is not None
        if dest.suffix.lower() not in (".wav", ".wave"):
            raise BadInputError("a watermarked audio copy is written as .wav", field="-o")
        key = self.watermark_key(create=True)
        assert key is not None
        wm_id = self._new_watermark_id()
        marked, snr = awm.embed(m.samples, m.rate, wm_id, awm.AudioKey(key.seed))
        data = encode_wav(marked, m.rate)
        mm = load_media(data=data, name=dest.name)
        assert mm.samples is not None
        det = awm.AudioDetector(awm.AudioKey(key.seed)).detect(mm.samples, mm.rate)
        body["watermark"] = {
            "scheme": awm.SCHEME, "id": f"{wm_id:08x}", "strength_milli": 30,
            "snr_centi_db": round(snr * 100), "selfcheck": det.payload_id == wm_id,
            "marked_sha256": hashlib.sha256(data).hexdigest(), "marked_media_type": "audio/wav",
            "marked_fingerprints": {"audio_phash64": f"{fp.audio_phash64(mm.samples, mm.rate):016x}"},
        }
        terms += [f"wm:{wm_id:08x}", f"sha256:{body['watermark']['marked_sha256']}"]
        return data

    def _check_audio_watermark(self, m: Media, add: Any) -> dict[str, Any]:
        key = self.watermark_key()
        assert m.samples is not None
        if key is None:
            return {"checked": False, "reason": "this ledger has no watermark key (nothing was watermarked)"}
        if len(m.samples) < awm.MIN_SECONDS * m.rate or m.rate < 4000:
            return {"checked": False, "reason": f"audio shorter than {awm.MIN_SECONDS:.1f} s cannot carry the mark"}
        det = awm.AudioDetector(awm.AudioKey(key.seed)).detect(m.samples, m.rate)
        res: dict[str, Any] = {"checked": True, "found": det.found, "sync_z_centi": round(det.sync_z * 100)}
        if det.payload_id is not None:
            wid = f"{det.payload_id:08x}"
            res["id"] = wid
            idx = self._watermark_entry(det.payload_id)
            if idx is None:
                res["note"] = "watermark read, but no record of this ledger carries this id"
            else:
                res["entry"] = idx
                add(idx, "watermark", watermark_id=wid)
        return res

    # -- verify ---------------------------------------------------------------------------------
    def _describe(self, idx: int) -> dict[str, Any]:
        e = parse_entry(self.ledger.entry_bytes(idx), verify=True)  # who registered it: the signature says
        body = e.body
        disputes = find_disputes(self.ledger, idx)
        return {
            "entry": idx,
            "registered_by": {"did": e.signer, "name": body.get("creator")},
            "time": e.time,
            "name": body.get("name"),
            "kind": body.get("kind"),
            "generator": body.get("generator"),
            "stakes": disputes,
            "disputed": disputes["disputed"],
        }

    def verify(self, path: str | Path | None, *, data: bytes | None = None, name: str | None = None,
               sidecar: bytes | None = None, trust_anchors_pem: str | None = None,
               geometric: bool = True) -> dict[str, Any]:
        self.sync_index()
        m = load_media(path, data=data, name=name or (Path(path).name if path else ""))
        out: dict[str, Any] = {"file": name or (str(path) if path else ""), "kind": m.kind, "sha256": m.sha256}
        evidence: dict[int, list[dict[str, Any]]] = {}

        def add(idx: int, how: str, **kw: Any) -> None:
            evidence.setdefault(idx, []).append({"how": how, **kw})

        for idx, e in self.ledger.find(term=f"sha256:{m.sha256}"):
            if e.type == RECORD_TYPE and m.sha256 in _registered_sha256(e.body):
                add(idx, "exact", detail="identical bytes (sha256)")
        notes: list[str] = []
        try:
            fps = fingerprints(m, registering=False)
        except BadInputError as exc:
            fps = {}
            notes.append(f"cannot fingerprint: {exc.message}")
        if m.kind == "text" and fps:
            for idx, e in self.ledger.find(term=f"textnorm:{fps['text_sha256']}"):
                if (e.type == RECORD_TYPE and idx not in evidence
                        and (e.body.get("fingerprints") or {}).get("text_sha256") == fps["text_sha256"]):
                    add(idx, "normalised-text", detail="same text after normalisation")
            for h in self._search("simhash64", _hex_to_int(fps["simhash64"]), TEXT_SIMHASH_MATCH):
                body = self.ledger.entry(h.entry).body
                jac = fp.minhash_jaccard(fps["minhash"], (body.get("fingerprints") or {}).get("minhash", []))
                if jac >= 0.5:
                    add(h.entry, "near-duplicate", fingerprint="simhash64", distance=h.distance, bits=64,
                        jaccard_percent=round(jac * 100))
        if m.kind == "audio":
            if fps:
                for h in self._search("audio_phash64", _hex_to_int(fps["audio_phash64"]), AUDIO_PHASH_MATCH):
                    add(h.entry, "near-duplicate", fingerprint="audio_phash64", distance=h.distance, bits=64)
            out["watermark"] = self._check_audio_watermark(m, add)
        if m.kind == "video" and fps:
            hits: dict[int, list[int]] = {}
            for f in fps["frame_phash64"]:
                for h in self._search("frame_phash64", _hex_to_int(f), FRAME_PHASH_MATCH):
                    hits.setdefault(h.entry, []).append(h.distance)
            need = max(1, len(fps["frame_phash64"]) // 2)
            for idx, ds in hits.items():
                if len(ds) >= need:
                    add(idx, "near-duplicate", fingerprint="frame_phash64", frames_matched=len(ds),
                        distance=int(np.median(ds)), bits=64)
        if m.kind == "image":
            assert m.image is not None
            if fps:
                ph, dc = _hex_to_int(fps["phash64"]), _hex_to_int(fps["dct256"])
                self._image_matches(ph, dc, evidence, add)
                if geometric and not evidence:
                    # a mirrored or slightly turned copy: search the suspect's mirror image and
                    # its upright centre turned back by a few angles (lookup only; records unchanged)
                    for label, vph, vdc in fp.geometric_variants(m.image):
                        self._image_matches(vph, vdc, evidence, add, transform=label)
                        if evidence:
                            break
            out["watermark"] = self._check_watermark(m, add, geometric=geometric)
        matches = [dict(self._describe(idx), evidence=ev) for idx, ev in evidence.items()]
        rank = {"exact": 0, "normalised-text": 1, "watermark": 2, "near-duplicate": 3}
        matches.sort(key=lambda x: (min(rank[e["how"]] for e in x["evidence"]),
                                    min(e.get("distance", 0) for e in x["evidence"]), x["entry"]))
        out["matches"] = matches
        if matches:
            top = min(rank[e["how"]] for e in matches[0]["evidence"])
            out["verdict"] = {0: "exact match", 1: "exact match (normalised text)", 2: "watermark match",
                              3: "near-duplicate"}[top]
        elif notes and not (m.kind == "image" and (out.get("watermark") or {}).get("checked")):
            out["verdict"] = "cannot tell"
        else:
            out["verdict"] = "no match"
        if notes:
            out["notes"] = notes
        out["c2pa"] = c2pa_io.read_manifest(m.data, m.mime, sidecar, trust_anchors_pem)
        if out["c2pa"] and isinstance(out["c2pa"].get("ailedger_record"), dict):
            out["c2pa"]["ledger_check"] = self._check_c2pa_pointer(out["c2pa"]["ailedger_record"], m.sha256)
        out["summary"] = summarize(out)
        return out

    def _image_matches(self, ph: int, dc: int, evidence: dict[int, list[dict[str, Any]]], add: Any,
                       transform: str | None = None) -> None:
        """Near-duplicate evidence for an image's (phash64, dct256): global hashes, then crop windows."""
        extra = {"transform": transform} if transform else {}
        for h in self._search("phash64", ph, IMAGE_PHASH_SEARCH):
            body = self.ledger.entry(h.entry).body
            refs = [body.get("fingerprints") or {}, (body.get("watermark") or {}).get("marked_fingerprints")
                    or {}]
            d256 = min((fp.hamming(dc, _hex_to_int(r["dct256"])) for r in refs if r.get("dct256")),
                       default=256)
            if h.distance <= IMAGE_PHASH_MATCH and d256 <= IMAGE_DCT256_MATCH:
                add(h.entry, "near-duplicate", fingerprint="phash64+dct256", distance=h.distance,
                    bits=64, dct256_distance=d256, **extra)
        for h in self._search("crop_phash64", ph, CROP_PHASH_MATCH):
            if h.entry in evidence:
                continue
            grid = (self.ledger.entry(h.entry).body.get("fingerprints") or {}).get("crop_grid") or {}
            pairs = [(fp.hamming(ph, _hex_to_int(a)), fp.hamming(dc, _hex_to_int(b)))
                     for a, b in zip(grid.get("phash64", []), grid.get("dct256", []))]
            ok = [p for p in pairs if p[0] <= CROP_PHASH_MATCH and p[1] <= CROP_DCT256_MATCH]
            if ok:
                best = min(ok)
                add(h.entry, "near-duplicate", fingerprint="crop-window phash64+dct256",
                    distance=best[0], bits=64, dct256_distance=best[1], **extra)

    def _check_watermark(self, m: Media, add: Any, geometric: bool = True) -> dict[str, Any]:
        key = self.watermark_key()
        assert m.image is not None
        if key is None:
            return {"checked": False, "reason": "this ledger has no watermark key (nothing was watermarked)"}
        h, w = m.image.shape[:2]
        if min(h, w) < 64:
            return {"checked": False, "reason": f"image too small to carry a watermark ({w}x{h})"}
        # tile periods to try besides the image's own autocorrelation: each registered period as
        # it was (a crop keeps the scale: the autocorrelation cannot see a tile that fits less
        # than twice), then scaled to this size (a resized copy)
        crop_hints: list[float] = []
        resize_hints: list[float] = []
        for gw, gh, chip in self.store.geometries():
            period = 32.0 * chip
            crop_hints.append(period)
            for s in (w / gw, h / gh):
                if 0.2 < s <= 1.0 + 1e-9:
                    resize_hints.append(period * s)
        hints: list[float] = []
        for x in crop_hints + resize_hints:
            if all(abs(round(x, 2) - y) > 0.25 for y in hints):
                hints.append(round(x, 2))
        hints = hints[:12]  # bounded work per lookup
        det = wm.Detector(key).detect(m.image, period_hints=hints, weak_reads=WATERMARK_WEAK_READS,
                                      mirrored=geometric)
        res: dict[str, Any] = {"checked": True, "found": det.found,
                               "sync_z_centi": round(det.sync_z * 100)}
        if det.payload_id is not None:
            wid = f"{det.payload_id:08x}"
            res["id"] = wid
            if det.mirrored:
                res["mirrored"] = True
            idx = self._watermark_entry(det.payload_id)
            if idx is None:
                res["note"] = "watermark read, but no record of this ledger carries this id"
            else:
                res["entry"] = idx
                add(idx, "watermark", watermark_id=wid)
            return res
        # a weak sync peak (a small crop, a busy host): accepted only when the CRC-16 holds AND the
        # id is a mark registered in this ledger; an unregistered weak read is never reported
        for pid, z in det.weak_candidates:
            idx = self._watermark_entry(pid)
            if idx is not None:
                wid = f"{pid:08x}"
                res.update({"found": True, "id": wid, "entry": idx, "weak_sync": True,
                            "sync_z_centi": round(z * 100)})
                add(idx, "watermark", watermark_id=wid, weak_sync=True)
                break
        return res

    def _check_c2pa_pointer(self, ref: dict[str, Any], sha256: str) -> str:
        """Does the manifest's org.ailedger.record point at a record of this ledger for this file?"""
        if ref.get("origin") != self.ledger.origin:
            return f"points at another ledger ({ref.get('origin')}); not checked here"
        idx = ref.get("index")
        if not isinstance(idx, int) or idx < 0 or idx >= self.ledger.size:
            return "points at an entry this ledger does not have"
        e = self.ledger.entry(idx)
        if e.type != RECORD_TYPE:
            return f"points at entry {idx}, which is not a content registration"
        if hashlib.sha256(b"\x00" + e.leaf_bytes).hexdigest() != ref.get("leaf_hash"):
            return f"points at entry {idx} but the leaf hash differs"
        if sha256 not in (e.body.get("sha256"), (e.body.get("watermark") or {}).get("marked_sha256")):
            return f"points at entry {idx}, which registered different bytes"
        return f"consistent with entry {idx}"

    # -- C2PA -------------------------------------------------------------------------------------
    def c2pa_sign(self, path: str | Path, entry_index: int, key: c2pa_io.C2paSigningKey, *,
                  embed_out: str | Path | None = None, sidecar_out: str | Path | None = None) -> dict[str, Any]:
        if entry_index < 0 or entry_index >= self.ledger.size:
            raise NotFoundError(f"no entry {entry_index} in this ledger", field="entry")
        e = self.ledger.entry(entry_index)
        if e.type != RECORD_TYPE:
            raise BadInputError(f"entry {entry_index} is a {e.type}, not a {RECORD_TYPE}", field="entry")
        m = load_media(path)
        body = e.body
        marked = (body.get("watermark") or {}).get("marked_sha256")
        if m.sha256 not in (body.get("sha256"), marked):
            raise BadInputError(f"{path} is not the file registered in entry {entry_index} (sha256 differs)",
                                field="file")
        ref = {"origin": self.ledger.origin, "index": entry_index,
               "leaf_hash": hashlib.sha256(b"\x00" + e.leaf_bytes).hexdigest(), "sha256": m.sha256}
        # no signer did here on purpose: verify names an identity only for a ledger match
        manifest, embedded = c2pa_io.write_manifest(
            m.data, m.mime, ref, key, title=Path(path).name, ai_generated=bool(body.get("generator")),
            embed=embed_out is not None)
        out: dict[str, Any] = {"entry": entry_index, "record_ref": ref}
        if embed_out is not None and embedded is not None:
            Path(embed_out).write_bytes(embedded)
            out["embedded"] = str(embed_out)
        else:
            dest = Path(sidecar_out) if sidecar_out else Path(str(path)).with_suffix(".c2pa")
            dest.write_bytes(manifest)
            out["sidecar"] = str(dest)
        return out


def _encode_image(arr: Any, dest: Path, jpeg_quality: int) -> bytes:
    from PIL import Image

    ext = dest.suffix.lower()
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if ext in (".jpg", ".jpeg"):
        im.save(buf, "JPEG", quality=jpeg_quality)
    elif ext == ".webp":
        im.save(buf, "WEBP", lossless=True)
    elif ext in (".png", ""):
        im.save(buf, "PNG")
    else:
        raise BadInputError(f"cannot write a watermarked {ext} file (use .png, .jpg or .webp)", field="-o")
    return buf.getvalue()


def summarize(res: dict[str, Any]) -> list[str]:
    """Plain-words lines for a verify result."""
    lines: list[str] = []
    v = res["verdict"]
    if v == "no match":
        lines.append("No registration found for this content in this ledger.")
    elif v == "cannot tell":
        lines.append("Cannot tell: " + "; ".join(res.get("notes", [])))
    else:
        lines.append(f"Found: {v}.")
    for mt in res.get("matches", []):
        ev = []
        for e in mt["evidence"]:
            if e["how"] == "exact":
                ev.append("identical bytes")
            elif e["how"] == "normalised-text":
                ev.append("same normalised text")
            elif e["how"] == "watermark":
                ev.append(f"invisible watermark id {e['watermark_id']}")
            else:
                ev.append(f"{e['fingerprint']} distance {e['distance']}/{e['bits']}"
                          + (f" ({e['transform']})" if e.get("transform") else ""))
        who = mt["registered_by"]
        gen = mt.get("generator")
        gtxt = ""
        if gen:
            gtxt = f", generated by model {gen.get('model')}"
            gtxt += f" (model record #{gen['model_record']})" if gen.get("model_record") is not None else \
                " (no model.register record found)"
        lines.append(f"  entry #{mt['entry']} ({', '.join(ev)}): registered by {who.get('name') or '?'} "
                     f"[{who['did']}] at {mt['time']}{gtxt}.")
        st = mt["stakes"]
        if mt["disputed"]:
            lines.append(f"    DISPUTED: {len(st['records'])} stake/dispute record(s) name this registration.")
        elif st["records"]:
            lines.append(f"    {len(st['claims'])} staked claim(s), none disputed.")
        else:
            lines.append("    No stake or dispute recorded against this registration.")
    wmr = res.get("watermark")
    if wmr is not None:
        if not wmr.get("checked"):
            lines.append(f"Watermark: not checked ({wmr.get('reason')}).")
        elif wmr.get("found"):
            how = " from a mirrored copy" if wmr.get("mirrored") else ""
            how += " (weak sync; accepted because its CRC holds and the id is registered here)" \
                if wmr.get("weak_sync") else ""
            lines.append(f"Watermark: id {wmr['id']} read{how}" + (f" ({wmr['note']})." if wmr.get("note") else "."))
        else:
            lines.append("Watermark: none detected.")
    c = res.get("c2pa")
    if c:
        if c.get("signature_valid"):
            lines.append(f"C2PA: manifest present, signature {c['state'].lower()}"
                         f" (signer {c['signer'].get('common_name')})"
                         + (f"; its ledger pointer is {c['ledger_check']}." if c.get("ledger_check") else "."))
        else:
            lines.append(f"C2PA: manifest present but NOT valid ({c.get('state')}: "
                         f"{', '.join(c.get('failures') or [c.get('error', '')])}); do not trust its claims.")
    return lines
