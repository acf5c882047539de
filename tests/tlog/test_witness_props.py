"""Property: whatever order a forked log shows its two histories to a witness, the witness never
cosigns two checkpoints that are inconsistent with each other, and it keeps evidence of the fork."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.tlog.checkpoint import Checkpoint, sign_checkpoint
from ailedger.tlog.merkle import consistency_plan, leaf_hash, rehash_plan, root_from_leaf_hashes
from ailedger.tlog.note import Signer
from ailedger.tlog.witness import Witness, WitnessError, format_add_checkpoint_body

ORIGIN = "prop.example/log"
LOG = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"log").digest()))


def _tree(leaves: list[bytes]):
    def node(nid):
        level, index = nid
        return root_from_leaf_hashes(leaves[index << level:(index + 1) << level])
    return node


def _cp(leaves: list[bytes], size: int) -> bytes:
    return sign_checkpoint(Checkpoint(ORIGIN, size, root_from_leaf_hashes(leaves[:size])), LOG)


def _proof(leaves: list[bytes], old: int, new: int) -> list[bytes]:
    if old == 0 or old == new:
        return []
    return rehash_plan(consistency_plan(old, new), _tree(leaves[:new]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.integers(1, 12), extra=st.integers(1, 12),
       steps=st.lists(st.tuples(st.booleans(), st.integers(1, 24)), min_size=2, max_size=12))
def test_witness_never_cosigns_both_sides_of_a_fork(tmp_path_factory, prefix, extra, steps):
    n = prefix + extra
    a = [leaf_hash(b"common-%d" % i) for i in range(prefix)] + [leaf_hash(b"a-%d" % i) for i in range(extra)]
    b = a[:prefix] + [leaf_hash(b"b-%d" % i) for i in range(extra)]
    w = Witness.init(tmp_path_factory.mktemp("w"), name="prop.example/witness")
    w.add_log(LOG.vkey)
    cosigned: list[tuple[str, int]] = []
    refused_conflicts = 0
    try:
        for use_b, size in steps:
            hist = b if use_b else a
            size = min(size, n)
            head = w.head(ORIGIN)
            old = head[0] if head else 0
            if old > size:
                continue
            body = format_add_checkpoint_body(old, _proof(hist, old, size), _cp(hist, size))
            try:
                w.add_checkpoint(body, now=1)
                cosigned.append(("b" if use_b else "a", size))
            except WitnessError as exc:
                assert exc.status in (409, 422)
                refused_conflicts += 1
        forked = {h for h, s in cosigned if s > prefix}
        assert len(forked) <= 1, cosigned  # never both histories beyond the common prefix
        # every refusal here was a real conflict (the client always sent the witness's own size),
        # and each one left evidence behind
        assert len(w.evidence(ORIGIN)) == refused_conflicts
    finally:
        w.close()
