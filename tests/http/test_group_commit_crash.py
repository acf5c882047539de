"""SIGKILL while groups are being written (issue 21): nothing acknowledged is lost, no gap, no duplicate, no
half request, and the checkpoint covers the whole store as soon as the server is back. SQLite and PostgreSQL."""

from __future__ import annotations

import random
import signal
import threading
import time

import httpx

from ailedger.tlog.ledger import Ledger
from ailedger.tlog.merkle import leaf_hash
from tests.http.commit_helpers import checkpoint_size, leaf_hex, register
from tests.http.helpers import Key, Server


def test_sigkill_while_groups_are_written(any_ledger):
    """Kill the server (SIGKILL) twice under 20 writers: after each restart every acknowledged entry
    is there at its index, no gap, no duplicate, every unacknowledged request whole or absent, and the
    checkpoint covers the whole store at once."""
    keys = [Key(f"w{i}") for i in range(4)]
    acked: list[tuple[int, str]] = []
    unacked: list[set[str]] = []
    lock = threading.Lock()
    rng = random.Random(21)
    s = Server(any_ledger)
    acked += register(s.url, *keys)
    for round_ in range(2):
        stop = threading.Event()

        def writer(w: int, stop=stop, round_=round_, url=s.url) -> None:
            k = keys[w % 4]
            with httpx.Client(timeout=10) as c:
                m = 0
                while not stop.is_set():
                    m += 1
                    es = ([k.entry("x.y", {"r": round_, "w": w, "m": m, "j": j}) for j in range(10)]
                          if m % 3 == 0 else [k.entry("x.y", {"r": round_, "w": w, "m": m})])
                    try:
                        r = (c.post(url + "/v1/entries/batch", json={"entries": es}) if len(es) > 1
                             else c.post(url + "/v1/entries", json=es[0]))
                        ok = r.status_code in (200, 201)
                        res = r.json().get("results", [r.json()]) if ok else []
                    except (httpx.HTTPError, ValueError):
                        ok, res = False, []
                    with lock:
                        if ok:
                            acked.extend((x["index"], x["leaf_hash"]) for x in res)
                        else:
                            unacked.append({leaf_hex(e) for e in es})
                    if not ok:
                        return

        ts = [threading.Thread(target=writer, args=(w,)) for w in range(20)]
        [t.start() for t in ts]
        # kill once this round has had acknowledged writes (a fixed sleep acknowledges too few on a loaded
        # machine), at a random moment after that
        start, t0 = len(acked), time.monotonic()
        while len(acked) < start + 120 and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        time.sleep(rng.random() * 0.5)
        s.proc.send_signal(signal.SIGKILL)  # workers=1: uvicorn serves in this very process
        s.proc.wait(10)
        stop.set()
        [t.join() for t in ts]
        s.log.close()
        s = Server(any_ledger)
        with Ledger.open(any_ledger) as led:
            size = led.size
        assert checkpoint_size(s.url) == size, "the checkpoint is behind the store after the restart"
    s.stop()
    with Ledger.open(any_ledger) as led:
        idxs = [i for i, _ in acked]
        assert len(idxs) == len(set(idxs)), "an index was handed out twice"
        for i, h in acked:
            assert leaf_hash(led.entry_bytes(i)).hex() == h, f"acknowledged entry {i} lost"
        present = {leaf_hash(led.entry_bytes(i)).hex() for i in range(led.size)}
        for req in unacked:
            assert not (req & present) or req <= present, "a request was half-written"
        extra = present - {h for _, h in acked}
        assert len(extra) == led.size - len(acked) and extra <= set().union(*unacked)
        assert len(acked) > 200
        assert led.audit(signatures=True).ok
