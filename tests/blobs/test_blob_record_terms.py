"""A blob's records (blob.put, blob.attach, ...) are found whichever path logged them: their lookup
terms (``blob:CID``, ``attach:KIND:INDEX``) come from the signed body in services.ledger.entry_terms,
which every write path calls, not from extra terms only BlobService passes."""

import os

from ailedger.blobs.artifacts import attached_blob, push_model
from ailedger.blobs.service import BlobService
from ailedger.provenance import register_model
from ailedger.tlog.ledger import entry_terms
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow


def test_blob_records_logged_without_the_services_terms_are_found(ledger, people, make_nodes, tmp_path):
    nodes = [n.url for n in make_nodes(3)]
    m = tmp_path / "m"
    m.mkdir()
    (m / "w.bin").write_bytes(os.urandom(5000))
    reg = register_model(ledger, m, "tiny", people["alice"])
    r = push_model(ledger, "tiny", str(m), nodes, people["alice"], k=2, n=3)
    for idx in (r["put_index"], r["attach_index"]):  # the service's own terms are all derivable
        e = ledger.entry(idx)
        for t in (f"blob:{r['cid']}", f"attach:model:{reg['index']}"):
            if ledger.store.find(t, idx - 1, 1) == [idx]:
                assert t in entry_terms(e), (idx, t)
    # the same blob and attachment as another program would log them (POST /v1/entries): the same body,
    # signed again, with only the terms every write path indexes
    put = ledger.entry(r["put_index"])
    e = ledger.make_entry("blob.put", dict(put.body), people["alice"])
    ledger.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])
    att = ledger.make_entry("blob.attach", dict(ledger.entry(r["attach_index"]).body, note="again"), people["alice"])
    a_idx = ledger.log.append([LeafRow(att.leaf_bytes, leaf_hash(att.leaf_bytes), entry_terms(att))])[0].index
    assert attached_blob(ledger, "model", reg["index"])[0] == a_idx
    assert BlobService(ledger).state(r["cid"]).put_index == r["put_index"]
