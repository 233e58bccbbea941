"""The fault-injecting VFS (_engine/fault_vfs.c) under the engine, and the lock file after a power loss."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from child_python import spawn_python
from dropsvc._engine import DiskIOError, FullError

from dropsvc import Engine, _engine


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Path]:
    """A database path; the fault VFS registered (powersafe, 4096-byte sectors), no fault armed."""
    _engine.fault_vfs_register(4096, True)
    _engine.fault_clear()
    yield tmp_path / "shop.db"
    _engine.fault_clear()
    _engine.fault_vfs_register(4096, True)


def open_faulty(path: Path, synchronous: str = "FULL") -> Engine:
    return Engine(path, base_vfs=_engine.FAULT_VFS, synchronous=synchronous, readers=2)


@pytest.mark.parametrize("powersafe", [True, False])
@pytest.mark.parametrize(("kind", "full", "error"), [("write", False, DiskIOError), ("write", True, FullError),
                                                     ("sync", False, DiskIOError)])
def test_an_injected_error_is_typed_and_the_engine_goes_on_once_it_clears(faulty, kind, full, error, powersafe):
    _engine.fault_vfs_register(4096, powersafe)
    with open_faulty(faulty) as engine:
        drop = engine.create_drop(slug="s", name="S", price=10, total_stock=5)
        assert engine.purchase(drop, "u0").ok
        _engine.fault_arm(kind, 1, persistent=True, full=full)
        with pytest.raises(error):
            engine.purchase(drop, "u1", idempotency_key="k1")
        assert _engine.fault_counts()["fired"] >= 1
        _engine.fault_clear()
        # the same engine, no restart; the failed purchase is there (a failed sync after the commit
        # frame was written) or not, and the retry with its key says which
        retry = engine.purchase(drop, "u1", idempotency_key="k1")
        assert retry.outcome in ("ok", "duplicate")
        assert engine.purchase(drop, "u2").ok
        assert engine.check() == []
    with Engine(faulty) as engine:
        assert engine.read("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
        assert engine.get_drop(drop)["sold"] == 3


def wal_after_purchases(path: Path, sector: int, powersafe: bool) -> int:
    """The WAL's size after five FULL purchases on a device of that sector size."""
    _engine.fault_vfs_register(sector, powersafe)
    with open_faulty(path) as engine:
        drop = engine.create_drop(slug="s", name="S", price=10, total_stock=50)
        for n in range(5):
            assert engine.purchase(drop, f"u{n}").ok
        return Path(f"{path}-wal").stat().st_size


@pytest.mark.parametrize("sector", [512, 4096])
def test_without_powersafe_overwrite_sqlite_pads_commits_to_the_reported_sector(faulty, sector):
    padded = wal_after_purchases(faulty, sector, False)
    plain = wal_after_purchases(faulty.with_name("psow.db"), sector, True)
    frame = 24 + 1024
    assert padded > plain
    if sector == 4096:  # whole frames up to the sector boundary: more of them, the larger the sector
        assert padded - plain >= 5 * (sector // frame - 1) * frame


def test_reads_and_the_backup_stand_on_the_base_vfs(faulty, tmp_path):
    with open_faulty(faulty) as engine:
        drop = engine.create_drop(slug="s", name="S", price=10, total_stock=5)
        _engine.fault_arm("read", 1, persistent=True)
        with pytest.raises(DiskIOError):
            engine.read("SELECT count(*) AS n FROM orders")
        _engine.fault_arm("write", 1, persistent=True)
        with pytest.raises(DiskIOError):
            engine.backup(tmp_path / "copy.db")
        _engine.fault_clear()
        assert engine.get_drop(drop)["sold"] == 0
        engine.backup(tmp_path / "copy2.db")
    with Engine(tmp_path / "copy2.db") as copy:
        assert copy.get_drop(drop)["sold"] == 0


def test_the_power_model_keeps_an_image_of_what_was_synced(faulty):
    _engine.fault_power_model(0, tracking=True)
    try:
        with open_faulty(faulty, "FULL") as engine:
            drop = engine.create_drop(slug="s", name="S", price=10, total_stock=5)
            assert engine.purchase(drop, "u0").ok
            wal = Path(f"{faulty}-wal")
            assert Path(f"{wal}~synced").read_bytes() == wal.read_bytes()  # FULL: synced at commit
            assert not Path(f"{wal}~dirty").exists()
    finally:
        _engine.fault_power_model(0)


HOLD_AND_COPY = """
import shutil, sys
from dropsvc import Engine
db, image = sys.argv[1], sys.argv[2]
with Engine(db) as engine:
    engine.write(lambda tx: shutil.copyfile(db + "-lock", image))  # the page as it is while held
"""

OPEN_AND_WRITE = """
import sys
from dropsvc import Engine, _engine
if sys.argv[2] != "-":
    _engine.set_boot_id_for_tests(sys.argv[2])
with Engine(sys.argv[1]) as engine:
    engine.write_round_trip()
print("wrote")
"""


def test_a_lock_page_held_by_a_thread_of_another_boot_does_not_hang_the_next_writer(tmp_path):
    db = tmp_path / "shop.db"
    Engine(db).close()
    image = tmp_path / "held-lock"
    assert spawn_python(HOLD_AND_COPY, db, image).wait(timeout=30) == 0
    shutil.copyfile(image, f"{db}-lock")  # what a disk may hold after the power went out
    # the same boot: nothing can tell the page is stale (the kernel never saw its owner die), so
    # the writer waits: the check below is not vacuous
    same_boot = spawn_python(OPEN_AND_WRITE, db, "-")
    with pytest.raises(subprocess.TimeoutExpired):
        same_boot.communicate(timeout=2)
    same_boot.kill()
    same_boot.wait()
    shutil.copyfile(image, f"{db}-lock")
    rebooted = spawn_python(OPEN_AND_WRITE, db, "after-a-power-loss")
    out, err = rebooted.communicate(timeout=30)
    assert rebooted.returncode == 0 and out.strip() == "wrote", err


def open_in_a_thread(path: Path) -> list[object]:
    """Open (and close) the engine on the fault VFS in a thread; ["opened"], [the error], or [] if it hung."""
    outcome: list[object] = []

    def open_once() -> None:
        try:
            open_faulty(path).close()
            outcome.append("opened")
        except DiskIOError as error:
            outcome.append(error)

    opener = threading.Thread(target=open_once, daemon=True)
    opener.start()
    opener.join(timeout=10)
    return outcome


def test_an_open_that_fails_at_any_read_raises_and_never_hangs(faulty):
    """Every read of an open failing in turn (the writer's, then each reader's): a typed error, no
    hang (a reader that failed to open used to leave close() waiting for it), and a clean file."""
    Engine(faulty).close()
    n, failures = 0, 0
    while True:
        n += 1
        _engine.fault_arm("read", n, persistent=True)
        outcome = open_in_a_thread(faulty)
        _engine.fault_clear()
        assert outcome, f"opening hung with read {n} failing"
        if outcome == ["opened"]:
            break
        failures += 1
    assert failures >= 3  # the writer's reads and at least one reader's
    with Engine(faulty) as engine:
        assert engine.read("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
