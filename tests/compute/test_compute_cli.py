"""`ailedger compute` bad input without a chain: one `error:` line, exit 2 (bad input) or 1 (a verdict that
does not replay)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.compute import job, service
from ailedger.errors import NotAuthorisedError
from ailedger.tlog.ledger import Ledger, entry_terms
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow

SPEC = job.JobSpec(steps=4, rows=16)


def run(led_dir, *args):
    return CliRunner().invoke(main, ["--ledger", str(led_dir), *[str(a) for a in args]])


def test_a_verdict_for_a_job_never_posted_is_refused(tmp_path):
    d = tmp_path / "l"
    led = Ledger.init(d, "test.example/compute-cli")
    ref = led.new_identity("ref")[0]
    trace = service.Trace.compute(SPEC)
    dispute = {"lo": 2, "hi": 3, "lo_root": trace.roots[2].hex(), "hi_root": trace.roots[3].hex()}
    pf = {"step": 2, "state": service.encode_state(trace.state(2))}
    body = {"contract": "0x" + "11" * 20, "job": 1, **service.referee_step(SPEC, dispute, pf), "spec": SPEC.to_dict(),
            "state": pf["state"]}
    with pytest.raises(NotAuthorisedError, match="before the job's compute.job entry"):
        led.append_entry(led.make_entry("compute.verdict", body, ref))
    with pytest.raises(NotAuthorisedError, match="names its contract"):
        led.append_entry(led.make_entry("compute.accept", {"job": "1"}, ref))
    assert led.size == 1
    led.close()


def test_cli_errors(tmp_path):
    d = tmp_path / "l"
    led = Ledger.init(d, "test.example/compute-cli")
    ref = led.new_identity("ref")[0]
    trace = service.Trace.compute(SPEC)
    dispute = {"lo": 2, "hi": 3, "lo_root": trace.roots[2].hex(), "hi_root": trace.roots[3].hex()}
    pf = {"step": 2, "state": service.encode_state(trace.state(2))}
    body = {"contract": "0x" + "11" * 20, "job": 1, **service.referee_step(SPEC, dispute, pf), "spec": SPEC.to_dict(),
            "state": pf["state"]}
    # verdicts written straight into the store (another writer): one true, one whose computed root is forged
    idx = []
    for b in (body, {**body, "computed_root": trace.roots[4].hex()}):
        e = led.make_entry("compute.verdict", b, ref)
        idx.append(led.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])[0].index)
    led.close()

    r = run(d, "compute", "status", 1)
    assert r.exit_code == 2 and "no ComputeMarket for this ledger yet" in r.output
    r = run(d, "compute", "replay", 0)
    assert r.exit_code == 2 and "entry 0 is a identity.register, not a compute.verdict" in r.output
    r = run(d, "compute", "replay", 99)
    assert r.exit_code == 2 and "no entry 99" in r.output
    r = run(d, "compute", "replay", idx[0], "--json")
    assert r.exit_code == 0 and json.loads(r.output)["provider_right"] is True
    r = run(d, "compute", "replay", idx[1])
    assert r.exit_code == 1 and "the verdict does not replay" in r.output
    r = run(d, "compute", "move", 1)
    assert r.exit_code == 2 and "give --provider-key and/or --challenger-key" in r.output
    r = run(d, "compute", "status", "x")
    assert r.exit_code == 2


def test_a_batch_is_judged_in_order(tmp_path):
    """A job and its acceptance in one batch: the acceptance counts (judged after the job in the same batch);
    a stranger's acceptance is refused, naming the rule."""
    led = Ledger.init(tmp_path / "l", "test.example/compute-batch")
    client, prov, other = (led.new_identity(n)[0] for n in ("client", "prov", "other"))
    c = "0x" + "22" * 20

    def entry(who, job, kind, body):
        return led.make_entry(f"compute.{kind}", {"contract": c, "job": job, **body,
                                                  "subjects": [service.job_term(c, job)]}, who).leaf_bytes

    spec = {"spec": SPEC.to_dict(), "referee": other.did}
    got = led.append_entries([entry(client, 1, "job", spec), entry(other, 1, "accept", {"provider": other.did})])
    assert isinstance(got[1], str) and "only the job's client" in got[1]
    got = led.append_entries([entry(client, 2, "job", spec), entry(client, 2, "accept", {"provider": prov.did})])
    assert not any(isinstance(r, str) for r in got), got
    assert service.job_view(led, c, 2).accepted["provider"] == prov.did
    assert service.job_view(led, c, 1).accepted is None
    led.close()
