"""The leaf rule of a dataset commitment, and the readings of a candidate record under it.

A record's key in the sparse Merkle tree depends on a few parameters: how the record is put in
normal form (which depends on the input format), and how the normal bytes become a key (SHA-256,
or HMAC-SHA256 under the curator's secret).  The ``dataset.commit`` entry states all of them (its
``rule`` and each source's ``form``, and for CSV the ``header``), so they are signed and logged
with the root; a verifier takes them from that entry, never from the proof file.

A rights holder's candidate (a file, a JSON text, a CSV line) can usually be read in more than one
way under those forms: this module lists every *reading* (the normal bytes the candidate stands
for under each committed form that applies to it).  A proof of membership needs one reading that
is in the set; a proof of absence must show every reading absent, so no choice of form by the
prover can turn a member into an "absent" answer.  Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import AiledgerError, ProofError

__all__ = [
    "FORMS",
    "FORM_BYTES",
    "FORM_CSV",
    "FORM_JSON",
    "FORM_OF_KIND",
    "FORM_PARQUET",
    "RULE_VERSION",
    "Reading",
    "Rule",
    "readings",
    "rule_body",
    "rule_of",
]

RULE_VERSION = "ailedger-dataset-rule/v1"
FORM_BYTES = "bytes-v1"  # a file's raw bytes
FORM_JSON = "json-jcs-v1"  # a JSON Lines record: RFC 8785 of the parsed value
FORM_CSV = "csv-cells-v1"  # a CSV row: RFC 8785 of {header: cell} with every cell a string
FORM_PARQUET = "parquet-json-v1"  # a Parquet row: RFC 8785 of {column: value} (bytes base64, dates ISO 8601)
FORMS = (FORM_BYTES, FORM_CSV, FORM_JSON, FORM_PARQUET)
FORM_OF_KIND = {"files": FORM_BYTES, "jsonl": FORM_JSON, "csv": FORM_CSV, "parquet": FORM_PARQUET,
                "arrow": FORM_PARQUET}  # a `datasets` save_to_disk folder: its rows read like a Parquet export's
KEYS = ("sha256", "hmac-sha256")
# what entries made before the rule was recorded implied: each source's encodingFormat named its form
_LEGACY_FORM_OF_ENCODING = {"application/octet-stream": FORM_BYTES, "application/jsonlines": FORM_JSON,
                            "text/csv": FORM_CSV, "application/x-parquet": FORM_PARQUET}


@dataclass(frozen=True)
class Rule:
    """How the committed keys were made: ``key`` (sha256 | hmac-sha256), the normal ``forms`` of
    the sources, the CSV sources' headers; ``legacy`` for entries made before the rule was recorded."""

    key: str
    forms: tuple[str, ...]
    csv_headers: tuple[tuple[str, ...], ...] = ()
    legacy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"version": RULE_VERSION if not self.legacy else "implied (entry made before the rule was recorded)",
                "key": self.key, "forms": list(self.forms), "csv_headers": [list(h) for h in self.csv_headers]}


def rule_body(kinds: list[str], leaf: str) -> dict[str, Any]:
    """The ``rule`` object of a new ``dataset.commit`` body for sources of ``kinds``."""
    return {"version": RULE_VERSION, "key": leaf, "forms": sorted({FORM_OF_KIND[k] for k in kinds})}


