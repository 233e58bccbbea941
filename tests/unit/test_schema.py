"""The schema: migration 1 as files hold it, and the order statuses and payment event actions
listed once (the engine's tuples, from which the CHECK constraints are built)."""

from __future__ import annotations

import sqlite3

import pytest

from dropsvc import ConstraintError, Engine, _engine, ledger
from dropsvc.http import openapi_schemas
from dropsvc.http.resources import admin_orders

# What sqlite_master holds for a file made by migration 1, as written before the CHECK lists were
# built from ORDER_STATUSES and EVENT_ACTIONS. Files keep this text: it must never change.
MIGRATION_1_SCHEMA = (
    ("table", "drops", """\
CREATE TABLE drops (
        id              INTEGER PRIMARY KEY,
        slug            TEXT NOT NULL UNIQUE,
        name            TEXT NOT NULL,
        description     TEXT NOT NULL DEFAULT '',
        image_url       TEXT NOT NULL DEFAULT '',
        price           INTEGER NOT NULL CHECK (price >= 0),
        currency        TEXT NOT NULL DEFAULT 'VND',
        total_stock     INTEGER NOT NULL,
        sold            INTEGER NOT NULL DEFAULT 0,
        per_user_limit  INTEGER NOT NULL DEFAULT 1 CHECK (per_user_limit >= 1),
        hold_seconds    INTEGER NOT NULL DEFAULT 600 CHECK (hold_seconds >= 1),
        starts_at       INTEGER NOT NULL,
        ends_at         INTEGER,
        created_at      INTEGER NOT NULL,
        CHECK (sold >= 0 AND sold <= total_stock),
        CHECK (ends_at IS NULL OR ends_at > starts_at)
    )"""),
    ("table", "orders", """\
CREATE TABLE orders (
        id               INTEGER PRIMARY KEY,
        drop_id          INTEGER NOT NULL REFERENCES drops(id),
        user_id          TEXT NOT NULL,
        quantity         INTEGER NOT NULL CHECK (quantity >= 1),
        amount           INTEGER NOT NULL CHECK (amount >= 0),
        status           TEXT NOT NULL CHECK (status IN
                           ('reserved', 'paid', 'expired', 'cancelled', 'refund_required')),
        idempotency_key  TEXT,
        request_hash     TEXT,
        payment_link_id  TEXT,
        checkout_url     TEXT,
        created_at       INTEGER NOT NULL,
        expires_at       INTEGER NOT NULL,
        paid_at          INTEGER
    )"""),
    ("index", "orders_idempotency", """\
CREATE UNIQUE INDEX orders_idempotency ON orders (drop_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL"""),
    ("table", "holdings", """\
CREATE TABLE holdings (
        drop_id   INTEGER NOT NULL REFERENCES drops(id),
        user_id   TEXT NOT NULL,
        quantity  INTEGER NOT NULL CHECK (quantity >= 0),
        PRIMARY KEY (drop_id, user_id)
    ) WITHOUT ROWID"""),
    ("table", "settings", """\
CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    ) WITHOUT ROWID"""),
    ("table", "payment_events", """\
CREATE TABLE payment_events (
        id           INTEGER PRIMARY KEY,
        order_code   INTEGER NOT NULL,
        reference    TEXT NOT NULL,
        order_id     INTEGER,
        action       TEXT NOT NULL CHECK (action IN
                       ('paid', 'duplicate', 'amount_mismatch', 'refund_required', 'unknown_order',
                        'link_mismatch', 'not_paid')),
        payload      TEXT NOT NULL,
        received_at  INTEGER NOT NULL,
        UNIQUE (order_code, reference)
    )"""),
)


def test_a_new_file_holds_migration_1_as_written(db_path):
    Engine(db_path).close()
    with sqlite3.connect(db_path) as db:
        found = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid").fetchall()
    assert tuple(found) == MIGRATION_1_SCHEMA


def test_statuses_and_actions_are_the_engines_everywhere():
    assert ledger.ORDER_STATUSES is _engine.ORDER_STATUSES is admin_orders.ORDER_STATUSES
    assert ledger.EVENT_ACTIONS is _engine.EVENT_ACTIONS is admin_orders.EVENT_ACTIONS
    schemas = openapi_schemas.SCHEMAS
    for name in ("Order", "AdminOrder"):
        assert schemas[name]["properties"]["status"]["enum"] == list(_engine.ORDER_STATUSES)
    assert schemas["PaymentEvent"]["properties"]["action"]["enum"] == list(_engine.EVENT_ACTIONS)


@pytest.mark.parametrize("status", _engine.ORDER_STATUSES)
def test_the_check_takes_every_order_status(engine, make_drop, status):
    order = engine.purchase(make_drop(), "ann").order
    engine.write(lambda tx: tx.execute("UPDATE orders SET status = ? WHERE id = ?", (status, order["id"])))
    assert engine.get_order_by_id(order["id"])["status"] == status
    # reserved again, as the stock and holding still count it (the fixture checks the invariant)
    engine.write(lambda tx: tx.execute("UPDATE orders SET status = 'reserved' WHERE id = ?", (order["id"],)))


@pytest.mark.parametrize("status", ["shipped", "Reserved", "", "reserved "])
def test_the_check_refuses_a_status_not_listed(engine, make_drop, status):
    order = engine.purchase(make_drop(), "ann").order
    with pytest.raises(ConstraintError, match="CHECK"):
        engine.write(lambda tx: tx.execute("UPDATE orders SET status = ? WHERE id = ?", (status, order["id"])))
    assert engine.get_order_by_id(order["id"])["status"] == "reserved"


def insert_event(engine, action, reference):
    engine.write(lambda tx: tx.execute(
        "INSERT INTO payment_events (order_code, reference, order_id, action, payload, received_at)"
        " VALUES (1, ?, NULL, ?, '{}', 0)", (reference, action)))


def test_the_check_takes_exactly_the_listed_actions(engine):
    for n, action in enumerate(_engine.EVENT_ACTIONS):
        insert_event(engine, action, f"ref-{n}")
    for action in ("refunded", "PAID", ""):
        with pytest.raises(ConstraintError, match="CHECK"):
            insert_event(engine, action, "ref-bad")
    assert [row["action"] for row in engine.read("SELECT action FROM payment_events ORDER BY id")] == \
        list(_engine.EVENT_ACTIONS)
