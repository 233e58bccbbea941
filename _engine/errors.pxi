# Storage failures as typed exceptions: one class per SQLite primary result
# code family, built only once the GIL is back (apsw's shape).

class StorageError(Exception):
    """A storage failure: SQLite refused or could not do what was asked.

    ``code`` is the SQLite primary result code, ``extended_code`` the
    extended one, ``message`` SQLite's own text.
    """

    def __init__(self, message, code=SQLITE_ERROR, extended_code=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extended_code = code if extended_code is None else extended_code


class MigrationError(StorageError):
    """The file's schema is newer than this engine, or a migration failed."""


class EngineClosedError(StorageError):
    """The engine was closed."""


# One row per SQLite primary result code family (apsw's shape): (code, class name, docstring,
# base class name). The classes are made from it into this module's namespace, and
# error_class()/make_error() map result codes through the same table.
ERROR_TABLE = (
    (SQLITE_ERROR, "SQLError", "SQLITE_ERROR: a bad statement or a missing table.", "StorageError"),
    (SQLITE_INTERNAL, "InternalError", "SQLITE_INTERNAL.", "StorageError"),
    (SQLITE_PERM, "PermissionDeniedError", "SQLITE_PERM.", "StorageError"),
    (SQLITE_ABORT, "AbortError", "SQLITE_ABORT: the statement was rolled back.", "StorageError"),
    (SQLITE_BUSY, "BusyError", "SQLITE_BUSY: another connection holds the lock; retry later.", "StorageError"),
    (SQLITE_LOCKED, "LockedError", "SQLITE_LOCKED: a conflict inside this connection.", "StorageError"),
    (SQLITE_NOMEM, "NoMemoryError", "SQLITE_NOMEM.", "StorageError"),
    (SQLITE_READONLY, "ReadOnlyError", "SQLITE_READONLY: the file or the directory cannot be written.",
     "StorageError"),
    (SQLITE_INTERRUPT, "InterruptedError_", "SQLITE_INTERRUPT.", "StorageError"),
    (SQLITE_IOERR, "DiskIOError", "SQLITE_IOERR: the operating system reported an I/O error.", "StorageError"),
    (SQLITE_CORRUPT, "CorruptError", "SQLITE_CORRUPT: the database file is damaged.", "StorageError"),
    (SQLITE_NOTADB, "NotADatabaseError", "SQLITE_NOTADB: the file is not an SQLite database.", "CorruptError"),
    (SQLITE_FULL, "FullError", "SQLITE_FULL: the disk (or the size limit) is full.", "StorageError"),
    (SQLITE_CANTOPEN, "CantOpenError", "SQLITE_CANTOPEN: the file could not be opened.", "StorageError"),
    (SQLITE_PROTOCOL, "ProtocolError", "SQLITE_PROTOCOL: a locking protocol error.", "StorageError"),
    (SQLITE_SCHEMA, "SchemaChangedError", "SQLITE_SCHEMA.", "StorageError"),
    (SQLITE_TOOBIG, "TooBigError", "SQLITE_TOOBIG: a string or blob over SQLite's limit.", "StorageError"),
    (SQLITE_CONSTRAINT, "ConstraintError", "SQLITE_CONSTRAINT: a CHECK, UNIQUE or foreign key refused the change.",
     "StorageError"),
    (SQLITE_MISMATCH, "MismatchError", "SQLITE_MISMATCH.", "StorageError"),
    (SQLITE_MISUSE, "MisuseError", "SQLITE_MISUSE: the library was used wrongly (an engine bug).", "StorageError"),
    (SQLITE_RANGE, "RangeError", "SQLITE_RANGE: a bind index out of range.", "StorageError"),
    (SQLITE_AUTH, "AuthError", "SQLITE_AUTH.", "StorageError"),
)


cdef dict _make_error_classes():
    """The classes of ERROR_TABLE by name (StorageError included), bases before subclasses."""
    made = {"StorageError": StorageError}
    for _, name, doc, base in ERROR_TABLE:
        made[name] = type(name, (made[base],), {"__doc__": doc, "__module__": StorageError.__module__})
    return made


_error_classes = _make_error_classes()
globals().update(_error_classes)
cdef dict _ERRORS_BY_CODE = {code: _error_classes[name] for code, name, _, _ in ERROR_TABLE}
del _error_classes


cdef struct ErrorInfo:
    # Filled without the GIL where a call failed; turned into an exception
    # by raise_error() once the GIL is back.
    int rc
    char message[256]


cdef inline void capture_error(ErrorInfo *err, sqlite3 *db, int rc) noexcept nogil:
    """Record rc and SQLite's message (copied: the pointer dies with the next call)."""
    cdef const char *msg
    if err.rc != SQLITE_OK:
        return  # keep the first failure: later ones are its consequences
    err.rc = rc
    msg = sqlite3_errmsg(db) if db != NULL else sqlite3_errstr(rc)
    if msg == NULL:
        msg = sqlite3_errstr(rc)
    strncpy(err.message, msg, sizeof(err.message) - 1)
    err.message[sizeof(err.message) - 1] = 0


def error_class(int rc):
    """The exception class for an SQLite result code (primary or extended)."""
    return _ERRORS_BY_CODE.get(rc & 0xFF, StorageError)


cdef object make_error(int rc, message):
    cls = _ERRORS_BY_CODE.get(rc & 0xFF, StorageError)
    return cls(message, rc & 0xFF, rc)


cdef int raise_error(ErrorInfo *err) except -1:
    message = err.message.decode("utf-8", "replace") or sqlite3_errstr(err.rc).decode()
    raise make_error(err.rc, message)


cdef int check_rc(int rc, sqlite3 *db) except -1:
    """Raise the typed exception for rc unless it is OK/ROW/DONE (GIL held)."""
    cdef const char *msg
    if rc == SQLITE_OK or rc == SQLITE_ROW or rc == SQLITE_DONE:
        return 0
    msg = sqlite3_errmsg(db) if db != NULL else sqlite3_errstr(rc)
    raise make_error(rc, msg.decode("utf-8", "replace"))
