"""What a monitor looks for in each new entry: ``KIND=VALUE`` watches.

An ailedger entry is matched on the terms every write path indexes it under
(:func:`ailedger.tlog.ledger.entry_terms`), so a watch finds exactly what the log's own search finds;
a content fingerprint is matched by Hamming distance.  An entry that is not an ailedger entry (any other
C2SP tlog-tiles log) can still be matched by its leaf hash (``leaf=HEX``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ailedger.errors import BadInputError
from ailedger.tlog.ledger import entry_terms

__all__ = ["KINDS", "Watch", "match_entry", "needles", "parse_watch"]

# kind -> the entry term prefix it matches (see entry_terms)
_TERM_KINDS = {
    "model": ("model:",),            # a model.register of that name
    "dataset": ("dataset:",),        # a dataset.commit / dataset.screening of that dataset
    "trained-on": ("trained-on:",),  # a model whose lineage names that dataset
    "base": ("base:",),              # a model fine-tuned from that base model
    "signer": ("signer:",),          # any entry signed by that did:key
    "cid": ("cid:", "blob:"),        # content id of a blob or any entry naming it
    "hash": ("hash:", "dataset-root:", "manifest:"),  # a root or digest the body commits to
    "type": ("type:",),
    "name": ("name:",),
    "subject": ("subject:",),        # a record key / subject a curator published in `subjects`
    "term": ("",),                   # any raw index term, e.g. term=attach:dataset:12
}
KINDS = (*_TERM_KINDS, "fingerprint", "leaf")
DEFAULT_DISTANCE = 8


@dataclass(frozen=True)
class Watch:
    kind: str
    value: str
    distance: int = 0  # fingerprint only: largest Hamming distance that matches
    algo: str = ""     # fingerprint only: phash64, simhash64, audio_phash64, ...

    def spec(self) -> str:
        if self.kind == "fingerprint":
            return f"fingerprint={self.algo}:{self.value}/{self.distance}"
        return f"{self.kind}={self.value}"


def parse_watch(text: str) -> Watch:
    """``KIND=VALUE``; a fingerprint is ``fingerprint=ALGO:HEX[/DISTANCE]`` (64-bit hex, distance 0..64)."""
    kind, sep, value = text.partition("=")
    kind = kind.strip().lower()
    if not sep or not value:
        raise BadInputError(f"watch {text!r} is not KIND=VALUE (kinds: {', '.join(KINDS)})", field="watch")
    if kind not in KINDS:
        raise BadInputError(f"watch kind {kind!r} is unknown; one of {', '.join(KINDS)}", field="watch")
    if kind == "fingerprint":
        algo, c, rest = value.partition(":")
        hexpart, slash, dist_s = rest.partition("/")
        if not c or not algo:
            raise BadInputError(f"fingerprint watch {value!r} is not ALGO:HEX[/DISTANCE] (e.g. phash64:8f3c.../6)",
                                field="watch")
        try:
            n = int(hexpart, 16)
            dist = int(dist_s) if slash else DEFAULT_DISTANCE
        except ValueError:
            raise BadInputError(f"fingerprint watch {value!r}: {hexpart!r} is not hex or the distance is not "
                                "a number", field="watch") from None
        if len(hexpart) != 16 or not 0 <= dist <= 64:
            raise BadInputError(f"fingerprint watch {value!r}: need 16 hex digits (64 bits) and a distance 0..64",
                                field="watch")
        return Watch(kind, f"{n:016x}", dist, algo)
    if kind == "leaf":
        try:
            if len(bytes.fromhex(value)) != 32:
                raise ValueError
        except ValueError:
            raise BadInputError(f"leaf watch {value!r} is not a 64-digit hex leaf hash", field="watch") from None
        value = value.lower()
    return Watch(kind, value)


def _fingerprints(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    fp = body.get("fingerprints")
    if isinstance(fp, dict):
        out.append(fp)
    mark = body.get("watermark")
    if isinstance(mark, dict) and isinstance(mark.get("marked_fingerprints"), dict):
        out.append(mark["marked_fingerprints"])
    return out


def match_entry(watches: list[Watch], entry: Any, leaf: bytes) -> list[dict[str, Any]]:
    """The watches ``entry`` (a parsed SignedEntry, or None for an opaque entry) matches, each with why."""
    hits: list[dict[str, Any]] = []
    terms: set[str] | None = None
    for w in watches:
        if w.kind == "leaf":
            if leaf.hex() == w.value:
                hits.append({"watch": w.spec()})
            continue
        if entry is None:
            continue
        if w.kind == "fingerprint":
            want = int(w.value, 16)
            for fp in _fingerprints(entry.body):
                got = fp.get(w.algo)
                if isinstance(got, str) and len(got) == 16:
                    try:
                        d = (int(got, 16) ^ want).bit_count()
                    except ValueError:
                        continue
                    if d <= w.distance:
                        hits.append({"watch": w.spec(), "distance": d, "fingerprint": got})
                        break
            continue
        if terms is None:
            terms = set(entry_terms(entry))
        if any(p + w.value in terms for p in _TERM_KINDS[w.kind]):
            hits.append({"watch": w.spec()})
    return hits


def needles(watches: list[Watch]) -> list[bytes] | None:
    """Byte strings of which an entry must hold at least one to match any of ``watches`` (a cheap test on the
    raw entry before it is parsed), or None when an entry must always be parsed.  Sound because canonical JSON
    writes a printable ASCII string without quotes or backslashes as its own bytes; any other value, and a
    ``term`` watch (its prefix is not in the entry), turns the test off."""
    out: list[bytes] = []
    for w in watches:
        if w.kind == "leaf":
            continue
        v = w.algo if w.kind == "fingerprint" else w.value
        if w.kind == "term" or not v or not all(32 <= ord(c) < 127 and c not in '"\\' for c in v):
            return None
        out.append(v.encode())
    return out
