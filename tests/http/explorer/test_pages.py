"""The explorer as a newcomer meets it (in-process, Starlette's TestClient on the real app and a real ledger):
a menu on every page to a list page per kind of record (paged, newest first, counted) whose rows lead to
the records' pages; one search box that says what each hit is; a model's page with the one model status,
its versions, lineage and verdict; and 400/404 pages, never a 500, for bad input."""

from __future__ import annotations

import re
import string
import time
from html import unescape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from ailedger.authority.service import model_status
from ailedger.governance import service as gov
from ailedger.http.app import create_app
from ailedger.tlog.ledger import Ledger, operator_identity
from ailedger.tlog.merkle import leaf_hash

KINDS = ["models", "datasets", "identities", "content", "proposals", "inference", "subnets", "contracts", "checkpoints",
         "witnesses", "anchors", "compute", "entries"]
DECISIONS = 57  # more than one page of 50


def _model_dir(tmp: Path, name: str, payload: bytes) -> Path:
    m = tmp / name
    m.mkdir(exist_ok=True)
    (m / "weights.bin").write_bytes(payload * 500)
    (m / "config.json").write_text('{"layers": 2}')
    return m


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from ailedger.content.service import ContentService
    from ailedger.inference.sdk import InferenceTrail
    from ailedger.provenance.datasets import commit_dataset
    from ailedger.provenance.models import register_model

    tmp = tmp_path_factory.mktemp("pages")
    led = Ledger.init(tmp / "ledger", origin="test.example/pages")
    alice, _ = led.new_identity("alice")
    bob, _ = led.new_identity("bob")
    (tmp / "data.jsonl").write_text("".join(f'{{"id": {i}}}\n' for i in range(20)))
    ds = commit_dataset(led, [str(tmp / "data.jsonl")], "corpus-a", alice, workers=1)
    register_model(led, _model_dir(tmp, "base-net", b"base"), "base-net", alice, datasets=["corpus-a"], workers=1)
    v1 = register_model(led, _model_dir(tmp, "tuned-net", b"v1"), "tuned-net", alice, base="base-net", workers=1)
    v2 = register_model(led, _model_dir(tmp, "tuned-net", b"v2"), "tuned-net", alice, base="base-net", workers=1)
    old = register_model(led, _model_dir(tmp, "old-net", b"old"), "old-net", alice, workers=1)
    led.append_record("model.revoke", {"name": "old-net", "reason": "weights leaked"}, alice)
    # one name, two kinds of record: a dataset and a model both called "twin"
    (tmp / "twin.jsonl").write_text('{"id": 1}\n')
    commit_dataset(led, [str(tmp / "twin.jsonl")], "twin", bob, workers=1)
    register_model(led, _model_dir(tmp, "twin", b"twin"), "twin", bob, workers=1)
    (tmp / "data.jsonl").write_text("".join(f'{{"id": {i}}}\n' for i in range(30)))  # corpus-a, version 2
    ds2 = commit_dataset(led, [str(tmp / "data.jsonl")], "corpus-a", alice, workers=1, supersedes="corpus-a")
    poem = ContentService(led).register(None, alice, data=b"a short poem about ledgers\n", name="poem.txt")
    gov.init_dao(led, operator_identity(led), "dao", allocations={alice.did: 600, bob.did: 400})
    pid = gov.propose(led, alice, [{"kind": "model.revoke", "model": "base-net", "reason": "unsafe"}],
                      "revoke base-net")["id"]
    gov.vote(led, bob, pid, "against")
    # an entry appended as HTTP ingest and `ailedger append` do: no service adds terms; entry_terms indexes it
    raw = led.append_record("content.register", {"name": "raw-notes.txt", "sha256": "ab" * 32, "kind": "text"},
                            bob).index
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    blob = led.append_record("blob.put", {"cid": cid, "size": 3}, alice).index
    with InferenceTrail(led, "tuned-net") as trail:
        for i in range(3):
            receipt = trail.record({"q": i}, {"a": i})
        rid = receipt.id
    for i in range(DECISIONS):
        led.append_record("decision.log", {"i": i}, bob)
    led.checkpoint()
    app = create_app(led)
    with TestClient(app) as c:
        yield {"c": c, "led": led, "alice": alice, "bob": bob, "ds": ds, "ds2": ds2, "v1": v1, "v2": v2, "old": old,
               "poem": poem, "pid": pid, "cid": cid, "blob": blob, "rid": rid, "raw": raw}
    led.close()


