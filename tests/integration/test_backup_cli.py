"""``dropsvc backup`` / ``dropsvc restore`` (SPEC 10) and the ``payos-sandbox`` subcommand.

The backup runs while a herd buys over HTTP from a running ``dropsvc serve``:
the copy is one consistent snapshot, so its invariant holds however the
purchases interleave with it.
"""

from __future__ import annotations

import gc
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from live_server import REPO, Api, clean_env, db_snapshot, run_cli

from dropsvc import Engine

HERD = 8


def snapshot(path: Path) -> dict[str, list[tuple]]:
    """``db_snapshot``, with its connection really closed: ``with sqlite3.connect()`` only commits,
    and a connection left to the garbage collector would make ``restore`` see the file as in use."""
    rows = db_snapshot(path)
    gc.collect()
    return rows


def herd(server, drop_id: int, stop: threading.Event, refs: list[str]) -> list[threading.Thread]:
    """HERD keep-alive clients buying one unit each, as different shoppers, until ``stop``."""
    def shopper(index: int) -> None:
        client = Api(server)
        try:
            while not stop.is_set():
                reply = client.buy(drop_id, f"herd-{index}-{uuid.uuid4().hex[:10]}")
                assert reply.status in (201, 409), reply.body
                if reply.status == 201:
                    refs.append(reply.json["public_ref"])
        finally:
            client.close()

    threads = [threading.Thread(target=shopper, args=(i,), daemon=True) for i in range(HERD)]
    for thread in threads:
        thread.start()
    return threads


def make_db(path: Path, buyers: int = 3) -> list[str]:
    """A database with one drop and ``buyers`` orders; their public refs."""
    with Engine(path) as engine:
        drop_id = engine.create_drop(slug="backup-drop", name="Backup drop", price=100_000, total_stock=50)
        return [engine.purchase(drop_id, f"buyer-{i}").order["public_ref"] for i in range(buyers)]


def test_backup_while_a_herd_buys_is_consistent(start_server, tmp_path):
    server = start_server()
    api = Api(server)
    drop = api.create_drop(total_stock=100_000, per_user_limit=1)
    stop, refs = threading.Event(), []
    threads = herd(server, drop["id"], stop, refs)
    try:
        while len(refs) < 200:  # the sale is under way
            time.sleep(0.01)
        copies = [tmp_path / f"copy-{n}.db" for n in range(3)]
        for copy in copies:
            done = run_cli("backup", "--db", str(server.db_path), str(copy))
            assert done.returncode == 0, done.stderr
            lines = done.stdout.splitlines()
            assert lines[0] == str(copy) and "invariant: ok" in lines[1], done.stdout
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert server.alive()
    sold = []
    for copy in copies:
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(copy.name)) == [copy.name]
        with Engine(copy, migrate=False) as engine:
            assert engine.check() == []
            [row] = engine.read("SELECT sold FROM drops WHERE id = ?", (drop["id"],))
            sold.append(row["sold"])
            assert engine.get_order(refs[0]) is not None  # the secrets came along: refs still resolve
    assert 200 <= sold[0] <= sold[1] <= sold[2] <= len(refs), (sold, len(refs))


def test_backup_refuses_to_overwrite_unless_forced(tmp_path):
    db, target = tmp_path / "shop.db", tmp_path / "backup.db"
    make_db(db)
    target.write_bytes(b"precious")
    refused = run_cli("backup", "--db", str(db), str(target))
    assert refused.returncode == 1
    assert "exists" in refused.stderr and "--force" in refused.stderr
    assert target.read_bytes() == b"precious"
    forced = run_cli("backup", "--db", str(db), str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert snapshot(target) == snapshot(db)


def test_backup_of_a_missing_database_exits_2(tmp_path):
    done = run_cli("backup", "--db", str(tmp_path / "missing.db"), str(tmp_path / "copy.db"))
    assert done.returncode == 2
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "copy.db").exists()


def test_backup_reports_a_broken_invariant(tmp_path):
    db, target = tmp_path / "shop.db", tmp_path / "copy.db"
    make_db(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE drops SET sold = sold + 1")  # a unit sold without an order
    done = run_cli("backup", "--db", str(db), str(target))
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == str(target) and "BROKEN" in done.stdout and "drop 1" in done.stdout


def test_restore_roundtrip(start_server, tmp_path):
    db, backup = tmp_path / "shop.db", tmp_path / "backup.db"
    refs = make_db(db)
    assert run_cli("backup", "--db", str(db), str(backup)).returncode == 0
    at_backup = snapshot(db)
    with Engine(db) as engine:  # life goes on after the backup: a cancel and two more sales
        engine.cancel(refs[0])
        later = [engine.purchase(1, f"later-{i}").order["public_ref"] for i in range(2)]
    assert snapshot(db) != at_backup

    done = run_cli("restore", "--db", str(db), str(backup))
    assert done.returncode == 0, done.stderr
    assert "replaced: 1 drop, 5 orders" in done.stdout and "invariant: ok" in done.stdout
    assert snapshot(db) == at_backup
    [kept] = tmp_path.glob("shop.db.replaced-*")  # what it replaced is kept beside it
    assert len(snapshot(kept)["orders"]) == 5
    assert run_cli("check", "--db", str(db)).stdout.strip() == "ok"

    # the restored file serves: the backup's orders resolve, the later ones are gone
    server = start_server(db_path=db)
    api = Api(server)
    assert api.get(f"/api/orders/{refs[0]}").json["status"] == "reserved"
    assert api.get(f"/api/orders/{later[0]}").status == 404
    api.close()


def test_restore_refuses_a_broken_backup(tmp_path):
    db, backup = tmp_path / "shop.db", tmp_path / "backup.db"
    make_db(db, buyers=2)
    assert run_cli("backup", "--db", str(db), str(backup)).returncode == 0
    with sqlite3.connect(backup) as conn:
        conn.execute("UPDATE orders SET status = 'cancelled' WHERE id = 1")  # stock never given back
    before = snapshot(db)
    done = run_cli("restore", "--db", str(db), str(backup))
    assert done.returncode == 1
    assert "invariant is broken" in done.stderr and "drop 1" in done.stdout
    assert snapshot(db) == before and not list(tmp_path.glob("shop.db.replaced-*"))


def test_restore_refuses_while_the_service_runs(start_server, tmp_path):
    server = start_server()
    backup = tmp_path / "backup.db"
    assert run_cli("backup", "--db", str(server.db_path), str(backup)).returncode == 0
    done = run_cli("restore", "--db", str(server.db_path), str(backup))
    assert done.returncode == 1 and "stop it first" in done.stderr
    assert server.alive()


def test_restore_of_a_missing_file_exits_2(tmp_path):
    done = run_cli("restore", "--db", str(tmp_path / "shop.db"), str(tmp_path / "nope.db"))
    assert done.returncode == 2 and "nope.db" in done.stderr
    assert not (tmp_path / "shop.db").exists()


def test_payos_sandbox_subcommand_starts_and_stops(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "dropsvc", "payos-sandbox", "--port", "0"], cwd=REPO,
                               env=clean_env(), stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        event = json.loads(line)
        assert event["event"] == "payos_sandbox_listening", line
        assert event["fields"]["url"].startswith("http://127.0.0.1:")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
