# A bounded pool of reader handles. Readers never take the writer's lock:
# WAL gives each read its own snapshot.

cdef struct Reader:
    sqlite3 *db
    sqlite3_stmt *get_drop
    sqlite3_stmt *list_drops
    sqlite3_stmt *get_order
    sqlite3_stmt *stock_check
    sqlite3_stmt *ticket_view    # ticket_view.pxi

cdef struct ReaderPool:
    pthread_mutex_t lock
    pthread_cond_t available
    int size
    int idle_count
    Reader *readers       # size of them
    Reader **idle         # stack of idle readers

# a drop as shown: its fields, fair admission's (SPEC 11) and the line's public commitment
DROP_COLUMNS = ("id, slug, name, description, image_url, price, currency, total_stock, sold,"
                " per_user_limit, hold_seconds, starts_at, ends_at, created_at,"
                " admission, admit_seconds, admission_margin, entries_close_at, commitment, challenge, pow_algorithm,"
                " pow_cost")
ORDER_COLUMNS = ("id, drop_id, user_id, quantity, amount, status, payment_link_id, checkout_url,"
                 " created_at, expires_at, paid_at")

READER_STATEMENTS = (
    "SELECT " + DROP_COLUMNS + " FROM drops WHERE id = ?1",
    "SELECT " + DROP_COLUMNS + " FROM drops ORDER BY starts_at, id",
    "SELECT " + ORDER_COLUMNS + " FROM orders WHERE id = ?1",
    # when purchases open as the purchase sees it (writer.pxi's W_LOAD_DROP), and whether a ticket is needed
    "SELECT total_stock, sold, CASE WHEN admission = 'draw' THEN entries_close_at ELSE starts_at END, ends_at,"
    " admission != 'open' FROM drops WHERE id = ?1",
)


cdef Reader *pool_acquire(ReaderPool *pool) noexcept nogil:
    cdef Reader *reader
    pthread_mutex_lock(&pool.lock)
    while pool.idle_count == 0:
        pthread_cond_wait(&pool.available, &pool.lock)
    pool.idle_count -= 1
    reader = pool.idle[pool.idle_count]
    pthread_mutex_unlock(&pool.lock)
    return reader


cdef Reader *pool_try_acquire(ReaderPool *pool) noexcept nogil:
    """An idle reader, or NULL when all are in use (never waits: callable with the GIL held)."""
    cdef Reader *reader = NULL
    pthread_mutex_lock(&pool.lock)
    if pool.idle_count > 0:
        pool.idle_count -= 1
        reader = pool.idle[pool.idle_count]
    pthread_mutex_unlock(&pool.lock)
    return reader


cdef void pool_release(ReaderPool *pool, Reader *reader) noexcept nogil:
    pthread_mutex_lock(&pool.lock)
    pool.idle[pool.idle_count] = reader
    pool.idle_count += 1
    pthread_cond_signal(&pool.available)
    pthread_mutex_unlock(&pool.lock)


cdef enum QuickAnswer:
    QUICK_NONE = 0              # the writer decides
    QUICK_SOLD_OUT = 1
    QUICK_NOT_ADMITTED = 2      # a line's drop, and the purchase has no usable ticket


cdef int reader_quick_answer(Reader *reader, long long drop_id, long long now, bint ticketless) noexcept nogil:
    """What a fresh read alone can answer, in SPEC 5 and 11's order, else QUICK_NONE (on any doubt).

    The drop live (window open) with nothing left: sold_out. Live with stock, a line's drop, and a
    purchase without a usable ticket (``ticketless``: none, or an id no ticket has): not_admitted,
    whatever the ticket rows say. A repeated Idempotency-Key comes first: the caller asks only
    without one. Neither answer changes anything, so neither needs the write lock.
    """
    cdef sqlite3_stmt *s = reader.stock_check
    cdef int answer = QUICK_NONE
    sqlite3_bind_int64(s, 1, drop_id)
    if sqlite3_step(s) == SQLITE_ROW and now >= sqlite3_column_int64(s, 2) and (
            sqlite3_column_type(s, 3) == SQLITE_NULL or now < sqlite3_column_int64(s, 3)):
        if sqlite3_column_int64(s, 1) >= sqlite3_column_int64(s, 0):
            answer = QUICK_SOLD_OUT
        elif ticketless and sqlite3_column_int64(s, 4) != 0:
            answer = QUICK_NOT_ADMITTED
    sqlite3_reset(s)
    return answer
