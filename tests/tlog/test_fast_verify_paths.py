"""The audit and the batch append give the same findings with the C entry checker as with the Python path
(records.parse_entry for every entry), including on logs big enough for the threaded audit."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding import records
from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.tlog.ledger import Ledger, utc_now
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow

pytestmark = pytest.mark.skipif(not records.FAST_VERIFY, reason="the C module _speedups is not built")

KEY = Ed25519PrivateKey.generate()
DID = did_from_public_key(KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def _entries(n: int, t: str) -> list[bytes]:
    return [build_entry("model.eval", {"i": i, "note": "x" * (i % 40)}, DID, t, KEY.sign).leaf_bytes
            for i in range(n)]


def _odd(t: str) -> dict[str, bytes]:
    good = build_entry("model.eval", {"odd": 1}, DID, t, KEY.sign).leaf_bytes
    obj = json.loads(good)
    forged = dict(obj, sig=base64.b64encode(Ed25519PrivateKey.generate().sign(b"x")).decode())
    return {
        "forged": canonical_json(forged),                      # well-formed, wrong signature: C says 0
        "spaced": json.dumps(obj).encode(),                    # valid but not canonical: C leaves it to Python
        "float": build_entry("model.eval", {"f": 0.5}, DID, t, KEY.sign).leaf_bytes,  # valid, C leaves it
        "extra": canonical_json(dict(obj, extra=1)),          # bad shape
        "v0": canonical_json(dict(obj, v=0)),
    }


def _problems(led: Ledger) -> list[tuple[str, int | None, str]]:
    rep = led.audit(signatures=True)
    return sorted((p.kind, p.index, p.message) for p in rep.problems)


@pytest.mark.parametrize("n", [300, 20500])  # sequential, and the threaded audit (>= 20,000 entries)
def test_audit_findings_equal_with_and_without_c(tmp_path, monkeypatch, n):
    t = utc_now()
    datas = _entries(n, t)
    odd = _odd(t)
    for k, (name, d) in enumerate(odd.items()):
        datas.insert(37 + 53 * k, d)
    led = Ledger.init(tmp_path / "l", "test.example/log")
    try:
        # logged as they are (the store path below the checks): the audit must find what is wrong
        led.log.append([LeafRow(d, leaf_hash(d), ()) for d in datas])
        led.checkpoint()
        fast = _problems(led)
        monkeypatch.setattr(records, "_verify_entries", None)
        slow = _problems(led)
    finally:
        led.close()
    assert fast == slow
    bad = {i for _, i, _ in fast}
    assert {datas.index(odd[k]) for k in ("forged", "extra", "v0")} == bad
    assert all(kind == "signature" for kind, _, _ in fast)


def test_append_entries_results_equal_with_and_without_c(tmp_path, monkeypatch):
    t = utc_now()
    odd = _odd(t)
    datas = _entries(4500, t)  # more than 2 batches: checked by the thread pool
    for k, d in enumerate(odd.values()):
        datas.insert(100 + 900 * k, d)
    results = []
    for c in (True, False):
        if not c:
            monkeypatch.setattr(records, "_verify_entries", None)
        led = Ledger.init(tmp_path / f"l{c}", "test.example/log")
        try:
            got = led.append_entries(datas)
            results.append([r if isinstance(r, str) else (r.index, r.duplicate) for r in got])
            assert led.audit(signatures=True).ok
        finally:
            led.close()
    assert results[0] == results[1]
    refused = [r for r in results[0] if isinstance(r, str)]
    assert len(refused) == 3 and any("signature does not verify" in r for r in refused)
