"""Fixtures shared by every test: a fresh engine on a real WAL file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dropsvc import Engine

pytest_plugins = ["payos_fixtures"]  # the PayOS sandbox fixtures (tests/payos_fixtures.py)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "drop.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    with Engine(db_path) as opened:
        yield opened
        assert opened.check() == [], "the stock invariant broke"


@pytest.fixture
def make_drop(engine: Engine):
    """Create a drop with sensible defaults; keyword arguments override them."""
    counter = iter(range(1, 10**6))

    def make(**fields):
        fields.setdefault("slug", f"drop-{next(counter)}")
        fields.setdefault("name", "Test sneaker")
        fields.setdefault("price", 2_500_000)
        fields.setdefault("total_stock", 10)
        return engine.create_drop(**fields)

    return make
