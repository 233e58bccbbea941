# Joining a line (SPEC 11), decided in C without the GIL inside the group commit: concurrent
# joins (and purchases) share one transaction. The rules, as dropsvc.ledger.queue states them:
# one ticket per buyer and drop (a second join answers the same ticket); ticket_id is the join's
# sequence number within the drop; a join that commits before the close row is prequeue (entry
# for a draw) without a position, after it fifo at the highest position given so far + 1; the
# line takes joins until ends_at (queue) or entries_close_at (draw). A draw takes entries only:
# from starts_at (before it, entries_not_open), none once its close is recorded (no fifo), and an
# entry is checked in by being made (W_INSERT_TICKET: entering is being there).

cdef enum JoinOutcome:
    JOIN_OK = 0                 # a new ticket
    JOIN_SAME = 1               # the buyer's ticket, as it is: JoinReply.ticket_id
    JOIN_NOT_FOUND = 2
    JOIN_NO_QUEUE = 3           # an open drop
    JOIN_QUEUE_CLOSED = 4       # at or after the line's end (a draw's: entries_close_at or its recorded close)
    JOIN_NOT_OPEN = 5           # a draw before starts_at: entries are not open yet

JOIN_OUTCOME_NAMES = ("ok", "same", "not_found", "no_queue", "queue_closed", "entries_not_open")

cdef enum:
    KIND_PREQUEUE = 0           # indexes into TICKET_KINDS (schema.pxi)
    KIND_FIFO = 1
    KIND_ENTRY = 2

# the kinds as C text, for binding
cdef const char *TICKET_KIND_TEXT[3]
TICKET_KIND_TEXT[KIND_PREQUEUE] = b"prequeue"
TICKET_KIND_TEXT[KIND_FIFO] = b"fifo"
TICKET_KIND_TEXT[KIND_ENTRY] = b"entry"


cdef struct JoinRequest:
    long long drop_id
    const char *buyer
    int buyer_len
    bint has_now                # the caller's time; else the clock inside the transaction
    long long now

cdef struct JoinReply:
    int outcome
    long long ticket_id
    long long joined_at
    int kind
    long long position          # 0: none yet (before the close)
    ErrorInfo error


cdef inline bint text_is(sqlite3_stmt *s, int col, const char *word, int length) noexcept nogil:
    """Column col of s's row is the text ``word``."""
    cdef const char *text = <const char *>sqlite3_column_text(s, col)
    return text != NULL and sqlite3_column_bytes(s, col) == length and memcmp(text, word, length) == 0


cdef int load_line(Writer *w, JoinRequest *q, JoinReply *r, long long *closes_at, bint *closed,
                   long long *opens_at) noexcept nogil:
    """The drop's line: r.kind before its close, its end (closes_at, -1 open-ended), whether the
    close is recorded, when it opens (a draw's starts_at; -1 for a queue, which takes joins from
    its creation); r.outcome not_found or no_queue when it has none. An SQLite result code."""
    cdef sqlite3_stmt *s = w.stmts[W_LOAD_LINE]
    cdef int rc, col
    rc = sqlite3_bind_int64(s, 1, q.drop_id)
    if rc != SQLITE_OK:
        return rc
    rc = sqlite3_step(s)
    if rc != SQLITE_ROW:
        sqlite3_reset(s)
        if rc != SQLITE_DONE:
            return rc
        r.outcome = JOIN_NOT_FOUND
        return SQLITE_OK
    if text_is(s, 0, b"queue", 5):
        r.kind, col = KIND_PREQUEUE, 1      # ends_at
    elif text_is(s, 0, b"draw", 4):
        r.kind, col = KIND_ENTRY, 2         # entries_close_at
    else:
        r.outcome = JOIN_NO_QUEUE
        sqlite3_reset(s)
        return SQLITE_OK
    closes_at[0] = -1 if sqlite3_column_type(s, col) == SQLITE_NULL else sqlite3_column_int64(s, col)
    closed[0] = sqlite3_column_int64(s, 3) != 0
    opens_at[0] = sqlite3_column_int64(s, 4) if r.kind == KIND_ENTRY else -1
    sqlite3_reset(s)
    return SQLITE_OK


