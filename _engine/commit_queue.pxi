# Group commit (SPEC 8, TigerBeetle's shape): purchases and joins of a line that arrive while a
# batch is being decided wait in a queue; the next batch takes up to max_batch of them, decides
# each one after another and commits them in one transaction. No thread of our own: the first
# waiting caller leads the next batch, so a lone request commits at once. The queue holds one
# entry per calling thread (each on its caller's stack), so it is bounded by the server's
# threads; a batch by max_batch.

cdef enum:
    LEADER_BATCHES = 4

cdef enum PendingOp:
    OP_PURCHASE = 0             # request: PurchaseRequest, reply: PurchaseReply
    OP_JOIN = 1                 # request: JoinRequest, reply: JoinReply

cdef struct Pending:
    PendingOp op
    void *request
    void *reply
    ErrorInfo *error            # the reply's: where a storage failure goes
    Pending *next
    pthread_cond_t wake
    bint done
    bint elected

cdef struct CommitQueue:
    pthread_mutex_t lock
    Pending *head
    Pending *tail
    bint leader_active
    int max_batch


cdef void fail_batch(Pending **batch, int count, ErrorInfo *err) noexcept nogil:
    """Every request of the batch gets the storage error: none of them is durable."""
    cdef int i
    for i in range(count):
        batch[i].error[0] = err[0]


cdef int decide_pending(Writer *w, Pending *p, bint alone, int *wrote) noexcept nogil:
    """Decide one queued request in the open transaction; counts in wrote what it wrote."""
    cdef PurchaseReply *purchase
    cdef JoinReply *join
    cdef JoinRequest *asked
    cdef int rc
    if p.op == OP_JOIN:
        join = <JoinReply *>p.reply
        asked = <JoinRequest *>p.request
        rc = decide_join(w, asked, join, asked.now if asked.has_now else now_ms())
        wrote[0] += rc == SQLITE_OK and join.outcome == JOIN_OK
        return rc
    purchase = <PurchaseReply *>p.reply
    rc = decide_purchase(w, <PurchaseRequest *>p.request, purchase, now_ms(), alone)
    wrote[0] += rc == SQLITE_OK and purchase.outcome == OUTCOME_OK
    return rc


cdef inline void count_outcome(Writer *w, Pending *p) noexcept nogil:
    if p.error.rc != SQLITE_OK:
        w.counters.storage_errors += 1
    elif p.op == OP_JOIN:
        w.counters.joins[(<JoinReply *>p.reply).outcome] += 1
    else:
        w.counters.outcomes[(<PurchaseReply *>p.reply).outcome] += 1


cdef void run_batch(Writer *w, Pending **batch, int count) noexcept nogil:
    """Decide each request one after another in one transaction, commit once (SPEC 8).

    Called inside the critical section; leaves it.
    """
    cdef ErrorInfo err
    cdef int i, rc
    cdef int wrote = 0
    err.rc = SQLITE_OK
    err.message[0] = 0
    if w.db == NULL:
        err.rc = SQLITE_MISUSE
        fail_batch(batch, count, &err)
        writer_unlock(w)
        return
    if writer_begin(w, &err) != SQLITE_OK:
        w.counters.storage_errors += count
        fail_batch(batch, count, &err)
        writer_unlock(w)
        return
    for i in range(count):
        rc = decide_pending(w, batch[i], count == 1, &wrote)
        if rc != SQLITE_OK:
            capture_error(batch[i].error, w.db, rc)
            if sqlite3_get_autocommit(w.db):
                # SQLite rolled the whole transaction back: nothing of the batch stands
                w.counters.storage_errors += count
                w.counters.rollbacks += 1
                fail_batch(batch, count, batch[i].error)
                writer_unlock(w)
                return
    if wrote:
        if writer_commit(w, &err) != SQLITE_OK:
            w.counters.storage_errors += count
            fail_batch(batch, count, &err)
            writer_unlock(w)
            return
    else:
        writer_rollback(w)
    count_batch(w, count)
    for i in range(count):
        count_outcome(w, batch[i])
    writer_unlock(w)


cdef void lead_batch(Writer *w, CommitQueue *queue) noexcept nogil:
    """Take batches from the queue's head, run them, wake their callers. Lock held.

    Goes on while callers wait (up to LEADER_BATCHES batches: each handover
    to another thread costs a context switch), then hands over.
    """
    cdef Pending *batch[MAX_BATCH_LIMIT]
    cdef ErrorInfo err
    cdef int count, i, locked, led = 0
    while queue.head != NULL:
        if led == LEADER_BATCHES:
            # the oldest waiter leads the next batch; this caller returns now
            queue.head.elected = True
            pthread_cond_signal(&queue.head.wake)
            return
        # the critical section first, the batch after: whoever queues while another process
        # holds the lock (an fsync, in FULL) joins this batch instead of waiting for the next
        pthread_mutex_unlock(&queue.lock)
        err.rc = SQLITE_OK
        err.message[0] = 0
        locked = writer_lock(w, &err)
        pthread_mutex_lock(&queue.lock)
        count = 0  # only the leader takes from the queue: its head is still there
        while queue.head != NULL and count < queue.max_batch:
            batch[count] = queue.head
            queue.head = queue.head.next
            count += 1
        if queue.head == NULL:
            queue.tail = NULL
        pthread_mutex_unlock(&queue.lock)
        if locked == SQLITE_OK:
            run_batch(w, batch, count)
        else:
            fail_batch(batch, count, &err)
        pthread_mutex_lock(&queue.lock)
        for i in range(count):
            batch[i].done = True
            pthread_cond_signal(&batch[i].wake)
        led += 1
    queue.leader_active = False


cdef void submit(Writer *w, CommitQueue *queue, PendingOp op, void *request, void *reply,
                 ErrorInfo *error) noexcept nogil:
    """Queue one request and return once the batch holding it is committed (or failed)."""
    cdef Pending me
    me.op = op
    me.request = request
    me.reply = reply
    me.error = error
    me.next = NULL
    me.done = False
    me.elected = False
    pthread_cond_init(&me.wake, NULL)
    pthread_mutex_lock(&queue.lock)
    if queue.tail == NULL:
        queue.head = &me
    else:
        queue.tail.next = &me
    queue.tail = &me
    if not queue.leader_active:
        queue.leader_active = True
        me.elected = True
    while not me.done and not me.elected:
        pthread_cond_wait(&me.wake, &queue.lock)
    if not me.done:
        lead_batch(w, queue)  # me is at the head, so in this batch
    pthread_mutex_unlock(&queue.lock)
    pthread_cond_destroy(&me.wake)


cdef inline void submit_purchase(Writer *w, CommitQueue *queue, PurchaseRequest *q,
                                 PurchaseReply *r) noexcept nogil:
    submit(w, queue, OP_PURCHASE, q, r, &r.error)


cdef inline void submit_join(Writer *w, CommitQueue *queue, JoinRequest *q, JoinReply *r) noexcept nogil:
    submit(w, queue, OP_JOIN, q, r, &r.error)


cdef int raise_batch_error(ErrorInfo *err, bint closed) except -1:
    """A request's storage failure as its typed exception (GIL held); 0 when it had none."""
    if err.rc == SQLITE_OK:
        return 0
    if err.rc == SQLITE_MISUSE and closed:
        raise EngineClosedError("the engine is closed")
    return raise_error(err)
