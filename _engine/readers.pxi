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
    # when purchases open as the purchase sees it (writer.pxi's W_LOAD_DROP)
    "SELECT total_stock, sold, CASE WHEN admission = 'draw' THEN entries_close_at ELSE starts_at END, ends_at"
    " FROM drops WHERE id = ?1",
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


cdef int reader_sees_sold_out(Reader *reader, long long drop_id, long long now) noexcept nogil:
    """1 when a fresh read shows the drop live (window open) with nothing left, else 0.

    Nothing can be bought then, so sold_out is a valid answer without the
    write lock (SPEC 5 order: the window is checked first). 0 on any doubt.
    """
    cdef sqlite3_stmt *s = reader.stock_check
    cdef int sold_out = 0
    sqlite3_bind_int64(s, 1, drop_id)
    if sqlite3_step(s) == SQLITE_ROW:
        sold_out = (sqlite3_column_int64(s, 1) >= sqlite3_column_int64(s, 0)
                    and now >= sqlite3_column_int64(s, 2)
                    and (sqlite3_column_type(s, 3) == SQLITE_NULL or now < sqlite3_column_int64(s, 3)))
    sqlite3_reset(s)
    return sold_out
