import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.encoding.identity import b58decode, b58encode, did_from_public_key, public_key_from_did
from ailedger.encoding.records import build_entry, parse_entry
from ailedger.errors import BadInputError, SignatureError

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical number text
RFC8785_NUMBERS = [
    ("0000000000000000", "0"), ("8000000000000000", "0"), ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"), ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"), ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"), ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"), ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"), ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"), ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"), ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"), ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"), ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"), ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize("bits,text", RFC8785_NUMBERS)
def test_rfc8785_numbers(bits, text):
    x = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonical_json(x) == text.encode()


def test_rfc8785_sorting_and_strings():
    # RFC 8785 section 3.2.3 sorting example: keys sort by UTF-16 code units
    obj = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
           "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}
    out = canonical_json(obj).decode()
    order = [k for k in ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]]
    positions = [out.index('"' + (k if k != "\r" else "\\r") + '"') for k in order]
    assert positions == sorted(positions)
    assert canonical_json({"a": "\u2028\n\"\\\x1f"}) == b'{"a":"\xe2\x80\xa8\\n\\"\\\\\\u001f"}'
    assert canonical_json([True, None, {"b": 2, "a": 1}]) == b'[true,null,{"a":1,"b":2}]'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {1: 2}, {"a": object()}, "\ud800"])
def test_canonical_rejects(bad):
    with pytest.raises(BadInputError):
        canonical_json(bad)


@pytest.mark.parametrize("bad", [b'{"a":1,"a":2}', b"{", b"NaN", b"\xff"])
def test_parse_json_rejects(bad):
    with pytest.raises(BadInputError):
        parse_json(bad)


def test_did_key_roundtrip_and_known_prefix():
    pk = bytes(range(32))
    did = did_from_public_key(pk)
    assert did.startswith("did:key:z6Mk")  # every Ed25519 did:key starts so (multicodec 0xed01)
    assert public_key_from_did(did) == pk
    assert b58decode(b58encode(b"\0\0abc")) == b"\0\0abc"
    with pytest.raises(BadInputError):
        public_key_from_did("did:key:zQ3sharp")
    with pytest.raises(BadInputError):
        public_key_from_did("did:web:example.org")


def _entry(key=None, body=None):
    key = key or Ed25519PrivateKey.generate()
    did = did_from_public_key(key.public_key().public_bytes_raw())
    return key, build_entry("model.register", body or {"name": "m"}, did, "2026-11-22T00:00:00.000Z", key.sign)


def test_entry_roundtrip_and_golden_shape():
    _key, e = _entry()
    assert e.leaf_bytes.startswith(b'{"body":{"name":"m"},"sig":"')
    again = parse_entry(e.leaf_bytes)
    assert again == e
    # a differently spelled but equal entry canonicalises to the same leaf
    import json
    spaced = json.dumps(e.to_dict(), indent=3).encode()
    assert parse_entry(spaced).leaf_bytes == e.leaf_bytes


def test_entry_signed_by_someone_else_is_refused():
    _key, e = _entry()
    _other, e2 = _entry()
    d = e.to_dict()
    d["signer"] = e2.signer  # claims to be someone else
    with pytest.raises(SignatureError):
        parse_entry(d)
    d = e.to_dict()
    d["body"] = {"name": "tampered"}
    with pytest.raises(SignatureError):
        parse_entry(d)


@pytest.mark.parametrize("field,value", [("type", "Bad Type"), ("v", 0), ("v", "1"), ("body", []),
                                         ("time", "yesterday"), ("signer", "did:web:x"), ("sig", 5)])
def test_entry_field_validation(field, value):
    _key, e = _entry()
    d = e.to_dict()
    d[field] = value
    with pytest.raises(BadInputError) as exc:
        parse_entry(d)
    assert exc.value.field == field


def test_entry_size_limit():
    with pytest.raises(BadInputError):
        _entry(body={"x": "a" * 70000})


GOLDEN_DID = "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"
GOLDEN_LEAF = (
    b'{"body":{"count":3,"licence":"CC-BY-4.0","name":"books-2026","root":"sha256:00ff"},'
    b'"sig":"gk+KNhdnr8iATDhqy/fgOYhlAH8P21RkGjOliggizbpOSnfm1moawi4cnb+Nrq53ghJtfduTZ5ZTUJgtY2Y1Ag==",'
    b'"signer":"did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd","time":"2026-11-22T00:00:00.000Z",'
    b'"type":"dataset.commit","v":1}'
)


def test_golden_entry_bytes():
    """Schema v1 golden bytes: Ed25519 is deterministic, so a fixed key, time and body give fixed bytes."""
    k = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    assert did_from_public_key(k.public_key().public_bytes_raw()) == GOLDEN_DID
    e = build_entry("dataset.commit", {"name": "books-2026", "root": "sha256:00ff", "count": 3,
                                       "licence": "CC-BY-4.0"}, GOLDEN_DID, "2026-11-22T00:00:00.000Z", k.sign)
    assert e.leaf_bytes == GOLDEN_LEAF
    assert parse_entry(GOLDEN_LEAF).body["count"] == 3
    with pytest.raises(SignatureError):
        parse_entry(GOLDEN_LEAF.replace(b'"count":3', b'"count":4'))


@pytest.mark.parametrize("signer", [{}, [], 5, None])
def test_non_string_signer_is_bad_input(signer):
    _key, e = _entry()
    d = e.to_dict()
    d["signer"] = signer
    with pytest.raises(BadInputError):
        parse_entry(d)


from hypothesis import given, settings
from hypothesis import strategies as st

_keys = st.text(alphabet=st.characters(max_codepoint=0xD7FF), max_size=6)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                     st.text(max_size=10).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)))
_json = st.recursive(_scalars, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(_keys, c, max_size=4)),
                     max_leaves=20)


def _reference_jcs(o):
    """The slow, literal RFC 8785 path, as the reference for the fast encoders."""
    from ailedger.encoding.canonical import _slow
    out = []
    _slow(o, out)
    return "".join(out).encode()


@settings(max_examples=3000, deadline=None)
@given(_json)
def test_fast_encoders_equal_the_literal_jcs_path(o):
    assert canonical_json(o) == _reference_jcs(o)
