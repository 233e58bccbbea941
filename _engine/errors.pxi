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


class SQLError(StorageError):
    """SQLITE_ERROR: a bad statement or a missing table."""

class InternalError(StorageError):
    """SQLITE_INTERNAL."""

class PermissionDeniedError(StorageError):
    """SQLITE_PERM."""

class AbortError(StorageError):
    """SQLITE_ABORT: the statement was rolled back."""

class BusyError(StorageError):
    """SQLITE_BUSY: another connection holds the lock; retry later."""

class LockedError(StorageError):
    """SQLITE_LOCKED: a conflict inside this connection."""

class NoMemoryError(StorageError):
    """SQLITE_NOMEM."""

class ReadOnlyError(StorageError):
    """SQLITE_READONLY: the file or the directory cannot be written."""

class InterruptedError_(StorageError):
    """SQLITE_INTERRUPT."""

class DiskIOError(StorageError):
    """SQLITE_IOERR: the operating system reported an I/O error."""

class CorruptError(StorageError):
    """SQLITE_CORRUPT: the database file is damaged."""

class NotADatabaseError(CorruptError):
    """SQLITE_NOTADB: the file is not an SQLite database."""

class FullError(StorageError):
    """SQLITE_FULL: the disk (or the size limit) is full."""

class CantOpenError(StorageError):
    """SQLITE_CANTOPEN: the file could not be opened."""

class ProtocolError(StorageError):
    """SQLITE_PROTOCOL: a locking protocol error."""

class SchemaChangedError(StorageError):
    """SQLITE_SCHEMA."""

class TooBigError(StorageError):
    """SQLITE_TOOBIG: a string or blob over SQLite's limit."""

class ConstraintError(StorageError):
    """SQLITE_CONSTRAINT: a CHECK, UNIQUE or foreign key refused the change."""

class MismatchError(StorageError):
    """SQLITE_MISMATCH."""

class MisuseError(StorageError):
    """SQLITE_MISUSE: the library was used wrongly (an engine bug)."""

class RangeError(StorageError):
    """SQLITE_RANGE: a bind index out of range."""

class AuthError(StorageError):
    """SQLITE_AUTH."""

class MigrationError(StorageError):
    """The file's schema is newer than this engine, or a migration failed."""

class EngineClosedError(StorageError):
    """The engine was closed."""


_ERRORS_BY_CODE = {
    SQLITE_ERROR: SQLError,
    SQLITE_INTERNAL: InternalError,
    SQLITE_PERM: PermissionDeniedError,
    SQLITE_ABORT: AbortError,
    SQLITE_BUSY: BusyError,
    SQLITE_LOCKED: LockedError,
    SQLITE_NOMEM: NoMemoryError,
    SQLITE_READONLY: ReadOnlyError,
    SQLITE_INTERRUPT: InterruptedError_,
    SQLITE_IOERR: DiskIOError,
    SQLITE_CORRUPT: CorruptError,
    SQLITE_NOTADB: NotADatabaseError,
    SQLITE_FULL: FullError,
    SQLITE_CANTOPEN: CantOpenError,
    SQLITE_PROTOCOL: ProtocolError,
    SQLITE_SCHEMA: SchemaChangedError,
    SQLITE_TOOBIG: TooBigError,
    SQLITE_CONSTRAINT: ConstraintError,
    SQLITE_MISMATCH: MismatchError,
    SQLITE_MISUSE: MisuseError,
    SQLITE_RANGE: RangeError,
    SQLITE_AUTH: AuthError,
}


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
