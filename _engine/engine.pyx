# cython: language_level=3, boundscheck=False, wraparound=False
"""dropsvc._engine: the compiled core of limited-drop.

One writer handle behind a C-level critical section, a bounded pool of
reader handles, every hot statement prepared once, the purchase decided in
C with the GIL released. See SPEC sections 4 and 5.

This file is the module and class ``Core``; each concern's work is in its own .pxi (included
below). ``Core``'s methods must stay here, thin: Cython allows no include inside a class body.
"""

cimport cython
from libc.errno cimport errno, EACCES, EPERM, EROFS
from libc.stdlib cimport calloc, free
from libc.limits cimport LLONG_MAX
from libc.string cimport memcmp, memcpy, memset, strlen, strncpy
from posix.fcntl cimport open, O_RDWR, O_CREAT, O_CLOEXEC
from posix.mman cimport mmap, munmap, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_FAILED
from posix.stat cimport fstat, struct_stat as stat_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC, CLOCK_REALTIME
from posix.unistd cimport close, ftruncate
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.pythread cimport PyThread_get_thread_ident
from cpython.unicode cimport PyUnicode_AsUTF8AndSize

from includes.sqlite3 cimport *
from includes.pthread cimport *
from includes.posix_extra cimport flock, LOCK_EX, LOCK_UN
from includes.wal_vfs cimport (DROPSVC_WAL_VFS, dropsvc_wal_vfs_register, dropsvc_wal_vfs_register_over,
                               dropsvc_wal_vfs_counts)
from includes.fault_vfs cimport *

import hashlib
import os

include "errors.pxi"
include "schema.pxi"
include "connection.pxi"
include "values.pxi"
include "lockfile.pxi"
include "writer.pxi"
include "purchase.pxi"
include "join.pxi"
include "commit_queue.pxi"
include "readers.pxi"
include "line_view.pxi"
include "ticket_view.pxi"
include "public_ref.pxi"
include "transaction.pxi"
include "fault_vfs.pxi"
include "read_cache.pxi"

SQLITE_VERSION = sqlite3_libversion().decode()
_vfs_rc = dropsvc_wal_vfs_register()
if _vfs_rc != SQLITE_OK:
    raise make_error(_vfs_rc, "could not register SQLite VFS %s" % DROPSVC_WAL_VFS.decode())
BATCH_BUCKET_NAMES = ("1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128+")
SYNCHRONOUS_MODES = ("NORMAL", "FULL")
# A new file's page size. A purchase dirties about three pages (the drop, the
# newest orders leaf, the buyer's holdings leaf) and the WAL takes each whole:
# with 1 KiB pages a commit writes and checksums ~3 KiB instead of ~12 KiB,
# +30 % purchases/s here (bench/README.md); rows stay well under a page.
DEFAULT_PAGE_SIZE = 1024
VALID_PAGE_SIZES = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
MAX_QUANTITY = 100
MAX_USER_ID_LENGTH = 128
MAX_IDEMPOTENCY_KEY_LENGTH = 128


cdef class Result:
    """What a purchase or a cancel came to: an outcome name and the order, if any.

    ``ticket_state`` says why a purchase was not_admitted (SPEC 11), else None.
    """
    cdef readonly str outcome
    cdef readonly object order
    cdef readonly object ticket_state

    def __init__(self, str outcome, order=None, ticket_state=None):
        self.outcome = outcome
        self.order = order
        self.ticket_state = ticket_state

    @property
    def ok(self):
        return self.outcome == "ok"

    def __repr__(self):
        if self.ticket_state is not None:
            return "Result(%r, %r, %r)" % (self.outcome, self.order, self.ticket_state)
        return "Result(%r, %r)" % (self.outcome, self.order)


SOLD_OUT = Result("sold_out", None)  # shared: results are immutable
NOT_ADMITTED_MISSING = Result("not_admitted", None, "missing")
NOT_ADMITTED_INVALID = Result("not_admitted", None, "invalid")

cdef enum:                      # Core._hints: what a process last saw of a drop, so a fresh read may answer
    HINT_SOLD_OUT = 1           # sold out
    HINT_LINE = 2               # a line's drop refused a purchase not_admitted


