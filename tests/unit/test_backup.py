"""Online backup and restore through the SQLite backup API."""

from __future__ import annotations

import threading

import pytest

from dropsvc import Engine, StorageError


def test_backup_while_selling_is_consistent(engine, make_drop, tmp_path):
    drop_id = make_drop(total_stock=5000, per_user_limit=1)
    stop = threading.Event()

    def sell() -> None:
        n = 0
        while not stop.is_set():
            engine.purchase(drop_id, f"herd-{n}")
            n += 1

    sellers = [threading.Thread(target=sell) for _ in range(4)]
    for thread in sellers:
        thread.start()
    try:
        copies = [tmp_path / f"backup-{n}.db" for n in range(3)]
        for copy in copies:
            engine.backup(copy)
    finally:
        stop.set()
        for thread in sellers:
            thread.join()
    for copy in copies:
        with Engine(copy) as restored:
            assert restored.check() == []
            assert restored.order_code_offset == engine.order_code_offset
            sold = restored.get_drop(drop_id)["sold"]
            assert sold == restored.read("SELECT COUNT(*) AS n FROM orders")[0]["n"]


def test_restore_replaces_the_content(engine, make_drop, tmp_path):
    drop_id = make_drop(total_stock=3)
    engine.purchase(drop_id, "before")
    engine.backup(tmp_path / "snap.db")
    engine.purchase(drop_id, "after")
    assert engine.get_drop(drop_id)["sold"] == 2
    engine.restore(tmp_path / "snap.db")
    assert engine.get_drop(drop_id)["sold"] == 1
    assert engine.purchase(drop_id, "again").ok


def test_restore_from_nothing_is_a_typed_error(engine, tmp_path):
    with pytest.raises(StorageError):
        engine.restore(tmp_path / "missing.db")
