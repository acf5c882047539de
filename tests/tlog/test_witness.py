"""Witness protocol (C2SP tlog-witness) over real HTTP on loopback, and the log's collection side."""

from __future__ import annotations

import base64
import shutil
import urllib.request

import pytest

from ailedger.errors import BadInputError, VerificationError
from ailedger.tlog.checkpoint import parse_checkpoint_text
from ailedger.tlog.cosignature import verify_cosigned_checkpoint
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import parse_note
from ailedger.tlog.proofbundle import parse_proof_bundle
from ailedger.tlog.witness import (
    Witness,
    WitnessClient,
    attach_cosignatures,
    collect_cosignatures,
    configure_witness,
    configured_witnesses,
    format_add_checkpoint_body,
    parse_add_checkpoint_body,
    remove_witness,
)
from ailedger.tlog.witness_http import make_server

ORIGIN = "test.example/witnessed-log"


def grow(ledger: Ledger, n: int, tag: str = "a") -> None:
    start = ledger.size
    ledger.log.append_data([f"{tag}-{start + i}".encode() for i in range(n)])


@pytest.fixture
def ledger(tmp_path):
    lg = Ledger.init(tmp_path / "ledger", origin=ORIGIN)
    grow(lg, 5)
    yield lg
    lg.close()


@pytest.fixture
def witnesses(tmp_path, ledger):
    out = []
    for i in range(3):
        w = Witness.init(tmp_path / f"w{i}", name=f"witness.test/w{i}")
        w.add_log(ledger.vkey)
        srv = make_server(w)
        srv.start_background()
        out.append((w, srv))
    yield out
    for w, srv in out:
        srv.shutdown()
        srv.server_close()
        w.close()


def post(url: str, body: bytes) -> tuple[int, str, bytes]:
    return WitnessClient(url).add_checkpoint(body)


def test_body_codec_roundtrip():
    h = [bytes([i]) * 32 for i in range(3)]
    body = format_add_checkpoint_body(7, h, b"o\n1\nAA==\n\n- x\n")
    assert parse_add_checkpoint_body(body) == (7, h, b"o\n1\nAA==\n\n- x\n")


def test_cosigns_first_and_consistent_growth(ledger, witnesses):
    w, srv = witnesses[0]
    note = ledger.checkpoint()
    status, _, lines = post(srv.url, format_add_checkpoint_body(0, [], note))
    assert status == 200 and lines.startswith("\u2014 witness.test/w0 ".encode())
    cos = note + lines
    verify_cosigned_checkpoint(cos, ledger.vkey, [w.vkey], 1)
    grow(ledger, 6)
    note2 = ledger.checkpoint()
    proof = ledger.log.consistency_proof(5, 11)
    status, _, lines2 = post(srv.url, format_add_checkpoint_body(5, proof, note2))
    assert status == 200
    res = verify_cosigned_checkpoint(note2 + lines2, ledger.vkey, [w.vkey], 1)
    assert res.checkpoint.size == 11
    assert w.head(ORIGIN)[0] == 11
    # the same checkpoint again (old == size, same root) is cosigned again
    assert post(srv.url, format_add_checkpoint_body(11, [], note2))[0] == 200


def test_status_codes(ledger, witnesses, tmp_path):
    w, srv = witnesses[0]
    note = ledger.checkpoint()
    assert post(srv.url, format_add_checkpoint_body(0, [], note))[0] == 200
    grow(ledger, 3)
    note2 = ledger.checkpoint()
    # wrong old size -> 409 with the size the witness has
    status, ctype, body = post(srv.url, format_add_checkpoint_body(0, [], note2))
    assert (status, ctype, body) == (409, "text/x.tlog.size", b"5\n")
    # old size larger than the checkpoint -> 400
    assert post(srv.url, format_add_checkpoint_body(9, [], note2))[0] == 400
    # bad proof -> 422
    assert post(srv.url, format_add_checkpoint_body(5, [b"\x00" * 32], note2))[0] == 422
    # proof with old size 0 -> 400
    assert post(srv.url, format_add_checkpoint_body(0, [b"\x00" * 32], note2))[0] == 400
    # unknown origin -> 404
    other = Ledger.init(tmp_path / "other", origin="other.example/log")
    other.log.append_data([b"x"])
    assert post(srv.url, format_add_checkpoint_body(0, [], other.checkpoint()))[0] == 404
    # known origin, signed by the wrong key -> 403
    impostor = Ledger.init(tmp_path / "impostor", origin=ORIGIN)
    impostor.log.append_data([b"x"])
    assert post(srv.url, format_add_checkpoint_body(0, [], impostor.checkpoint()))[0] == 403
    # malformed body -> 400; unknown path -> 404
    assert post(srv.url, b"nonsense")[0] == 400
    req = urllib.request.Request(srv.url + "/vkey")
    assert urllib.request.urlopen(req).read().decode().strip() == w.vkey
    assert w.head(ORIGIN)[0] == 5  # nothing above changed the state
    other.close()
    impostor.close()


