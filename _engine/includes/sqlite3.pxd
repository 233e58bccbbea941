# The slice of the SQLite C API the engine uses, declared once.
# Every function here is called with the GIL released where it may block.

from libc.stdint cimport int64_t

cdef extern from "sqlite3.h" nogil:
    ctypedef struct sqlite3
    ctypedef struct sqlite3_stmt
    ctypedef int64_t sqlite3_int64

    const char *sqlite3_libversion()

    int sqlite3_open_v2(const char *filename, sqlite3 **ppDb, int flags, const char *zVfs)
    int sqlite3_close_v2(sqlite3 *db)
    int sqlite3_exec(sqlite3 *db, const char *sql, void *callback, void *arg, char **errmsg)
    int sqlite3_busy_timeout(sqlite3 *db, int ms)
    int sqlite3_extended_result_codes(sqlite3 *db, int onoff)
    const char *sqlite3_errmsg(sqlite3 *db)
    const char *sqlite3_errstr(int rc)
    int sqlite3_extended_errcode(sqlite3 *db)
    int sqlite3_changes(sqlite3 *db)
    sqlite3_int64 sqlite3_last_insert_rowid(sqlite3 *db)
    int sqlite3_get_autocommit(sqlite3 *db)
    void sqlite3_free(void *p)
    int sqlite3_wal_checkpoint_v2(sqlite3 *db, const char *zDb, int eMode, int *pnLog, int *pnCkpt)

    int sqlite3_prepare_v3(sqlite3 *db, const char *zSql, int nByte, unsigned int prepFlags,
                           sqlite3_stmt **ppStmt, const char **pzTail)
    int sqlite3_finalize(sqlite3_stmt *stmt)
    int sqlite3_reset(sqlite3_stmt *stmt)
    int sqlite3_clear_bindings(sqlite3_stmt *stmt)
    int sqlite3_step(sqlite3_stmt *stmt)
    int sqlite3_stmt_readonly(sqlite3_stmt *stmt)
    int sqlite3_bind_parameter_count(sqlite3_stmt *stmt)
    const char *sqlite3_bind_parameter_name(sqlite3_stmt *stmt, int idx)
    int sqlite3_bind_int64(sqlite3_stmt *stmt, int idx, sqlite3_int64 value)
    int sqlite3_bind_double(sqlite3_stmt *stmt, int idx, double value)
    int sqlite3_bind_null(sqlite3_stmt *stmt, int idx)
    int sqlite3_bind_text(sqlite3_stmt *stmt, int idx, const char *value, int n, void *destructor)
    int sqlite3_bind_blob(sqlite3_stmt *stmt, int idx, const void *value, int n, void *destructor)
    int sqlite3_column_count(sqlite3_stmt *stmt)
    const char *sqlite3_column_name(sqlite3_stmt *stmt, int col)
    int sqlite3_column_type(sqlite3_stmt *stmt, int col)
    sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *stmt, int col)
    double sqlite3_column_double(sqlite3_stmt *stmt, int col)
    const unsigned char *sqlite3_column_text(sqlite3_stmt *stmt, int col)
    const void *sqlite3_column_blob(sqlite3_stmt *stmt, int col)
    int sqlite3_column_bytes(sqlite3_stmt *stmt, int col)

    ctypedef struct sqlite3_backup
    sqlite3_backup *sqlite3_backup_init(sqlite3 *dest, const char *destName, sqlite3 *src, const char *srcName)
    int sqlite3_backup_step(sqlite3_backup *p, int nPage)
    int sqlite3_backup_finish(sqlite3_backup *p)

    # result codes (primary)
    enum:
        SQLITE_OK
        SQLITE_ERROR
        SQLITE_INTERNAL
        SQLITE_PERM
        SQLITE_ABORT
        SQLITE_BUSY
        SQLITE_LOCKED
        SQLITE_NOMEM
        SQLITE_READONLY
        SQLITE_INTERRUPT
        SQLITE_IOERR
        SQLITE_CORRUPT
        SQLITE_FULL
        SQLITE_CANTOPEN
        SQLITE_PROTOCOL
        SQLITE_SCHEMA
        SQLITE_TOOBIG
        SQLITE_CONSTRAINT
        SQLITE_MISMATCH
        SQLITE_MISUSE
        SQLITE_AUTH
        SQLITE_RANGE
        SQLITE_NOTADB
        SQLITE_ROW
        SQLITE_DONE

    # open flags
    enum:
        SQLITE_OPEN_READONLY
        SQLITE_OPEN_READWRITE
        SQLITE_OPEN_CREATE
        SQLITE_OPEN_NOMUTEX

    enum:
        SQLITE_PREPARE_PERSISTENT

    # fundamental datatypes
    enum:
        SQLITE_INTEGER
        SQLITE_FLOAT
        SQLITE_TEXT
        SQLITE_NULL

    enum:
        SQLITE_CHECKPOINT_PASSIVE
        SQLITE_CHECKPOINT_FULL
        SQLITE_CHECKPOINT_RESTART
        SQLITE_CHECKPOINT_TRUNCATE

    void *SQLITE_TRANSIENT
    void *SQLITE_STATIC
