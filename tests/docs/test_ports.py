"""The docs pages and the tests may run side by side (scripts/test.sh runs each phase on every core), so
the fixed ports are kept apart: no two docs pages' runnable blocks name the same port, and no test file
names a port that a docs page's blocks use. Tests that need a port of their own take a free one from the
OS (tests/devchain.py ``free_port``) or a fixed one outside the docs' ports."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from tests.docs.test_docs_run import PAGES, REPO, docrun

# a port as the blocks and the tests write it: 127.0.0.1:N, localhost:N, --port N, port=N, PORT = N ...
PORT = re.compile(r"(?:127\.0\.0\.1:|localhost:|\bport[ =\",]+|--port[ =]|base_port=|PORT = )(\d{4,5})\b",
                  re.IGNORECASE)
NOT_LISTENERS = {5432}  # PostgreSQL: the one shared server every page and test talks to, nothing starts it


def ports(text: str) -> set[int]:
    return {int(m.group(1)) for m in PORT.finditer(text)} - NOT_LISTENERS


def docs_ports() -> dict[int, set[str]]:
    used: dict[int, set[str]] = defaultdict(set)
    for page in PAGES:
        for block in docrun.blocks(page.read_text()):
            for p in ports(block.text):
                used[p].add(page.name)
    return used


def test_the_port_pattern_finds_what_the_pages_write():
    assert ports("anvil --port 18330 --silent &\ncurl http://127.0.0.1:18210/checkpoint") == {18330, 18210}
    assert ports("PORT = 19511\nrun_mpc(x, base_port=18320)\n psql port=5432") == {19511, 18320}
    assert docs_ports(), "no port found in any docs page: the pattern or the page list is wrong"


def test_no_two_docs_pages_share_a_port():
    shared = {p: sorted(pages) for p, pages in docs_ports().items() if len(pages) > 1}
    assert not shared, f"docs pages that would start servers on the same port side by side: {shared}"


def test_no_test_file_uses_a_docs_port():
    docs = docs_ports()
    clashes = []
    for f in sorted((REPO / "tests").rglob("*.py")):
        if "vectors" in f.parts or "node_modules" in f.parts or f.name == Path(__file__).name:
            continue
        for p in sorted(ports(f.read_text()) & docs.keys()):
            clashes.append(f"{f.relative_to(REPO)} and {sorted(docs[p])}: port {p}")
    assert not clashes, "tests that would collide with a docs page run side by side:\n" + "\n".join(clashes)
