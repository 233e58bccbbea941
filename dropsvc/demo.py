"""The demo drop that ``dropsvc serve --demo`` makes sure exists."""

from __future__ import annotations

from typing import Any

from dropsvc.drops import DropConflict
from dropsvc.engine import Engine

DEMO_SLUG = "demo-sneaker"
DEMO_DROP: dict[str, Any] = {
    "slug": DEMO_SLUG,
    "name": "Limited sneaker",
    "description": "A demo drop: 100 pairs, at most 2 per shopper, held 10 minutes until paid.",
    "price": 2_500_000,  # VND
    "total_stock": 100,
    "per_user_limit": 2,
}


def find_drop_id(engine: Engine, slug: str) -> int | None:
    rows = engine.read("SELECT id FROM drops WHERE slug = ?", (slug,))
    return rows[0]["id"] if rows else None


def seed_demo(engine: Engine) -> tuple[int, bool]:
    """(the demo drop's id, whether it was created now). Leaves an existing one alone."""
    existing = find_drop_id(engine, DEMO_SLUG)
    if existing is not None:
        return existing, False
    try:
        return engine.create_drop(**DEMO_DROP), True
    except DropConflict:
        # another worker seeded it between our read and our write
        existing = find_drop_id(engine, DEMO_SLUG)
        if existing is None:
            raise
        return existing, False
