"""The purchase transaction of SPEC 5, one outcome at a time."""

from __future__ import annotations

import time

import pytest

from dropsvc import Engine


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sold(engine: Engine, drop_id: int) -> int:
    return engine.get_drop(drop_id)["sold"]


def order_count(engine: Engine) -> int:
    return engine.read("SELECT COUNT(*) AS n FROM orders")[0]["n"]


def test_ok_reserves_an_order_and_takes_stock(engine, make_drop):
    drop_id = make_drop(total_stock=3, price=1_000_000, per_user_limit=2, hold_seconds=60)
    before = now_ms()
    result = engine.purchase(drop_id, "alice", 2)
    assert result.outcome == "ok" and result.ok
    order = result.order
    assert order["status"] == "reserved"
    assert order["quantity"] == 2 and order["amount"] == 2_000_000
    assert before <= order["created_at"] <= now_ms()
    assert order["expires_at"] == order["created_at"] + 60_000
    assert order["order_code"] == engine.order_code_offset + order["id"]
    assert sold(engine, drop_id) == 2
    stored = engine.get_order(order["public_ref"])
    assert {k: stored[k] for k in order} == order
    holding = engine.read("SELECT quantity FROM holdings WHERE drop_id = ? AND user_id = ?",
                          (drop_id, "alice"))
    assert holding == [{"quantity": 2}]


def test_sold_out_when_stock_runs_out(engine, make_drop):
    drop_id = make_drop(total_stock=2)
    assert engine.purchase(drop_id, "a").outcome == "ok"
    assert engine.purchase(drop_id, "b").outcome == "ok"
    result = engine.purchase(drop_id, "c")
    assert result.outcome == "sold_out" and result.order is None
    assert sold(engine, drop_id) == 2
    assert order_count(engine) == 2


def test_quantity_above_remaining_is_sold_out_without_partial_sale(engine, make_drop):
    drop_id = make_drop(total_stock=3, per_user_limit=5)
    assert engine.purchase(drop_id, "a", 2).ok
    assert engine.purchase(drop_id, "b", 2).outcome == "sold_out"
    assert engine.purchase(drop_id, "b", 1).ok
    assert sold(engine, drop_id) == 3


def test_per_user_limit_counts_live_orders(engine, make_drop):
    drop_id = make_drop(total_stock=10, per_user_limit=2)
    assert engine.purchase(drop_id, "alice", 1).ok
    assert engine.purchase(drop_id, "alice", 2).outcome == "per_user_limit"
    assert engine.purchase(drop_id, "alice", 1).ok
    assert engine.purchase(drop_id, "alice", 1).outcome == "per_user_limit"
    assert engine.purchase(drop_id, "bob", 3).outcome == "per_user_limit"  # above the limit outright
    assert sold(engine, drop_id) == 2


def test_cancel_gives_stock_and_holding_back(engine, make_drop):
    drop_id = make_drop(total_stock=1, per_user_limit=1)
    first = engine.purchase(drop_id, "alice")
    assert engine.purchase(drop_id, "bob").outcome == "sold_out"
    cancelled = engine.cancel(first.order["public_ref"])
    assert cancelled.outcome == "ok" and cancelled.order["status"] == "cancelled"
    assert sold(engine, drop_id) == 0
    assert engine.read("SELECT * FROM holdings") == []
    # cancelling again changes nothing and still answers ok
    again = engine.cancel(first.order["public_ref"])
    assert again.outcome == "ok" and again.order["status"] == "cancelled"
    assert sold(engine, drop_id) == 0
    # the unit is on sale again, to the same shopper too
    assert engine.purchase(drop_id, "alice").ok


@pytest.mark.parametrize("status", ["paid", "expired", "refund_required"])
def test_cancel_refuses_orders_past_reserved(engine, make_drop, status):
    drop_id = make_drop(total_stock=5)
    order = engine.purchase(drop_id, "alice").order
    live = status == "paid"

    def set_status(tx):
        tx.execute("UPDATE orders SET status = ? WHERE id = ?", (status, order["id"]))
        if not live:  # keep the invariant: only reserved + paid hold stock
            tx.execute("UPDATE drops SET sold = sold - 1 WHERE id = ?", (drop_id,))
            tx.execute("DELETE FROM holdings WHERE drop_id = ?", (drop_id,))

    engine.write(set_status)
    before = sold(engine, drop_id)
    result = engine.cancel(order["public_ref"])
    assert result.outcome == status
    assert result.order["status"] == status
    assert sold(engine, drop_id) == before


def test_cancel_unknown_or_forged_ref(engine, make_drop):
    drop_id = make_drop()
    ref = engine.purchase(drop_id, "alice").order["public_ref"]
    forged = ref[:-1] + ("a" if ref[-1] != "a" else "b")
    assert engine.cancel(forged).outcome == "not_found"
    assert engine.cancel("nonsense").outcome == "not_found"
    assert engine.get_order(forged) is None
    assert sold(engine, drop_id) == 1


