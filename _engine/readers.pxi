# A bounded pool of reader handles. Readers never take the writer's lock:
# WAL gives each read its own snapshot.

cdef struct Reader:
    sqlite3 *db
    sqlite3_stmt *get_drop
    sqlite3_stmt *list_drops
    sqlite3_stmt *get_order

cdef struct ReaderPool:
    pthread_mutex_t lock
    pthread_cond_t available
    int size
    int idle_count
    Reader *readers       # size of them
    Reader **idle         # stack of idle readers

DROP_COLUMNS = ("id, slug, name, description, image_url, price, currency, total_stock, sold,"
                " per_user_limit, hold_seconds, starts_at, ends_at, created_at")
ORDER_COLUMNS = ("id, drop_id, user_id, quantity, amount, status, payment_link_id, checkout_url,"
                 " created_at, expires_at, paid_at")

READER_STATEMENTS = (
    "SELECT " + DROP_COLUMNS + " FROM drops WHERE id = ?1",
    "SELECT " + DROP_COLUMNS + " FROM drops ORDER BY starts_at, id",
    "SELECT " + ORDER_COLUMNS + " FROM orders WHERE id = ?1",
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


cdef void pool_release(ReaderPool *pool, Reader *reader) noexcept nogil:
    pthread_mutex_lock(&pool.lock)
    pool.idle[pool.idle_count] = reader
    pool.idle_count += 1
    pthread_cond_signal(&pool.available)
    pthread_mutex_unlock(&pool.lock)
