# A ticket's view (SPEC 11): the waiting herd's read of one ticket by its buyer, answered in one call.
# One prepared statement on a reader, stepped and copied with the GIL released once, the buyer compared
# in C; then the check-in rule and the ticket object's JSON from the row and the process's copy of the
# line (line_view.pxi): ``ahead`` by bisection, the estimate, the kind and state as the schema's own
# words. No dict, no tuple, no JSON encoder per view.
#
# ``eta_s``, a rough estimate in seconds: an admitted ticket, the seconds left in its window; a waiting
# ticket with a position while units remain, 0 when the units of the tickets ahead (ahead x
# per_user_limit) are fewer than ``remaining``, else ceil(units ahead / remaining) x admit_seconds (the
# line turns over at most ``remaining`` units per admission window); otherwise null.

TICKET_VIEW_SQL = ("SELECT buyer, joined_at, kind, state, position, checked_in_at, admitted_until"
                   " FROM tickets WHERE drop_id = ?1 AND ticket_id = ?2")


class CheckInDue:
    """What ``Core.ticket_body`` gives when the view checks the holder in: record the check-in, view again."""

    __slots__ = ()

    def __repr__(self):
        return "CHECK_IN_DUE"


CHECK_IN_DUE = CheckInDue()

cdef enum:
    TICKET_KIND_COUNT = 3
    TICKET_STATE_COUNT = 9

cdef enum:                      # TICKET_VIEW_SQL's columns
    TV_BUYER = 0
    TV_JOINED_AT, TV_KIND, TV_STATE, TV_POSITION, TV_CHECKED_IN_AT, TV_ADMITTED_UNTIL

cdef enum:
    TICKET_TAIL_MAX = 320       # the JSON after the head: 7 names, 2 words, 5 numbers of 20 digits at most

cdef enum TicketFound:
    TICKET_NONE = 0             # no such ticket
    TICKET_FOREIGN = 1          # another buyer's
    TICKET_OWN = 2              # the buyer's: TicketRow holds it

cdef struct TicketRow:
    int found
    long long joined_at
    int kind                    # index into TICKET_KINDS, -1 unknown
    int state                   # index into TICKET_STATES, -1 unknown
    long long position
    bint has_position
    long long checked_in_at     # has_checked_in 0: NULL
    bint has_checked_in
    long long admitted_until
    bint has_admitted_until

if len(TICKET_KINDS) != TICKET_KIND_COUNT or len(TICKET_STATES) != TICKET_STATE_COUNT:
    raise ImportError("ticket_view.pxi: the schema's ticket kinds or states changed")
_TICKET_WORDS = tuple(word.encode("ascii") for word in TICKET_KINDS + TICKET_STATES)  # kept for the pointers
cdef const char *TICKET_WORD_TEXT[TICKET_KIND_COUNT + TICKET_STATE_COUNT]
cdef int TICKET_WORD_LENGTH[TICKET_KIND_COUNT + TICKET_STATE_COUNT]


cdef void point_at_words(tuple words) noexcept:
    cdef int index
    cdef bytes word
    for index in range(len(words)):
        word = words[index]
        TICKET_WORD_TEXT[index] = word
        TICKET_WORD_LENGTH[index] = len(word)


point_at_words(_TICKET_WORDS)
cdef int TS_WAITING = TICKET_STATES.index("waiting")
cdef int TS_ADMITTED = TICKET_STATES.index("admitted")


cdef int word_index(sqlite3_stmt *s, int col, int first, int count) noexcept nogil:
    """Which of TICKET_WORD_TEXT[first:first + count] column col's text is (from 0), -1 none."""
    cdef int index
    for index in range(count):
        if text_is(s, col, TICKET_WORD_TEXT[first + index], TICKET_WORD_LENGTH[first + index]):
            return index
    return -1


cdef inline long long nullable_int(sqlite3_stmt *s, int col, bint *present) noexcept nogil:
    present[0] = sqlite3_column_type(s, col) != SQLITE_NULL
    return sqlite3_column_int64(s, col) if present[0] else 0


cdef int reader_ticket_row(Reader *reader, long long drop_id, long long ticket_id, const char *buyer,
                           Py_ssize_t buyer_len, TicketRow *row) noexcept nogil:
    """Read the ticket into row (row.found says whose it is); an SQLite result code."""
    cdef sqlite3_stmt *s = reader.ticket_view
    cdef int rc
    row.found = TICKET_NONE
    sqlite3_bind_int64(s, 1, drop_id)
    sqlite3_bind_int64(s, 2, ticket_id)
    rc = sqlite3_step(s)
    if rc == SQLITE_ROW:
        rc = SQLITE_OK
        if not text_is(s, TV_BUYER, buyer, <int>buyer_len):
            row.found = TICKET_FOREIGN
        else:
            row.found = TICKET_OWN
            row.joined_at = sqlite3_column_int64(s, TV_JOINED_AT)
            row.kind = word_index(s, TV_KIND, 0, TICKET_KIND_COUNT)
            row.state = word_index(s, TV_STATE, TICKET_KIND_COUNT, TICKET_STATE_COUNT)
            row.position = nullable_int(s, TV_POSITION, &row.has_position)
            row.checked_in_at = nullable_int(s, TV_CHECKED_IN_AT, &row.has_checked_in)
            row.admitted_until = nullable_int(s, TV_ADMITTED_UNTIL, &row.has_admitted_until)
    elif rc == SQLITE_DONE:
        rc = SQLITE_OK
    sqlite3_reset(s)
    return rc


