"""Background work: expiry, queue admission and checkpoints, in exactly one process."""

from __future__ import annotations

import time
from pathlib import Path

from child_python import spawn_python

from dropsvc import Engine
from dropsvc.drops import now_ms
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


class Recorder:
    """A stand-in for the worker's logger: every line as (event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.lines.append((event, fields))

    error = debug = info


def queue_line(engine: Engine, buyers: int, **fields) -> int:
    """A queue drop starting in 300 ms, ``buyers`` joined and checked in."""
    drop_id = engine.create_drop(**{"slug": "line", "name": "Line", "price": 1, "total_stock": 1, "admission": "queue",
                                    "starts_at": now_ms() + 300, **fields})
    for n in range(buyers):
        ticket = engine.join_line(drop_id, f"b{n}")[1]
        assert engine.check_in(drop_id, ticket["ticket_id"], f"b{n}")["checked_in_at"] is not None
    return drop_id


def states(engine: Engine, drop_id: int) -> list[str]:
    return [row["state"] for row in engine.read("SELECT state FROM tickets WHERE drop_id = ? ORDER BY position",
                                                (drop_id,))]


def test_worker_closes_the_line_within_a_second_and_admits(engine):
    drop_id = queue_line(engine, 3, total_stock=2, admission_margin=0)
    starts_at = engine.get_drop(drop_id)["starts_at"]
    log = Recorder()
    worker = BackgroundWorker(engine, log=log).start()
    try:
        assert wait_for(lambda: engine.queue_state(drop_id)["admitted_through"] == 2, timeout=5)
    finally:
        worker.stop()
    closed_at = engine.read("SELECT closed_at FROM queue_closes")[0]["closed_at"]
    assert starts_at <= closed_at < starts_at + 1000
    assert states(engine, drop_id) == ["admitted", "admitted", "waiting"] and worker.admitted_total == 2
    batches = [fields for event, fields in log.lines if event == "queue_admission"]
    assert batches == [{"drop_id": drop_id, "closed": 1, "admitted": 2, "absent": 0, "lapsed": 0, "returned": 0,
                        "sold_out": 0, "ended": 0}]


def test_a_drop_whose_pass_fails_is_logged_and_the_others_are_admitted(engine, monkeypatch):
    broken = queue_line(engine, 1, slug="broken", starts_at=now_ms() - 1)
    fine = queue_line(engine, 1, slug="fine", starts_at=now_ms() - 1)
    real = engine.admit_drop

    def admit_drop(drop_id: int, now: int | None = None) -> dict[str, int]:
        if drop_id == broken:
            raise RuntimeError("disk on fire")
        return real(drop_id, now)

    monkeypatch.setattr(engine, "admit_drop", admit_drop)
    log = Recorder()
    worker = BackgroundWorker(engine, log=log)
    assert list(worker.admit()) == [fine] and states(engine, fine) == ["admitted"]
    assert ("queue_admission_failed", {"drop_id": broken, "error": "RuntimeError", "detail": "disk on fire"}) \
        in log.lines
    assert states(engine, broken) == ["waiting"]


def test_a_takeover_mid_drop_continues_where_the_line_was(db_path):
    with Engine(db_path) as engine:
        drop_id = queue_line(engine, 6, total_stock=2, admission_margin=1, admit_seconds=600)
        first = spawn_python(BACKGROUND, db_path, capture_stderr=False)
        try:
            assert first.stdout.readline().strip() == "leader"
            assert wait_for(lambda: engine.queue_state(drop_id)["admitted_through"] == 3, timeout=5)
            windows = engine.read("SELECT ticket_id, admitted_until FROM tickets WHERE state = 'admitted'")
            local = BackgroundWorker(engine, expiry_interval=0.05).start()
            try:
                first.kill()
                first.wait(timeout=10)
                assert wait_for(lambda: local.is_leader, timeout=5)
                leaving = engine.read("SELECT ticket_id, buyer FROM tickets WHERE position = 1")[0]
                assert engine.leave_line(drop_id, leaving["ticket_id"], leaving["buyer"]) == "ok"
                time.sleep(1.2)  # passes of the new leader: 2 units left, 2 admitted, the first wave stays done
                assert states(engine, drop_id) == ["left", "admitted", "admitted", "waiting", "waiting", "waiting"]
                engine.update_drop(drop_id, total_stock=3)  # a unit more: the next ticket
                assert wait_for(lambda: engine.queue_state(drop_id)["admitted_through"] == 4, timeout=5)
                assert states(engine, drop_id) == ["left", "admitted", "admitted", "admitted", "waiting", "waiting"]
            finally:
                local.stop()
            kept = {row["ticket_id"]: row["admitted_until"] for row in windows}
            now = {row["ticket_id"]: row["admitted_until"]
                   for row in engine.read("SELECT ticket_id, admitted_until FROM tickets WHERE state = 'admitted'")}
            still = {ticket_id: until for ticket_id, until in now.items() if ticket_id in kept}
            assert len(still) == 2 and still == {ticket_id: kept[ticket_id] for ticket_id in still}  # windows kept
            assert len(engine.admissions_of(drop_id)) == 4 and len(engine.read("SELECT * FROM queue_closes")) == 1
            assert engine.check() == []
        finally:
            if first.poll() is None:
                first.kill()
            first.stdout.close()


def test_idle_admission_passes_take_no_write_and_a_change_is_admitted_within_a_second(engine):
    drop_id = queue_line(engine, 3, total_stock=1, admission_margin=0, admit_seconds=600)
    worker = BackgroundWorker(engine, checkpoints=False).start()  # admission every 0.5 s
    try:
        assert wait_for(lambda: states(engine, drop_id) == ["admitted", "waiting", "waiting"], timeout=5)
        time.sleep(0.6)  # the pass after the first wave: its progress recorded
        taken, wal = engine.counters()["lock_acquisitions"], Path(engine.path + "-wal").stat().st_size
        time.sleep(1.6)  # three idle passes or more
        assert engine.counters()["lock_acquisitions"] == taken  # not one write transaction
        assert Path(engine.path + "-wal").stat().st_size == wal
        first = engine.read("SELECT ticket_id, buyer FROM tickets WHERE state = 'admitted'")[0]
        assert engine.leave_line(drop_id, first["ticket_id"], first["buyer"]) == "ok"  # its unit comes back
        left = time.monotonic()
        assert wait_for(lambda: states(engine, drop_id) == ["left", "admitted", "waiting"], timeout=5)
        assert time.monotonic() - left < 1.0
    finally:
        worker.stop()
