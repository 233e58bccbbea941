"""SPEC 5's state table for payments and expiry, through the engine (no HTTP)."""

from __future__ import annotations

import pytest

from dropsvc.ledger.payments import apply_payment


def callback(engine, order, *, amount=None, reference="FT1", link=None, code="00"):
    return {"code": "00", "desc": "success", "success": True, "signature": "checked-elsewhere",
            "data": {"orderCode": order["order_code"], "amount": order["amount"] if amount is None else amount,
                     "reference": reference, "paymentLinkId": link or "link-1", "code": code,
                     "desc": "success", "description": "x", "accountNumber": "1", "currency": "VND",
                     "transactionDateTime": "2026-11-24 10:00:00"}}


def status(engine, order):
    return engine.get_order_by_id(order["id"])["status"]


def sold(engine, drop_id):
    return engine.get_drop(drop_id)["sold"]


def events(engine):
    return [row["action"] for row in engine.read("SELECT action FROM payment_events ORDER BY id")]


def test_reserved_becomes_paid_once(engine, make_drop):
    drop_id = make_drop(total_stock=2)
    order = engine.purchase(drop_id, "alice").order
    first = apply_payment(engine, callback(engine, order))
    assert (first.action, first.replayed) == ("paid", False)
    assert status(engine, order) == "paid" and sold(engine, drop_id) == 1
    replay = apply_payment(engine, callback(engine, order))
    assert replay.replayed and replay.action == "paid"
    second_payment = apply_payment(engine, callback(engine, order, reference="FT2"))
    assert second_payment.action == "duplicate"
    assert events(engine) == ["paid", "duplicate"]
    assert sold(engine, drop_id) == 1


def test_amount_mismatch_leaves_the_order(engine, make_drop):
    drop_id = make_drop()
    order = engine.purchase(drop_id, "alice").order
    assert apply_payment(engine, callback(engine, order, amount=order["amount"] - 1)).action == "amount_mismatch"
    assert status(engine, order) == "reserved"
    assert events(engine) == ["amount_mismatch"]


def test_link_mismatch_when_the_order_has_another_link(engine, make_drop):
    drop_id = make_drop()
    order = engine.purchase(drop_id, "alice").order
    engine.write(lambda tx: tx.execute("UPDATE orders SET payment_link_id = 'mine' WHERE id = ?", (order["id"],)))
    assert apply_payment(engine, callback(engine, order, link="someone-elses")).action == "link_mismatch"
    assert status(engine, order) == "reserved"
    assert apply_payment(engine, callback(engine, order, link="mine", reference="FT9")).action == "paid"


def test_unknown_order_is_recorded(engine):
    fake = {"order_code": engine.order_code_offset + 999_999, "amount": 2000, "id": 999_999}
    result = apply_payment(engine, callback(engine, fake))
    assert result.action == "unknown_order" and result.order_id is None
    assert events(engine) == ["unknown_order"]


def test_not_paid_code_changes_nothing(engine, make_drop):
    order = engine.purchase(make_drop(), "alice").order
    assert apply_payment(engine, callback(engine, order, code="01")).action == "not_paid"
    assert status(engine, order) == "reserved"


@pytest.mark.parametrize("how", ["expired", "cancelled"])
def test_late_payment_retakes_stock_when_left(engine, make_drop, how):
    drop_id = make_drop(total_stock=2, hold_seconds=1)
    order = engine.purchase(drop_id, "alice").order
    if how == "expired":
        assert engine.expire_due(now=order["expires_at"]) == 1
    else:
        engine.cancel(order["public_ref"])
    assert sold(engine, drop_id) == 0
    assert apply_payment(engine, callback(engine, order)).action == "paid"
    assert status(engine, order) == "paid" and sold(engine, drop_id) == 1
    assert engine.read("SELECT quantity FROM holdings") == [{"quantity": 1}]


def test_late_payment_without_stock_needs_a_refund(engine, make_drop):
    drop_id = make_drop(total_stock=1, hold_seconds=1)
    order = engine.purchase(drop_id, "alice").order
    engine.expire_due(now=order["expires_at"])
    assert engine.purchase(drop_id, "bob").ok  # the unit went to someone else
    assert apply_payment(engine, callback(engine, order)).action == "refund_required"
    assert status(engine, order) == "refund_required" and sold(engine, drop_id) == 1
    # a refund_required order can no longer be cancelled, and more money changes nothing
    assert engine.cancel(order["public_ref"]).outcome == "refund_required"
    assert apply_payment(engine, callback(engine, order, reference="FT2")).action == "duplicate"


def test_expiry_gives_back_only_what_is_due(engine, make_drop):
    drop_id = make_drop(total_stock=10, per_user_limit=5, hold_seconds=60)
    orders = [engine.purchase(drop_id, f"u{n}").order for n in range(4)]
    apply_payment(engine, callback(engine, orders[1]))
    engine.cancel(orders[2]["public_ref"])
    assert engine.expire_due(now=orders[0]["expires_at"] - 1) == 0
    assert engine.expire_due(now=orders[-1]["expires_at"]) == 2  # 0 and 3; 1 is paid, 2 cancelled
    assert [status(engine, o) for o in orders] == ["expired", "paid", "cancelled", "expired"]
    assert sold(engine, drop_id) == 1
    assert engine.expire_due(now=orders[-1]["expires_at"] + 10**6) == 0


def test_expiry_works_in_bounded_batches(engine, make_drop):
    drop_id = make_drop(total_stock=50, per_user_limit=1, hold_seconds=1)
    last = [engine.purchase(drop_id, f"u{n}").order for n in range(25)][-1]
    later = last["expires_at"] + 1
    assert [engine.expire_due(now=later, limit=10) for _ in range(4)] == [10, 10, 5, 0]
    assert sold(engine, drop_id) == 0
