"""``dropsvc line``: the merchant's hand on a line from the shell, on the database file (SPEC 11)."""

from __future__ import annotations

import json
import time

import pytest
from live_server import run_cli

from dropsvc import Engine


@pytest.fixture
def line_db(tmp_path):
    """A file with a started queue drop (1 unit, no margin): three buyers joined and checked in, the
    first wave admitted one; and an open drop. (path, queue drop id, open drop id, tickets by position)."""
    db = tmp_path / "line.db"
    now = time.time_ns() // 1_000_000
    with Engine(db) as engine:
        drop_id = engine.create_drop(slug="line", name="Line", price=1, total_stock=1, admission="queue",
                                     admission_margin=0, starts_at=now - 1000)
        plain = engine.create_drop(slug="plain", name="Plain", price=1, total_stock=1)
        for buyer in ("ann", "bob", "cy"):
            ticket = engine.join_line(drop_id, buyer)[1]
            engine.check_in(drop_id, ticket["ticket_id"], buyer)
        engine.admit_drop(drop_id)
        tickets = [row["ticket_id"] for row in engine.read("SELECT ticket_id FROM tickets ORDER BY position")]
    return db, drop_id, plain, tickets


def line(db, *args: object):
    done = run_cli("line", *(str(arg) for arg in args), "--db", str(db))
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else done.stderr.strip()


def test_show_pause_resume_extend_void(line_db):
    db, drop_id, _, tickets = line_db
    status, figures = line(db, "show", drop_id)
    assert status == 0 and figures["joined"] == 3 and figures["by_state"]["admitted"] == 1
    assert line(db, "pause", drop_id)[1]["paused"] is True
    assert line(db, "resume", drop_id)[1]["paused"] is False
    status, extended = line(db, "extend", drop_id, 30)
    assert status == 0 and extended["extended"] == 1
    assert line(db, "extend", drop_id, 30, "--ticket", tickets[1]) == (1, f"dropsvc: ticket {tickets[1]} is waiting")
    status, voided = line(db, "void", drop_id, tickets[1])
    assert status == 0 and voided["state"] == "voided" and voided["ticket_id"] == tickets[1]
    assert line(db, "void", drop_id, tickets[1]) == (1, f"dropsvc: ticket {tickets[1]} is voided")
    assert line(db, "show", drop_id)[1]["by_state"]["voided"] == 1


def test_refusals(line_db):
    db, drop_id, plain, _ = line_db
    assert line(db, "show", 999) == (1, "dropsvc: no drop with id 999")
    assert line(db, "pause", plain) == (1, f"dropsvc: drop {plain} has no line: its admission is open")
    assert line(db, "void", drop_id, 99) == (1, f"dropsvc: drop {drop_id} has no ticket 99")
    assert line(db, "extend", drop_id, 0)[0] == 2
    assert line(db, "show", 0)[0] == 2  # argparse: not an id
    assert line(db, "show", drop_id)[1]["by_state"]["voided"] == 0
