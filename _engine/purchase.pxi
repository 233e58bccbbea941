# The purchase transaction of SPEC 5, decided in C without the GIL; for a line's drop
# (admission queue or draw) with SPEC 11's ticket check.

cdef enum Outcome:
    OUTCOME_OK = 0
    OUTCOME_DUPLICATE = 1
    OUTCOME_IDEMPOTENCY_CONFLICT = 2
    OUTCOME_SOLD_OUT = 3
    OUTCOME_PER_USER_LIMIT = 4
    OUTCOME_NOT_STARTED = 5
    OUTCOME_ENDED = 6
    OUTCOME_DROP_NOT_FOUND = 7
    OUTCOME_NOT_ADMITTED = 8        # a line's drop: no admitted ticket (PurchaseReply.ticket_state says why)

OUTCOME_NAMES = ("ok", "duplicate", "idempotency_conflict", "sold_out",
                 "per_user_limit", "not_started", "ended", "not_found", "not_admitted")

cdef enum:
    TICKET_STATE_SIZE = 16          # the longest name, other_buyer, and its NUL fit
MAX_TICKET_ID = 2**63 - 1           # a ticket id out of range is no ticket's: invalid

cdef struct PurchaseRequest:
    long long drop_id
    const char *user_id
    int user_id_len
    long long quantity
    const char *idempotency_key     # NULL when the request has none
    int idempotency_key_len
    const char *request_hash        # hex SHA-256 of (user_id, quantity); with a key only
    int request_hash_len
    bint has_ticket                 # an Admission-Ticket came with it (a line's drop checks it)
    long long ticket_id             # < 1 names no ticket: invalid

cdef struct PurchaseReply:
    int outcome
    long long order_id              # the new order, or the earlier one for duplicate
    long long amount
    long long created_at
    long long expires_at
    char ticket_state[TICKET_STATE_SIZE]  # not_admitted: missing, invalid, other_buyer or the ticket's state
    ErrorInfo error


cdef int set_ticket(PurchaseRequest *q, object ticket_id) except -1:
    """The request's Admission-Ticket: None (none given) or an int; one no ticket can have is 0."""
    q.has_ticket = ticket_id is not None
    q.ticket_id = 0
    if ticket_id is None:
        return 0
    if type(ticket_id) is bool or not isinstance(ticket_id, int):
        raise TypeError("ticket_id must be an int or None, not %s" % type(ticket_id).__name__)
    if 1 <= ticket_id <= MAX_TICKET_ID:
        q.ticket_id = ticket_id
    return 0


cdef int decide_purchase(Writer *w, PurchaseRequest *q, PurchaseReply *r, long long now,
                         bint alone) noexcept nogil:
    """Steps 1-5 of SPEC 5 inside an open write transaction; SPEC 11's order for a line's drop.

    Returns an SQLite result code (OK unless storage failed); the decision
    goes in r.outcome. A rejected purchase writes nothing.
    """
    cdef int rc
    cdef long long price, total_stock, sold, per_user_limit, hold_seconds, starts_at, held
    cdef bint open_ended, gated
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
    gated = sqlite3_column_int64(s, 7) != 0
    sqlite3_reset(s)

    # 2. the drop's window
    if now < starts_at:
        r.outcome = OUTCOME_NOT_STARTED
        return SQLITE_OK
    if not open_ended and now >= ends_at:
        r.outcome = OUTCOME_ENDED
        return SQLITE_OK

    # SPEC 11, a line's drop: sold out, then the ticket, before the per-user limit and the stock
    if gated:
        if sold >= total_stock:
            r.outcome = OUTCOME_SOLD_OUT
            return SQLITE_OK
        rc = check_ticket(w, q, r, now)
        if rc != SQLITE_OK or r.outcome == OUTCOME_NOT_ADMITTED:
            return rc

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
        # the only purchase of its transaction: a failure or a refusal rolls the whole of it back
        # anyway (run_batch commits only an ok), so it needs no savepoint of its own
        return write_purchase(w, q, r, now, price, hold_seconds, gated)
    rc = step_done(w.stmts[W_SAVEPOINT])
    if rc != SQLITE_OK:
        return rc
    rc = write_purchase(w, q, r, now, price, hold_seconds, gated)
    if rc == SQLITE_OK and r.outcome == OUTCOME_OK:
        return step_done(w.stmts[W_RELEASE])
    return undo_purchase(w, rc)


