# Python values <-> SQLite values, for the generic (cold-path) API and the
# reader methods (GIL held).

cdef object column_value(sqlite3_stmt *stmt, int col):
    cdef int kind = sqlite3_column_type(stmt, col)
    cdef const char *data
    if kind == SQLITE_INTEGER:
        return sqlite3_column_int64(stmt, col)
    if kind == SQLITE_NULL:
        return None
    if kind == SQLITE_TEXT:
        data = <const char *>sqlite3_column_text(stmt, col)
        return data[:sqlite3_column_bytes(stmt, col)].decode("utf-8", "replace")
    if kind == SQLITE_FLOAT:
        return sqlite3_column_double(stmt, col)
    data = <const char *>sqlite3_column_blob(stmt, col)
    if data == NULL:
        return b""
    return data[:sqlite3_column_bytes(stmt, col)]


cdef dict row_dict(sqlite3_stmt *stmt, tuple names):
    cdef dict row = {}
    cdef int col
    for col in range(len(names)):
        row[names[col]] = column_value(stmt, col)
    return row


cdef tuple column_names(sqlite3_stmt *stmt):
    return tuple(sqlite3_column_name(stmt, col).decode("utf-8")
                 for col in range(sqlite3_column_count(stmt)))


cdef int bind_value(sqlite3 *db, sqlite3_stmt *stmt, int index, object value) except -1:
    cdef int rc
    cdef bytes data
    if value is None:
        rc = sqlite3_bind_null(stmt, index)
    elif isinstance(value, (bool, int)):
        rc = sqlite3_bind_int64(stmt, index, value)
    elif isinstance(value, float):
        rc = sqlite3_bind_double(stmt, index, value)
    elif isinstance(value, str):
        data = (<str>value).encode("utf-8")
        rc = sqlite3_bind_text(stmt, index, data, len(data), SQLITE_TRANSIENT)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        rc = sqlite3_bind_blob(stmt, index, <const char *>data, len(data), SQLITE_TRANSIENT)
    else:
        raise TypeError("cannot bind %s to an SQL parameter" % type(value).__name__)
    return check_rc(rc, db)


cdef int bind_params(sqlite3 *db, sqlite3_stmt *stmt, object params) except -1:
    """Bind a sequence (?, ?NNN) or a mapping (:name) of parameters."""
    cdef int count = sqlite3_bind_parameter_count(stmt)
    cdef int index
    cdef const char *name
    if params is None:
        params = ()
    if isinstance(params, dict):
        for index in range(1, count + 1):
            name = sqlite3_bind_parameter_name(stmt, index)
            if name == NULL:
                raise ValueError("a mapping of parameters needs named placeholders (:name)")
            key = name[1:].decode("utf-8")
            if key not in params:
                raise ValueError("missing SQL parameter %r" % key)
            bind_value(db, stmt, index, params[key])
        return 0
    params = tuple(params)
    if len(params) != count:
        raise ValueError("SQL wants %d parameters, %d given" % (count, len(params)))
    for index in range(count):
        bind_value(db, stmt, index + 1, params[index])
    return 0


cdef list run_statement(sqlite3 *db, sqlite3_stmt *stmt, object params, tuple names=None, bint first=False):
    """Bind, step to the end with the GIL released per step, return rows as dicts (keyed by
    ``names`` when the caller knows the columns' names already; only the first row with ``first``)."""
    cdef int rc
    cdef list rows = []
    try:
        bind_params(db, stmt, params)
        while True:
            with nogil:
                rc = sqlite3_step(stmt)
            if rc == SQLITE_ROW:
                if names is None:
                    names = column_names(stmt)
                rows.append(row_dict(stmt, names))
                if first:
                    return rows
            else:
                check_rc(rc, db)
                return rows
    finally:
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
