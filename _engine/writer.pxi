# The one writer handle, its critical section and its hot statements.
# Everything in here runs without the GIL.

cdef enum:
    N_OUTCOMES = 8

cdef struct Counters:
    long long outcomes[N_OUTCOMES]  # purchases by Outcome
    long long transactions          # committed write transactions
    long long rollbacks
    long long lock_wait_us          # total time spent waiting for the critical section
    long long commit_us             # total time spent in COMMIT
    long long storage_errors

cdef struct Writer:
    sqlite3 *db
    pthread_mutex_t lock
    Counters counters
    sqlite3_stmt *begin
    sqlite3_stmt *commit
    sqlite3_stmt *rollback
    sqlite3_stmt *find_idempotent   # (drop_id, key) -> id, request_hash
    sqlite3_stmt *load_drop         # id -> price, total_stock, sold, per_user_limit, hold_seconds, starts_at, ends_at
    sqlite3_stmt *load_holding      # (drop_id, user_id) -> quantity
    sqlite3_stmt *take_stock        # the seed's atomic conditional update
    sqlite3_stmt *insert_order
    sqlite3_stmt *add_holding

WRITER_STATEMENTS = (
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SELECT id, request_hash FROM orders WHERE drop_id = ?1 AND idempotency_key = ?2",
    "SELECT price, total_stock, sold, per_user_limit, hold_seconds, starts_at, ends_at"
    " FROM drops WHERE id = ?1",
    "SELECT quantity FROM holdings WHERE drop_id = ?1 AND user_id = ?2",
    "UPDATE drops SET sold = sold + ?2 WHERE id = ?1 AND sold + ?2 <= total_stock",
    "INSERT INTO orders (drop_id, user_id, quantity, amount, status, idempotency_key,"
    " request_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, 'reserved', ?5, ?6, ?7, ?8)",
    "INSERT INTO holdings (drop_id, user_id, quantity) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (drop_id, user_id) DO UPDATE SET quantity = quantity + excluded.quantity",
)


cdef inline long long monotonic_us() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000LL + ts.tv_nsec // 1000


cdef inline long long now_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts.tv_sec * 1000LL + ts.tv_nsec // 1000000


cdef inline void writer_lock(Writer *w) noexcept nogil:
    cdef long long started
    if pthread_mutex_trylock(&w.lock) == 0:
        return
    started = monotonic_us()
    pthread_mutex_lock(&w.lock)
    w.counters.lock_wait_us += monotonic_us() - started


cdef inline void writer_unlock(Writer *w) noexcept nogil:
    pthread_mutex_unlock(&w.lock)


cdef inline int step_done(sqlite3_stmt *stmt) noexcept nogil:
    """Step a statement that returns no rows; OK on success."""
    cdef int rc = sqlite3_step(stmt)
    sqlite3_reset(stmt)
    return SQLITE_OK if rc == SQLITE_DONE else rc


cdef int writer_begin(Writer *w, ErrorInfo *err) noexcept nogil:
    cdef int rc = step_done(w.begin)
    if rc != SQLITE_OK:
        capture_error(err, w.db, rc)
    return rc


cdef int writer_commit(Writer *w, ErrorInfo *err) noexcept nogil:
    """COMMIT; on failure roll back so the handle is clean again."""
    cdef long long started = monotonic_us()
    cdef int rc = step_done(w.commit)
    w.counters.commit_us += monotonic_us() - started
    if rc != SQLITE_OK:
        capture_error(err, w.db, rc)
        writer_rollback(w)
        return rc
    w.counters.transactions += 1
    return SQLITE_OK


cdef void writer_rollback(Writer *w) noexcept nogil:
    if sqlite3_get_autocommit(w.db) == 0:
        step_done(w.rollback)
    w.counters.rollbacks += 1
