# The one writer handle, its critical section and its hot statements.
# Everything in here runs without the GIL.

cdef enum:
    N_OUTCOMES = 9
    N_JOIN_OUTCOMES = 6         # JoinOutcome (join.pxi)
    N_BATCH_BUCKETS = 8         # batch sizes 1, 2-3, 4-7, ..., 64-127, 128+
    MAX_BATCH_LIMIT = 256

cdef struct Counters:
    long long outcomes[N_OUTCOMES]  # purchases by Outcome
    long long joins[N_JOIN_OUTCOMES]  # joins of a line by JoinOutcome
    long long batches[N_BATCH_BUCKETS]
    long long transactions          # committed write transactions
    long long rollbacks             # transactions that ended without a commit
    long long lock_acquisitions
    long long lock_wait_us          # total time spent waiting for the critical section
    long long lock_recoveries       # locks taken over from a dead process
    long long commit_us             # total time spent in COMMIT
    long long storage_errors

# The writer's prepared statements, listed once: an index each (Writer.stmts[i]), the SQL
# text keyed by it. Prepared in a loop at open, finalized in a loop at close.
cdef enum:  # anonymous: Cython indexes arrays with plain ints, not a named enum
    W_BEGIN
    W_COMMIT
    W_ROLLBACK
    W_SAVEPOINT
    W_RELEASE
    W_ROLLBACK_TO
    W_FIND_IDEMPOTENT   # (drop_id, key) -> id, request_hash
    W_LOAD_DROP         # id -> price, total_stock, sold, per_user_limit, hold_seconds, starts_at, ends_at,
                        #       gated (admission is not open: a line's drop, SPEC 11)
    W_LOAD_TICKET       # (drop_id, ticket_id) -> buyer, state, admitted_until
    W_LOAD_HOLDING      # (drop_id, user_id) -> quantity
    W_TAKE_STOCK        # (drop_id, quantity): the seed's atomic conditional update
    W_INSERT_ORDER
    W_ADD_HOLDING       # (drop_id, user_id, quantity): the holdings upsert
    W_USE_TICKET        # (drop_id, ticket_id): the admitted ticket bought with
    W_LOAD_LINE         # drop id -> admission, ends_at, entries_close_at, close recorded (join.pxi)
    W_BUYER_TICKET      # (drop_id, buyer) -> ticket_id
    W_INSERT_TICKET     # (drop_id, buyer, joined_at, kind, fifo) -> ticket_id, position
    N_WRITER_STATEMENTS

cdef const char *WRITER_SQL[N_WRITER_STATEMENTS]
WRITER_SQL[W_BEGIN] = b"BEGIN IMMEDIATE"
WRITER_SQL[W_COMMIT] = b"COMMIT"
WRITER_SQL[W_ROLLBACK] = b"ROLLBACK"
WRITER_SQL[W_SAVEPOINT] = b"SAVEPOINT purchase"
WRITER_SQL[W_RELEASE] = b"RELEASE purchase"
WRITER_SQL[W_ROLLBACK_TO] = b"ROLLBACK TO purchase"
WRITER_SQL[W_FIND_IDEMPOTENT] = b"SELECT id, request_hash FROM orders WHERE drop_id = ?1 AND idempotency_key = ?2"
# starts_at: when purchases open, a draw's at its draw (readers.pxi's stock check and dropsvc.drops.sales_start too)
WRITER_SQL[W_LOAD_DROP] = (b"SELECT price, total_stock, sold, per_user_limit, hold_seconds,"
                           b" CASE WHEN admission = 'draw' THEN entries_close_at ELSE starts_at END, ends_at,"
                           b" admission <> 'open' FROM drops WHERE id = ?1")
WRITER_SQL[W_LOAD_TICKET] = (b"SELECT buyer, state, admitted_until FROM tickets"
                             b" WHERE drop_id = ?1 AND ticket_id = ?2")
WRITER_SQL[W_LOAD_HOLDING] = b"SELECT quantity FROM holdings WHERE drop_id = ?1 AND user_id = ?2"
WRITER_SQL[W_TAKE_STOCK] = b"UPDATE drops SET sold = sold + ?2 WHERE id = ?1 AND sold + ?2 <= total_stock"
WRITER_SQL[W_INSERT_ORDER] = (b"INSERT INTO orders (drop_id, user_id, quantity, amount, status, idempotency_key,"
                              b" request_hash, created_at, expires_at)"
                              b" VALUES (?1, ?2, ?3, ?4, 'reserved', ?5, ?6, ?7, ?8)")
WRITER_SQL[W_ADD_HOLDING] = (b"INSERT INTO holdings (drop_id, user_id, quantity) VALUES (?1, ?2, ?3)"
                             b" ON CONFLICT (drop_id, user_id) DO UPDATE SET quantity = quantity + excluded.quantity")
