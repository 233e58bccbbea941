# Opening connections, PRAGMAs, preparing statements (GIL held: cold path,
# except where noted).

cdef enum:
    BUSY_TIMEOUT_MS = 5000

cdef int exec_script(sqlite3 *db, const char *sql) except -1:
    """Run one or more statements (no results). Raises the typed error."""
    cdef char *errmsg = NULL
    cdef int rc
    with nogil:
        rc = sqlite3_exec(db, sql, NULL, NULL, &errmsg)
    if rc != SQLITE_OK:
        message = errmsg.decode("utf-8", "replace") if errmsg != NULL else sqlite3_errstr(rc).decode()
        sqlite3_free(errmsg)
        raise make_error(rc, message)
    return 0


cdef object query_scalar(sqlite3 *db, str sql):
    """The first column of the first row of sql, or None."""
    cdef sqlite3_stmt *stmt = prepare(db, sql, False)
    cdef int rc
    try:
        with nogil:
            rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW:
            return column_value(stmt, 0)
        check_rc(rc, db)
        return None
    finally:
        sqlite3_finalize(stmt)


cdef sqlite3_stmt *prepare(sqlite3 *db, str sql, bint persistent) except NULL:
    cdef bytes encoded = sql.encode("utf-8")
    cdef sqlite3_stmt *stmt = NULL
    cdef const char *tail = NULL
    cdef int rc
    rc = sqlite3_prepare_v3(db, encoded, len(encoded),
                            SQLITE_PREPARE_PERSISTENT if persistent else 0, &stmt, &tail)
    if rc != SQLITE_OK:
        check_rc(rc, db)
    if stmt == NULL:
        raise ValueError("empty SQL statement")
    if tail != NULL and tail[0] != 0 and encoded[tail - <const char *>encoded:].strip():
        sqlite3_finalize(stmt)
        raise ValueError("one statement at a time: %r" % sql)
    return stmt


cdef bytes writer_vfs(bytes base_vfs):
    """The VFS the writer opens: the WAL layer over base_vfs (None: over SQLite's default)."""
    if base_vfs is None:
        return DROPSVC_WAL_VFS
    cdef int rc = dropsvc_wal_vfs_register_over(base_vfs)
    if rc != SQLITE_OK:
        raise make_error(rc, "no SQLite VFS named %r to stand on" % base_vfs.decode("utf-8", "replace"))
    return DROPSVC_WAL_VFS + b"/" + base_vfs


cdef sqlite3 *open_connection(bytes path, bint readonly_queries, str synchronous,
                              long long mmap_size, long long cache_kib, int page_size=0,
                              bytes base_vfs=None) except NULL:
    """Open one connection on path with the engine's PRAGMAs.

    page_size (writer only) applies to a file that has no pages yet; an
    existing file keeps the page size it was made with. base_vfs (tests: the
    fault-injecting VFS) is what every file access stands on; None: SQLite's default.
    """
    cdef sqlite3 *db = NULL
    cdef int rc
    cdef int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
    cdef const char *cpath = path
    # the writer writes the WAL through the engine's VFS layer (wal_vfs.c: a commit's frames in
    # one write); readers never write it
    cdef bytes vfs_name = base_vfs if readonly_queries else writer_vfs(base_vfs)
    cdef const char *vfs = NULL
    if vfs_name is not None:
        vfs = vfs_name
    with nogil:
        rc = sqlite3_open_v2(cpath, &db, flags, vfs)
    if rc != SQLITE_OK:
        message = (sqlite3_errmsg(db) if db != NULL else sqlite3_errstr(rc)).decode("utf-8", "replace")
        sqlite3_close_v2(db)
        raise make_error(rc, "%s: %s" % (message, path.decode("utf-8", "replace")))
    try:
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS)
        if not readonly_queries:
            if page_size:
                # before anything writes page 1: SQLite ignores it for a file that has pages
                exec_script(db, b"PRAGMA page_size = %d" % page_size)
            # journal_mode must be set outside a transaction; WAL persists in the file
            mode = query_scalar(db, "PRAGMA journal_mode=WAL")
            if mode != "wal":
                raise make_error(SQLITE_CANTOPEN, "could not switch %s to WAL (got %r)"
                                 % (path.decode("utf-8", "replace"), mode))
        script = ("PRAGMA synchronous=%s; PRAGMA foreign_keys=ON; PRAGMA mmap_size=%d; "
                  "PRAGMA cache_size=-%d; PRAGMA temp_store=MEMORY;"
                  % (synchronous, mmap_size, cache_kib))
        if readonly_queries:
            script += " PRAGMA query_only=1;"
        exec_script(db, script.encode())
    except BaseException:
        sqlite3_close_v2(db)
        raise
    return db
