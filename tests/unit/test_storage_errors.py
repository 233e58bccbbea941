"""Storage failures surface as typed exceptions, never a crash or a silent loss."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from dropsvc import (
    CorruptError,
    Engine,
    EngineClosedError,
    MigrationError,
    NotADatabaseError,
    ReadOnlyError,
    StorageError,
    _engine,
)


def test_not_a_database(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an sqlite file, just some bytes " * 200)
    with pytest.raises(NotADatabaseError) as caught:
        Engine(path)
    assert isinstance(caught.value, CorruptError) and isinstance(caught.value, StorageError)
    assert caught.value.code == 26  # SQLITE_NOTADB


def test_corrupt_database(tmp_path):
    path = tmp_path / "corrupt.db"
    with Engine(path) as engine:
        engine.create_drop(slug="a", name="A", price=1, total_stock=1)
    data = bytearray(path.read_bytes())
    # keep the header, wreck every b-tree page after it
    for offset in range(100, len(data)):
        data[offset] = 0xA5
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.remove(str(path) + suffix)
    with pytest.raises(CorruptError):
        with Engine(path) as engine:
            engine.list_drops()


def test_read_only_file():
    """A write-protected file: opening for writing fails with ReadOnlyError.

    Root writes through file permissions, so as root the check runs in a
    child process that drops to the unprivileged 'nobody' user first.
    """
    folder = tempfile.mkdtemp(prefix="dropsvc-ro-")  # /tmp itself is open to 'nobody'
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "ro.db")
    Engine(path).close()
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    script = (
        "import os, sys\n"
        "from dropsvc import Engine, ReadOnlyError\n"
        "if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    Engine(sys.argv[1])\n"
        "except ReadOnlyError as error:\n"
        "    print('ReadOnlyError', error.code)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                          cwd=root, env={**os.environ, "PYTHONPATH": root}, timeout=60)
    shutil.rmtree(folder)
    assert done.stdout.strip() == "ReadOnlyError 8", done.stderr


def test_writer_in_read_only_mode_refuses_writes_typed(engine, make_drop):
    drop_id = make_drop()
    engine.write(lambda tx: tx.execute("PRAGMA query_only = 1"))
    with pytest.raises(ReadOnlyError):
        engine.purchase(drop_id, "alice")
    with pytest.raises(ReadOnlyError):
        engine.create_drop(slug="other", name="B", price=1, total_stock=1)
    assert engine.get_drop(drop_id)["sold"] == 0
    assert len(engine.list_drops()) == 1


def test_cannot_open_a_directory_path(tmp_path):
    with pytest.raises(StorageError):
        Engine(tmp_path / "missing-dir" / "x.db")


def test_schema_newer_than_engine_is_refused(tmp_path):
    path = tmp_path / "future.db"
    with Engine(path) as engine:
        engine.write(lambda tx: tx.execute(f"PRAGMA user_version = {_engine.SCHEMA_VERSION + 1}"))
    with pytest.raises(MigrationError, match="schema version"):
        Engine(path)


def test_unmigrated_file_needs_migrate(tmp_path):
    path = tmp_path / "old.db"
    with Engine(path) as engine:
        engine.write(lambda tx: tx.execute("PRAGMA user_version = 0"))
    with pytest.raises(MigrationError, match="dropsvc migrate"):
        Engine(path, migrate=False)


def test_closed_engine_raises_typed(tmp_path):
    engine = Engine(tmp_path / "c.db")
    drop_id = engine.create_drop(slug="a", name="A", price=1, total_stock=1)
    engine.close()
    engine.close()  # idempotent
    for call in (lambda: engine.purchase(drop_id, "a"), lambda: engine.get_drop(drop_id),
                 lambda: engine.write(lambda tx: None), lambda: engine.read("SELECT 1")):
        with pytest.raises(EngineClosedError):
            call()


def test_sql_errors_are_typed_and_roll_back(engine, make_drop):
    drop_id = make_drop()
    with pytest.raises(_engine.SQLError, match="no such table"):
        engine.write(lambda tx: (tx.execute("UPDATE drops SET name = 'x'"), tx.execute("SELECT * FROM nope")))
    assert engine.get_drop(drop_id)["name"] == "Test sneaker"


def test_error_class_per_family():
    assert _engine.error_class(5) is _engine.BusyError
    assert _engine.error_class(5 | (1 << 8)) is _engine.BusyError  # SQLITE_BUSY_RECOVERY
    assert _engine.error_class(13) is _engine.FullError
    assert _engine.error_class(10 | (12 << 8)) is _engine.DiskIOError
    assert _engine.error_class(8) is _engine.ReadOnlyError
    assert _engine.error_class(11) is _engine.CorruptError


def test_error_classes_come_from_one_table():
    """Every row of ERROR_TABLE is a class of the module, under its base, mapped from its code."""
    assert len(_engine.ERROR_TABLE) == len({code for code, *_ in _engine.ERROR_TABLE}) >= 22
    for code, name, doc, base in _engine.ERROR_TABLE:
        cls = getattr(_engine, name)
        assert cls.__bases__ == (getattr(_engine, base),) and cls.__doc__ == doc
        assert cls.__module__ == "dropsvc._engine" and cls.__name__ == name
        assert _engine.error_class(code) is cls
        assert issubclass(cls, StorageError)
    assert issubclass(NotADatabaseError, CorruptError)
    assert MigrationError.__bases__ == (StorageError,) == EngineClosedError.__bases__
    assert _engine.error_class(0x1FF) is StorageError  # no family of its own: the base class
