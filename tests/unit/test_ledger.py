"""The ledger's named operations: the engine's stock statements on the write transaction,
giving stock back, payment links, drops by slug, the readiness probes, the admin pages."""

from __future__ import annotations

import sqlite3

import pytest

from dropsvc import ConstraintError, Engine
from dropsvc.ledger import files
from dropsvc.ledger import orders as ledger_orders


def holdings(engine):
    return engine.read("SELECT drop_id, user_id, quantity FROM holdings ORDER BY user_id")


# -- the purchase's own statements, for the cold path ------------------------------------

def test_take_stock_takes_up_to_the_stock_and_refuses_an_oversell(engine, make_drop):
    drop_id = make_drop(total_stock=3)
    assert engine.write(lambda tx: (tx.take_stock(drop_id, 2), tx.changes)) == (True, 1)
    assert engine.write(lambda tx: (tx.take_stock(drop_id, 2), tx.changes)) == (False, 0)
    assert engine.get_drop(drop_id)["sold"] == 2
    assert engine.write(lambda tx: tx.take_stock(drop_id, 1)) is True
    assert engine.write(lambda tx: tx.take_stock(drop_id, 1)) is False
    assert engine.get_drop(drop_id)["sold"] == 3
    assert engine.write(lambda tx: tx.take_stock(999, 1)) is False  # no such drop: nothing taken
    # the test made stock move without orders: put it back so the fixture's invariant check holds
    engine.write(lambda tx: tx.execute("UPDATE drops SET sold = 0 WHERE id = ?", (drop_id,)))


def test_add_holding_inserts_then_adds(engine, make_drop):
    drop_id = make_drop(total_stock=5, per_user_limit=5)

    def hold(tx):
        tx.add_holding(drop_id, "ann", 2)
        tx.add_holding(drop_id, "ann", 1)
        tx.add_holding(drop_id, "bob", 1)
        tx.execute("DELETE FROM holdings")  # undone below: the rollback
        raise KeyError("roll back")

    with pytest.raises(KeyError):
        engine.write(hold)
    assert holdings(engine) == []
    engine.write(lambda tx: (tx.add_holding(drop_id, "ann", 2), tx.add_holding(drop_id, "ann", 1),
                             tx.add_holding(drop_id, "bob", 1)))
    assert holdings(engine) == [{"drop_id": drop_id, "user_id": "ann", "quantity": 3},
                                {"drop_id": drop_id, "user_id": "bob", "quantity": 1}]
    engine.write(lambda tx: tx.execute("DELETE FROM holdings"))


def test_stock_statements_refuse_bad_quantities_and_fail_typed(engine, make_drop):
    drop_id = make_drop()
    for bad in (0, -1):
        with pytest.raises(ValueError, match="quantity"):
            engine.write(lambda tx, q=bad: tx.take_stock(drop_id, q))
        with pytest.raises(ValueError, match="quantity"):
            engine.write(lambda tx, q=bad: tx.add_holding(drop_id, "ann", q))
    with pytest.raises(ConstraintError, match="FOREIGN KEY"):
        engine.write(lambda tx: tx.add_holding(999, "ann", 1))
    kept = []
    engine.write(kept.append)
    with pytest.raises(RuntimeError, match="over"):
        kept[0].take_stock(drop_id, 1)
    with pytest.raises(RuntimeError, match="over"):
        kept[0].add_holding(drop_id, "ann", 1)
    # the purchase still works on the statements the cold path used
    assert engine.purchase(drop_id, "ann").ok and holdings(engine)[0]["quantity"] == 1


# -- giving stock back: one path for cancel and expiry -----------------------------------

@pytest.fixture
def releases(monkeypatch):
    """Every call of ledger.orders.release, as (order id, new status)."""
    calls = []
    original = ledger_orders.release

    def counting(tx, order, new_status):
        calls.append((order["id"], new_status))
        original(tx, order, new_status)

    monkeypatch.setattr(ledger_orders, "release", counting)
    return calls


def test_cancel_and_expiry_give_stock_back_through_release(engine, make_drop, releases):
    drop_id = make_drop(total_stock=4, per_user_limit=2, hold_seconds=60)
    first, second = (engine.purchase(drop_id, "ann").order, engine.purchase(drop_id, "ann").order)
    third = engine.purchase(drop_id, "bob").order
    assert engine.cancel(first["public_ref"]).outcome == "ok"
    assert engine.check() == [] and engine.get_drop(drop_id)["sold"] == 2
    assert holdings(engine) == [{"drop_id": drop_id, "user_id": "ann", "quantity": 1},
                                {"drop_id": drop_id, "user_id": "bob", "quantity": 1}]
    assert engine.expire_due(now=third["expires_at"]) == 2
    assert engine.check() == [] and engine.get_drop(drop_id)["sold"] == 0
    assert holdings(engine) == []  # holdings of zero go
    assert releases == [(first["id"], "cancelled"), (second["id"], "expired"), (third["id"], "expired")]
    assert engine.cancel(first["public_ref"]).outcome == "ok"  # already cancelled: nothing moves twice
    assert len(releases) == 3