def get(site, path, status=200):
    r = site["c"].get(path, follow_redirects=False)
    assert r.status_code == status, (path, r.status_code, r.text[:300])
    assert "Traceback" not in r.text
    return r


def links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html)]


def count_of(html: str) -> int:
    return int(re.search(r"<h1>[^<]*<span class=\"muted\">\((\d+)\)</span></h1>", html).group(1))


def table_rows(html: str, table_id: str) -> list[str]:
    body = re.search(rf'<table class="list" id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.DOTALL).group(1)
    return re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)


def test_every_page_has_the_menu_to_every_kind(site):
    pages = ["/", "/models", "/entries", "/entry/0", "/model/tuned-net", "/dataset/corpus-a",
             f"/identity/{site['alice'].did}", f"/proposals/{site['pid']}", "/checkpoints/" + str(site["led"].size),
             "/search?q=nothing-is-called-this", "/entry/999999"]
    for path in pages:
        r = site["c"].get(path)
        nav = re.search(r'<nav class="menu" aria-label="records">(.*?)</nav>', r.text, re.DOTALL)
        assert nav, path
        assert [h for h in links(nav.group(1))] == ["/"] + [f"/{k}" for k in KINDS], path
        assert '<form action="/search" method="get" role="search">' in r.text, path
    r = get(site, "/models")
    assert re.search(r'<a href="/models" data-kind="models" aria-current="page">', r.text)


def test_home_counts_every_kind_and_links_its_list(site):
    led = site["led"]
    html = get(site, "/").text
    table = re.search(r'<table id="kinds">(.*?)</table>', html, re.DOTALL).group(1)
    got = dict(re.findall(r'<a href="/([a-z]+)">[^<]+</a></td><td>(\d+)</td>', table))
    assert got == {"models": "4", "datasets": "3", "identities": str(led.store.count("type:identity.register")),
                   "content": "2", "proposals": "1", "inference": "1", "subnets": "0", "contracts": "0",
                   "checkpoints": str(led.store.checkpoint_count()),
                   "witnesses": "0", "anchors": "0", "compute": "0", "entries": str(led.size)}


@pytest.mark.parametrize("kind", KINDS)
def test_list_page_counts_and_every_row_leads_to_a_record_page(site, kind):
    html = get(site, f"/{kind}").text
    n = count_of(html)
    rows = table_rows(html, f"list-{kind}")
    if n == 0:
        assert len(rows) == 1 and "nothing here yet" in rows[0]
        return
    assert len(rows) == min(n, 50)
    for row in rows[:8]:
        first = links(row)[0]
        assert not first.startswith("/identity/") or kind == "identities"
        r = get(site, first)
        assert "<h1>" in r.text


