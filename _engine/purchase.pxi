# The purchase transaction of SPEC 5, decided in C without the GIL.

cdef enum Outcome:
    OUTCOME_OK = 0
    OUTCOME_DUPLICATE = 1
    OUTCOME_IDEMPOTENCY_CONFLICT = 2
    OUTCOME_SOLD_OUT = 3
    OUTCOME_PER_USER_LIMIT = 4
    OUTCOME_NOT_STARTED = 5
    OUTCOME_ENDED = 6
    OUTCOME_DROP_NOT_FOUND = 7

OUTCOME_NAMES = ("ok", "duplicate", "idempotency_conflict", "sold_out",
                 "per_user_limit", "not_started", "ended", "not_found")

cdef struct PurchaseRequest:
    long long drop_id
    const char *user_id
    int user_id_len
    long long quantity
    const char *idempotency_key     # NULL when the request has none
    int idempotency_key_len
    const char *request_hash        # hex SHA-256 of (user_id, quantity); with a key only
    int request_hash_len

cdef struct PurchaseReply:
    int outcome
    long long order_id              # the new order, or the earlier one for duplicate
    long long amount
    long long created_at
    long long expires_at
    ErrorInfo error


cdef int decide_purchase(Writer *w, PurchaseRequest *q, PurchaseReply *r, long long now,
                         bint alone) noexcept nogil:
    """Steps 1-5 of SPEC 5 inside an open write transaction.

    Returns an SQLite result code (OK unless storage failed); the decision
    goes in r.outcome. A rejected purchase writes nothing.
    """
    cdef int rc
    cdef long long price, total_stock, sold, per_user_limit, hold_seconds, starts_at, held
    cdef bint open_ended
    cdef long long ends_at
    cdef const char *stored_hash
    cdef sqlite3_stmt *s

    # 1. the same (drop, Idempotency-Key) seen before -> that order again
    if q.idempotency_key != NULL:
        s = w.stmts[W_FIND_IDEMPOTENT]
        sqlite3_bind_int64(s, 1, q.drop_id)
        sqlite3_bind_text(s, 2, q.idempotency_key, q.idempotency_key_len, SQLITE_STATIC)
        rc = sqlite3_step(s)
        if rc == SQLITE_ROW:
            r.order_id = sqlite3_column_int64(s, 0)
            stored_hash = <const char *>sqlite3_column_text(s, 1)
            if (stored_hash != NULL and sqlite3_column_bytes(s, 1) == q.request_hash_len
                    and memcmp(stored_hash, q.request_hash, q.request_hash_len) == 0):
                r.outcome = OUTCOME_DUPLICATE
            else:
                r.outcome = OUTCOME_IDEMPOTENCY_CONFLICT
            sqlite3_reset(s)
            return SQLITE_OK
        sqlite3_reset(s)
        if rc != SQLITE_DONE:
            return rc

    s = w.stmts[W_LOAD_DROP]
    sqlite3_bind_int64(s, 1, q.drop_id)
    rc = sqlite3_step(s)
    if rc != SQLITE_ROW:
        sqlite3_reset(s)
        if rc == SQLITE_DONE:
            r.outcome = OUTCOME_DROP_NOT_FOUND
            return SQLITE_OK
        return rc
    price = sqlite3_column_int64(s, 0)
    total_stock = sqlite3_column_int64(s, 1)
    sold = sqlite3_column_int64(s, 2)
    per_user_limit = sqlite3_column_int64(s, 3)
    hold_seconds = sqlite3_column_int64(s, 4)
    starts_at = sqlite3_column_int64(s, 5)
    open_ended = sqlite3_column_type(s, 6) == SQLITE_NULL
    ends_at = sqlite3_column_int64(s, 6)
    sqlite3_reset(s)

    # 2. the drop's window
    if now < starts_at:
        r.outcome = OUTCOME_NOT_STARTED
        return SQLITE_OK
    if not open_ended and now >= ends_at:
        r.outcome = OUTCOME_ENDED
        return SQLITE_OK

    # 3. the per-user limit, over live (reserved + paid) orders
    if q.quantity > per_user_limit:
        r.outcome = OUTCOME_PER_USER_LIMIT
        return SQLITE_OK
    s = w.stmts[W_LOAD_HOLDING]
    sqlite3_bind_int64(s, 1, q.drop_id)
    sqlite3_bind_text(s, 2, q.user_id, q.user_id_len, SQLITE_STATIC)
    rc = sqlite3_step(s)
    held = sqlite3_column_int64(s, 0) if rc == SQLITE_ROW else 0
    sqlite3_reset(s)
    if rc != SQLITE_ROW and rc != SQLITE_DONE:
        return rc
    if held + q.quantity > per_user_limit:
        r.outcome = OUTCOME_PER_USER_LIMIT
        return SQLITE_OK

    # 4. the atomic conditional update; the read above already tells a
    # sold-out drop, the UPDATE stays the authority
    if sold + q.quantity > total_stock:
        r.outcome = OUTCOME_SOLD_OUT
        return SQLITE_OK
    if alone:
        # the only purchase of its transaction: a failure rolls the whole of it back anyway,
        # so it needs no savepoint of its own
        return write_purchase(w, q, r, now, price, hold_seconds)
    rc = step_done(w.stmts[W_SAVEPOINT])
    if rc != SQLITE_OK:
        return rc
    rc = write_purchase(w, q, r, now, price, hold_seconds)
    if rc == SQLITE_OK:
        return step_done(w.stmts[W_RELEASE])
    if sqlite3_get_autocommit(w.db) == 0:
        # the writes so far go; the batch's other purchases stay
        step_done(w.stmts[W_ROLLBACK_TO])
        step_done(w.stmts[W_RELEASE])
    return rc


