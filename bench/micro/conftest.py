"""Fixtures of the micro-benchmarks: one engine per test on a fresh file (NORMAL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dropsvc import Engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine(tmp_path / "micro.db", synchronous="NORMAL") as opened:
        yield opened
        assert opened.check() == [], "the invariant of SPEC 3 broke during a micro-benchmark"


@pytest.fixture
def drop_id(engine: Engine) -> int:
    """A live drop that never sells out."""
    return engine.create_drop(slug="micro", name="Micro", price=1000, total_stock=10**9, per_user_limit=1)