def test_window_not_started_and_ended(engine, make_drop):
    upcoming = make_drop(starts_at=now_ms() + 3_600_000)
    ended = make_drop(starts_at=now_ms() - 7_200_000, ends_at=now_ms() - 1)
    assert engine.purchase(upcoming, "alice").outcome == "not_started"
    assert engine.purchase(ended, "alice").outcome == "ended"
    assert order_count(engine) == 0


def test_window_opens_when_the_clock_reaches_starts_at(engine, make_drop):
    drop_id = make_drop(starts_at=now_ms() + 300)
    assert engine.purchase(drop_id, "alice").outcome == "not_started"
    time.sleep(0.35)
    assert engine.purchase(drop_id, "alice").ok


def test_unknown_drop(engine):
    result = engine.purchase(12345, "alice")
    assert result.outcome == "not_found" and result.order is None


def test_idempotency_key_returns_the_same_order(engine, make_drop):
    drop_id = make_drop(total_stock=1)
    first = engine.purchase(drop_id, "alice", 1, idempotency_key="click-1")
    again = engine.purchase(drop_id, "alice", 1, idempotency_key="click-1")
    assert first.outcome == "ok" and again.outcome == "duplicate"
    assert again.order["public_ref"] == first.order["public_ref"]
    assert order_count(engine) == 1 and sold(engine, drop_id) == 1


def test_idempotency_key_with_another_body_conflicts(engine, make_drop):
    drop_id = make_drop(total_stock=5, per_user_limit=3)
    engine.purchase(drop_id, "alice", 1, idempotency_key="k")
    assert engine.purchase(drop_id, "alice", 2, idempotency_key="k").outcome == "idempotency_conflict"
    assert engine.purchase(drop_id, "bob", 1, idempotency_key="k").outcome == "idempotency_conflict"
    assert order_count(engine) == 1


def test_idempotency_keys_are_per_drop(engine, make_drop):
    a, b = make_drop(), make_drop()
    assert engine.purchase(a, "alice", idempotency_key="k").ok
    assert engine.purchase(b, "alice", idempotency_key="k").ok


def test_duplicate_reflects_the_order_as_it_is_now(engine, make_drop):
    drop_id = make_drop()
    first = engine.purchase(drop_id, "alice", idempotency_key="k")
    engine.cancel(first.order["public_ref"])
    retry = engine.purchase(drop_id, "alice", idempotency_key="k")
    assert retry.outcome == "duplicate" and retry.order["status"] == "cancelled"
    assert sold(engine, drop_id) == 0


@pytest.mark.parametrize("quantity", [0, -1, 101])
def test_quantity_out_of_range_raises_before_anything(engine, make_drop, quantity):
    drop_id = make_drop()
    with pytest.raises(ValueError, match="quantity"):
        engine.purchase(drop_id, "alice", quantity)
    assert order_count(engine) == 0


@pytest.mark.parametrize("user_id", ["", "x" * 129])
def test_user_id_length_checked(engine, make_drop, user_id):
    with pytest.raises(ValueError, match="user_id"):
        engine.purchase(make_drop(), user_id)


def test_database_refuses_an_oversell_itself(engine, make_drop):
    from dropsvc import ConstraintError

    drop_id = make_drop(total_stock=1)
    with pytest.raises(ConstraintError):
        engine.write(lambda tx: tx.execute("UPDATE drops SET sold = 2 WHERE id = ?", (drop_id,)))
    assert sold(engine, drop_id) == 0


def test_counters_count_outcomes(engine, make_drop):
    drop_id = make_drop(total_stock=1)
    engine.purchase(drop_id, "a")
    engine.purchase(drop_id, "b")
    counters = engine.counters()
    assert counters["purchases"]["ok"] == 1
    assert counters["purchases"]["sold_out"] == 1
    assert counters["transactions"] >= 2  # the drop's creation and the sale


def test_sold_out_answers_skip_the_write_lock_until_stock_returns(engine, make_drop):
    drop_id = make_drop(total_stock=1)
    first = engine.purchase(drop_id, "alice")
    assert engine.purchase(drop_id, "bob").outcome == "sold_out"  # decided under the lock
    locked = engine.counters()["lock_acquisitions"]
    for n in range(5):
        assert engine.purchase(drop_id, f"late-{n}").outcome == "sold_out"
    counters = engine.counters()
    assert counters["lock_acquisitions"] == locked  # none of those took the lock
    assert counters["sold_out_without_lock"] == 5
    engine.cancel(first.order["public_ref"])  # stock comes back: the fresh read sees it
    assert engine.purchase(drop_id, "carol").ok


def test_duplicate_after_sell_out_still_gets_its_order(engine, make_drop):
    drop_id = make_drop(total_stock=1)
    first = engine.purchase(drop_id, "alice", idempotency_key="k")
    assert engine.purchase(drop_id, "bob").outcome == "sold_out"
    retry = engine.purchase(drop_id, "alice", idempotency_key="k")
    assert retry.outcome == "duplicate" and retry.order["public_ref"] == first.order["public_ref"]
    assert retry.order["id"] == first.order["id"]
