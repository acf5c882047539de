import io
import wave

import numpy as np
import pytest
from PIL import Image

from ailedger.content.c2pa_io import make_test_chain
from ailedger.content.service import ContentService
from ailedger.tlog.ledger import Ledger


@pytest.fixture()
def ledger(tmp_path):
    led = Ledger.init(tmp_path / "ledger", origin="test.example/content")
    yield led
    led.close()


@pytest.fixture()
def alice(ledger):
    ident, _ = ledger.new_identity("alice")
    return ident


@pytest.fixture()
def svc(ledger):
    s = ContentService(ledger)
    yield s
    s.close()


def png_bytes(a):
    b = io.BytesIO()
    Image.fromarray(a).save(b, "PNG")
    return b.getvalue()


def jpeg_bytes(a, q=75):
    b = io.BytesIO()
    Image.fromarray(a).save(b, "JPEG", quality=q)
    return b.getvalue()


def wav_bytes(x, rate=16000):
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return b.getvalue()


@pytest.fixture(scope="session")
def test_ca():
    """A throwaway CA and a leaf certificate fit for C2PA signing (the library refuses self-signed leaves), made
    by the same function as `ailedger content c2pa-test-cert`."""
    c = make_test_chain(days=30)
    return {"chain": c.chain_pem, "key": c.key_pem, "ca": c.ca_pem.decode(), "self_signed_leaf": c.leaf_pem}