cdef int read_ticket(ReaderPool *pool, Reader *reader, long long drop_id, long long ticket_id, str buyer,
                     TicketRow *row) except -1:
    """The buyer's ticket into row on an acquired reader, which it releases; raises on a storage failure."""
    cdef int rc
    cdef const char *buyer_text
    cdef Py_ssize_t buyer_len
    memset(row, 0, sizeof(TicketRow))
    try:
        buyer_text = PyUnicode_AsUTF8AndSize(buyer, &buyer_len)  # the str's own UTF-8 (ASCII: its data)
        if buyer_len > MAX_USER_ID_LENGTH:
            return 0  # no ticket's (join_ticket's limit)
        with nogil:
            rc = reader_ticket_row(reader, drop_id, ticket_id, buyer_text, buyer_len, row)
        check_rc(rc, reader.db)
    finally:
        pool_release(pool, reader)
    if row.found == TICKET_OWN and (row.kind < 0 or row.state < 0):
        raise RuntimeError("ticket %d of drop %d has an unknown kind or state" % (ticket_id, drop_id))
    return 0


cdef object ticket_body_of(ReaderPool *pool, Reader *reader, LineView line, long long drop_id, long long ticket_id,
                           str buyer, bytes head, bint check_in, long long now):
    """Core.ticket_body on an acquired reader, which it releases."""
    cdef TicketRow row
    read_ticket(pool, reader, drop_id, ticket_id, buyer, &row)
    if row.found != TICKET_OWN:
        return None
    if (check_in and not row.has_checked_in and now >= line.check_in_at
            and (line.check_in_mask >> row.state) & 1):
        return CHECK_IN_DUE
    return render_ticket(head, &row, line, now)


@cython.cdivision(True)
cdef bint eta_of(TicketRow *row, LineView line, long long ahead, bint has_ahead, long long now,
                 long long *eta) noexcept:
    """The estimate of this file's header into eta; False for null."""
    cdef long long left, units
    if row.state == TS_ADMITTED and row.has_admitted_until:
        left = row.admitted_until - now
        eta[0] = 0 if left <= 0 else (left + 999) / 1000
        return True
    if row.state != TS_WAITING or not has_ahead or line.remaining <= 0 or line.window_s == 0:
        return False
    units = ahead * line.per_user_limit
    eta[0] = 0 if units < line.remaining else (units + line.remaining - 1) / line.remaining * line.window_s
    return True


@cython.cdivision(True)
cdef char *put_int(char *p, long long value) noexcept nogil:
    """value's decimal digits at p; the end."""
    cdef char digits[24]
    cdef int count = 0
    cdef unsigned long long rest = <unsigned long long>value
    if value < 0:
        p[0] = c'-'
        p += 1
        rest = <unsigned long long>(-(value + 1)) + 1
    while True:
        digits[count] = <char>(c'0' + rest % 10)
        count += 1
        rest = rest / 10
        if rest == 0:
            break
    while count:
        count -= 1
        p[0] = digits[count]
        p += 1
    return p


cdef inline char *put_text(char *p, const char *text) noexcept nogil:
    cdef size_t length = strlen(text)
    memcpy(p, text, length)
    return p + length


cdef inline char *put_word(char *p, int word) noexcept nogil:
    """A kind or state (TICKET_WORD_TEXT's index) as a JSON string."""
    p[0] = c'"'
    memcpy(p + 1, TICKET_WORD_TEXT[word], TICKET_WORD_LENGTH[word])
    p += 1 + TICKET_WORD_LENGTH[word]
    p[0] = c'"'
    return p + 1


cdef inline char *put_nullable(char *p, const char *name, long long value, bint present) noexcept nogil:
    p = put_text(p, name)
    return put_int(p, value) if present else put_text(p, "null")


cdef bytes render_ticket(bytes head, TicketRow *row, LineView line, long long now):
    """The ticket object's JSON: ``head`` (its opening: ``{`` and the fields before ``kind``, each with
    its comma), then kind, joined_at, state, position, ahead, admitted_until, eta_s."""
    cdef char tail[TICKET_TAIL_MAX]
    cdef char *p = tail
    cdef long long ahead = line_ahead(line, row.position) if row.has_position else 0
    cdef long long eta = 0
    cdef bint has_eta = eta_of(row, line, ahead, row.has_position, now, &eta)
    cdef Py_ssize_t head_len = len(head)
    p = put_word(put_text(p, '"kind":'), row.kind)
    p = put_int(put_text(p, ',"joined_at":'), row.joined_at)
    p = put_word(put_text(p, ',"state":'), TICKET_KIND_COUNT + row.state)
    p = put_nullable(p, ',"position":', row.position, row.has_position)
    p = put_nullable(p, ',"ahead":', ahead, row.has_position)
    p = put_nullable(p, ',"admitted_until":', row.admitted_until, row.has_admitted_until)
    p = put_nullable(p, ',"eta_s":', eta, has_eta)
    p[0] = c'}'
    p += 1
    cdef bytes body = PyBytes_FromStringAndSize(NULL, head_len + (p - tail))
    cdef char *out = PyBytes_AS_STRING(body)
    memcpy(out, <const char *>head, head_len)
    memcpy(out + head_len, tail, p - tail)
    return body