def test_fork_is_refused_and_kept_as_evidence(ledger, witnesses, tmp_path):
    w, srv = witnesses[0]
    honest_note = ledger.checkpoint()
    assert post(srv.url, format_add_checkpoint_body(0, [], honest_note))[0] == 200
    # a fork: same log key, same first 5 entries, then different entries
    shutil.copytree(ledger.path, tmp_path / "fork")
    fork = Ledger.open(tmp_path / "fork")
    grow(ledger, 4, tag="honest")
    grow(fork, 4, tag="evil")
    honest = ledger.checkpoint()
    evil = fork.checkpoint()
    assert parse_note(honest).text != parse_note(evil).text
    assert post(srv.url, format_add_checkpoint_body(5, ledger.log.consistency_proof(5, 9), honest))[0] == 200
    # the fork's own (valid for the fork) consistency proof from 5 cannot match the witness's size-9 head
    assert post(srv.url, format_add_checkpoint_body(5, fork.log.consistency_proof(5, 9), evil))[0] == 409
    status, _ctype, body = post(srv.url, format_add_checkpoint_body(9, [], evil))
    assert (status, body) == (409, b"9\n")
    ev = w.evidence(ORIGIN)
    assert len(ev) == 1 and "split view" in ev[0]["reason"]
    assert ev[0]["cosigned_checkpoint"].encode() == honest
    assert ev[0]["offered_checkpoint"].encode() == evil
    # a witness that saw the fork first refuses the honest log's growth with 422
    w1, srv1 = witnesses[1]
    assert post(srv1.url, format_add_checkpoint_body(0, [], honest_note))[0] == 200
    assert post(srv1.url, format_add_checkpoint_body(5, fork.log.consistency_proof(5, 9), evil))[0] == 200
    grow(ledger, 2, tag="honest")
    honest11 = ledger.checkpoint()
    status, _, _ = post(srv1.url, format_add_checkpoint_body(9, ledger.log.consistency_proof(9, 11), honest11))
    assert status == 422
    assert len(w1.evidence()) == 1 and "inconsistent" in w1.evidence()[0]["reason"]
    fork.close()


def test_collect_two_of_three_with_one_witness_down(ledger, witnesses):
    vkeys = [w.vkey for w, _ in witnesses]
    down = witnesses[2][1]
    down.shutdown()
    down.server_close()
    urls = [srv.url for _, srv in witnesses]
    replies = []
    out = collect_cosignatures(ledger, urls, witness_vkeys=vkeys, threshold=2, on_reply=replies.append)
    assert [r.ok for r in replies] == [True, True, False]
    res = verify_cosigned_checkpoint(out, ledger.vkey, vkeys, 2)
    assert [n for n, _ in res.cosigners] == ["witness.test/w0", "witness.test/w1"]
    with pytest.raises(VerificationError):
        verify_cosigned_checkpoint(out, ledger.vkey, vkeys, 3)
    # the client remembers each witness's size: growing works without a 409 round trip
    grow(ledger, 10)
    out2 = collect_cosignatures(ledger, urls[:2], witness_vkeys=vkeys)
    assert parse_checkpoint_text(parse_note(out2).text).size == 15
    verify_cosigned_checkpoint(out2, ledger.vkey, vkeys[:2], 2)
    # proofs against that checkpoint can carry the cosignatures
    bundle = attach_cosignatures(ledger, ledger.prove(3))
    verify_cosigned_checkpoint(parse_proof_bundle(bundle).checkpoint, ledger.vkey, vkeys[:2], 2)


def test_client_resyncs_after_losing_its_state(ledger, witnesses):
    w, srv = witnesses[0]
    collect_cosignatures(ledger, [srv.url], witness_vkeys=[w.vkey])
    (ledger.path / "witnesses.db").unlink()
    grow(ledger, 2)
    out = collect_cosignatures(ledger, [srv.url], witness_vkeys=[w.vkey])  # old 0 -> 409 "5" -> with a proof
    verify_cosigned_checkpoint(out, ledger.vkey, [w.vkey], 1)


def test_witness_state_survives_restart(ledger, tmp_path):
    w = Witness.init(tmp_path / "wr", name="witness.test/restart")
    w.add_log(ledger.vkey)
    note = ledger.checkpoint()
    w.add_checkpoint(format_add_checkpoint_body(0, [], note), now=100)
    vk = w.vkey
    w.close()
    w2 = Witness.open(tmp_path / "wr")
    assert w2.vkey == vk and w2.head(ORIGIN)[0] == 5
    assert base64.b64encode(w2.head(ORIGIN)[1]).decode() == parse_note(note).text.split("\n")[2]
    w2.close()


def test_configured_witnesses_are_used_by_default(ledger, witnesses):
    with pytest.raises(BadInputError):
        collect_cosignatures(ledger)
    (w0, s0), (_w1, s1), (w2, _) = witnesses
    configure_witness(ledger, s0.url, w0.vkey)
    configure_witness(ledger, s1.url + "/", w2.vkey)  # wrong key for that URL: its cosignature is dropped
    assert [u for u, _ in configured_witnesses(ledger)] == [s0.url, s1.url]
    out = collect_cosignatures(ledger, allow_missing=True)
    names = [s.name for s in parse_note(out).signatures]
    assert names == [ORIGIN, "witness.test/w0"]
    assert remove_witness(ledger, s1.url)
    with pytest.raises(BadInputError):
        configure_witness(ledger, s1.url, ledger.vkey)  # a log key is not a witness key


