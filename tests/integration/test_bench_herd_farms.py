"""bench/herd's farms at a tiny scale: a `queue-pow` run on a real `dropsvc serve` and PayOS sandbox,
the drop made through the admin API, every identity (a shopper's or one of a farm bot's) solving
its challenge with the altcha library before it joins, passes the bench's own checks (the bots'
share is left out: with a handful of units it is chance). The draw modes' drops as asked of the
admin API, and a server without draws stopping the run (no server: the admin API's answer given)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from test_bench_herd import checked_run

from bench.harness.client import Reply
from bench.herd.farm_report import farm_table
from bench.herd.farms import ADMIN_TOKEN, DRAW_OPENS_S, FarmTerms, Refused, make_drop
from bench.herd.run import Settings


def settings(farm: FarmTerms, **changes: Any) -> Settings:
    terms = {"shoppers": 10, "bots": 0, "stock": 5, "hold_seconds": 10, "seed": 1, "lead": 30.0, "pay_share": 0.7,
             "timeout": 60.0, "server": "bjoern", "workers": 1, "pool": 8, "bot_pool": 2, "bot_pause": 0.0}
    return Settings(**{**terms, **changes}, farm=farm)


def test_a_tiny_pow_queue_run_with_farms_passes_the_bench_checks(tmp_path):
    farm = FarmTerms(bots=2, identities=5, pow_algorithm="PBKDF2/SHA-256", pow_cost=5, solvers=2)
    cfg = settings(farm, shoppers=12, stock=3, hold_seconds=2, seed=7, lead=3.0)
    fig = checked_run("queue-pow", cfg, tmp_path)
    assert any(text.startswith("dropsvc verify-fairness: exit 0") for _, text in fig.checks)
    assert fig.paid_units == fig.sold == 3
    assert sum(fig.states.values()) == 22 and fig.states["bought"] == 3
    tally = fig.outcome.tally
    assert tally.answers[("join", 201)] == 22 and tally.answers[("challenge", 200)] == 22
    assert (tally.solves["shopper"], tally.solves["bot"]) == (12, 10)
    assert tally.solve_cpu["bot"] > 0 and tally.solve_cpu["shopper"] > 0
    table = farm_table([fig])
    assert "`queue-pow` (PBKDF2/SHA-256, cost 5)" in table and "| 12 / 10 (2 bots x 5) |" in table


class FakeService:
    """The admin API as make_drop sees it: records the request, answers ``status`` with ``body``."""

    def __init__(self, status: int, body: dict) -> None:
        self.status, self.body, self.sent = status, body, {}

    async def request(self, method, path, headers, body):
        self.sent = {"method": method, "path": path, "headers": headers, "fields": orjson.loads(body)}
        return Reply(self.status, {}, orjson.dumps(self.body), 0.0)


def test_a_draw_drop_is_asked_for_with_its_entries_and_its_challenge():
    cfg = settings(FarmTerms(pow_cost=7))
    service = FakeService(201, {"id": 4})
    made = asyncio.run(make_drop("draw-pow", cfg, service, 1000.0))  # type: ignore[arg-type]

    assert made == (4, 1000.0 + DRAW_OPENS_S, 1030.0)  # entries open, then the draw and sales at the close
    fields = service.sent["fields"]
    assert (service.sent["method"], service.sent["path"]) == ("POST", "/api/admin/drops")
    assert service.sent["headers"]["Authorization"] == f"Bearer {ADMIN_TOKEN}"
    assert (fields["admission"], fields["starts_at"], fields["entries_close_at"]) == ("draw", 1_003_000, 1_030_000)
    assert (fields["challenge"], fields["pow_algorithm"], fields["pow_cost"]) == ("pow", "PBKDF2/SHA-256", 7)

    queue = FakeService(201, {"id": 5})
    assert asyncio.run(make_drop("queue", cfg, queue, 1000.0)) == (5, 1000.0, 1030.0)  # type: ignore[arg-type]
    assert "entries_close_at" not in queue.sent["fields"] and "challenge" not in queue.sent["fields"]


def test_a_server_without_draws_stops_the_run_saying_so():
    cfg = settings(FarmTerms())
    refusal = {"error": {"code": "invalid_field", "message": "admission 'draw' is not available yet"}}
    with pytest.raises(Refused, match=r"refused the `draw` drop: 422 .*not available yet.*no draw mode yet"):
        asyncio.run(make_drop("draw", cfg, FakeService(422, refusal), 1000.0))  # type: ignore[arg-type]