cdef int undo_purchase(Writer *w, int rc) noexcept nogil:
    """A refused or failed purchase's writes go (ROLLBACK TO its savepoint); the batch's others stay.

    Returns rc, or the undo's own failure: then the whole transaction is rolled
    back, so no half-written purchase can be committed with the batch.
    """
    cdef int undone
    if sqlite3_get_autocommit(w.db):
        return rc  # SQLite rolled the whole transaction back already
    undone = step_done(w.stmts[W_ROLLBACK_TO])
    if undone == SQLITE_OK:
        undone = step_done(w.stmts[W_RELEASE])
    if undone == SQLITE_OK:
        return rc
    step_done(w.stmts[W_ROLLBACK])  # its own failure leaves nothing more to do: the caller fails the batch
    return rc if rc != SQLITE_OK else undone


cdef inline sqlite3_stmt *bind_ticket(sqlite3_stmt *s, PurchaseRequest *q) noexcept nogil:
    """s with (drop_id, ticket_id) bound as ?1, ?2."""
    sqlite3_bind_int64(s, 1, q.drop_id)
    sqlite3_bind_int64(s, 2, q.ticket_id)
    return s


cdef inline int refuse_ticket(PurchaseReply *r, const char *state, int length) noexcept nogil:
    """not_admitted, naming why; always OK (a refusal is no storage failure)."""
    if length >= TICKET_STATE_SIZE:
        length = TICKET_STATE_SIZE - 1
    memcpy(r.ticket_state, state, length)
    r.ticket_state[length] = 0
    r.outcome = OUTCOME_NOT_ADMITTED
    return SQLITE_OK


cdef int check_ticket(Writer *w, PurchaseRequest *q, PurchaseReply *r, long long now) noexcept nogil:
    """SPEC 11's step 4: the ticket is this drop's, this buyer's, admitted and now < admitted_until.

    Else r.outcome is not_admitted and r.ticket_state missing (none given),
    invalid (no such ticket for this drop), other_buyer, lapsed (also an
    admission past its admitted_until) or the ticket's own state. Returns an
    SQLite result code.
    """
    cdef sqlite3_stmt *s = w.stmts[W_LOAD_TICKET]
    cdef const char *text
    cdef int rc, length
    if not q.has_ticket:
        return refuse_ticket(r, b"missing", 7)
    rc = sqlite3_step(bind_ticket(s, q))
    if rc != SQLITE_ROW:
        sqlite3_reset(s)
        return refuse_ticket(r, b"invalid", 7) if rc == SQLITE_DONE else rc
    rc = SQLITE_OK  # admitted, unless one of these says otherwise
    text = <const char *>sqlite3_column_text(s, 0)
    length = sqlite3_column_bytes(s, 0)
    if text == NULL or length != q.user_id_len or memcmp(text, q.user_id, length) != 0:
        rc = refuse_ticket(r, b"other_buyer", 11)
    else:
        text = <const char *>sqlite3_column_text(s, 1)
        length = sqlite3_column_bytes(s, 1)
        if text == NULL:
            rc = SQLITE_NOMEM  # the state is NOT NULL: only a failed conversion gives NULL here
        elif length != 8 or memcmp(text, b"admitted", 8) != 0:
            rc = refuse_ticket(r, text, length)
        elif sqlite3_column_type(s, 2) == SQLITE_NULL or now >= sqlite3_column_int64(s, 2):
            rc = refuse_ticket(r, b"lapsed", 6)
    sqlite3_reset(s)
    return rc


cdef int write_purchase(Writer *w, PurchaseRequest *q, PurchaseReply *r, long long now,
                        long long price, long long hold_seconds, bint gated) noexcept nogil:
    """Steps 4-5 inside the purchase's savepoint: take the stock, mark a line's ticket used,
    insert the order and holding. A refusal may leave writes behind: the caller undoes them."""
    cdef int rc
    cdef sqlite3_stmt *s = w.stmts[W_TAKE_STOCK]
    sqlite3_bind_int64(s, 1, q.drop_id)
    sqlite3_bind_int64(s, 2, q.quantity)
    rc = step_done(s)
    if rc != SQLITE_OK:
        return rc
    if sqlite3_changes(w.db) == 0:
        r.outcome = OUTCOME_SOLD_OUT
        return SQLITE_OK
    if gated:
        rc = step_done(bind_ticket(w.stmts[W_USE_TICKET], q))
        if rc != SQLITE_OK:
            return rc
        if sqlite3_changes(w.db) != 1:
            # check_ticket read it admitted in this transaction, under the write lock: only a
            # purchase moves it on from there, to used
            return refuse_ticket(r, b"used", 4)

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