def test_release_refuses_an_order_that_is_not_live(engine, make_drop):
    drop_id = make_drop(total_stock=2)
    order = engine.purchase(drop_id, "ann").order
    engine.cancel(order["public_ref"])
    stale = {**order, "status": "reserved"}  # as a caller that read it before the cancel would have it
    with pytest.raises(ledger_orders.NotLive):
        engine.write(lambda tx: ledger_orders.release(tx, stale, "expired"))
    assert engine.get_drop(drop_id)["sold"] == 0 and engine.get_order_by_id(order["id"])["status"] == "cancelled"


# -- the other named operations ---------------------------------------------------------

def test_store_payment_link_fills_an_empty_slot_of_a_reserved_order_once(engine, make_drop):
    drop_id = make_drop(total_stock=2)
    order, other = engine.purchase(drop_id, "ann").order, engine.purchase(drop_id, "bob").order
    assert engine.store_payment_link(order["id"], "link-1", "https://pay/1") is True
    assert engine.store_payment_link(order["id"], "link-2", "https://pay/2") is False
    stored = engine.get_order_by_id(order["id"])
    assert (stored["payment_link_id"], stored["checkout_url"]) == ("link-1", "https://pay/1")
    engine.cancel(other["public_ref"])
    assert engine.store_payment_link(other["id"], "link-3", "https://pay/3") is False
    assert engine.get_order_by_id(other["id"])["payment_link_id"] is None


def test_drop_id_by_slug(engine, make_drop):
    drop_id = make_drop(slug="air-1")
    assert engine.drop_id_by_slug("air-1") == drop_id
    assert engine.drop_id_by_slug("air-2") is None


def test_readiness_probes(engine, db_path):
    assert engine.write_round_trip() is None
    assert engine.file_schema_version() == engine.schema_version
    with Engine(db_path) as other:  # another handle moves the file's version: this one sees it
        other.write(lambda tx: tx.execute("PRAGMA user_version = 0"))
        assert engine.file_schema_version() == 0
        other.write(lambda tx: tx.execute(f"PRAGMA user_version = {engine.schema_version}"))


def test_admin_pages_walk_by_id(engine, make_drop):
    drop_id, other = make_drop(total_stock=10, per_user_limit=10), make_drop()
    bought = [engine.purchase(drop_id, f"u{n}").order for n in range(5)]
    engine.purchase(other, "elsewhere")
    engine.cancel(bought[1]["public_ref"])
    page, after = engine.drop_orders_page(drop_id, after=0, limit=3)
    assert [row["id"] for row in page] == [o["id"] for o in bought[:3]] and after == bought[2]["id"]
    page, after = engine.drop_orders_page(drop_id, after=after, limit=3)
    assert [row["id"] for row in page] == [o["id"] for o in bought[3:]] and after is None
    cancelled, _ = engine.drop_orders_page(drop_id, after=0, limit=10, status="cancelled")
    assert [row["id"] for row in cancelled] == [bought[1]["id"]]
    row = engine.admin_order_row(bought[0]["id"])
    assert row["idempotency_key"] is None and row["status"] == "reserved"
    assert engine.admin_order_row(10**9) is None
    assert engine.order_payment_events(bought[0]["order_code"]) == []
    assert engine.payment_events_page(after=0, limit=5) == ([], None)


# -- a file, read-only, without an engine ---------------------------------------------

def test_a_file_is_checked_and_described_without_an_engine(tmp_path):
    path = str(tmp_path / "copy.db")
    with Engine(path) as engine:
        drop_id = engine.create_drop(slug="a", name="A", price=1, total_stock=5, per_user_limit=5)
        engine.purchase(drop_id, "ann", 2)
        engine.purchase(drop_id, "bob")
        engine.checkpoint("TRUNCATE")
    for side in ("-wal", "-shm"):
        (tmp_path / f"copy.db{side}").unlink(missing_ok=True)
    assert files.describe_file(path) == "1 drop, 2 orders"
    assert files.file_problems(path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.db", "copy.db-lock"]  # nothing left beside it
    with sqlite3.connect(path) as db:
        db.execute("UPDATE drops SET sold = 2")
    assert files.file_problems(path) == ["drop 1: sold=2 but reserved+paid=3 (total_stock=5)"]
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database " * 100)
    assert files.describe_file(str(junk)) == "nothing readable"
    assert files.file_problems(str(junk)) == [f"{junk}: not a readable dropsvc database: file is not a database"]
