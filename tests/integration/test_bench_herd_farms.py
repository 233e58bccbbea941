"""bench/herd's farms at a tiny scale: a `queue-pow` run on a real `dropsvc serve` and PayOS sandbox,
the drop made through the admin API, every identity (a shopper's or one of a farm bot's) solving
its challenge with the altcha library before it joins, passes the bench's own checks (the bots'
share is left out: with a handful of units it is chance); and a `draw-pow` run the same way."""

from __future__ import annotations

from typing import Any

import pytest
from test_bench_herd import checked_run

from bench.herd.farm_report import farm_table
from bench.herd.farms import FarmTerms
from bench.herd.run import Settings


def settings(farm: FarmTerms, **changes: Any) -> Settings:
    terms = {"shoppers": 10, "bots": 0, "stock": 5, "hold_seconds": 10, "seed": 1, "lead": 30.0, "pay_share": 0.7,
             "timeout": 60.0, "server": "bjoern", "workers": 1, "pool": 8, "bot_pool": 2, "bot_pause": 0.0}
    return Settings(**{**terms, **changes}, farm=farm)


@pytest.mark.parametrize(("mode", "farm", "changes", "people", "name"), [
    ("queue-pow", FarmTerms(bots=2, identities=5, pow_algorithm="PBKDF2/SHA-256", pow_cost=5, solvers=2),
     {"shoppers": 12, "seed": 7, "lead": 3.0}, (12, 10), "`queue-pow` (PBKDF2/SHA-256, cost 5)"),
    ("draw-pow", FarmTerms(bots=2, identities=4, pow_algorithm="SHA-256", pow_cost=1, solvers=2),
     {"shoppers": 10, "seed": 11, "lead": 6.0}, (10, 8), "`draw-pow` (SHA-256, cost 1)"),
])
def test_a_tiny_pow_run_with_farms_passes_the_bench_checks(tmp_path, mode, farm, changes, people, name):
    fig = checked_run(mode, settings(farm, stock=3, hold_seconds=2, **changes), tmp_path)
    assert any(text.startswith("dropsvc verify-fairness: exit 0") for _, text in fig.checks)
    assert fig.paid_units == fig.sold == 3
    identities = sum(people)
    assert sum(fig.states.values()) == identities and fig.states["bought"] == 3
    tally = fig.outcome.tally
    assert tally.answers[("join", 201)] == identities and tally.answers[("challenge", 200)] == identities
    assert (tally.solves["shopper"], tally.solves["bot"]) == people
    assert tally.solve_cpu["bot"] > 0 and tally.solve_cpu["shopper"] > 0
    bots = f"{farm.bots} bots x {farm.identities}"
    assert name in farm_table([fig]) and f"| {people[0]} / {people[1]} ({bots}) |" in farm_table([fig])
