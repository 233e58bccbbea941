# The write API for cold paths (admin, webhooks, expiry): any statement, plus the
# purchase's own stock statements for a cold path that moves stock the same way.

cdef class Statement:
    """A prepared statement owned by a statement cache (the writer's, a reader's)."""
    cdef sqlite3_stmt *stmt
    cdef tuple names             # its columns' names, once read (read_cache.pxi)

    cdef void finalize(self) noexcept:
        sqlite3_finalize(self.stmt)
        self.stmt = NULL

    def __dealloc__(self):
        self.finalize()


cdef list tx_execute(sqlite3 *db, Statement statement, object params):
    return run_statement(db, statement.stmt, params)


cdef class WriteTx:
    """The handle fn(tx) gets inside Engine.write(); valid only during the call."""
    cdef Core _core
    cdef readonly int changes
    cdef readonly long long last_id

    cdef Writer *_open_writer(self) except NULL:
        if self._core is None:
            raise RuntimeError("this transaction is over")
        return self._core._writer

    cdef void _note_changes(self, sqlite3 *db) noexcept:
        self.changes = sqlite3_changes(db)
        self.last_id = sqlite3_last_insert_rowid(db)

    def execute(self, str sql, params=()):
        """Run one statement in the transaction; rows (if any) as dicts."""
        cdef sqlite3 *db = self._open_writer().db
        rows = tx_execute(db, self._core._tx_statement(sql), params)
        self._note_changes(db)
        return rows

    cdef int _step_writer_statement(self, Writer *w, sqlite3_stmt *stmt) except -1:
        """Step one of the writer's prepared statements (bound by the caller), GIL released."""
        cdef int rc
        with nogil:
            rc = step_done(stmt)
        check_rc(rc, w.db)
        self._note_changes(w.db)
        return 0

    def take_stock(self, long long drop_id, long long quantity):
        """Take quantity of the drop's stock with the purchase's own conditional update.

        True when taken; False, changing nothing, when it would oversell.
        """
        cdef Writer *w = self._open_writer()
        cdef sqlite3_stmt *stmt = w.stmts[W_TAKE_STOCK]
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        check_rc(sqlite3_bind_int64(stmt, 1, drop_id), w.db)
        check_rc(sqlite3_bind_int64(stmt, 2, quantity), w.db)
        self._step_writer_statement(w, stmt)
        return self.changes == 1

    def add_holding(self, long long drop_id, str user_id, long long quantity):
        """Add quantity to what user_id holds of the drop (the purchase's own upsert)."""
        cdef Writer *w = self._open_writer()
        cdef sqlite3_stmt *stmt = w.stmts[W_ADD_HOLDING]
        cdef bytes user = user_id.encode("utf-8")
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        check_rc(sqlite3_bind_int64(stmt, 1, drop_id), w.db)
        check_rc(sqlite3_bind_text(stmt, 2, user, len(user), SQLITE_TRANSIENT), w.db)
        check_rc(sqlite3_bind_int64(stmt, 3, quantity), w.db)
        self._step_writer_statement(w, stmt)
