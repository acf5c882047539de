import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from ailedger.content.c2pa_io import C2paSigningKey, read_manifest
from ailedger.content.service import find_disputes
from ailedger.errors import BadInputError, NotFoundError

from .conftest import jpeg_bytes, png_bytes, wav_bytes


@pytest.fixture()
def registered(tmp_path, svc, alice):
    src = tmp_path / "coffee.png"
    src.write_bytes(png_bytes(data.coffee()))
    res = svc.register(src, alice, generator="img-gen-1", marked_out=tmp_path / "coffee.marked.png")
    return src, tmp_path / "coffee.marked.png", res


def test_register_image_record(registered, ledger):
    src, marked, res = registered
    rec = ledger.entry(res["entry"])
    assert rec.type == "content.register" and rec.signer == res["signer"]
    b = rec.body
    assert b["kind"] == "image" and b["dims"] == {"width": 600, "height": 400}
    assert len(b["fingerprints"]["phash64"]) == 16 and len(b["fingerprints"]["dct256"]) == 64
    assert len(b["fingerprints"]["crop_grid"]["phash64"]) == 50
    assert b["generator"] == {"model": "img-gen-1", "model_record": None}
    assert b["watermark"]["selfcheck"] is True and b["watermark"]["psnr_centi_db"] > 3400
    assert marked.exists() and marked.read_bytes() != src.read_bytes()


def test_verify_exact_watermark_and_none(registered, svc, alice):
    src, marked, res = registered
    v = svc.verify(src)
    assert v["verdict"] == "exact match" and v["matches"][0]["entry"] == res["entry"]
    assert v["matches"][0]["registered_by"]["did"] == alice.did
    assert v["matches"][0]["generator"]["model"] == "img-gen-1"
    assert v["matches"][0]["disputed"] is False
    # re-encoded, resized, metadata-free copy of the published (marked) file
    m = np.asarray(Image.open(marked).convert("RGB"))
    small = np.asarray(Image.fromarray(m).resize((300, 200), Image.BICUBIC))
    v2 = svc.verify(None, data=jpeg_bytes(small), name="x.jpg")
    assert v2["verdict"] == "watermark match"
    assert v2["watermark"]["found"] and v2["matches"][0]["entry"] == res["entry"]
    # a 10% crop
    v3 = svc.verify(None, data=png_bytes(m[20:380, 30:570]), name="c.png")
    assert v3["matches"] and v3["matches"][0]["entry"] == res["entry"]
    # an unrelated photo: no match, and no did anywhere in the answer
    v4 = svc.verify(None, data=png_bytes(data.chelsea()), name="cat.png")
    assert v4["verdict"] == "no match" and v4["matches"] == []
    assert "did:key" not in json.dumps(v4)


def test_unmarked_crop_found_by_crop_window(tmp_path, svc, alice):
    a = data.astronaut()
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes(a))
    r = svc.register(src, alice)  # no watermark
    v = svc.verify(None, data=jpeg_bytes(a[30:491, 20:481]), name="crop.jpg")
    assert [m["entry"] for m in v["matches"]] == [r["entry"]]
    assert v["matches"][0]["evidence"][0]["fingerprint"].startswith("crop-window")


def test_text_register_and_near_duplicate(tmp_path, svc, alice):
    t = ("Large language models can produce fluent text. This paragraph was generated for a test of the "
         "ailedger content registry, which keeps SimHash and MinHash fingerprints of every text.")
    p = tmp_path / "gen.txt"
    p.write_text(t)
    r = svc.register(p, alice, generator="llm-x")
    v = svc.verify(None, data=("  " + t.upper() + "\n").encode(), name="copy.txt")
    assert v["verdict"] == "exact match (normalised text)"
    v2 = svc.verify(None, data=t.replace("fluent", "smooth").encode(), name="edit.txt")
    assert v2["verdict"] == "near-duplicate" and v2["matches"][0]["entry"] == r["entry"]
    v3 = svc.verify(None, data=b"An entirely different note about the weather in spring and gardens.",
                    name="o.txt")
    assert v3["verdict"] == "no match"


