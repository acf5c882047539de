"""Any input gives a 4xx, never a 500: numbers beyond Python's 4,300-digit int limit on every path
the issue named (served by a real `ailedger serve`), and hypothesis over arbitrary bytes, huge
numbers, deep nesting, long strings and invalid UTF-8 against the real app in-process."""

from __future__ import annotations

import json
import string
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from ailedger.encoding.canonical import parse_json
from ailedger.errors import BadInputError
from ailedger.http.app import ServeConfig, create_app
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key, Server

HUGE = "9" * 5000


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile") / "ledger"
    Ledger.init(d, origin="test.example/hostile").close()
    s = Server(d)
    k = Key("h")
    assert httpx.post(s.url + "/v1/identities", json=k.registration()).status_code == 201
    s.key = k
    yield s
    s.stop()


@pytest.mark.parametrize("path,codes", [
    (f"/entry/{HUGE}", (404,)),
    (f"/v1/entries/{HUGE}", (404,)),
    (f"/v1/entries/{HUGE}/raw", (404,)),
    (f"/v1/entries/{HUGE}/proof", (404,)),
    (f"/v1/entries/{HUGE}/inclusion", (404,)),
    (f"/v1/entries/0/inclusion?tree_size={HUGE}", (400,)),
    (f"/v1/consistency?old={HUGE}", (400,)),
    (f"/v1/search?type=x&after={HUGE}", (400,)),
    (f"/model/%23{HUGE}", (404,)),
    (f"/dataset/%23{HUGE}", (404,)),
    ("/tile/0/" + "x999/" * 1434 + "999", (404,)),
    ("/tile/entries/" + "x999/" * 1434 + "999", (404,)),
    ("/tile/%D9%A0/000.p/7", (404,)),
    ("/tile/0/%D9%A0%D9%A0%D9%A0", (404,)),
    ("/entry/%D9%A3", (404,)),
    (f"/search?q={HUGE[:500]}", (200,)),
])
def test_huge_and_unicode_numbers_on_every_path(live, path, codes):
    r = httpx.get(live.url + path, timeout=30)
    assert r.status_code in codes, (path[:60], r.status_code, r.text[:200])
    if r.headers["content-type"].startswith("application/json"):
        assert "code" in r.json()
    assert len(r.content) < 20000  # an error does not echo the whole input back


def test_a_huge_integer_in_an_entry_is_a_400(live):
    e = live.key.entry("x.y", {"n": 1})
    text = json.dumps(e).replace('"n": 1', f'"n": {HUGE}')
    for path, body in (("/v1/entries", text), ("/v1/entries/batch", '{"entries": [' + text + "]}"),
                       ("/v1/identities", text)):
        r = httpx.post(live.url + path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "malformed_json", (path, r.text[:200])
    log = Path(live.log.name).read_text(errors="replace")
    assert "internal error" not in log and "Traceback" not in log


# -- hypothesis against the real app (in-process) -------------------------------------------------------
@pytest.fixture(scope="module")
def client(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-app") / "ledger"
    led = Ledger.init(d, origin="test.example/hostile-app")
    who = led.identities.create("a")
    for i in range(3):
        led.append_record("x.y", {"i": i}, who)
    app = create_app(led, ServeConfig(open_registration=False))
    with TestClient(app, raise_server_exceptions=True) as c:
        c.size = led.size
        c.ledger = led
        yield c
    led.close()


def json_values(max_leaves=40):
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=50))
    return st.recursive(scalars, lambda ch: st.one_of(st.lists(ch, max_size=5),
                                                      st.dictionaries(st.text(max_size=10), ch, max_size=5)),
                        max_leaves=max_leaves)


def _texts():
    """JSON-ish text: huge numbers, deep nesting, long strings, and entry-shaped objects."""
    huge_int = st.integers(4000, 20000).map(lambda n: "1" * n)
    deep = st.integers(500, 5000).map(lambda n: "[" * n + "]" * n)
    deep_obj = st.integers(500, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n)
    long_str = st.integers(10_000, 300_000).map(lambda n: json.dumps("x" * n))
    entryish = st.fixed_dictionaries({"type": st.one_of(st.just("identity.register"), st.text(max_size=20)),
                                      "v": st.one_of(st.just(1), st.integers()), "body": json_values(),
                                      "signer": st.one_of(st.just("did:key:z6Mk"), st.text(max_size=60)),
                                      "time": st.text(max_size=30), "sig": st.text(max_size=100)}
                                     ).map(json.dumps)
    return st.one_of(huge_int, deep, deep_obj, long_str, entryish, json_values().map(json.dumps),
                     huge_int.map(lambda s: '{"entries": [' + s + "]}"))


def _check(c, r):
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert 400 <= r.status_code < 500
    assert "code" in r.json()
    assert c.ledger.store.size() == c.size  # nothing was stored


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=st.binary(max_size=3000), path=st.sampled_from(["/v1/entries", "/v1/entries/batch", "/v1/identities"]))
def test_arbitrary_bytes_to_every_write_endpoint(client, body, path):
    _check(client, client.post(path, content=body, headers={"content-type": "application/json"}))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(text=_texts(), path=st.sampled_from(["/v1/entries", "/v1/entries/batch", "/v1/identities"]),
       junk=st.binary(max_size=4))
def test_huge_numbers_deep_nesting_long_strings_invalid_utf8(client, text, path, junk):
    body = text.encode("utf-8", "surrogatepass")
    if junk:  # sometimes invalid UTF-8 in the middle
        body = body[: len(body) // 2] + b"\xff" + junk + body[len(body) // 2:]
    _check(client, client.post(path, content=body, headers={"content-type": "application/json"}))


_SEG = st.text(alphabet=string.printable + "\u0660\u0663\u00b2\ud7ff\u2028%", max_size=60)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(["/v1/entries/", "/entry/", "/model/", "/dataset/", "/identity/", "/tile/",
                               "/tile/0/", "/tile/entries/", "/v1/search?type=x&after=", "/search?q=",
                               "/v1/consistency?old=", "/v1/entries/1/inclusion?tree_size="]),
       seg=st.one_of(_SEG, st.integers(0, 10**30).map(str), st.just(HUGE)))
def test_arbitrary_read_paths_are_never_a_server_error(client, prefix, seg):
    from urllib.parse import quote

    r = client.get(prefix + quote(seg, safe="%/#&=+"))  # stray %, %FF (invalid UTF-8), non-ASCII digits
    assert r.status_code < 500, (prefix, seg[:40], r.status_code, r.text[:300])


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=500), _texts().map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_parse_json_gives_a_value_or_bad_input(data):
    try:
        parse_json(data)
    except BadInputError:
        pass
