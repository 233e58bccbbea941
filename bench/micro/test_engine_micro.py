"""Micro-benchmarks of the engine's hot calls (pytest-benchmark; run with `make bench-micro`).

Not collected by `make test` (testpaths = ["tests"]). Each call is a real
one on a real file: a purchase commits, a sold-out answer reads the drop.
Compare a change with
`pytest bench/micro --benchmark-storage=bench/results/micro --benchmark-compare`.

Only the engine's calls, through ``dropsvc.Engine``. The PayOS webhook
signature check (``dropsvc.payments.verify_object``: the ``key=value`` text of
the callback's ``data``, keys in byte order, HMAC-SHA256 with the checksum key,
compared in constant time) is not measured here: it is no engine call, and it
runs once per payment callback, not once per purchase.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from pytest_benchmark.fixture import BenchmarkFixture

from dropsvc import Engine


def fresh_buyers(engine: Engine, drop_id: int) -> Callable[[], str]:
    """A purchase of drop_id by a new buyer (u0, u1, ...) each call; its outcome."""
    users = (f"u{n}" for n in itertools.count())
    purchase = engine.purchase

    def buy() -> str:
        return purchase(drop_id, next(users)).outcome

    return buy


def test_purchase(benchmark: BenchmarkFixture, engine: Engine, drop_id: int) -> None:
    """One full purchase (one transaction, NORMAL), a fresh buyer each call."""
    assert benchmark(fresh_buyers(engine, drop_id)) == "ok"
    drop = engine.get_drop(drop_id)
    assert drop is not None and drop["sold"] == engine.counters()["purchases"]["ok"]


def test_sold_out(benchmark: BenchmarkFixture, engine: Engine) -> None:
    """The answer to a purchase once the stock is gone (fresh buyers)."""
    drop_id = engine.create_drop(slug="gone", name="Gone", price=1000, total_stock=1, per_user_limit=1)
    assert engine.purchase(drop_id, "first").outcome == "ok"
    assert benchmark(fresh_buyers(engine, drop_id)) == "sold_out"


def test_get_drop(benchmark: BenchmarkFixture, engine: Engine, drop_id: int) -> None:
    """A drop read on a reader handle."""
    drop = benchmark(engine.get_drop, drop_id)
    assert drop is not None and drop["id"] == drop_id


def test_public_ref(benchmark: BenchmarkFixture, engine: Engine) -> None:
    """Encoding an order id as its public_ref (SipHash MAC, base32)."""
    assert len(benchmark(engine.public_ref, 123_456)) == 26


def test_order_id_from_ref(benchmark: BenchmarkFixture, engine: Engine) -> None:
    """Decoding and verifying a public_ref."""
    ref = engine.public_ref(123_456)
    assert benchmark(engine.order_id_from_ref, ref) == 123_456


def test_order_id_from_forged_ref(benchmark: BenchmarkFixture, engine: Engine) -> None:
    """Refusing a forged public_ref (same cost: the check is constant time)."""
    ref = engine.public_ref(123_456)
    forged = ref[:-1] + ("a" if ref[-1] != "a" else "b")
    assert benchmark(engine.order_id_from_ref, forged) is None