def test_connections_are_kept_alive_across_requests_and_rounds(ledger, witnesses):
    from ailedger.tlog.witness import _POOL, cosign_checkpoint

    _POOL.close()
    vkeys = [w.vkey for w, _ in witnesses]
    urls = [srv.url for _, srv in witnesses]
    opened = _POOL.opened
    assert cosign_checkpoint(ledger, urls, witness_vkeys=vkeys).ok
    assert _POOL.opened - opened == 3  # one connection per witness
    grow(ledger, 3)
    (ledger.path / "witnesses.db").unlink()  # forgotten sizes: each witness answers 409, then is asked again
    res = cosign_checkpoint(ledger, urls, witness_vkeys=vkeys)
    assert res.ok and len(res.cosigners) == 3
    assert _POOL.opened - opened == 3  # the next round and the 409 re-sync reused them


def test_one_key_counts_once_and_cosignatures_are_for_this_checkpoint(ledger, witnesses):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ailedger.tlog.note import Signer
    from ailedger.tlog.witness import cosign_checkpoint

    w0, s0 = witnesses[0]
    # the same witness asked at two URL spellings gives one cosigner, not two
    res = cosign_checkpoint(ledger, [s0.url, s0.url + "/"], witness_vkeys=[w0.vkey])
    assert res.cosigners == ["witness.test/w0"] and res.ok
    res = cosign_checkpoint(ledger, [s0.url, s0.url.replace("127.0.0.1", "localhost")], witness_vkeys=[w0.vkey])
    assert res.cosigners == ["witness.test/w0"] and not res.ok  # 2 asked, 1 distinct key
    assert [s.name for s in parse_note(res.checkpoint).signatures] == [ORIGIN, "witness.test/w0"]
    # a hostile witness answering with a valid cosignature by a trusted key, but of *another*
    # checkpoint (an older one it holds), is not kept
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ailedger.tlog.checkpoint import Checkpoint
    from ailedger.tlog.cosignature import cosign
    from ailedger.tlog.note import ALG_COSIGNATURE_V1

    key = Ed25519PrivateKey.generate()
    hostile = Signer("witness.test/hostile", key, alg=ALG_COSIGNATURE_V1)
    cp = parse_checkpoint_text(parse_note(ledger.checkpoint()).text)
    stale = cosign(Checkpoint(cp.origin, cp.size - 1, cp.root).text(), hostile, 1).line().encode()

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(stale)))
            self.end_headers()
            self.wfile.write(stale)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        res = cosign_checkpoint(ledger, [f"http://127.0.0.1:{srv.server_address[1]}"], witness_vkeys=[hostile.vkey])
    finally:
        srv.shutdown()
        srv.server_close()
    assert not res.ok and res.cosigners == []
    assert "do not verify under a trusted key" in res.replies[0].error
    assert len(parse_note(res.checkpoint).signatures) == 1


def test_cosignatures_stored_before_this_rule_are_filtered(ledger, witnesses):
    import sqlite3

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ailedger.tlog.cosignature import add_cosignatures, cosign
    from ailedger.tlog.note import ALG_COSIGNATURE_V1, Signer

    note = ledger.checkpoint()
    text = parse_note(note).text
    stranger = Signer("stranger.example/w", Ed25519PrivateKey.generate(), alg=ALG_COSIGNATURE_V1)
    db = sqlite3.connect(ledger.path / "witnesses.db")  # as an older version left it: user_version 0
    db.execute("CREATE TABLE cosigned (size INTEGER PRIMARY KEY, note BLOB NOT NULL)")
    db.execute("INSERT INTO cosigned VALUES (?, ?)",
               (parse_checkpoint_text(text).size, add_cosignatures(note, [cosign(text, stranger, 1)])))
    db.commit()
    db.close()
    from ailedger.tlog.witness import cosigned_checkpoint

    assert cosigned_checkpoint(ledger) is None  # the stranger's line went, and with it the row
    assert attach_cosignatures(ledger, ledger.prove(1)) == ledger.prove(1)


def test_a_later_round_keeps_one_line_per_witness_key(ledger, witnesses):
    import time

    from ailedger.tlog.witness import cosign_checkpoint, cosigned_checkpoint

    w0, s0 = witnesses[0]
    cosign_checkpoint(ledger, [s0.url], witness_vkeys=[w0.vkey])
    time.sleep(1.05)  # the witness's next cosignature carries another timestamp
    res = cosign_checkpoint(ledger, [s0.url], witness_vkeys=[w0.vkey])
    assert [s.name for s in parse_note(res.checkpoint).signatures] == [ORIGIN, "witness.test/w0"]
    assert cosigned_checkpoint(ledger) == res.checkpoint
