# The readers' statements for Core.read(): each reader handle keeps the read-only statements it
# was given, prepared once (the herd's reads are a few fixed texts), up to READ_CACHE_SIZE of them;
# the oldest goes when a new one comes. A reader is used by one thread at a time (the pool hands
# it out), so its cache needs no lock of its own.

cdef enum:
    READ_CACHE_SIZE = 64


cdef Statement cached_read_statement(dict cache, sqlite3 *db, str sql):
    """sql prepared on db, from the reader's cache; ValueError for a statement that writes."""
    cdef Statement statement = cache.get(sql)
    cdef sqlite3_stmt *stmt
    if statement is not None:
        return statement
    stmt = prepare(db, sql, True)
    if not sqlite3_stmt_readonly(stmt):
        sqlite3_finalize(stmt)
        raise ValueError("read() runs read-only statements; use write() for %r" % sql)
    if len(cache) >= READ_CACHE_SIZE:
        (<Statement>cache.pop(next(iter(cache)))).finalize()
    statement = Statement.__new__(Statement)
    statement.stmt = stmt
    cache[sql] = statement
    return statement


cdef void finalize_read_cache(dict cache) noexcept:
    """Finalize a reader's cached statements (before its handle closes)."""
    for statement in cache.values():
        (<Statement>statement).finalize()
    cache.clear()


cdef list run_cached(sqlite3 *db, Statement statement, object params, bint first):
    """run_statement for a cached statement, its columns' names read once (again if their count changed)."""
    if statement.names is None or len(statement.names) != sqlite3_column_count(statement.stmt):
        statement.names = column_names(statement.stmt)
    return run_statement(db, statement.stmt, params, statement.names, first)
