"""The schema: migration 1 as files hold it, migration 2 (fair admission) bringing a version-1 file
up with its data, migration 3 (admission) a version-2 file with its line, and the values listed
once (the engine's tuples, from which the CHECK constraints are built: order statuses, payment
event actions, admissions)."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from dropsvc import ConstraintError, Engine, _engine, ledger
from dropsvc.http import openapi_schemas
from dropsvc.http.resources import admin_orders
from dropsvc.ledger import files

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


MIGRATION_2_NAMES = ("drop_seeds", "queue_closes", "tickets", "tickets_buyer", "tickets_position")
MIGRATION_3_NAMES = ("ticket_admissions", "ticket_admissions_ticket", "queue_progress", "tickets_state")
MIGRATION_4_NAMES = ("spent_challenges", "spent_challenges_expiry")
V1_SETTINGS = {"public_ref_key": "ab" * 32, "buyer_cookie_key": "cd" * 32, "order_code_offset": "7000000000"}


def schema_of(path) -> tuple[tuple[str, str, str], ...]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return tuple(db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"))


def make_version_1_file(path, script: str = "") -> None:
    """A file as the release before fair admission left it: migration 1, its settings, user_version 1,
    then ``script`` (its data)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_engine.MIGRATIONS[0])
        db.executemany("INSERT INTO settings (key, value) VALUES (?, ?)", V1_SETTINGS.items())
        db.executescript(script + "; PRAGMA user_version = 1;")
        db.commit()


def test_migration_1_makes_the_schema_old_files_hold(tmp_path):
    make_version_1_file(tmp_path / "v1.db")
    assert schema_of(tmp_path / "v1.db") == MIGRATION_1_SCHEMA


def test_a_new_file_is_a_version_1_file_migrated(db_path, tmp_path):
    Engine(db_path).close()
    make_version_1_file(tmp_path / "v1.db")
    Engine(tmp_path / "v1.db").close()
    new = schema_of(db_path)
    assert new == schema_of(tmp_path / "v1.db")
    assert [name for _, name, _ in new] == [name for _, name, _ in MIGRATION_1_SCHEMA] + list(MIGRATION_2_NAMES) \
        + list(MIGRATION_3_NAMES) + list(MIGRATION_4_NAMES)
    # migration 2 adds columns to drops and leaves every other object of migration 1 as it was
    assert new[1:len(MIGRATION_1_SCHEMA)] == MIGRATION_1_SCHEMA[1:]
    assert "admission TEXT NOT NULL DEFAULT 'open'" in new[0][2] and "commitment TEXT" in new[0][2]


V1_DATA = """
INSERT INTO drops (id, slug, name, price, total_stock, sold, per_user_limit, starts_at, created_at)
    VALUES (1, 'old', 'Old pair', 1000, 5, 3, 3, 0, 0);
INSERT INTO orders (id, drop_id, user_id, quantity, amount, status, created_at, expires_at) VALUES
    (1, 1, 'ann', 2, 2000, 'reserved', 0, 9999999999999), (2, 1, 'bob', 1, 1000, 'paid', 0, 600000),
    (3, 1, 'cat', 1, 1000, 'expired', 0, 600000);
INSERT INTO holdings (drop_id, user_id, quantity) VALUES (1, 'ann', 2), (1, 'bob', 1)
"""


def test_a_version_1_file_migrates_keeping_its_drops_and_orders(tmp_path):
    path = tmp_path / "v1.db"
    make_version_1_file(path, V1_DATA)
    with Engine(path) as engine:
        assert engine.file_schema_version() == engine.schema_version == 4
        assert engine.check() == []
        drop = engine.get_drop(1)
        assert (drop["slug"], drop["sold"], drop["total_stock"]) == ("old", 3, 5)
        assert [engine.get_order_by_id(n)["status"] for n in (1, 2, 3)] == ["reserved", "paid", "expired"]
        assert engine.order_code_offset == 7_000_000_000  # its settings kept
        assert engine.read("SELECT admission, admit_seconds, admission_margin, entries_close_at, commitment,"
                           " challenge, pow_algorithm, pow_cost FROM drops") == [{
                               "admission": "open", "admit_seconds": None, "admission_margin": None,
                               "entries_close_at": None, "commitment": None, "challenge": "none",
                               "pow_algorithm": None, "pow_cost": None}]
        assert len(engine.secret("challenge_key")) == 32  # a secret newer than the file, made at its migration
        assert engine.join_line(1, "ann") == ("no_queue", None)
        assert engine.purchase(1, "dan", 2).ok and engine.purchase(1, "eve").outcome == "sold_out"
        queued = engine.create_drop(slug="new", name="New", price=1, total_stock=3, admission="queue")
        assert engine.join_line(queued, "ann")[0] == "ok"
        assert engine.check() == []
    assert files.file_problems(str(path)) == []


V2_LINE = """
UPDATE drops SET admission = 'queue', admit_seconds = 120, admission_margin = 0;
INSERT INTO drop_seeds (drop_id, seed) VALUES (1, zeroblob(32));
INSERT INTO tickets (drop_id, ticket_id, buyer, joined_at, kind, state, checked_in_at) VALUES
    (1, 1, 'ann', 0, 'prequeue', 'waiting', 0), (1, 2, 'bob', 0, 'prequeue', 'waiting', NULL)
"""


def test_a_version_2_file_migrates_keeping_its_line(tmp_path):
    path = tmp_path / "v2.db"
    make_version_1_file(path, V1_DATA)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_engine.MIGRATIONS[1] + V2_LINE + "; PRAGMA user_version = 2;")
        db.commit()
    with Engine(path) as engine:
        assert engine.file_schema_version() == 4
        assert [(t["ticket_id"], t["first_position"]) for t in engine.read("SELECT * FROM tickets")] == \
            [(1, None), (2, None)]
        assert engine.read("SELECT * FROM ticket_admissions") == engine.read("SELECT * FROM queue_progress") == []
        engine.update_drop(1, total_stock=9)  # 6 units left, 3 a ticket: ann (checked in) in, bob skipped
        counts = engine.admit_drop(1, now=10)
        assert (counts["closed"], counts["admitted"], counts["absent"]) == (1, 1, 1)
        assert [row["ticket_id"] for row in engine.admissions_of(1)] == [1]
        assert engine.check() == []


@pytest.mark.parametrize("admission", _engine.ADMISSIONS)
def test_the_check_takes_each_admission_and_nothing_else(engine, make_drop, admission):
    drop_id = make_drop()
    engine.write(lambda tx: tx.execute("UPDATE drops SET admission = ? WHERE id = ?", (admission, drop_id)))
    for wrong in ("lottery", "Open", ""):
        with pytest.raises(ConstraintError, match="CHECK"):
            engine.write(lambda tx, value=wrong: tx.execute("UPDATE drops SET admission = ?", (value,)))


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
