"""SQLite on a full disk (a small tmpfs): writes answer 503, nothing half-written, reads keep working."""

import shutil

import httpx

from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key, Server, check_no_loss_no_dup


def test_disk_full_mid_write(small_disk, tmp_path):
    d = small_disk / "ledger"
    Ledger.init(d, origin="test.example/full").close()
    s = Server(d)
    try:
        k = Key("k")
        assert httpx.post(s.url + "/v1/identities", json=k.registration()).status_code == 201
        acked = []
        statuses = []
        for b in range(60):
            es = [k.entry("x.y", {"b": b, "i": i, "pad": "p" * 300}) for i in range(100)]
            r = httpx.post(s.url + "/v1/entries/batch", json={"entries": es}, timeout=60)
            statuses.append(r.status_code)
            if r.status_code == 201:
                acked.extend((x["index"], x["leaf_hash"], x["duplicate"]) for x in r.json()["results"])
            else:
                assert r.status_code == 503 and r.json()["code"] == "storage", r.text
                assert r.headers["retry-after"] == "1"
            if statuses.count(503) >= 3:
                break
        assert 503 in statuses, "the disk never filled up"
        assert httpx.get(s.url + "/checkpoint").status_code == 200
        assert httpx.get(s.url + "/tile/0/000").status_code == 200
        assert httpx.get(s.url + "/").status_code == 200
        assert s.alive()
    finally:
        s.stop()
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)  # audit on a disk with room (the WAL may need to be checkpointed)
    with Ledger.open(copy) as led:
        check_no_loss_no_dup(acked, led)
        assert led.size == 1 + len(acked)
        assert led.audit(signatures=True).ok
