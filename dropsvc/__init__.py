"""limited-drop: sell a fixed stock to a thundering herd without overselling."""

from dropsvc._engine import (
    SQLITE_VERSION,
    BusyError,
    ConstraintError,
    CorruptError,
    EngineClosedError,
    MigrationError,
    NotADatabaseError,
    ReadOnlyError,
    Result,
    StorageError,
)
from dropsvc.ledger import Engine

__all__ = [
    "SQLITE_VERSION",
    "BusyError",
    "ConstraintError",
    "CorruptError",
    "Engine",
    "EngineClosedError",
    "MigrationError",
    "NotADatabaseError",
    "ReadOnlyError",
    "Result",
    "StorageError",
]
