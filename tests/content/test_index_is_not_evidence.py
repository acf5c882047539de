"""`content verify` answers from the signed entries, not from its indexes.

The term index (``sha256:``, ``textnorm:`` rows beside the log) and the fingerprint index
(``<ledger>/content/index.sqlite``) are derived state outside every signature.  A row pointing
at the wrong entry (stale after a restore, copied from another ledger, or edited) must not turn
into "exact match" or any other match: each hit is re-checked against the entry's body."""

import sqlite3

import numpy as np
from PIL import Image
from skimage import data

from ailedger.content import fingerprint as fp

from .conftest import png_bytes, wav_bytes


def _add_term(ledger, term, idx):
    con = sqlite3.connect(ledger.path / "ledger.db")
    con.execute("INSERT INTO terms (term, idx) VALUES (?, ?)", (term, idx))
    con.commit()
    con.close()


def test_exact_match_needs_the_entry_to_hold_the_digest(tmp_path, ledger, svc, alice):
    a = tmp_path / "a.txt"
    a.write_text("the registered text, which is about owls\n")
    res = svc.register(a, alice)
    b = tmp_path / "b.txt"
    b.write_text("a text nobody registered: it is about tax law and trains\n")
    assert svc.verify(b)["verdict"] == "no match"
    vb = svc.verify(b)
    _add_term(ledger, f"sha256:{vb['sha256']}", res["entry"])
    v = svc.verify(b)
    assert v["verdict"] == "no match" and v["matches"] == [], v["summary"]
    # same for the normalised-text index
    from ailedger.content.media import fingerprints, load_media

    tn = fingerprints(load_media(b))["text_sha256"]
    _add_term(ledger, f"textnorm:{tn}", res["entry"])
    v = svc.verify(b)
    assert v["verdict"] == "no match" and v["matches"] == [], v["summary"]
    # the genuine file still matches exactly
    assert svc.verify(a)["verdict"] == "exact match"


def test_fingerprint_index_rows_are_checked_against_the_entry(tmp_path, ledger, svc, alice):
    rate = 16000
    t = np.arange(rate * 2) / rate
    tone = 0.4 * np.sin(2 * np.pi * 330 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t))
    p = tmp_path / "a.wav"
    p.write_bytes(wav_bytes(tone, rate))
    res = svc.register(p, alice)
    noise = np.random.default_rng(3).uniform(-0.5, 0.5, rate * 2)
    other = wav_bytes(noise, rate)
    assert svc.verify(None, data=other, name="n.wav")["verdict"] == "no match"
    # a row saying the noise's fingerprint belongs to the tone's entry
    from ailedger.content.media import load_media

    m = load_media(data=other, name="n.wav")
    svc.store.add("audio_phash64", fp.audio_phash64(m.samples, m.rate), res["entry"])
    v = svc.verify(None, data=other, name="n.wav")
    assert v["verdict"] == "no match" and v["matches"] == [], v["summary"]
    # the genuine file still matches
    assert svc.verify(None, data=wav_bytes(0.5 * tone, rate), name="b.wav")["matches"][0]["entry"] == res["entry"]


def test_watermark_index_row_is_checked_against_the_entry(tmp_path, ledger, svc, alice):
    plain = tmp_path / "astro.png"
    plain.write_bytes(png_bytes(data.astronaut()))
    first = svc.register(plain, alice)
    src = tmp_path / "coffee.png"
    src.write_bytes(png_bytes(data.coffee()))
    marked = tmp_path / "coffee.marked.png"
    res = svc.register(src, alice, marked_out=marked)
    wid = int(res["record"]["watermark"]["id"], 16)
    # the watermark row now names the astronaut's entry, which carries no watermark at all
    svc.store._db.execute("UPDATE watermark SET entry = ? WHERE wm_id = ?", (first["entry"], wid))
    svc.store._db.commit()
    m = np.asarray(Image.open(marked).convert("RGB"))
    small = np.asarray(Image.fromarray(m).resize((300, 200), Image.BICUBIC))
    v = svc.verify(None, data=png_bytes(small), name="x.png")
    assert all(x["entry"] != first["entry"] for x in v["matches"]), v["summary"]
    assert v["watermark"]["found"] and "entry" not in v["watermark"]


def test_registered_by_comes_from_a_valid_signature(tmp_path, ledger, svc, alice):
    """Who registered a match is read from the entry's signature, not from stored bytes taken on trust."""
    import json

    import pytest

    from ailedger.errors import SignatureError

    a = tmp_path / "a.txt"
    a.write_text("a registered poem about the sea\n")
    res = svc.register(a, alice)
    con = sqlite3.connect(ledger.path / "ledger.db")
    (raw,) = con.execute("SELECT data FROM leaves WHERE idx = ?", (res["entry"],)).fetchone()
    e = json.loads(raw)
    e["body"]["creator"] = "mallory"
    con.execute("UPDATE leaves SET data = ? WHERE idx = ?", (json.dumps(e).encode(), res["entry"]))
    con.commit()
    con.close()
    with pytest.raises(SignatureError):
        svc.verify(a)
