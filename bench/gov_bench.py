"""Governance figures: re-tally of signed votes from the log (signatures checked) and state replay.

Builds a ledger with a DAO, VOTERS token holders, PROPOSALS proposals and VOTERS x PROPOSALS signed votes
(10^6 by default), then measures, in the same run:

* reference: raw Ed25519 verify rate of the verifier the ledger uses (``ailedger.encoding.ed25519``, libsodium)
  on one core and on every core (process pool), and of cryptography/OpenSSL for comparison;
* ``gov.recount``: a fresh replay of every governance entry with every signature checked (process pool);
* ``gov.replay``: the same fold without signature checks (state replay of all governance entries);
* the fold alone on in-memory leaves (no SQLite) for reference.

Usage: .venv/bin/python bench/gov_bench.py [--voters 100000 --proposals 10] [--workdir DIR]
Prints human lines, then one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from limits import fork_pool  # a pool that ends by close() and join() (bench/limits.py)

from ailedger.authority import service as authority
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.governance import service as gov
from ailedger.governance.state import GovState, iso, time_ms
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.merkle import leaf_hash

T0 = time_ms("2030-01-01T00:00:00.000Z")


class Key:
    def __init__(self, seed: bytes) -> None:
        self.k = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
        self.did = did_from_public_key(self.k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, b: bytes) -> bytes:
        return self.k.sign(b)


def _make_keys(rng: tuple[int, int]) -> list[str]:
    return [Key(b"voter%d" % i).did for i in range(*rng)]


def _make_votes(job: tuple[int, int, list[tuple[int, str]]]) -> list[bytes]:
    lo, hi, props = job
    out = []
    for i in range(lo, hi):
        k = Key(b"voter%d" % i)
        for n, (pid, ph) in enumerate(props):
            body = {"proposal": pid, "proposal_hash": ph, "support": ("for", "against", "abstain")[(i + n) % 3]}
            out.append(build_entry("gov.vote", body, k.did, iso(T0 + 10_000 + i), k.sign).leaf_bytes)
    return out


def _raw_verify(items: list[tuple[bytes, bytes, bytes]]) -> int:
    from ailedger.encoding.ed25519 import verify

    n = 0
    for pk, sig, msg in items:
        if not verify(pk, msg, sig):
            raise AssertionError("reference signature did not verify")
        n += 1
    return n


def _raw_verify_openssl(items: list[tuple[bytes, bytes, bytes]]) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    n = 0
    for pk, sig, msg in items:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        n += 1
    return n


def _pool_rate(cores: int, big: list[tuple[bytes, bytes, bytes]]) -> float:
    parts = [big[i:i + 5000] for i in range(0, len(big), 5000)]
    with fork_pool(cores, "forkserver") as pool:
        pool.map(_raw_verify, parts[:cores])  # warm up the workers
        t = time.perf_counter()
        pool.map(_raw_verify, parts)
        return len(big) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--voters", type=int, default=100_000)
    ap.add_argument("--proposals", type=int, default=10)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--reuse", action="store_true", help="Reuse the ledger in --workdir if it has the same shape.")
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    work = Path(a.workdir or tempfile.mkdtemp(prefix="govbench-"))
    shape = {"voters": a.voters, "proposals": a.proposals}
    reuse = a.reuse and (work / "shape.json").exists() and json.loads((work / "shape.json").read_text()) == shape
    if (work / "ledger").exists() and not reuse:
        shutil.rmtree(work / "ledger")
    n_votes = a.voters * a.proposals
    load0 = os.getloadavg()[0]
    print(f"machine: {cores} cores, load average {load0:.1f}; {a.voters} voters x {a.proposals} proposals = "
          f"{n_votes} signed votes", flush=True)

    if reuse:
        led = Ledger.open(work / "ledger")
        size = led.size
        props = [(p.id, p.leaf_hash) for p in gov.replay(led).proposals.values()]
        votes = [bytes(d) for _i, _h, d in led.store.iter_leaves(size - min(size, 4000), size)]
        gen_s = load_s = 0.0
        print(f"setup: reusing {work / 'ledger'} (log size {size})", flush=True)
    else:
        t = time.perf_counter()
        step = max(1, a.voters // (4 * a.workers))
        ranges = [(i, min(a.voters, i + step)) for i in range(0, a.voters, step)]
        with fork_pool(a.workers, "forkserver") as pool:
            dids = [d for part in pool.map(_make_keys, ranges) for d in part]
        led = Ledger.init(work / "ledger", origin="bench.example/gov")
        led.clock = lambda: T0 / 1000  # the bench's own clock: every entry is dated within the writer's skew of it
        admin = led.identities.create("admin")
        gov.name_founders(led, [admin.did])  # the operator names who may found the DAO (log.genesis)
        gov.init_dao(led, admin, "bench", params={"voting_delay": 0, "voting_period": 30 * 86400, "quorum_bps": 100},
                     time=iso(T0))
        chunk = 700
        for i in range(0, len(dids), chunk):
            gov.mint(led, admin, {d: 1 + (j * 7919) % 1000 for j, d in enumerate(dids[i:i + chunk], i)}, time=iso(T0 + 1))
        props = []
        # the proposer needs voting power: the admin mints itself a token, then proposes
        gov.mint(led, admin, {admin.did: 1}, time=iso(T0 + 2))
        for n in range(a.proposals):
            p = gov.propose(led, admin, [{"kind": "model.revoke", "model": f"m{n}"}], f"revoke m{n}",
                            time=iso(T0 + 100 + n))
            props.append((p["id"], p["proposal_hash"]))
        with fork_pool(a.workers, "forkserver") as pool:
            jobs = [(lo, hi, props) for lo, hi in ranges]
            votes = [v for part in pool.map(_make_votes, jobs) for v in part]
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        batch = 20000
        for i in range(0, len(votes), batch):
            part = votes[i:i + batch]
            terms = [("type:gov.vote", "signer:" + json.loads(v)["signer"]) for v in part]
            led.log.append_data(part, terms)
        led.checkpoint()
        load_s = time.perf_counter() - t
        size = led.size
        print(f"setup: keys+votes signed in {gen_s:.1f} s, logged {len(votes)} votes in {load_s:.1f} s (log size {size})",
              flush=True)
        (work / "shape.json").write_text(json.dumps(shape))
    gov._cache.clear()

    # reference: raw Ed25519 verify, one core and every core
    kk = Ed25519PrivateKey.generate()
    pkb = kk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    msgs = [v[:300] for v in votes[:4000]]
    sample = [(pkb, kk.sign(m), m) for m in msgs]
    t = time.perf_counter()
    _raw_verify(sample * 2)
    one_core = 2 * len(sample) / (time.perf_counter() - t)
    t = time.perf_counter()
    _raw_verify_openssl(sample * 2)
    one_core_openssl = 2 * len(sample) / (time.perf_counter() - t)
    print(f"reference: OpenSSL (cryptography) Ed25519 verify {one_core_openssl:,.0f}/s on one core "
          f"({1e6 / one_core_openssl:.0f} us each); the ledger's verifier (libsodium) {one_core / one_core_openssl:.2f}x that",
          flush=True)
    big = sample * 25  # 100 000 verifications
    all_cores = _pool_rate(cores, big)
    print(f"reference: raw Ed25519 verify {one_core:,.0f}/s on one core ({1e6 / one_core:.0f} us each), "
          f"{all_cores:,.0f}/s on {cores} cores -> 10^6 signatures need {1e6 / all_cores:.1f} s", flush=True)

    # the figure: recount from the log, signatures checked
    t = time.perf_counter()
    rc = gov.recount(led, props[0][0], verify_signatures=True, workers=a.workers)
    recount_s = time.perf_counter() - t
    print(f"recount (fresh replay, {rc['entries_replayed']} governance entries, every signature checked on "
          f"{a.workers} workers): {recount_s:.1f} s = {n_votes / recount_s:,.0f} votes/s; refused "
          f"{rc['refused_entries']}; proposal {props[0][0]} tally {rc['tally']}", flush=True)

    t = time.perf_counter()
    st = gov.replay(led)
    replay_s = time.perf_counter() - t
    print(f"state replay without signature checks: {st.applied} governance entries in {replay_s:.1f} s = "
          f"{st.applied / replay_s:,.0f} entries/s; digest {st.digest()[:16]}...", flush=True)
    assert not st.rejected, st.rejected[:3]
    counted = sum(len(p.voters) for p in st.proposals.values())
    assert counted == n_votes, (counted, n_votes)

    # the fold alone, leaves already in memory
    leaves = [(i, bytes(d)) for i, _h, d in led.store.iter_leaves(0, size) if gov.is_gov_leaf(bytes(d))]
    t = time.perf_counter()
    st2 = gov.fold(GovState(authority.operator_of(led)), leaves)
    fold_s = time.perf_counter() - t
    assert st2.digest() == st.digest()
    print(f"fold alone (leaves in memory): {len(leaves)} entries in {fold_s:.1f} s = {len(leaves) / fold_s:,.0f}/s",
          flush=True)
    led.close()
    after = _pool_rate(cores, big)
    print(f"reference again after the measurements: raw Ed25519 verify {after:,.0f}/s on {cores} cores", flush=True)
    ref = (all_cores + after) / 2
    out = {
        "bench": "gov", "cores": cores, "load_avg_start": round(load0, 1), "load_avg_end": round(os.getloadavg()[0], 1), "workers": a.workers, "votes": n_votes, "voters": a.voters,
        "proposals": a.proposals, "governance_entries": st.applied,
        "recount_signed_votes_s": round(recount_s, 2), "recount_votes_per_s": round(n_votes / recount_s),
        "replay_s": round(replay_s, 2), "replay_entries_per_s": round(st.applied / replay_s),
        "fold_only_s": round(fold_s, 2),
        "ref_ed25519_verify_per_s_one_core": round(one_core), "ref_ed25519_verify_per_s_all_cores": round(all_cores),
        "ref_ed25519_verify_per_s_all_cores_after": round(after),
        "ref_openssl_ed25519_verify_per_s_one_core": round(one_core_openssl),
        "ref_1e6_verify_s_all_cores": round(1e6 / ref, 2),
        "recount_vs_raw_verify_ratio": round((n_votes / recount_s) / ref, 3),
        "targets_s": {"recount_1e6": 60, "replay_1e6": 60},
        "setup_s": {"sign": round(gen_s, 1), "log": round(load_s, 1)},
        "leaf_hash_check": leaf_hash(votes[0]).hex()[:16],
    }
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
