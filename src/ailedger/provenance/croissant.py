"""Croissant 1.0 (MLCommons) metadata for a committed dataset, as JSON-LD.

Everything is taken from the signed ``dataset.commit`` entry (whose signature and inclusion in the
log are checked first): each source is a ``cr:FileObject`` with its SHA-256 (a file) or a
``cr:FileSet`` (a folder of files), a CSV source also gets a ``cr:RecordSet`` of its columns, and the
commitment itself (root, entry index, log origin, leaf rule, versions) is carried in the extension
property ``ailedger:commitment`` (namespace ``urn:ailedger:``), which Croissant consumers ignore.
Spec: https://docs.mlcommons.org/croissant/docs/croissant-spec.html (1.0).
"""

from __future__ import annotations

from typing import Any

from ailedger.errors import BadInputError
from ailedger.provenance.models import entry_status, find_dataset
from ailedger.tlog.merkle import leaf_hash

__all__ = ["CROISSANT_CONFORMS_TO", "CROISSANT_CONTEXT", "croissant_metadata"]

CROISSANT_CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# the @context of the Croissant 1.0 specification (as its example datasets spell it), plus our namespace
CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "ailedger": "urn:ailedger:",
}
_PER_DATASET = ("license", "url", "citeAs", "creator", "sameAs")
_RAI = ("rai:dataCollection", "rai:personalSensitiveInformation", "rai:dataUseCases")


def _common(sources: list[dict[str, Any]], k: str) -> Any:
    vals = [s[k] for s in sources if k in s]
    if vals and len(vals) == len(sources) and all(v == vals[0] for v in vals):
        return vals[0]
    return None


def croissant_metadata(ledger: Any, ref: str, *, url: str | None = None,
                       base_url: str | None = None) -> dict[str, Any]:
    """Croissant JSON-LD for dataset ``ref`` (name: its current version; or ``#INDEX``).

    ``url`` is the dataset's landing page (default: the sources' common ``url``, else a ``urn``
    naming the log entry); ``base_url`` prefixes each file's ``contentUrl`` (default: the file name,
    relative to the metadata file)."""
    from ailedger.provenance.datasets import dataset_versions

    idx, e = find_dataset(ledger, ref)
    st = entry_status(ledger, idx)  # the entry's signature and its inclusion in the signed checkpoint
    b = e.body
    name = b["name"]
    sources: list[dict[str, Any]] = list(b.get("sources") or [])
    v = dataset_versions(ledger, name)
    origin = st["checkpoint"]["origin"]
    dist: list[dict[str, Any]] = []
    record_sets: list[dict[str, Any]] = []
    prefix = (base_url.rstrip("/") + "/") if base_url else ""
    for s in sources:
        sid = s["name"]
        if s.get("form") == "bytes-v1" or s.get("encodingFormat") == "application/octet-stream":
            dist.append({"@type": "cr:FileSet", "@id": sid, "name": sid, "encodingFormat": s["encodingFormat"],
                         "includes": f"{sid}/**", "description": f"{s.get('records')} distinct files of {name} (one record each)"})
            continue
        if "sha256" not in s:
            raise BadInputError(f"entry #{idx} of dataset {name} predates source digests (no sha256 for {sid}); "
                                f"commit it again with --supersedes {name} to emit Croissant metadata",
                                field="dataset")
        fo: dict[str, Any] = {"@type": "cr:FileObject", "@id": sid, "name": sid, "contentUrl": prefix + sid,
                              "encodingFormat": s["encodingFormat"], "sha256": s["sha256"]}
        if "size" in s:
            fo["contentSize"] = f"{s['size']} B"
        dist.append(fo)
        if s.get("header"):
            rs = f"{sid}/rows"
            record_sets.append({"@type": "cr:RecordSet", "@id": rs, "name": rs,
                                "description": f"{s.get('records')} rows of {sid}; every cell is text",
                                "field": [{"@type": "cr:Field", "@id": f"{rs}/{col}", "name": col,
                                           "dataType": "sc:Text",
                                           "source": {"fileObject": {"@id": sid}, "extract": {"column": col}}}
                                          for col in s["header"]]})
    number = v["versions"].index(idx) + 1 if idx in v["versions"] else None
    doc: dict[str, Any] = {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CROISSANT_CONFORMS_TO,
        "name": name,
        "description": b.get("description") or f"Dataset {name}: {b.get('records')} records committed by sparse "
                                               f"Merkle root to the ailedger log {origin}, entry #{idx}.",
        "datePublished": e.time[:10],
        "url": url or _common(sources, "url") or f"urn:ailedger:{origin}:{idx}",
        "distribution": dist,
    }
    if number is not None:
        doc["version"] = f"{number}.0.0"
    for k in _PER_DATASET[:1] + _PER_DATASET[2:] + _RAI:
        val = _common(sources, k)
        if val is not None:
            doc[k] = val
    if "citeAs" not in doc:  # the commitment itself is the citation: BibTeX, as Croissant recommends
        doc["citeAs"] = (f"@misc{{{name}, title = {{{name}}}, note = {{dataset commitment: ailedger log {origin}, "
                         f"entry {idx}, root {b['root']}}}}}")
    if record_sets:
        doc["recordSet"] = record_sets
    doc["ailedger:commitment"] = {
        "ailedger:root": b["root"],
        "ailedger:records": b.get("records"),
        "ailedger:entryIndex": idx,
        "ailedger:log": origin,
        "ailedger:signer": st["signer"],
        "ailedger:time": e.time,
        "ailedger:leafHash": leaf_hash(ledger.entry_bytes(idx)).hex(),
        "ailedger:rule": b.get("rule"),
        "ailedger:supersedes": (b.get("supersedes") or {}).get("index"),
        "ailedger:currentVersion": v["versions"][-1] if v["versions"] else None,
    }
    doc["ailedger:commitment"] = {k: x for k, x in doc["ailedger:commitment"].items() if x is not None}
    return doc