def test_audio_register_and_find_resampled(tmp_path, svc, alice):
    rate = 16000
    t = np.arange(rate * 2) / rate
    x = 0.4 * np.sin(2 * np.pi * 330 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t)) + \
        0.3 * np.sin(2 * np.pi * 990 * t) * (0.5 + 0.5 * np.cos(2 * np.pi * 0.7 * t))
    p = tmp_path / "a.wav"
    p.write_bytes(wav_bytes(x, rate))
    r = svc.register(p, alice)
    v = svc.verify(None, data=wav_bytes(0.5 * x[::2], rate // 2), name="b.wav")
    assert v["verdict"] == "near-duplicate" and v["matches"][0]["entry"] == r["entry"]


def test_video_register_and_find_reencoded(tmp_path, svc, alice):
    av = pytest.importorskip("av")

    def video(frames, bitrate):
        buf = io.BytesIO()
        c = av.open(buf, "w", format="mp4")
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt, s.bit_rate = 160, 128, "yuv420p", bitrate
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
        c.close()
        return buf.getvalue()

    base = np.asarray(Image.fromarray(data.astronaut()).resize((200, 200)))
    frames = [np.ascontiguousarray(base[i * 3:i * 3 + 128, i * 2:i * 2 + 160]) for i in range(12)]
    p = tmp_path / "v.mp4"
    p.write_bytes(video(frames, 800_000))
    r = svc.register(p, alice)
    v = svc.verify(None, data=video(frames, 150_000), name="v2.mp4")
    assert v["matches"] and v["matches"][0]["entry"] == r["entry"]


def test_model_record_is_linked(tmp_path, ledger, svc, alice):
    mr = ledger.append_record("model.register", {"name": "gen-7"}, alice, terms=["model:gen-7"])
    p = tmp_path / "t.txt"
    p.write_text("some generated words that are long enough to fingerprint properly here")
    r = svc.register(p, alice, generator="gen-7")
    assert r["record"]["generator"] == {"model": "gen-7", "model_record": mr.index}


def test_dispute_hook(registered, ledger, svc, alice):
    _, _, res = registered
    assert find_disputes(ledger, res["entry"]) == {"claims": [], "records": [], "disputed": False}
    ledger.append_record("dispute.open", {"subjects": [f"entry:{res['entry']}"], "reason": "not theirs"}, alice)
    d = find_disputes(ledger, res["entry"])
    assert d["disputed"] is True and d["records"][0]["type"] == "dispute.open"
    v = svc.verify(registered[0])
    assert v["matches"][0]["disputed"] is True
    assert any("DISPUTED" in line for line in v["summary"])


@pytest.mark.parametrize("content,name,msg", [
    (b"", "e.png", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "t.png", "truncated or corrupt"),
    (b"\x00\x01\x02\x03binary junk\xff\xfe" * 10, "x.bin", "unsupported"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "a.wav", "WAV"),
    (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 30, "v.mp4", "video"),
])
def test_bad_media_is_a_clear_error(svc, alice, content, name, msg):
    with pytest.raises(BadInputError, match=msg):
        svc.verify(None, data=content, name=name)
    with pytest.raises(BadInputError):
        svc.register(None, alice, data=content, name=name)


def test_truncated_jpeg_is_an_error(svc):
    b = jpeg_bytes(data.coffee())
    with pytest.raises(BadInputError, match="truncated or corrupt"):
        svc.verify(None, data=b[: len(b) // 2], name="half.jpg")


def test_too_small_to_watermark(tmp_path, svc, alice):
    p = tmp_path / "tiny.png"
    p.write_bytes(png_bytes(data.coffee()[:90, :90]))
    with pytest.raises(BadInputError, match="too small"):
        svc.register(p, alice, marked_out=tmp_path / "tiny.marked.png")
    assert svc.ledger.size == 1  # only alice's identity record: nothing half-registered
    svc.register(p, alice)  # without a watermark it registers fine
    tiny = svc.verify(None, data=png_bytes(data.coffee()[:40, :40]), name="t.png")
    assert tiny["verdict"] in ("no match", "cannot tell")


def test_watermark_only_for_images(tmp_path, svc, alice):
    p = tmp_path / "t.txt"
    p.write_text("hello there this is text that cannot carry an image watermark at all")
    with pytest.raises(BadInputError, match="images and audio only"):
        svc.register(p, alice, marked_out=tmp_path / "t.marked.png")


def test_index_rebuilds_from_the_log(registered, ledger):
    from ailedger.content.service import ContentService

    (ledger.path / "content" / "index.sqlite").unlink()
    s2 = ContentService(ledger)
    try:
        m = np.asarray(Image.open(registered[1]).convert("RGB"))
        v = s2.verify(None, data=jpeg_bytes(m), name="x.jpg")
        assert v["matches"] and v["matches"][0]["entry"] == registered[2]["entry"]
    finally:
        s2.close()


# ------------------------------------------------------------------------------------ C2PA

def test_c2pa_sidecar_leaves_asset_identical_and_reads_back(registered, svc, test_ca, tmp_path):
    src, _, _res = registered
    before = src.read_bytes()
    jpg = tmp_path / "coffee.jpg"  # C2PA hard-binds to the asset bytes; register the JPEG too
    jpg.write_bytes(jpeg_bytes(data.coffee(), 90))
    r = svc.register(jpg, svc.ledger.identities.load("alice"))
    out = svc.c2pa_sign(jpg, r["entry"], C2paSigningKey(test_ca["chain"], test_ca["key"]))
    side = tmp_path / "coffee.c2pa"
    assert out["sidecar"] == str(side) and side.exists()
    assert src.read_bytes() == before
    summary = read_manifest(jpg.read_bytes(), "image/jpeg", side.read_bytes(), test_ca["ca"])
    assert summary["state"] == "Trusted" and summary["signature_valid"]
    assert summary["ailedger_record"]["index"] == r["entry"]
    assert summary["ailedger_record"]["origin"] == "test.example/content"
    v = svc.verify(jpg, sidecar=side.read_bytes(), trust_anchors_pem=test_ca["ca"])
    assert v["c2pa"]["trusted"] and v["verdict"] == "exact match"
    assert v["c2pa"]["ledger_check"] == f"consistent with entry {r['entry']}"
    # the same (valid) sidecar presented with different bytes: C2PA says invalid, and the pointer disagrees
    other = tmp_path / "other.jpg"
    other.write_bytes(jpeg_bytes(data.astronaut(), 90))
    v2 = svc.verify(other, sidecar=side.read_bytes(), trust_anchors_pem=test_ca["ca"])
    assert v2["c2pa"]["signature_valid"] is False
    assert v2["c2pa"]["ledger_check"] == f"points at entry {r['entry']}, which registered different bytes"


def test_c2pa_embedded_manifest_read_into_record(svc, alice, test_ca, tmp_path):
    jpg = tmp_path / "c.jpg"
    jpg.write_bytes(jpeg_bytes(data.chelsea(), 90))
    r = svc.register(jpg, alice)
    emb = tmp_path / "c.signed.jpg"
    svc.c2pa_sign(jpg, r["entry"], C2paSigningKey(test_ca["chain"], test_ca["key"]), embed_out=emb)
    r2 = svc.register(emb, alice)  # registering an asset that carries a manifest records its summary
    c = r2["record"]["c2pa"]
    assert c["signature_valid"] and c["ailedger_record"]["index"] == r["entry"] and c["embedded"]


def test_c2pa_bad_signature_is_never_valid(registered, svc, test_ca, tmp_path):
    jpg = tmp_path / "k.jpg"
    jpg.write_bytes(jpeg_bytes(data.coffee(), 90))
    r = svc.register(jpg, svc.ledger.identities.load("alice"))
    out = svc.c2pa_sign(jpg, r["entry"], C2paSigningKey(test_ca["chain"], test_ca["key"]))
    good = Path(out["sidecar"]).read_bytes()
    # a signed claim byte changed (claim_generator_info name, CBOR text "ailedger") -> signature mismatch
    assert good.count(b"\x68ailedger") == 1
    bad_sig = good.replace(b"\x68ailedger", b"\x68biledger")
    s = read_manifest(jpg.read_bytes(), "image/jpeg", bad_sig, test_ca["ca"])
    assert s["signature_valid"] is False and s["state"] not in ("Valid", "Trusted")
    assert "claimSignature.mismatch" in s["failures"]
    v = svc.verify(jpg, sidecar=bad_sig, trust_anchors_pem=test_ca["ca"])
    assert any("NOT valid" in line for line in v["summary"])
    assert v["c2pa"]["signature_valid"] is False
    # an assertion changed after signing (the ledger origin) -> hash mismatch
    bad_assertion = good.replace(b"test.example", b"best.example")
    s = read_manifest(jpg.read_bytes(), "image/jpeg", bad_assertion, test_ca["ca"])
    assert s["signature_valid"] is False and "assertion.hashedURI.mismatch" in s["failures"]
    # garbage instead of a manifest
    s = read_manifest(jpg.read_bytes(), "image/jpeg", b"not a manifest at all", test_ca["ca"])
    assert s["signature_valid"] is False
    # the manifest of one asset does not validate another
    other = jpeg_bytes(data.astronaut(), 90)
    s2 = read_manifest(other, "image/jpeg", Path(out["sidecar"]).read_bytes(), test_ca["ca"])
    assert s2["signature_valid"] is False


def test_c2pa_self_signed_leaf_is_refused(registered, svc, test_ca, tmp_path):
    jpg = tmp_path / "s.jpg"
    jpg.write_bytes(jpeg_bytes(data.coffee(), 90))
    r = svc.register(jpg, svc.ledger.identities.load("alice"))
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    k = ec.generate_private_key(ec.SECP256R1())
    n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(k, hashes.SHA256()))
    key = C2paSigningKey(cert.public_bytes(serialization.Encoding.PEM),
                         k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    with pytest.raises(BadInputError, match="C2PA signing failed"):
        svc.c2pa_sign(jpg, r["entry"], key)


def test_c2pa_sign_checks_entry_and_file(registered, svc, test_ca, tmp_path):
    src, _, res = registered
    key = C2paSigningKey(test_ca["chain"], test_ca["key"])
    with pytest.raises(NotFoundError):
        svc.c2pa_sign(src, 999, key)
    with pytest.raises(BadInputError, match="not a content.register"):
        svc.c2pa_sign(src, 0, key)
    other = tmp_path / "o.png"
    other.write_bytes(png_bytes(data.chelsea()))
    with pytest.raises(BadInputError, match="sha256 differs"):
        svc.c2pa_sign(other, res["entry"], key)


def test_audio_watermark_register_and_find(tmp_path, svc, alice):
    from scipy import signal

    rate = 22050
    t = np.arange(rate * 8) / rate
    x = sum(np.sin(2 * np.pi * f * t + i) * (0.5 + 0.5 * np.sin(2 * np.pi * (0.2 + 0.15 * i) * t))
            for i, f in enumerate([196, 247, 294, 392, 523, 784]))
    x = x / np.abs(x).max() * 0.6
    p = tmp_path / "song.wav"
    p.write_bytes(wav_bytes(x, rate))
    out = tmp_path / "song.marked.wav"
    r = svc.register(p, alice, marked_out=out)
    w = r["record"]["watermark"]
    assert w["scheme"] == "ailedger-awm1" and w["selfcheck"] and w["snr_centi_db"] > 2800
    from ailedger.content.media import load_media

    y = load_media(out).samples
    clip = signal.resample_poly(y[rate:rate * 7], 320, 441) * 0.5  # 6 s excerpt, 16 kHz, quieter
    v = svc.verify(None, data=wav_bytes(clip, 16000), name="clip.wav")
    assert v["watermark"]["found"] and v["matches"][0]["entry"] == r["entry"]
    assert any(e["how"] == "watermark" for e in v["matches"][0]["evidence"])
    short = svc.verify(None, data=wav_bytes(y[: rate * 2], rate), name="short.wav")
    assert short["watermark"]["checked"] is False


def test_record_schema_golden(svc, alice):
    """content.register v1: the body of a fixed text input has fixed canonical (RFC 8785) bytes."""
    import hashlib

    from ailedger.encoding.canonical import canonical_json

    r = svc.register(None, alice, data=b"Golden vector text for the content.register record, schema version one.",
                     name="golden.txt", generator="gen-x")
    body = r["record"]
    assert svc.ledger.entry(r["entry"]).v == 1
    assert body["subjects"] == ["sha256:" + body["sha256"]]
    assert hashlib.sha256(canonical_json(body)).hexdigest() == \
        "971bfa81be00b79e060d5723b10a0881ed8a57b103074ac3781408cceee4c6fc"
