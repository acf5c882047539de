"""core.refs.entry_ref: the one parser of "#N" entry references (issue 17 follow-up: `#²`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.encoding.refs import MAX_INDEX_DIGITS, entry_ref
from ailedger.errors import AiledgerError, BadInputError


def test_references():
    assert entry_ref("#12", "dataset") == 12
    assert entry_ref("#0", "dataset") == 0
    assert entry_ref("#" + "9" * 19, "x") == 10**19 - 1
    assert entry_ref("books", "dataset") is None          # a name
    assert entry_ref("12", "dataset") is None             # a bare number is a name here ...
    assert entry_ref("12", "index", bare=True) == 12      # ... and a reference where the caller says so
    assert entry_ref("²", "index", bare=True) is None     # not ASCII digits: not written as a reference
    assert entry_ref("", "index", bare=True) is None


@pytest.mark.parametrize("text", ["#²", "#", "#12a", "#-1", "#+1", "# 1", "#1 ", "#\u0663", "#\uff11", "#1\n",
                                  "#" + "9" * 20, "#" + "9" * 5000])
def test_malformed_references_name_the_field(text):
    with pytest.raises(BadInputError, match="dataset: .* is not an entry reference") as ei:
        entry_ref(text, "dataset")
    assert ei.value.field == "dataset" and len(ei.value.message) < 200


def test_too_many_bare_digits():
    with pytest.raises(BadInputError, match="not an entry reference"):
        entry_ref("9" * 5000, "index", bare=True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.booleans())
def test_any_text_gives_an_index_none_or_a_clear_error(text, bare):
    try:
        got = entry_ref(text, "f", bare=bare)
    except AiledgerError as exc:
        assert isinstance(exc, BadInputError) and exc.field == "f"
        return
    assert got is None or (type(got) is int and 0 <= got < 10**MAX_INDEX_DIGITS)
