"""The web explorer end to end in headless Chromium (Playwright), with screenshots in test-artifacts/."""

import sqlite3
from pathlib import Path

import httpx
import pytest

from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Server

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    pw_mod = pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("web")
    d = tmp / "ledger"
    led = Ledger.init(d, origin="test.example/web")
    alice, _ = led.new_identity("alice")
    (tmp / "data.jsonl").write_text("".join(f'{{"id": {i}, "text": "record {i}"}}\n' for i in range(50)))
    from ailedger.provenance.datasets import commit_dataset
    from ailedger.provenance.models import register_model

    corpus = commit_dataset(led, [str(tmp / "data.jsonl")], "corpus-a", alice, workers=1)["index"]
    for name, base in (("base-net", None), ("tuned-net", "base-net")):
        m = tmp / name
        m.mkdir()
        (m / "weights.bin").write_bytes(name.encode() * 1000)
        (m / "config.json").write_text('{"layers": 2}')
        register_model(led, m, name, alice, datasets=["corpus-a"], base=base, workers=1)
    for i in range(5):
        led.append_record("decision.log", {"i": i, "subjects": [f"sha256:{i:064x}"]}, alice)
    led.checkpoint()
    size = led.size
    led.close()
    s = Server(d)
    pw = pw_mod.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    ARTIFACTS.mkdir(exist_ok=True)
    yield {"url": s.url, "page": page, "dir": d, "did": alice.did, "size": size, "corpus": corpus}
    browser.close()
    pw.stop()
    s.stop()


def test_home_shows_health(site):
    p = site["page"]
    p.goto(site["url"] + "/")
    assert p.locator("#size").inner_text() == str(site["size"])
    assert "none configured" in p.locator("#witnesses").inner_text()
    assert "none configured" in p.locator("#anchors").inner_text()
    assert p.locator("table.entries tr").count() == site["size"] + 1
    p.screenshot(path=str(ARTIFACTS / "web-home.png"), full_page=True)


def test_entry_verdict_green_in_browser(site):
    p = site["page"]
    p.goto(site["url"] + "/entry/3")
    p.wait_for_selector("#verdict[data-state=ok]", timeout=10000)
    assert "VERIFIED" in p.locator("#verdict").inner_text()
    assert "c2sp.org/tlog-proof@v1" in p.locator("#proof").inner_text()
    p.screenshot(path=str(ARTIFACTS / "web-entry-verified.png"), full_page=True)


def test_model_lineage_dataset_identity_search(site):
    p = site["page"]
    p.goto(site["url"] + "/model/tuned-net")
    svg = p.locator("#lineage svg")
    assert svg.count() == 1
    text = svg.inner_html()
    assert "base-net" in text and "tuned-net" in text and "corpus-a" in text
    p.screenshot(path=str(ARTIFACTS / "web-model-lineage.png"), full_page=True)
    p.click("#lineage-links a:has-text('model base-net')")
    p.wait_for_load_state()
    assert p.locator("h1").inner_text() == "model base-net" and "Fine-tunes" in p.content()
    p.goto(site["url"] + "/dataset/corpus-a")
    assert "Models trained on it" in p.content() and p.locator("table.entries tr").count() == 3
    p.goto(site["url"] + "/identity/" + site["did"])
    assert "yes, as “alice”" in p.locator("#registered").inner_text()
    assert p.locator("table.entries tr").count() == site["size"] + 1
    p.goto(site["url"] + "/")
    p.fill("input[name=q]", f"sha256:{2:064x}")  # a subject named by one entry only: straight to it
    p.press("input[name=q]", "Enter")
    p.wait_for_load_state()
    assert p.locator("h1").inner_text().startswith("Entry ") and "decision.log" in p.content()
    p.goto(site["url"] + "/search?q=<script>alert(1)</script>")
    assert "nothing found" in p.content() and p.locator("script:text('alert(1)')").count() == 0
    p.goto(site["url"] + "/entry/99999")
    assert p.locator("#error").get_attribute("data-code") == "not_found"
    for path in ("/entry/99999999999999999999999", "/search?q=%C2%B2", "/model/%23%C2%B2", "/dataset/nope",
                 "/identity/did:key:zzz", "/model/%2e%2e%2f%2e%2e%2flog.key"):
        r = httpx.get(site["url"] + path)
        assert r.status_code in ((200,) if path.startswith("/search") else (400, 404)), (path, r.status_code)


