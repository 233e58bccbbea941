"""The ledger's named operations: the engine's stock statements on the write transaction,
giving stock back, payment links, drops by slug, the readiness probes, the admin pages."""

from __future__ import annotations

import pytest

from dropsvc import ConstraintError


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