WRITER_SQL[W_USE_TICKET] = (b"UPDATE tickets SET state = 'used'"
                            b" WHERE drop_id = ?1 AND ticket_id = ?2 AND state = 'admitted'")

WRITER_SQL[W_LOAD_LINE] = (b"SELECT admission, ends_at, entries_close_at,"
                           b" EXISTS (SELECT 1 FROM queue_closes WHERE drop_id = ?1), starts_at FROM drops WHERE id = ?1")
WRITER_SQL[W_BUYER_TICKET] = b"SELECT ticket_id FROM tickets WHERE drop_id = ?1 AND buyer = ?2"
# the ticket id: the join's sequence number within the drop (the primary key answers the MAX); a fifo
# ticket's position: the highest given so far + 1 (the partial index on positions answers it)
WRITER_SQL[W_INSERT_TICKET] = (
    b"INSERT INTO tickets (drop_id, ticket_id, buyer, joined_at, kind, state, checked_in_at, position)"
    b" VALUES (?1, (SELECT COALESCE(MAX(ticket_id), 0) + 1 FROM tickets WHERE drop_id = ?1), ?2, ?3, ?4, 'waiting',"
    b" CASE WHEN ?4 = 'entry' THEN ?3 END,"  # a draw's entry is checked in by entering: being there
    b" CASE WHEN ?5 THEN (SELECT COALESCE(MAX(position), 0) + 1 FROM tickets"
    b" WHERE drop_id = ?1 AND position IS NOT NULL) END) RETURNING ticket_id, position")

cdef struct Writer:
    sqlite3 *db
    SharedLock *shared              # the cross-process critical section
    Counters counters               # this process's; guarded by the critical section
    sqlite3_stmt *stmts[N_WRITER_STATEMENTS]  # WRITER_SQL, prepared once at open


cdef inline long long monotonic_us() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000LL + ts.tv_nsec // 1000


cdef inline long long now_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts.tv_sec * 1000LL + ts.tv_nsec // 1000000


cdef int writer_lock(Writer *w, ErrorInfo *err) noexcept nogil:
    """Enter the cross-process critical section; OK, or an error in err."""
    cdef long long started = 0
    cdef int rc = pthread_mutex_trylock(&w.shared.mutex)
    if rc == EBUSY:
        started = monotonic_us()
        rc = pthread_mutex_lock(&w.shared.mutex)
    if rc == EOWNERDEAD:
        # the holder died inside the critical section: take it over
        pthread_mutex_consistent(&w.shared.mutex)
        w.counters.lock_recoveries += 1
        rc = 0
    if rc != 0:
        err.rc = SQLITE_PROTOCOL
        strncpy(err.message, b"the cross-process write lock is unusable (remove the -lock file"
                b" while no process has the database open)", sizeof(err.message) - 1)
        return SQLITE_PROTOCOL
    if started:
        w.counters.lock_wait_us += monotonic_us() - started
    w.counters.lock_acquisitions += 1
    return SQLITE_OK


cdef inline void writer_unlock(Writer *w) noexcept nogil:
    pthread_mutex_unlock(&w.shared.mutex)


cdef inline int step_done(sqlite3_stmt *stmt) noexcept nogil:
    """Step a statement that returns no rows; OK on success."""
    cdef int rc = sqlite3_step(stmt)
    sqlite3_reset(stmt)
    return SQLITE_OK if rc == SQLITE_DONE else rc


cdef int writer_begin(Writer *w, ErrorInfo *err) noexcept nogil:
    cdef int rc = step_done(w.stmts[W_BEGIN])
    if rc != SQLITE_OK:
        capture_error(err, w.db, rc)
    return rc


cdef int writer_commit(Writer *w, ErrorInfo *err) noexcept nogil:
    """COMMIT; on failure roll back so the handle is clean again."""
    cdef long long started = monotonic_us()
    cdef int rc = step_done(w.stmts[W_COMMIT])
    w.counters.commit_us += monotonic_us() - started
    if rc != SQLITE_OK:
        capture_error(err, w.db, rc)
        writer_rollback(w)
        return rc
    w.counters.transactions += 1
    return SQLITE_OK


cdef void writer_rollback(Writer *w) noexcept nogil:
    if sqlite3_get_autocommit(w.db) == 0:
        step_done(w.stmts[W_ROLLBACK])
    w.counters.rollbacks += 1


cdef inline void count_batch(Writer *w, int size) noexcept nogil:
    cdef int bucket = 0
    while size > 1 and bucket < N_BATCH_BUCKETS - 1:
        size >>= 1
        bucket += 1
    w.counters.batches[bucket] += 1


cdef void close_writer(Writer *w) noexcept nogil:
    """Finalize the hot statements and close the handle (inside the critical section)."""
    cdef int i
    for i in range(N_WRITER_STATEMENTS):
        sqlite3_finalize(w.stmts[i])
        w.stmts[i] = NULL
    sqlite3_close_v2(w.db)
    w.db = NULL