def rule_of(body: dict[str, Any]) -> Rule:
    """The rule a signed ``dataset.commit`` body states (or, for an entry made before rules were
    recorded, the rule it implied: see docs/provenance.md).  Raises ProofError when the entry states
    a rule this verifier does not know or contradicts itself: no answer can then be trusted."""
    leaf = body.get("leaf")
    sources = body.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
        raise ProofError("the dataset.commit entry lists no sources", found=sources)
    rule = body.get("rule")
    if rule is None:
        implied: set[str] = set()
        for s in sources:
            f = _LEGACY_FORM_OF_ENCODING.get(str(s.get("encodingFormat")))
            if f is None:
                raise ProofError("the dataset.commit entry names a source format this verifier does not know",
                                 expected=sorted(_LEGACY_FORM_OF_ENCODING), found=s.get("encodingFormat"))
            implied.add(f)
        if leaf not in KEYS:
            raise ProofError("the dataset.commit entry names an unknown leaf key", expected=list(KEYS), found=leaf)
        return Rule(key=str(leaf), forms=tuple(sorted(implied)), legacy=True)
    if not isinstance(rule, dict) or rule.get("version") != RULE_VERSION:
        raise ProofError("the dataset.commit entry states a leaf rule this verifier does not know",
                         expected=RULE_VERSION, found=rule.get("version") if isinstance(rule, dict) else rule)
    key, forms = rule.get("key"), rule.get("forms")
    if key not in KEYS or key != leaf:
        raise ProofError("the dataset.commit entry's rule names an unknown or inconsistent key",
                         expected=leaf, found=key)
    if not isinstance(forms, list) or not forms or any(f not in FORMS for f in forms) or forms != sorted(set(forms)):
        raise ProofError("the dataset.commit entry's rule names unknown forms", expected=list(FORMS), found=forms)
    headers: list[tuple[str, ...]] = []
    for s in sources:
        if s.get("form") not in forms:
            raise ProofError("a source's form is not among the rule's forms", expected=forms, found=s.get("form"))
        if s.get("form") == FORM_CSV:
            h = s.get("header")
            if not isinstance(h, list) or not h or not all(isinstance(x, str) for x in h) or len(set(h)) != len(h):
                raise ProofError("a CSV source states no valid header", found=h)
            if tuple(h) not in headers:
                headers.append(tuple(h))
    if sorted({s.get("form") for s in sources}) != forms:
        raise ProofError("the rule's forms are not the sources' forms", expected=sorted({s.get("form") for s in sources}),
                         found=forms)
    return Rule(key=str(key), forms=tuple(forms), csv_headers=tuple(headers))


@dataclass(frozen=True)
class Reading:
    """One normal form of a candidate: the bytes that are hashed into its key, the committed forms
    under which the candidate reads as these bytes, and how (for people)."""

    normal: bytes
    forms: tuple[str, ...]
    how: tuple[str, ...]


def _csv_rows(text: str) -> list[list[str]] | None:
    try:
        return [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error:
        return None


def _no_dups(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise ValueError("duplicate key")
    return d


def _cells_of_json(text: str) -> dict[str, str] | None:
    """A JSON object read as CSV cells: strings as they are, numbers as the literal text typed."""
    try:
        v = json.loads(text, parse_int=str, parse_float=str, parse_constant=_bad, object_pairs_hook=_no_dups)
    except ValueError:
        return None
    if not isinstance(v, dict) or not v or not all(isinstance(x, str) for x in v.values()):
        return None
    return v


def _bad(name: str) -> Any:
    raise ValueError(name)


def readings(candidate: bytes, rule: Rule) -> list[Reading]:
    """Every reading of ``candidate`` under the committed forms, one per distinct normal bytes, in a
    fixed order.  Empty when no committed form applies to the candidate."""
    got: dict[bytes, tuple[list[str], list[str]]] = {}

    def add(normal: bytes, form: str, how: str) -> None:
        forms, hows = got.setdefault(normal, ([], []))
        if form not in forms:
            forms.append(form)
        hows.append(f"{form}: {how}")

    forms = set(rule.forms)
    if FORM_BYTES in forms:
        add(candidate, FORM_BYTES, "the candidate's bytes as they are")
    try:
        text: str | None = candidate.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and forms & {FORM_JSON, FORM_PARQUET}:
        try:
            value = json.loads(text)  # as the commit reads a JSON line (the last of duplicate keys wins)
            normal: bytes | None = canonical_json(value)
        except (ValueError, AiledgerError, RecursionError):
            normal = None
        if normal is not None:
            if FORM_JSON in forms:
                add(normal, FORM_JSON, "the JSON value, RFC 8785")
            if FORM_PARQUET in forms and isinstance(value, dict):
                add(normal, FORM_PARQUET, "the JSON object as a row, RFC 8785")
    if text is not None and FORM_CSV in forms:
        rows = _csv_rows(text)
        if rows is not None and len(rows) == 1:
            for h in rule.csv_headers:
                if len(h) == len(rows[0]):
                    add(canonical_json(dict(zip(h, rows[0]))), FORM_CSV,
                        "a CSV line under the committed header " + ",".join(h))
        if rows is not None and len(rows) == 2 and len(rows[0]) == len(rows[1]) and len(set(rows[0])) == len(rows[0]):
            add(canonical_json(dict(zip(rows[0], rows[1]))), FORM_CSV, "a CSV header line and one row")
        cells = _cells_of_json(text)
        if cells is not None:
            add(canonical_json(cells), FORM_CSV, "a JSON object read as cells (a number is the cell holding the "
                                                 "literal text typed)")
    return [Reading(n, tuple(sorted(f)), tuple(h)) for n, (f, h) in got.items()]
