# The generic write API for cold paths (admin, webhooks, expiry).

cdef class Statement:
    """A prepared statement owned by the writer's statement cache."""
    cdef sqlite3_stmt *stmt

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

    def execute(self, str sql, params=()):
        """Run one statement in the transaction; rows (if any) as dicts."""
        if self._core is None:
            raise RuntimeError("this transaction is over")
        cdef sqlite3 *db = self._core._writer.db
        rows = tx_execute(db, self._core._tx_statement(sql), params)
        self.changes = sqlite3_changes(db)
        self.last_id = sqlite3_last_insert_rowid(db)
        return rows
