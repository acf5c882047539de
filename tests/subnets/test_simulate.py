"""The adversarial simulation: a cartel below half the stake cannot lift its miner under the consensus
(kappa = 1/2), while the plain stake-weighted mean gives it far more; copiers lose under commit-reveal."""

from __future__ import annotations

import pytest

from ailedger.subnets.simulate import SimConfig, chart, simulate, table


@pytest.mark.parametrize("share", [0.1, 0.3, 0.49])
def test_the_cartel_bound(share):
    res = simulate(SimConfig(cartel_share=share, epochs=30))
    cons, mean = res["figures"]["consensus"], res["figures"]["mean"]
    # the bound: below kappa of the stake, the cartel's miner gets within 10% of its honest share
    assert abs(cons["cartel_excess_relative"]) < 0.10, cons
    assert mean["cartel_excess_relative"] > 1.0, mean  # the plain mean: more than double
    assert mean["cartel_excess_relative"] > 10 * abs(cons["cartel_excess_relative"])


def test_above_kappa_the_cartel_wins():
    res = simulate(SimConfig(cartel_share=0.6, epochs=30))
    assert res["figures"]["consensus"]["cartel_excess_relative"] > 1.0


def test_copiers_earn_less_under_commit_reveal(tmp_path):
    on = simulate(SimConfig(epochs=30, commit_reveal=True))
    off = simulate(SimConfig(epochs=30, commit_reveal=False))
    assert on["figures"]["consensus"]["copier_dividend_ratio"] < 0.8
    assert off["figures"]["consensus"]["copier_dividend_ratio"] > 0.95
    # the cheap miner earns less than an honest miner serving the same good model
    assert on["figures"]["consensus"]["cheap_vs_good_miner"] < 0.9
    lines = table(on)
    assert any("copier validator" in ln for ln in lines)
    png = chart(on, tmp_path / "sim.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
