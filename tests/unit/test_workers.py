"""Background work: expiry and checkpoints, in exactly one process."""

from __future__ import annotations

import time

from child_python import spawn_python

from dropsvc import Engine
from dropsvc.run.background import BackgroundWorker


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_worker_expires_holds_and_gives_stock_back(engine, make_drop):
    drop_id = make_drop(total_stock=3, hold_seconds=1)
    engine.purchase(drop_id, "alice")
    worker = BackgroundWorker(engine, expiry_interval=0.05).start()
    try:
        assert wait_for(lambda: engine.get_drop(drop_id)["sold"] == 0, timeout=5)
        assert worker.is_leader and worker.expired_total == 1
    finally:
        worker.stop()
    assert not worker.is_leader


def test_checkpoint_keeps_the_wal_bounded(tmp_path):
    with Engine(tmp_path / "wal.db", autocheckpoint=0, wal_limit_bytes=64 * 1024) as engine:
        drop_id = engine.create_drop(slug="w", name="W", price=1, total_stock=10**6, per_user_limit=100)
        for n in range(3000):
            engine.purchase(drop_id, f"u{n}")
        wal = tmp_path / "wal.db-wal"
        grown = wal.stat().st_size
        busy, frames, copied = BackgroundWorker(engine).checkpoint()
        assert not busy and frames == copied > 0
        engine.purchase(drop_id, "after")  # the write that starts the WAL over cuts the file back
        assert wal.stat().st_size <= 64 * 1024 < grown
        locked = engine.counters()["lock_acquisitions"]
        engine.checkpoint("PASSIVE")
        assert engine.counters()["lock_acquisitions"] == locked  # PASSIVE never takes the write lock
        assert engine.check() == []


BACKGROUND = """
import sys, time
from dropsvc import Engine
from dropsvc.run.background import BackgroundWorker
engine = Engine(sys.argv[1])
worker = BackgroundWorker(engine, expiry_interval=0.05).start()
time.sleep(0.5)
print("leader" if worker.is_leader else "follower", flush=True)
time.sleep(600)
"""


def test_only_one_process_runs_background_work_and_another_takes_over(db_path):
    Engine(db_path).close()
    first = spawn_python(BACKGROUND, db_path, capture_stderr=False)
    try:
        assert first.stdout.readline().strip() == "leader"
        with Engine(db_path) as engine:
            local = BackgroundWorker(engine, expiry_interval=0.05).start()
            try:
                time.sleep(0.3)
                assert not local.is_leader
                first.kill()
                first.wait(timeout=10)
                assert wait_for(lambda: local.is_leader, timeout=5)
            finally:
                local.stop()
    finally:
        if first.poll() is None:
            first.kill()
        first.stdout.close()
