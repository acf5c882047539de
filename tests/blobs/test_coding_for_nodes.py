"""The k-of-n a put uses for the nodes it is given (docs/storage.md): one shard per node by default."""

import pytest

from ailedger.blobs.erasure import coding_for_nodes, default_k
from ailedger.errors import BadInputError


@pytest.mark.parametrize(("nodes", "k", "n"), [(1, 1, 1), (2, 1, 2), (3, 2, 3), (4, 3, 4), (6, 4, 6), (30, 20, 30),
                                                (300, 171, 256)])
def test_defaults(nodes: int, k: int, n: int) -> None:
    assert coding_for_nodes(nodes) == (k, n)


def test_a_third_of_the_nodes_may_go() -> None:
    for n in range(2, 257):
        k = default_k(n)
        assert 1 <= k < n and n - k >= max(1, n // 3)


def test_given_values_are_kept_or_refused_with_what_works() -> None:
    assert coding_for_nodes(5, k=3) == (3, 5)
    assert coding_for_nodes(5, k=2, n=4) == (2, 4)
    assert coding_for_nodes(5, n=4) == (3, 4)
    with pytest.raises(BadInputError) as e:
        coding_for_nodes(3, k=10, n=30)
    assert e.value.details == {"field": "n", "suggest_k": 2, "suggest_n": 3}
    assert e.value.message == "3 storage nodes given, n = 30 shards need 30 distinct nodes"
    with pytest.raises(BadInputError) as e:
        coding_for_nodes(3, k=5)
    assert e.value.details["field"] == "k" and (e.value.details["suggest_k"], e.value.details["suggest_n"]) == (2, 3)
    for bad in ({"k": 0}, {"n": 0}, {"n": 257}):
        with pytest.raises(BadInputError):
            coding_for_nodes(300, **bad)
    with pytest.raises(BadInputError):
        coding_for_nodes(0)
