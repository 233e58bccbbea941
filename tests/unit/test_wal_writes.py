"""The writer's VFS layer (_engine/wal_vfs.c): a commit's WAL frames go out as one write.

What must hold: every other handle, in this process or another, sees each commit whole as
soon as it is acknowledged; a transaction larger than the gathering buffer lands whole; a
process killed mid-stream loses nothing it acknowledged and leaves a sound file.
"""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest
from child_python import spawn_python

from dropsvc import Engine


def wal_counts(engine: Engine) -> tuple[int, int, int]:
    counters = engine.counters()
    return counters["wal_commits_one_write"], counters["wal_writes"], counters["transactions"]


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_each_purchase_commit_is_one_wal_write(db_path, synchronous):
    with Engine(db_path, synchronous=synchronous, autocheckpoint=0) as engine:
        drop_id = engine.create_drop(slug="one", name="One", price=1, total_stock=1000)
        commits, writes, transactions = wal_counts(engine)
        for n in range(200):
            assert engine.purchase(drop_id, f"u{n}").ok
        commits2, writes2, transactions2 = wal_counts(engine)
        assert transactions2 - transactions == 200
        assert commits2 - commits == 200  # each commit went out whole, in one write
        assert writes2 - writes == 200  # and nothing else was written meanwhile
        assert engine.check() == []


def test_other_handles_see_each_acknowledged_purchase_at_once(db_path):
    with Engine(db_path, autocheckpoint=0) as engine:
        drop_id = engine.create_drop(slug="seen", name="Seen", price=1, total_stock=500)
        outside = sqlite3.connect(db_path)  # the stdlib's own SQLite handle: not our VFS
        try:
            for n in range(1, 101):
                assert engine.purchase(drop_id, f"u{n}").ok
                # the engine's readers and a foreign handle both find the commit in the file
                assert engine.get_drop(drop_id)["sold"] == n
                assert outside.execute("SELECT sold FROM drops WHERE id = ?", (drop_id,)).fetchone() == (n,)
        finally:
            outside.close()


def test_a_transaction_larger_than_the_buffer_lands_whole(db_path):
    with Engine(db_path, autocheckpoint=0) as engine:
        def many(tx):
            for n in range(400):  # ~400 KiB of pages, far past the 64 KiB gathered at once
                tx.execute("INSERT INTO drops (slug, name, description, price, total_stock, starts_at, created_at)"
                           " VALUES (?, ?, ?, 1, 1, 0, 0)", (f"d{n}", f"Drop {n}", "x" * 900))
        engine.write(many)
        assert engine.read("SELECT count(*) AS n FROM drops", ()) == [{"n": 400}]
    with sqlite3.connect(db_path) as outside:
        assert outside.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert outside.execute("SELECT count(*), sum(length(description)) FROM drops").fetchone() == (400, 400 * 900)


BUYER = """
import sys
from dropsvc import Engine
engine = Engine(sys.argv[1], autocheckpoint=0)
n = 0
while True:
    if engine.purchase(int(sys.argv[2]), f"u{n}").ok:
        print(n, flush=True)  # acknowledged: the commit is in the WAL
    n += 1
"""


def test_a_process_killed_mid_stream_keeps_every_acknowledged_purchase(db_path):
    with Engine(db_path) as engine:
        drop_id = engine.create_drop(slug="kill", name="Kill", price=1, total_stock=10**6)
    buyer = spawn_python(BUYER, db_path, drop_id, capture_stderr=False)
    acknowledged = []
    try:
        for line in buyer.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) == 2000:
                os.kill(buyer.pid, signal.SIGKILL)
                break
    finally:
        if buyer.poll() is None:
            buyer.kill()
        buyer.wait(timeout=10)
        buyer.stdout.close()
    with Engine(db_path) as engine:
        sold = engine.get_drop(drop_id)["sold"]
        assert sold >= len(acknowledged) == 2000  # killed between purchases or inside one: nothing lost
        users = {row["user_id"] for row in engine.read("SELECT user_id FROM orders", ())}
        assert {f"u{n}" for n in acknowledged} <= users
        assert engine.check() == []
        assert engine.read("PRAGMA integrity_check", ()) == [{"integrity_check": "ok"}]