cdef inline int bind_drop_buyer(sqlite3_stmt *s, JoinRequest *q) noexcept nogil:
    """(drop_id, buyer) bound as ?1, ?2; an SQLite result code."""
    cdef int rc = sqlite3_bind_int64(s, 1, q.drop_id)
    return rc if rc != SQLITE_OK else sqlite3_bind_text(s, 2, q.buyer, q.buyer_len, SQLITE_STATIC)


cdef int find_buyer_ticket(Writer *w, JoinRequest *q, JoinReply *r) noexcept nogil:
    """r.outcome same and r.ticket_id when the buyer holds a ticket of the drop already."""
    cdef sqlite3_stmt *s = w.stmts[W_BUYER_TICKET]
    cdef int rc = bind_drop_buyer(s, q)
    if rc != SQLITE_OK:
        return rc
    rc = sqlite3_step(s)
    if rc == SQLITE_ROW:
        r.outcome = JOIN_SAME
        r.ticket_id = sqlite3_column_int64(s, 0)
    sqlite3_reset(s)
    return SQLITE_OK if rc == SQLITE_ROW or rc == SQLITE_DONE else rc


cdef int decide_join(Writer *w, JoinRequest *q, JoinReply *r, long long now) noexcept nogil:
    """One join inside an open write transaction: r.outcome (and the new ticket on ok).

    Returns an SQLite result code. Only an ok join writes, one statement (the
    ticket's INSERT): a failure of it undoes only itself, so it needs no savepoint.
    """
    cdef long long closes_at = -1, opens_at = -1
    cdef bint closed = False
    cdef sqlite3_stmt *s
    cdef int rc = load_line(w, q, r, &closes_at, &closed, &opens_at)
    if rc != SQLITE_OK or r.outcome != JOIN_OK:
        return rc
    rc = find_buyer_ticket(w, q, r)
    if rc != SQLITE_OK or r.outcome != JOIN_OK:
        return rc
    if (closes_at >= 0 and now >= closes_at) or (closed and r.kind == KIND_ENTRY):
        r.outcome = JOIN_QUEUE_CLOSED
        return SQLITE_OK
    if now < opens_at:
        r.outcome = JOIN_NOT_OPEN
        return SQLITE_OK
    if closed:
        r.kind = KIND_FIFO
    s = w.stmts[W_INSERT_TICKET]
    rc = bind_drop_buyer(s, q)
    if rc == SQLITE_OK:
        rc = sqlite3_bind_int64(s, 3, now)
    if rc == SQLITE_OK:
        rc = sqlite3_bind_text(s, 4, TICKET_KIND_TEXT[r.kind], -1, SQLITE_STATIC)
    if rc == SQLITE_OK:
        rc = sqlite3_bind_int64(s, 5, closed)
    if rc != SQLITE_OK:
        return rc
    rc = sqlite3_step(s)
    if rc == SQLITE_ROW:
        r.ticket_id = sqlite3_column_int64(s, 0)
        r.position = sqlite3_column_int64(s, 1)  # 0 for NULL
        r.joined_at = now
        rc = sqlite3_step(s)  # RETURNING: the statement runs to its end
    sqlite3_reset(s)
    return SQLITE_OK if rc == SQLITE_DONE else rc


cdef int prepare_join(JoinRequest *q, JoinReply *r, long long drop_id, bytes buyer, object now) except -1:
    """The request (pointing into ``buyer``, which the caller keeps alive) and a blank reply."""
    if now is not None and (type(now) is bool or not isinstance(now, int)):
        raise TypeError("now must be an int (Unix ms) or None")
    q.drop_id = drop_id
    q.buyer = buyer
    q.buyer_len = len(buyer)
    q.has_now = now is not None
    q.now = now if now is not None else 0
    r.outcome = JOIN_OK
    r.ticket_id = 0
    r.joined_at = 0
    r.kind = KIND_PREQUEUE
    r.position = 0
    r.error.rc = SQLITE_OK
    r.error.message[0] = 0
    return 0


cdef tuple join_result(JoinReply *r):
    """(outcome, ticket_id, kind, joined_at, position) of a decided join; None where it has none."""
    if r.outcome == JOIN_OK:
        return ("ok", r.ticket_id, TICKET_KINDS[r.kind], r.joined_at, r.position or None)
    if r.outcome == JOIN_SAME:
        return ("same", r.ticket_id, None, None, None)
    return (JOIN_OUTCOME_NAMES[r.outcome], None, None, None, None)
