"""The databases a run makes, seeded with the engine, and SPEC 3's invariant on them afterwards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropsvc import Engine

STOCK = 10**9  # never sells out: every purchase is a full one
PRICE = 100_000


@dataclass
class Database:
    """A file the run made and what wrk counted against it."""

    kind: str  # dropsvc, naive
    label: str
    path: str
    ok: int = 0  # 201s counted
    in_flight: int = 0  # requests wrk left unanswered when it stopped (may or may not have committed)
    sold_out_drop: int | None = None
    sold_out_201s: int = 0



def new_database(folder: Path, kind: str, label: str, sold_out: bool = False) -> Database:
    """A fresh file named after ``label``: drop 1 that never sells out (per_user_limit 1), and with
    ``sold_out`` a second drop whose only unit is sold."""
    path = str(folder / (re.sub(r"[^\w.-]+", "_", label) + ".db"))
    with Engine(path) as engine:
        drop = engine.create_drop(slug="bench", name="Bench drop", price=PRICE, total_stock=STOCK,
                                  per_user_limit=1)
        assert drop == 1
        db = Database(kind, label, path)
        if sold_out:
            db.sold_out_drop = engine.create_drop(slug="sold-out", name="Sold out", price=PRICE, total_stock=1,
                                                  per_user_limit=1)
            assert engine.purchase(db.sold_out_drop, "first-buyer", 1, None).outcome == "ok"
    return db


def without_missing_holdings(problems: list[str], drop_id: int, orders: int) -> tuple[list[str], int]:
    """The seed's bare transaction (UPDATE drops + INSERT INTO orders) keeps no holdings: on a file it
    wrote, ``Engine.check()`` reports one missing holding per order of drop_id. Returns the problems
    without those lines when there are exactly ``orders`` of them (else all of them), and how many
    there were."""
    missing = [p for p in problems if p.startswith(f"drop {drop_id} user ")]
    return ([p for p in problems if p not in missing] if len(missing) == orders else problems), len(missing)


def check_database(db: Database) -> tuple[bool, str]:
    """SPEC 3's invariant with dropsvc.Engine, and sold == the 201s wrk counted (within what was in flight)."""
    with Engine(db.path) as engine:
        problems = engine.check()
        sold = engine.get_drop(1)["sold"]
        sold_out = engine.get_drop(db.sold_out_drop)["sold"] if db.sold_out_drop else None
    note = ""
    if db.kind == "naive":
        problems, missing = without_missing_holdings(problems, 1, sold)
        if missing == sold:
            note = f"; bare transaction: {missing:,} orders without a holding, as expected"
    counted = db.ok <= sold <= db.ok + db.in_flight
    good = not problems and counted and (sold_out is None or (sold_out == 1 and db.sold_out_201s == 0))
    detail = f"sold={sold:,}, 201s counted={db.ok:,}"
    if db.in_flight:
        detail += f" (+ up to {db.in_flight} in flight when wrk stopped)"
    if sold_out is not None:
        detail += f"; sold-out drop: sold={sold_out}, 201s={db.sold_out_201s}"
    detail += note
    if problems:
        detail += f"; {len(problems)} problems: {problems[:3]}"
    return good, detail



def check_redis(client: Any, tally: Database) -> tuple[str, bool, str]:
    """Stock taken == orders recorded == holdings == the 201s wrk counted (within what was in flight)."""
    sold = STOCK - int(client.get("drop:1:stock"))
    orders = client.hlen("drop:1:orders")
    held = sum(int(v) for v in client.hvals("drop:1:holdings"))
    good = sold == orders == held and tally.ok <= sold <= tally.ok + tally.in_flight
    detail = f"sold={sold:,}, orders={orders:,}, holdings={held:,}, 201s counted={tally.ok:,}"
    if tally.in_flight:
        detail += f" (+ up to {tally.in_flight} in flight when wrk stopped)"
    return tally.label, good, detail

