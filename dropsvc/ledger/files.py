"""A database file read without an engine (backups, restores): no lock file, no migration,
nothing left beside it. Its invariant and what it holds, through the stdlib's sqlite3."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from dropsvc.ledger.invariant import Read, describe_counts, invariant_problems


@contextlib.contextmanager
def no_new_sidecars(path: str) -> Iterator[None]:
    """Remove the ``-wal``/``-shm`` files that reading ``path`` created (and left empty).

    SQLite creates them beside a WAL-mode file even for a read-only reader;
    a backup file should stay one file.
    """
    sidecars = [path + "-wal", path + "-shm"]
    created = [side for side in sidecars if not os.path.exists(side)]
    try:
        yield
    finally:
        wal_empty = not os.path.exists(sidecars[0]) or os.path.getsize(sidecars[0]) == 0
        for side in created if wal_empty else ():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(side)


@contextlib.contextmanager
def read_only(path: str) -> Iterator[sqlite3.Connection]:
    """A stdlib read-only connection (rows as sqlite3.Row) that leaves the file as it found it."""
    with no_new_sidecars(path), contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        yield db


def _reader(db: sqlite3.Connection) -> Read:
    def read(sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in db.execute(sql, params)]
    return read


def file_problems(path: str) -> list[str]:
    """The invariant check of a database file, read-only (no lock file, no migration).

    It is the engine's own check, run over a stdlib connection; a file that
    is unreadable or fails SQLite's quick_check is a problem too.
    """
    try:
        with read_only(path) as db:
            integrity = db.execute("PRAGMA quick_check").fetchone()[0]
            if integrity != "ok":
                return [f"{path}: integrity: {integrity}"]
            return invariant_problems(_reader(db))
    except sqlite3.Error as error:
        return [f"{path}: not a readable dropsvc database: {error}"]


def describe_file(path: str) -> str:
    """``3 drops, 120 orders`` (what a database holds), read-only."""
    try:
        with read_only(path) as db:
            return describe_counts(_reader(db))
    except sqlite3.Error:
        return "nothing readable"