cdef int write_purchase(Writer *w, PurchaseRequest *q, PurchaseReply *r, long long now,
                        long long price, long long hold_seconds) noexcept nogil:
    """Steps 4-5 inside the purchase's savepoint: take the stock, insert the order and holding."""
    cdef int rc
    cdef sqlite3_stmt *s = w.stmts[W_TAKE_STOCK]
    sqlite3_bind_int64(s, 1, q.drop_id)
    sqlite3_bind_int64(s, 2, q.quantity)
    rc = step_done(s)
    if rc != SQLITE_OK:
        return rc
    if sqlite3_changes(w.db) == 0:
        r.outcome = OUTCOME_SOLD_OUT
        return SQLITE_OK  # nothing written: releasing the savepoint is enough

    # 5. the order, reserved until now + hold_seconds, and the holding
    r.amount = price * q.quantity
    r.created_at = now
    r.expires_at = now + hold_seconds * 1000
    s = w.stmts[W_INSERT_ORDER]
    sqlite3_bind_int64(s, 1, q.drop_id)
    sqlite3_bind_text(s, 2, q.user_id, q.user_id_len, SQLITE_STATIC)
    sqlite3_bind_int64(s, 3, q.quantity)
    sqlite3_bind_int64(s, 4, r.amount)
    if q.idempotency_key != NULL:
        sqlite3_bind_text(s, 5, q.idempotency_key, q.idempotency_key_len, SQLITE_STATIC)
        sqlite3_bind_text(s, 6, q.request_hash, q.request_hash_len, SQLITE_STATIC)
    else:
        sqlite3_bind_null(s, 5)
        sqlite3_bind_null(s, 6)
    sqlite3_bind_int64(s, 7, r.created_at)
    sqlite3_bind_int64(s, 8, r.expires_at)
    rc = step_done(s)
    if rc != SQLITE_OK:
        return rc
    r.order_id = sqlite3_last_insert_rowid(w.db)

    s = w.stmts[W_ADD_HOLDING]
    sqlite3_bind_int64(s, 1, q.drop_id)
    sqlite3_bind_text(s, 2, q.user_id, q.user_id_len, SQLITE_STATIC)
    sqlite3_bind_int64(s, 3, q.quantity)
    rc = step_done(s)
    if rc != SQLITE_OK:
        return rc
    r.outcome = OUTCOME_OK
    return SQLITE_OK


