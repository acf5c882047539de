"""The health page shows witness cosignatures when the witness module has collected some."""

import time

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.tlog.cosignature import add_cosignatures, cosign
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import ALG_COSIGNATURE_V1, Signer, parse_note
from tests.http.helpers import Server


def test_health_page_lists_witness_cosignatures(tmp_path):
    d = tmp_path / "ledger"
    led = Ledger.init(d, origin="test.example/wit")
    led.new_identity("alice")
    note = led.checkpoint()
    w = Signer("witness.example/w1", Ed25519PrivateKey.generate(), alg=ALG_COSIGNATURE_V1)
    cosigned = add_cosignatures(note, [cosign(parse_note(note).text, w, int(time.time()))])
    from ailedger.tlog.witness import _client_db  # the witness module's own store of cosigned checkpoints

    db = _client_db(d)
    db.execute("INSERT INTO cosigned (size, note) VALUES (?, ?)", (led.size, cosigned))
    db.close()
    led.close()
    s = Server(d)
    try:
        html = httpx.get(s.url + "/").text
        assert "witness.example/w1 cosigned size 1" in html
        assert html.count("none configured") == 1  # anchors: none
    finally:
        s.stop()
