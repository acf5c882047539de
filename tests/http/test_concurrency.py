"""Many writers, several worker processes, one store: no lost or duplicated entries, audit clean."""

import time

import httpx
import pytest

from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key, Server, check_no_loss_no_dup, run_writers


@pytest.mark.slow
def test_50_writers_two_workers_sqlite(ledger_dir):
    s = Server(ledger_dir, workers=2)
    try:
        keys = [Key(f"w{i}") for i in range(5)]
        for k in keys:
            assert httpx.post(s.url + "/v1/identities", json=k.registration()).status_code == 201
        out = run_writers([s.url], keys, seconds=8, n_writers=50)
        assert set(out["statuses"]) <= {200, 201}, out["statuses"]
        assert len(out["acked"]) > 200
        time.sleep(0.6)  # a worker may reuse the checkpoint it read for checkpoint_ttl (0.5 s)
        cp_size = int(httpx.get(s.url + "/checkpoint").text.split("\n")[1])
    finally:
        s.stop()
    with Ledger.open(ledger_dir) as led:
        check_no_loss_no_dup(out["acked"], led)
        assert led.size == 5 + len(out["acked"]) and cp_size == led.size
        rep = led.audit(signatures=True)
        assert rep.ok, rep.to_dict()