def test_lists_hold_what_the_log_holds(site):
    led = site["led"]
    html = get(site, "/models").text
    assert count_of(html) == 4
    names = re.findall(r'<a href="/model/([^"]+)">', html)
    assert names == ["twin", "old-net", "tuned-net", "base-net"]  # newest registration first
    for row in table_rows(html, "list-models"):
        name = re.search(r'<a href="/model/([^"]+)">', row).group(1)
        assert f"<td>{model_status(led, name).state}</td>" in row  # services.authority.model_status
        assert f"<td>{len(model_status(led, name).versions)}</td>" in row
    html = get(site, "/datasets").text
    assert re.findall(r'<a href="/dataset/%23(\d+)">([^<]+)</a>', html) == [
        (str(site["ds2"]["index"]), "corpus-a"), (str(site["ds2"]["index"] - 2), "twin"),
        (str(site["ds"]["index"]), "corpus-a")]
    html = get(site, "/proposals").text
    row = table_rows(html, "list-proposals")[0]
    assert f'href="/proposals/{site["pid"]}"' in row and "<td>active</td>" in row and "against 400" in row
    html = get(site, "/inference").text
    assert '<a href="/model/tuned-net">tuned-net</a>' in html and "<td>3</td>" in html
    html = get(site, "/identities").text
    assert ">alice</a>" in html and ">bob</a>" in html
    html = get(site, "/content").text
    assert f'<a href="/entry/{site["poem"]["entry"]}">poem.txt</a>' in html
    html = get(site, "/checkpoints").text
    assert f'<a href="/checkpoints/{led.size}">{led.size}</a>' in table_rows(html, "list-checkpoints")[0]