cdef class Core:
    """The engine's compiled core; ``dropsvc.Engine`` adds the cold paths."""
    cdef Writer *_writer
    cdef CommitQueue _queue
    cdef ReaderPool _pool
    cdef bint _pool_initialised
    cdef bint _closed
    cdef unsigned long _write_owner
    cdef dict _tx_statements
    cdef dict _secrets
    cdef dict _hints              # drop id -> HINT_* bits: what this process last saw of the drop
    cdef list _read_caches        # per reader (by index): read()'s prepared statements
    cdef long long _fast_sold_out  # sold_out answers given without the write lock
    cdef long long _fast_not_admitted  # not_admitted answers (no usable ticket) given without it
    cdef uint64_t _ref_k0
    cdef uint64_t _ref_k1
    cdef bytes _base_vfs           # what every file access stands on; None: SQLite's default
    cdef readonly str path
    cdef readonly str synchronous
    cdef readonly long long order_code_offset

    def __cinit__(self):
        self._writer = <Writer *>calloc(1, sizeof(Writer))
        if self._writer == NULL:
            raise MemoryError()
        pthread_mutex_init(&self._queue.lock, NULL)
        self._closed = True

    def __init__(self, path, *, int readers=4, str synchronous="NORMAL", bint migrate=True,
                 int max_batch=64, int autocheckpoint=1000, long long wal_limit_bytes=64 * 1024 * 1024,
                 long long mmap_size=256 * 1024 * 1024,
                 long long cache_kib=64 * 1024, int page_size=DEFAULT_PAGE_SIZE, base_vfs=None):
        """``base_vfs``: the name of an SQLite VFS to stand on instead of the default one (tests:
        ``FAULT_VFS``), under the writer's WAL layer, the readers, checkpoints and backups."""
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError("synchronous must be NORMAL or FULL, not %r" % synchronous)
        if not 1 <= readers <= 64:
            raise ValueError("readers must be between 1 and 64")
        if page_size not in VALID_PAGE_SIZES:
            raise ValueError("page_size must be a power of two from 512 to 65536")
        if not 1 <= max_batch <= MAX_BATCH_LIMIT:
            raise ValueError("max_batch must be between 1 and %d" % MAX_BATCH_LIMIT)
        self._queue.max_batch = max_batch
        self.path = os.fsdecode(path)
        self.synchronous = synchronous
        self._base_vfs = None if base_vfs is None else os.fsencode(base_vfs)
        self._tx_statements = {}
        self._hints = {}
        cdef bytes bpath = os.fsencode(path)
        self._writer.shared = map_lock_file(bpath + b"-lock")
        # the writer reads through its page cache, without mmap: with mmap on, SQLite looks every
        # page a read cursor touches up in the WAL's hash index first, cached or not (~3 us of a
        # ~33 us purchase here); the readers, which start a fresh snapshot each time, keep mmap
        self._writer.db = open_connection(bpath, False, synchronous, 0, cache_kib, page_size, self._base_vfs)
        self._closed = False
        try:
            # 0 leaves checkpoints to a background worker (dropsvc's), off the commit path
            exec_script(self._writer.db, b"PRAGMA wal_autocheckpoint = %d" % max(autocheckpoint, 0))
            # when a write starts the WAL over (after a complete checkpoint), the file is cut back
            # to this size: the WAL stays bounded without a TRUNCATE checkpoint under the lock
            exec_script(self._writer.db, b"PRAGMA journal_size_limit = %d" % max(wal_limit_bytes, 0))
            self._migrate(migrate)
            self._prepare_writer()
            self._load_settings()
            self._open_readers(bpath, readers, synchronous, mmap_size, cache_kib)
        except BaseException:
            self.close()
            raise

    def __dealloc__(self):
        self._close_handles()
        if self._writer != NULL:
            unmap_lock_file(self._writer.shared)
            free(self._writer)
            self._writer = NULL
        if self._pool_initialised:
            pthread_mutex_destroy(&self._pool.lock)
            pthread_cond_destroy(&self._pool.available)
            free(self._pool.readers)
            free(self._pool.idle)
        pthread_mutex_destroy(&self._queue.lock)

    # -- opening ---------------------------------------------------------

    cdef _migrate(self, bint apply):
        cdef sqlite3 *db = self._writer.db
        version = query_scalar(db, "PRAGMA user_version")
        if version > SCHEMA_VERSION:
            raise MigrationError("%s has schema version %d; this engine knows up to %d"
                                 % (self.path, version, SCHEMA_VERSION))
        if version == SCHEMA_VERSION:
            return
        if not apply:
            raise MigrationError("%s has schema version %d, the engine needs %d: run `dropsvc migrate`"
                                 % (self.path, version, SCHEMA_VERSION))
        self._lock_writer()
        try:
            self._apply_migrations(db)
        finally:
            self._unlock_writer()

    cdef _apply_migrations(self, sqlite3 *db):
        exec_script(db, b"BEGIN IMMEDIATE")
        try:
            # another process may have migrated while we waited for the lock
            version = query_scalar(db, "PRAGMA user_version")
            for index in range(version, SCHEMA_VERSION):
                exec_script(db, MIGRATIONS[index].encode())
                if index == 0:
                    for key, value in _new_settings().items():
                        tx_execute(db, self._tx_statement("INSERT OR IGNORE INTO settings (key, value)"
                                                          " VALUES (?, ?)"), (key, value))
            exec_script(db, b"PRAGMA user_version = %d" % SCHEMA_VERSION)
            exec_script(db, b"COMMIT")
        except BaseException:
            exec_script(db, b"ROLLBACK")
            raise

    cdef _load_settings(self):
        rows = tx_execute(self._writer.db, self._tx_statement("SELECT key, value FROM settings"), ())
        settings = {row["key"]: row["value"] for row in rows}
        missing = {k: v for k, v in _new_settings().items() if k not in settings}
        if missing:  # a secret added by a later release: made once, kept with the data
            self.write(lambda tx: [tx.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", item)
                                   for item in missing.items()])
            rows = tx_execute(self._writer.db, self._tx_statement("SELECT key, value FROM settings"), ())
            settings = {row["key"]: row["value"] for row in rows}
        self._secrets = {k: bytes.fromhex(v) for k, v in settings.items() if k.endswith("_key")}
        key = bytes.fromhex(settings["public_ref_key"])
        self._ref_k0 = int.from_bytes(key[:8], "little")
        self._ref_k1 = int.from_bytes(key[8:16], "little")
        self.order_code_offset = int(settings["order_code_offset"])

    cdef _prepare_writer(self):
        cdef int index
        for index in range(N_WRITER_STATEMENTS):
            if WRITER_SQL[index] == NULL:
                raise SystemError("writer statement %d has no SQL text" % index)
            self._writer.stmts[index] = prepare(self._writer.db, WRITER_SQL[index].decode("utf-8"), True)

    cdef _open_readers(self, bytes path, int count, str synchronous, long long mmap_size,
                       long long cache_kib):
        cdef Reader *reader
        pthread_mutex_init(&self._pool.lock, NULL)
        pthread_cond_init(&self._pool.available, NULL)
        self._pool.readers = <Reader *>calloc(count, sizeof(Reader))
        self._pool.idle = <Reader **>calloc(count, sizeof(Reader *))
        self._pool_initialised = True
        if self._pool.readers == NULL or self._pool.idle == NULL:
            raise MemoryError()
        self._read_caches = [{} for _ in range(count)]
        for index in range(count):
            reader = &self._pool.readers[index]
            reader.db = open_connection(path, True, synchronous, mmap_size, cache_kib, 0, self._base_vfs)
            # in the pool (idle) as soon as it is open: a failure after it (a statement that does not
            # prepare, the next reader that does not open) closes the readers opened so far, and only
            # those (close() takes back pool.size readers, waiting for each)
            self._pool.idle[index] = reader
            self._pool.idle_count += 1
            self._pool.size += 1
            reader.get_drop = prepare(reader.db, READER_STATEMENTS[0], True)
            reader.list_drops = prepare(reader.db, READER_STATEMENTS[1], True)
            reader.get_order = prepare(reader.db, READER_STATEMENTS[2], True)
            reader.stock_check = prepare(reader.db, READER_STATEMENTS[3], True)
            reader.ticket_view = prepare(reader.db, TICKET_VIEW_SQL, True)

    cdef const char *_vfs(self):
        """The base VFS for files the engine opens besides its own (backup, restore); NULL: default."""
        if self._base_vfs is None:
            return NULL
        return self._base_vfs

    # -- closing ---------------------------------------------------------

    def close(self):
        """Close every handle; waits for calls in flight. Idempotent."""
        if self._closed:
            return
        cdef ErrorInfo err
        cdef int locked
        err.rc = SQLITE_OK
        self._closed = True
        with nogil:
            locked = writer_lock(self._writer, &err) == SQLITE_OK
        try:
            self._close_handles()
        finally:
            if locked:
                with nogil:
                    writer_unlock(self._writer)

    cdef void _close_handles(self) noexcept:
        cdef Writer *w = self._writer
        cdef Reader *reader
        cdef int taken = 0
        cdef int index
        for statement in self._tx_statements.values() if self._tx_statements else ():
            (<Statement>statement).finalize()
        self._tx_statements = {}
        if w != NULL and w.db != NULL:
            close_writer(w)
        if not self._pool_initialised:
            return
        # take every reader back (waiting for those in use), close them, and
        # hand closed ones back so a late caller finds db == NULL, not a hang
        while taken < self._pool.size:
            with nogil:
                reader = pool_acquire(&self._pool)
            if reader.db != NULL:
                sqlite3_finalize(reader.get_drop)
                sqlite3_finalize(reader.list_drops)
                sqlite3_finalize(reader.get_order)
                sqlite3_finalize(reader.stock_check)
                sqlite3_finalize(reader.ticket_view)
                if self._read_caches is not None:  # (a garbage collector's clear may have taken it)
                    finalize_read_cache(self._read_caches[reader - self._pool.readers])
                sqlite3_close_v2(reader.db)
                reader.db = NULL
            taken += 1
        for index in range(self._pool.size):
            pool_release(&self._pool, &self._pool.readers[index])

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    @property
    def closed(self):
        return self._closed

    # -- the hot path ----------------------------------------------------

    def purchase(self, long long drop_id, str user_id, long long quantity=1, idempotency_key=None,
                 ticket_id=None):
        """Decide one purchase (SPEC 5). Returns a Result; raises only on storage failure.

        ``ticket_id`` is the buyer's Admission-Ticket for a queue or draw drop (SPEC 11;
        None: none given, so not_admitted ``missing``); an open drop ignores it.
        """
        cdef PurchaseRequest q
        cdef PurchaseReply r
        cdef bytes user_bytes, key_bytes, hash_bytes
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValueError("quantity must be an integer from 1 to %d" % MAX_QUANTITY)
        if not 0 < len(user_id) <= MAX_USER_ID_LENGTH:
            raise ValueError("user_id must be 1 to %d characters" % MAX_USER_ID_LENGTH)
        self._enter_write()
        if idempotency_key is None:
            hint = self._hints.get(drop_id)  # one lookup: an open drop never seen sold out has none
            if hint is not None:
                quick = self._answer_without_lock(drop_id, hint, ticket_id)
                if quick is not None:
                    return quick
        user_bytes = user_id.encode("utf-8")
        q.drop_id = drop_id
        q.user_id = user_bytes
        q.user_id_len = len(user_bytes)
        q.quantity = quantity
        q.idempotency_key = NULL
        q.idempotency_key_len = 0
        q.request_hash = NULL
        q.request_hash_len = 0
        if idempotency_key is not None:
            if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
                raise ValueError("idempotency_key must be 1 to %d characters" % MAX_IDEMPOTENCY_KEY_LENGTH)
            key_bytes = (<str>idempotency_key).encode("utf-8")
            hash_bytes = request_hash(user_id, quantity).encode("ascii")
            q.idempotency_key = key_bytes
            q.idempotency_key_len = len(key_bytes)
            q.request_hash = hash_bytes
            q.request_hash_len = len(hash_bytes)
        set_ticket(&q, ticket_id)
        r.outcome = OUTCOME_OK
        r.order_id = 0
        r.error.rc = SQLITE_OK
        r.error.message[0] = 0
        with nogil:
            submit_purchase(self._writer, &self._queue, &q, &r)
        raise_batch_error(&r.error, self._closed)
        if r.outcome == OUTCOME_OK:
            order_id = r.order_id
            return Result("ok", {
                "id": order_id,
                "public_ref": self.public_ref(order_id),
                "order_code": self.order_code_offset + order_id,
                "drop_id": drop_id,
                "user_id": user_id,
                "quantity": quantity,
                "amount": r.amount,
                "status": "reserved",
                "payment_link_id": None,
                "checkout_url": None,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
                "paid_at": None,
            })
        if r.outcome == OUTCOME_SOLD_OUT:
            self._hint(drop_id, HINT_SOLD_OUT, True)
            return SOLD_OUT
        if r.outcome == OUTCOME_DUPLICATE:
            # the earlier order as it is now (it may have been paid or cancelled since)
            return Result("duplicate", self.get_order_by_id(r.order_id))
        if r.outcome == OUTCOME_NOT_ADMITTED:
            self._hint(drop_id, HINT_LINE, True)
            return Result("not_admitted", None, r.ticket_state.decode("ascii", "replace"))
        return Result(OUTCOME_NAMES[r.outcome], None)

    def join_ticket(self, long long drop_id, buyer, now=None):
        """Join the drop's line (SPEC 11) in the group commit, batched with other joins and purchases.

        Returns ``(outcome, ticket_id, kind, joined_at, position)``: ok (a new ticket), same (the
        buyer's own ticket_id), not_found, no_queue, queue_closed; raises only on storage failure.
        ``now`` (Unix ms) stands for the clock read inside the transaction.
        """
        cdef JoinRequest q
        cdef JoinReply r
        if not isinstance(buyer, str) or not 0 < len(<str>buyer) <= MAX_USER_ID_LENGTH:
            raise ValueError("buyer must be 1 to %d characters" % MAX_USER_ID_LENGTH)
        cdef bytes buyer_bytes = (<str>buyer).encode("utf-8")
        self._enter_write()
        prepare_join(&q, &r, drop_id, buyer_bytes, now)
        with nogil:
            submit_join(self._writer, &self._queue, &q, &r)
        raise_batch_error(&r.error, self._closed)
        return join_result(&r)

    cdef object _answer_without_lock(self, long long drop_id, int hint, object ticket_id):
        """What a lock-free fresh read (``reader_quick_answer``) can answer, as the hints led here: SOLD_OUT,
        a not_admitted (no ticket given: missing; an id no ticket can have, set_ticket's: invalid), or
        None for the writer to decide; a hint the read contradicts is forgotten."""
        cdef Reader *reader
        cdef int answer
        cdef bint ticketless = ticket_id is None or (type(ticket_id) is int
                                                     and not 1 <= ticket_id <= MAX_TICKET_ID)
        if not (hint & HINT_SOLD_OUT or (ticketless and hint & HINT_LINE)):
            return None
        reader = self._acquire_reader()
        with nogil:
            answer = reader_quick_answer(reader, drop_id, now_ms(), ticketless)
            pool_release(&self._pool, reader)
        if answer == QUICK_SOLD_OUT:
            self._fast_sold_out += 1
            if not hint & HINT_SOLD_OUT:
                self._hint(drop_id, HINT_SOLD_OUT, True)
            return SOLD_OUT
        if hint & HINT_SOLD_OUT:
            self._hint(drop_id, HINT_SOLD_OUT, False)  # stock came back
        if answer == QUICK_NOT_ADMITTED:
            self._fast_not_admitted += 1
            return NOT_ADMITTED_MISSING if ticket_id is None else NOT_ADMITTED_INVALID
        if ticketless:
            self._hint(drop_id, HINT_LINE, False)
        return None

    cdef void _hint(self, long long drop_id, int bit, bint seen):
        """Set or clear one of the drop's hints (a drop with none left is forgotten)."""
        cdef int hint = self._hints.get(drop_id, 0)
        hint = (hint | bit) if seen else (hint & ~bit)
        if hint:
            self._hints[drop_id] = hint
        else:
            self._hints.pop(drop_id, None)

    cdef int _lock_writer(self) except -1:
        """Enter the write critical section (the GIL released while waiting); raises when closed."""
        cdef ErrorInfo err
        cdef int rc
        err.rc = SQLITE_OK
        err.message[0] = 0
        with nogil:
            rc = writer_lock(self._writer, &err)
        if rc != SQLITE_OK:
            raise_error(&err)
        if self._writer.db == NULL:
            writer_unlock(self._writer)
            raise EngineClosedError("the engine is closed")
        return 0

    cdef void _unlock_writer(self) noexcept:
        with nogil:
            writer_unlock(self._writer)

    cdef inline int _enter_write(self) except -1:
        if self._closed:
            raise EngineClosedError("the engine is closed")
        if self._write_owner == PyThread_get_thread_ident():
            raise RuntimeError("this thread is inside Engine.write(): call tx.execute instead")
        return 0

    # -- reads -----------------------------------------------------------

    cdef Reader *_acquire_reader(self) except NULL:
        cdef Reader *reader
        if self._closed:
            raise EngineClosedError("the engine is closed")
        reader = pool_try_acquire(&self._pool)  # an idle one at once, the GIL kept
        if reader == NULL:
            with nogil:
                reader = pool_acquire(&self._pool)
        if reader.db == NULL:
            pool_release(&self._pool, reader)
            raise EngineClosedError("the engine is closed")
        return reader

    cdef _release_reader(self, Reader *reader):
        pool_release(&self._pool, reader)  # never waits (the pool's lock is only ever held briefly)

    cdef list _read_prepared(self, Reader *reader, sqlite3_stmt *stmt, object params):
        try:
            return run_statement(reader.db, stmt, params)
        finally:
            self._release_reader(reader)

    def get_drop(self, long long drop_id):
        """The drop's row as a dict, or None."""
        cdef Reader *reader = self._acquire_reader()
        rows = self._read_prepared(reader, reader.get_drop, (drop_id,))
        return rows[0] if rows else None

    def ticket_body(self, LineView line not None, long long drop_id, long long ticket_id, str buyer, bytes head,
                    bint check_in=True, now=None):
        """The buyer's view of a ticket as the ticket object's JSON (ticket_view.pxi), ``head`` its
        opening; ``line`` the drop's figures. None: no such ticket, or another buyer's. CHECK_IN_DUE
        (when ``check_in``): this view checks the holder in; record it, then view again. ``now``
        (Unix ms) stands for the clock."""
        return ticket_body_of(&self._pool, self._acquire_reader(), line, drop_id, ticket_id, buyer, head, check_in,
                              now_ms() if now is None else now)

    def list_drops(self):
        """Every drop, by start time."""
        cdef Reader *reader = self._acquire_reader()
        return self._read_prepared(reader, reader.list_drops, ())

    def get_order_by_id(self, long long order_id):
        """The order as a dict (with public_ref and order_code), or None."""
        cdef Reader *reader = self._acquire_reader()
        rows = self._read_prepared(reader, reader.get_order, (order_id,))
        if not rows:
            return None
        order = rows[0]
        order["public_ref"] = self.public_ref(order_id)
        order["order_code"] = self.order_code_offset + order_id
        return order

    def read(self, str sql, params=()):
        """Run one read-only statement on a reader (prepared once per reader); rows as dicts."""
        return self._read(sql, params, False)

    def read_row(self, str sql, params=()):
        """The first row of a read-only statement (read() without stepping past it), or None."""
        rows = self._read(sql, params, True)
        return rows[0] if rows else None

    cdef list _read(self, str sql, object params, bint first):
        cdef Reader *reader = self._acquire_reader()
        cdef Statement statement
        try:
            statement = cached_read_statement(self._read_caches[reader - self._pool.readers], reader.db, sql)
            return run_cached(reader.db, statement, params, first)
        finally:
            self._release_reader(reader)

    # -- the cold write path ---------------------------------------------

    def write(self, fn):
        """Run fn(tx) in one write transaction under the critical section.

        Commits when fn returns (its value is returned), rolls back when it
        raises. ``tx.execute(sql, params)`` returns rows as dicts.
        """
        cdef ErrorInfo err
        cdef Writer *w = self._writer
        cdef WriteTx tx
        cdef int rc
        self._enter_write()
        err.rc = SQLITE_OK
        err.message[0] = 0
        self._lock_writer()
        try:
            with nogil:
                rc = writer_begin(w, &err)
            if rc != SQLITE_OK:
                raise_error(&err)
            self._write_owner = PyThread_get_thread_ident()
            tx = WriteTx.__new__(WriteTx)
            tx._core = self
            try:
                result = fn(tx)
                if sqlite3_get_autocommit(w.db):
                    raise make_error(SQLITE_MISUSE, "the transaction was ended inside write()")
            except BaseException:
                with nogil:
                    writer_rollback(w)
                raise
            finally:
                tx._core = None
                self._write_owner = 0
            with nogil:
                rc = writer_commit(w, &err)
            if rc != SQLITE_OK:
                raise_error(&err)
            return result
        finally:
            self._unlock_writer()

    cdef Statement _tx_statement(self, str sql):
        cdef Statement statement = self._tx_statements.get(sql)
        if statement is None:
            if len(self._tx_statements) >= 128:
                oldest = next(iter(self._tx_statements))
                (<Statement>self._tx_statements.pop(oldest)).finalize()
            statement = Statement.__new__(Statement)
            statement.stmt = prepare(self._writer.db, sql, True)
            self._tx_statements[sql] = statement
        return statement

    # -- identities ------------------------------------------------------

    def public_ref(self, long long order_id):
        """The shopper-facing id: the order id and a keyed MAC of it, base32 (26 characters)."""
        cdef char text[REF_LENGTH + 1]
        encode_ref(self._ref_k0, self._ref_k1, order_id, text)
        return text[:REF_LENGTH].decode("ascii")

    def order_id_from_ref(self, public_ref):
        """The order id inside a public_ref, or None when it is not one we made."""
        cdef bytes data
        cdef long long order_id
        if not isinstance(public_ref, str) or len(<str>public_ref) != REF_LENGTH:
            return None
        try:
            data = (<str>public_ref).encode("ascii")
        except UnicodeEncodeError:
            return None
        order_id = decode_ref(self._ref_k0, self._ref_k1, data, len(data))
        return None if order_id < 0 else order_id

    # -- introspection ---------------------------------------------------

    def checkpoint(self, str mode="PASSIVE", int busy_ms=0):
        """Checkpoint the WAL; returns (busy, wal_frames, checkpointed).

        PASSIVE runs on a reader handle, outside the write critical section:
        SQLite lets it copy frames while purchases go on, so it never stalls
        them. The other modes (FULL, RESTART, TRUNCATE: TRUNCATE also resets
        the WAL file to zero bytes) need the writer and take the critical
        section, waiting at most busy_ms for readers.
        """
        cdef int modes[4]
        cdef int emode, rc, log_frames = 0, done_frames = 0
        cdef Reader *reader
        cdef sqlite3 *db
        names = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")
        modes[:] = [SQLITE_CHECKPOINT_PASSIVE, SQLITE_CHECKPOINT_FULL, SQLITE_CHECKPOINT_RESTART,
                    SQLITE_CHECKPOINT_TRUNCATE]
        if mode.upper() not in names:
            raise ValueError("checkpoint mode must be one of %s" % ", ".join(names))
        emode = modes[names.index(mode.upper())]
        if emode == SQLITE_CHECKPOINT_PASSIVE:
            reader = self._acquire_reader()
            db = reader.db
            try:
                with nogil:
                    rc = sqlite3_wal_checkpoint_v2(db, NULL, emode, &log_frames, &done_frames)
                if rc == SQLITE_BUSY:
                    return (True, log_frames, done_frames)
                check_rc(rc, db)
                return (False, log_frames, done_frames)
            finally:
                self._release_reader(reader)
        self._enter_write()
        self._lock_writer()
        db = self._writer.db
        try:
            with nogil:
                sqlite3_busy_timeout(db, busy_ms)
                rc = sqlite3_wal_checkpoint_v2(db, NULL, emode, &log_frames, &done_frames)
                sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS)
            if rc == SQLITE_BUSY:
                return (True, log_frames, done_frames)
            check_rc(rc, db)
            return (False, log_frames, done_frames)
        finally:
            self._unlock_writer()

    def backup(self, path):
        """Copy the database to path online (SQLite backup API) from one reader snapshot.

        Runs on a reader handle, so sales go on meanwhile; the copy is
        consistent as of the moment it started.
        """
        cdef bytes target = os.fsencode(path)
        cdef sqlite3 *dest = NULL
        cdef Reader *reader
        cdef sqlite3_backup *job
        cdef int rc = sqlite3_open_v2(target, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, self._vfs())
        try:
            check_rc(rc, dest)
            reader = self._acquire_reader()
            try:
                job = sqlite3_backup_init(dest, b"main", reader.db, b"main")
                if job == NULL:
                    check_rc(sqlite3_extended_errcode(dest), dest)
                with nogil:
                    rc = sqlite3_backup_step(job, -1)
                    sqlite3_backup_finish(job)
                if rc != SQLITE_DONE:
                    check_rc(rc, dest)
            finally:
                self._release_reader(reader)
        finally:
            sqlite3_close_v2(dest)

    def restore(self, path):
        """Replace this database's content with the file at path (SQLite backup API).

        Runs inside the write critical section, so no purchase interleaves.
        """
        cdef bytes source_path = os.fsencode(path)
        cdef sqlite3 *source = NULL
        cdef sqlite3_backup *job
        cdef int rc
        if not os.path.isfile(source_path):
            raise make_error(SQLITE_CANTOPEN, "no backup file at %s" % os.fsdecode(source_path))
        self._enter_write()
        rc = sqlite3_open_v2(source_path, &source, SQLITE_OPEN_READONLY, self._vfs())
        try:
            check_rc(rc, source)
            self._lock_writer()
            try:
                job = sqlite3_backup_init(self._writer.db, b"main", source, b"main")
                if job == NULL:
                    check_rc(sqlite3_extended_errcode(self._writer.db), self._writer.db)
                with nogil:
                    rc = sqlite3_backup_step(job, -1)
                    sqlite3_backup_finish(job)
                if rc != SQLITE_DONE:
                    check_rc(rc, self._writer.db)
            finally:
                self._unlock_writer()
        finally:
            sqlite3_close_v2(source)
        self._hints.clear()
        self._load_settings()

    def secret(self, str name):
        """A secret made with the schema and kept with the data (e.g. "buyer_cookie_key")."""
        return self._secrets[name]

    @property
    def schema_version(self):
        return SCHEMA_VERSION

    def counters(self):
        """A snapshot of the engine's counters (for /metrics)."""
        # aligned 64-bit loads, no lock: a scrape must not wait for another process's batch
        cdef Counters snapshot = self._writer.counters
        cdef long long wal_commits, wal_writes
        dropsvc_wal_vfs_counts(&wal_commits, &wal_writes)  # process-wide: the VFS layer's own
        return {
            "purchases": {OUTCOME_NAMES[i]: snapshot.outcomes[i] for i in range(N_OUTCOMES)},
            "joins": {JOIN_OUTCOME_NAMES[i]: snapshot.joins[i] for i in range(N_JOIN_OUTCOMES)},
            "batches": {BATCH_BUCKET_NAMES[i]: snapshot.batches[i] for i in range(N_BATCH_BUCKETS)},
            "transactions": snapshot.transactions,
            "rollbacks": snapshot.rollbacks,
            "lock_acquisitions": snapshot.lock_acquisitions,
            "lock_wait_us": snapshot.lock_wait_us,
            "lock_recoveries": snapshot.lock_recoveries,
            "commit_us": snapshot.commit_us,
            "storage_errors": snapshot.storage_errors,
            "sold_out_without_lock": self._fast_sold_out,
            "not_admitted_without_lock": self._fast_not_admitted,
            "wal_commits_one_write": wal_commits,
            "wal_writes": wal_writes,
        }


def request_hash(str user_id, long long quantity):
    """SPEC 5: SHA-256 over the request's user_id and quantity, hex."""
    return hashlib.sha256(b"%s\x00%d" % (user_id.encode("utf-8"), quantity)).hexdigest()