def test_newcomer_reaches_a_model_in_two_clicks_and_finds_by_hash_and_name(site):
    """From /, the menu's Models then the model's row: its page, with status, versions, lineage and the
    verdict re-checked in the browser. Then the header's search box, by leaf hash and by name. Nothing the
    pages load comes from anywhere but this server."""
    p = site["page"]
    asked: list[str] = []

    def note(req):
        asked.append(req.url)

    p.on("request", note)
    try:
        p.goto(site["url"] + "/")
        p.click("nav.menu >> text=Models")                              # click 1
        p.wait_for_load_state()
        assert p.url == site["url"] + "/models"
        assert p.locator("nav.menu a[aria-current=page]").inner_text() == "Models"
        assert p.locator("h1").inner_text() == "Models (2)"
        p.screenshot(path=str(ARTIFACTS / "web-models.png"), full_page=True)
        p.click("#list-models a:text-is('tuned-net')")                  # click 2
        p.wait_for_load_state()
        assert p.locator("h1").inner_text() == "model tuned-net"
        assert p.locator("#status").inner_text().startswith("Status: active")
        assert p.locator("#versions tbody tr").count() == 1 and p.locator("#lineage svg").count() == 1
        p.wait_for_selector("#verdict[data-state=ok]", timeout=10000)
        assert "re-checked in your browser" in p.locator("#verdict").inner_text()
        p.screenshot(path=str(ARTIFACTS / "web-model-page.png"), full_page=True)

        led = Ledger.open(site["dir"], read_only=True)
        try:
            leaf = led.store.leaf_hashes(site["corpus"], site["corpus"] + 1)[0].hex()
        finally:
            led.close()
        p.fill("header input[name=q]", leaf)                            # by hash: the dataset's entry
        p.press("header input[name=q]", "Enter")
        p.wait_for_load_state()
        assert p.url == site["url"] + f"/entry/{site['corpus']}"
        assert p.locator("#leafhash").inner_text() == leaf
        p.fill("header input[name=q]", "base-net")                      # by name: the model's page
        p.press("header input[name=q]", "Enter")
        p.wait_for_load_state()
        assert p.url == site["url"] + "/model/base-net" and p.locator("h1").inner_text() == "model base-net"
        p.fill("header input[name=q]", "corpus")                        # no such name: said so, with help
        p.press("header input[name=q]", "Enter")
        p.wait_for_load_state()
        assert "nothing found" in p.locator("#nothing").inner_text()
    finally:
        p.remove_listener("request", note)
    assert asked and all(u.startswith(site["url"] + "/") for u in asked), [u for u in asked if site["url"] not in u]


def test_tampered_entry_shows_red(site):
    # change the stored bytes of entry 5 behind the log's back (the leaf hash stays the old one)
    con = sqlite3.connect(site["dir"] / "ledger.db")
    data = con.execute("SELECT data FROM leaves WHERE idx = 5").fetchone()[0]
    con.execute("UPDATE leaves SET data = ? WHERE idx = 5", (bytes(data).replace(b'"i":1', b'"i":9'),))
    con.commit()
    con.close()
    p = site["page"]
    p.goto(site["url"] + "/entry/5")
    p.wait_for_selector("#verdict[data-state=bad]", timeout=10000)
    assert "NOT VERIFIED" in p.locator("#verdict").inner_text()
    p.screenshot(path=str(ARTIFACTS / "web-entry-tampered.png"), full_page=True)
    assert httpx.get(site["url"] + "/healthz").status_code == 200


def _tampered_page(site, index, mutate):
    """Load entry ``index`` with the page's embedded proof data changed by ``mutate`` on the way in (as a
    lying server or a man in the middle would): the browser's own checks must turn the verdict red."""
    import json as _json

    p = site["page"]

    def handle(route):
        resp = route.fetch()
        html = resp.text()
        a = html.index('<script type="application/json" id="proof-data">') + len('<script type="application/json" id="proof-data">')
        b = html.index("</script>", a)
        d = _json.loads(html[a:b])
        mutate(d)
        route.fulfill(response=resp, body=html[:a] + _json.dumps(d) + html[b:])

    p.route(f"**/entry/{index}", handle)
    try:
        p.goto(site["url"] + f"/entry/{index}")
        p.wait_for_selector("#verdict:not([data-state=pending])", timeout=10000)
        return p.locator("#verdict").get_attribute("data-state"), p.locator("#verdict").inner_text()
    finally:
        p.unroute(f"**/entry/{index}")


def test_browser_checks_the_signatures_itself(site):
    import base64 as _b64

    p = site["page"]
    p.goto(site["url"] + "/entry/3")
    p.wait_for_selector("#verdict[data-state=ok]", timeout=10000)
    assert "signatures and inclusion re-checked in your browser" in p.locator("#verdict").inner_text()
    assert p.locator("#logvkey").inner_text().startswith("test.example/web+")

    def bad_checkpoint_sig(d):
        s = bytearray(_b64.b64decode(d["checkpoint_sig"]))
        s[10] ^= 1
        d["checkpoint_sig"] = _b64.b64encode(bytes(s)).decode()

    state, text = _tampered_page(site, 3, bad_checkpoint_sig)
    assert state == "bad" and "checkpoint does not verify" in text

    def bad_entry_sig(d):
        leaf = _b64.b64decode(d["leaf"])
        i = leaf.rindex(b',"sig":"') + 8
        c = leaf[i + 5:i + 6]
        leaf = leaf[:i + 5] + (b"B" if c != b"B" else b"C") + leaf[i + 6:]
        d["leaf"] = _b64.b64encode(leaf).decode()

    state, text = _tampered_page(site, 3, bad_entry_sig)
    assert state == "bad" and "signer's Ed25519 signature does not verify" in text

    def other_root(d):
        d["root"] = _b64.b64encode(b"\x00" * 32).decode()

    state, text = _tampered_page(site, 3, other_root)
    assert state == "bad" and "not the signed checkpoint's" in text