def test_paging_is_newest_first_and_bounded(site):
    led = site["led"]
    size = led.size
    p1 = get(site, "/entries").text
    idx1 = [int(i) for i in re.findall(r'<tr><td><a href="/entry/(\d+)">', p1)]
    assert idx1 == list(range(size - 1, size - 51, -1))
    assert f"1–50 of {size}, newest first" in p1 and 'rel="next" href="/entries?page=2"' in p1
    pages = -(-size // 50)
    last = get(site, f"/entries?page={pages}").text
    idx_last = [int(i) for i in re.findall(r'<tr><td><a href="/entry/(\d+)">', last)]
    assert idx_last[-1] == 0 and len(idx_last) == size - 50 * (pages - 1) and 'rel="next"' not in last
    t1 = get(site, "/entries?type=decision.log").text
    assert count_of(t1) == DECISIONS and 'href="/entries?type=decision.log&amp;page=2"' in t1
    t2 = get(site, "/entries?type=decision.log&page=2").text
    assert len(re.findall(r'<tr><td><a href="/entry/', t2)) == DECISIONS - 50
    assert "page 2 of 2" in t2
    assert count_of(get(site, "/entries?type=&page=1").text) == size  # an empty filter is no filter
    get(site, f"/entries?page={pages + 1}", 404)
    get(site, "/entries?type=decision.log&page=3", 404)
    get(site, "/models?page=2", 404)


@pytest.mark.parametrize("path,status", [
    ("/entries?page=0", 400), ("/entries?page=-1", 400), ("/entries?page=abc", 400), ("/entries?page=1e3", 400),
    ("/entries?page=" + "9" * 40, 400), ("/entries?page=%C2%B2", 400), ("/models?page=999999999", 404),
    ("/entries?type=%3Cscript%3E", 400), ("/entries?type=" + "a" * 200, 400),
    ("/search?q=" + "x" * 600, 400), ("/identity/did:key:zzz", 400), ("/identity/" + "%00" * 3, 400),
    ("/proposals/3", 404), ("/proposals/99999999999999999999999", 404), ("/checkpoints/12345678", 404),
    ("/checkpoints/-1", 404), ("/model/nope", 404), ("/dataset/nope", 404), ("/entry/99999", 404),
    ("/model/%23%C2%B2", 404), ("/dataset/%23%C2%B2", 404), ("/dataset/%23" + "9" * 30, 404),
    ("/identity/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK?page=9", 404),
])
def test_bad_input_is_a_4xx_page_never_a_500(site, path, status):
    r = get(site, path, status)
    assert r.headers["content-type"].startswith(("text/html", "application/json"))
    if r.headers["content-type"].startswith("text/html"):
        assert 'id="error"' in r.text and '<nav class="menu"' in r.text


def test_model_page_shows_status_versions_lineage_and_verdict(site):
    led = site["led"]
    html = get(site, "/model/tuned-net").text
    st = model_status(led, "tuned-net")
    assert f"Status: <strong>{st.state}</strong>" in html
    vers = table_rows(html, "versions")
    assert [int(re.search(r"/model/%23(\d+)", r).group(1)) for r in vers] == [site["v2"]["index"], site["v1"]["index"]]
    assert "latest, shown here" in vers[0] and site["v2"]["manifest_root"] in vers[0]
    assert site["v1"]["manifest_root"] in vers[1]
    assert '<div id="lineage">' in html and "base-net" in html
    assert 'id="verdict"' in html and '<script type="application/json" id="proof-data">' in html
    data = re.search(r'id="proof-data">(.*?)</script>', html).group(1)
    assert f'"index": {site["v2"]["index"]}' in data and '"server_ok": true' in data
    old = get(site, f"/model/%23{site['v1']['index']}").text
    assert "The latest version is" in old and "shown here" in table_rows(old, "versions")[1]
    revoked = get(site, "/model/old-net").text
    assert 'id="status" class="bad">Status: <strong>revoked</strong> by owner' in revoked
    assert "weights leaked" in revoked


def test_search_goes_straight_to_an_exact_hit(site):
    led, v2 = site["led"], site["v2"]
    e = led.entry(v2["index"])
    cases = {
        "tuned-net": "/model/tuned-net",                                    # a model name
        f"#{v2['index']}": f"/entry/{v2['index']}",                         # an entry id
        f" {leaf_hash(e.leaf_bytes).hex()} ": f"/entry/{v2['index']}",      # a leaf hash
        v2["manifest_root"]: "/model/tuned-net",                            # a manifest root
        "sha256:" + v2["manifest_root"].upper(): "/model/tuned-net",
        site["v1"]["manifest_root"]: f"/model/%23{site['v1']['index']}",   # an older version's root
        site["ds"]["root"]: f"/dataset/%23{site['ds']['index']}",          # an earlier dataset version's root
        site["ds2"]["root"]: f"/dataset/%23{site['ds2']['index']}",        # a dataset root
        "corpus-a": "/dataset/corpus-a",                                   # a dataset name
        site["poem"]["record"]["sha256"]: f"/entry/{site['poem']['entry']}",  # a content hash
        "poem.txt": f"/entry/{site['poem']['entry']}",                     # a content name
        site["alice"].did: f"/identity/{site['alice'].did}",               # a did:key
        "alice": f"/identity/{site['alice'].did}",                         # an identity name
        site["cid"]: f"/entry/{site['blob']}",                             # a CID
        "decision.log": "/entries?type=decision.log",                      # an entry type
        "raw-notes.txt": f"/entry/{site['raw']}",                          # written with no service terms
        "AB" * 32: f"/entry/{site['raw']}",
    }
    for q, where in cases.items():
        r = site["c"].get("/search", params={"q": q}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == where, (q, r.status_code, r.text[-400:])
    batch = led.store.find_newest("type:inference.batch", 0, 1)[0]
    r = site["c"].get("/search", params={"q": site["rid"]}, follow_redirects=False)
    assert r.headers["location"] == f"/entry/{batch}"


def test_search_results_say_what_each_hit_is(site):
    html = get(site, "/search?q=twin").text
    kinds = re.findall(r'<tr data-kind="([^"]+)">', html)
    assert sorted(kinds) == ["dataset", "model"] and "2 hits for" in html
    assert '<a href="/model/twin">twin</a>' in html
    r = get(site, "/search?q=no-such-thing-anywhere")
    assert 'id="nothing"' in r.text
    r = get(site, "/search?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)" in r.text
    r = get(site, "/search?q=")
    assert "did:key" in r.text and 'id="hits"' not in r.text


def test_dataset_page_shows_its_versions(site):
    ds, ds2 = site["ds"]["index"], site["ds2"]["index"]
    html = get(site, "/dataset/corpus-a").text  # the name: its current version (the service's version rule)
    vers = table_rows(html, "versions")
    assert [int(re.search(r"/dataset/%23(\d+)", r).group(1)) for r in vers] == [ds2, ds]
    assert "latest, shown here" in vers[0] and "<td>30</td>" in vers[0] and "<td>20</td>" in vers[1]
    old = get(site, f"/dataset/%23{ds}").text
    assert f'the current version of corpus-a is <a href="/dataset/%23{ds2}">' in old


def test_proposal_and_checkpoint_pages(site):
    led = site["led"]
    html = get(site, f"/proposals/{site['pid']}").text
    info = gov.proposal_info(led, site["pid"])
    assert f"State: <strong>{info['state']}</strong>" in html and "revoke base-net" in html
    votes = table_rows(html, "votes")
    assert len(votes) == 1 and site["bob"].did[:24] in votes[0] and "<td>against</td>" in votes[0]
    html = get(site, f"/checkpoints/{led.size}").text
    root = re.search(r'<code id="root">([0-9a-f]{64})</code>', html).group(1)
    from ailedger.tlog.checkpoint import parse_checkpoint_text
    from ailedger.tlog.note import parse_note

    assert root == parse_checkpoint_text(parse_note(led.store.checkpoint_at(led.size)).text).root.hex()
    r = site["c"].get("/search", params={"q": root}, follow_redirects=False)
    assert r.headers["location"] == f"/checkpoints/{led.size}"


def test_identity_page_pages_what_it_signed(site):
    html = get(site, f"/identity/{site['bob'].did}").text
    n = site["led"].store.count(f"signer:{site['bob'].did}")
    assert f'<td id="signed">{n}</td>' in html and n > 50 and 'rel="next"' in html
    first = int(re.search(r'<tr><td><a href="/entry/(\d+)">', html).group(1))
    assert first == site["led"].store.find_newest(f"signer:{site['bob'].did}", 0, 1)[0]


def test_no_asset_leaves_the_server(site):
    for path in ("/", "/models", "/model/tuned-net", "/entry/3", "/search?q=twin"):
        html = get(site, path).text
        for attr in re.findall(r'(?:src|href|action)="([^"]+)"', html):
            assert attr.startswith(("/", "#")), (path, attr)  # nothing fetched from another origin
        assert "@import" not in html and not re.search(r"url\((?!#)", html)


def test_pages_stay_fast(site):
    t0 = time.perf_counter()
    for path in ("/", "/models", "/entries", "/entries?type=decision.log&page=2", "/inference", "/search?q=twin"):
        get(site, path)
    assert time.perf_counter() - t0 < 5.0


_JUNK = st.text(alphabet=string.printable + "\u0660\u0663\u00b2\ud7ff\u2028%#", max_size=80)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(["/search?q=", "/search?q=did:key:", "/search?q=sha256:", "/search?q=%23",
                               "/entries?page=", "/entries?type=", "/models?page=", "/identity/",
                               "/identity/did:key:z6Mk", "/proposals/", "/checkpoints/", "/model/", "/dataset/",
                               "/datasets?page=", "/search?q=0123456789ab-"]),
       seg=st.one_of(_JUNK, st.integers(0, 10**30).map(str), st.just("9" * 5000)))
def test_arbitrary_explorer_input_is_never_a_server_error(site, prefix, seg):
    from urllib.parse import quote

    r = site["c"].get(prefix + quote(seg, safe="%/#&=+"), follow_redirects=False)
    assert r.status_code in (200, 303, 307, 400, 404), (prefix, seg[:40], r.status_code, r.text[-300:])


def test_pages_are_plain_accessible_html(site):
    for path in ["/", "/entries", "/models", "/model/tuned-net", "/dataset/corpus-a", "/entry/3",
                 f"/identity/{site['bob'].did}", f"/proposals/{site['pid']}", "/search?q=twin", "/checkpoints"]:
        html = get(site, path).text
        ids = re.findall(r'\sid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), (path, sorted(i for i in ids if ids.count(i) > 1))
        assert '<html lang="en">' in html and '<main id="main">' in html and html.count("<h1>") == 1
        assert '<label for="q"' in html and 'href="#main"' in html
        for table in re.findall(r"<table[^>]*>(.*?)</table>", html, re.DOTALL):
            assert "<th" in table, path
