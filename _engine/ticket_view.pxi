# A ticket's view (SPEC 11): the waiting herd's read of one ticket by its buyer. One prepared
# statement on a reader, stepped and copied with the GIL released once, the buyer compared in C;
# the row comes back as a tuple (no dict, no column names), its kind and state as the schema's own
# strings (TICKET_KINDS, TICKET_STATES: nothing decoded per view).

TICKET_VIEW_SQL = ("SELECT buyer, joined_at, kind, state, position, checked_in_at, admitted_until"
                   " FROM tickets WHERE drop_id = ?1 AND ticket_id = ?2")
# what Core.ticket_row gives, in order
TICKET_ROW_FIELDS = ("joined_at", "kind", "state", "position", "checked_in_at", "admitted_until")

cdef enum:
    TICKET_KIND_COUNT = 3
    TICKET_STATE_COUNT = 9

cdef enum:                      # TICKET_VIEW_SQL's columns
    TV_BUYER = 0
    TV_JOINED_AT, TV_KIND, TV_STATE, TV_POSITION, TV_CHECKED_IN_AT, TV_ADMITTED_UNTIL

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


cdef object ticket_row_of(ReaderPool *pool, Reader *reader, long long drop_id, long long ticket_id, str buyer):
    """Core.ticket_row on an acquired reader, which it releases: the tuple of TICKET_ROW_FIELDS, or None."""
    cdef TicketRow row
    cdef int rc
    cdef const char *buyer_text
    cdef Py_ssize_t buyer_len
    memset(&row, 0, sizeof(row))
    try:
        buyer_text = PyUnicode_AsUTF8AndSize(buyer, &buyer_len)  # the str's own UTF-8 (ASCII: its data)
        if buyer_len > MAX_USER_ID_LENGTH:
            return None  # no ticket's (join_ticket's limit)
        with nogil:
            rc = reader_ticket_row(reader, drop_id, ticket_id, buyer_text, buyer_len, &row)
        check_rc(rc, reader.db)
    finally:
        pool_release(pool, reader)
    if row.found != TICKET_OWN:
        return None
    if row.kind < 0 or row.state < 0:
        raise RuntimeError("ticket %d of drop %d has an unknown kind or state" % (ticket_id, drop_id))
    return (row.joined_at, TICKET_KINDS[row.kind], TICKET_STATES[row.state], row.position if row.has_position else None,
            row.checked_in_at if row.has_checked_in else None,
            row.admitted_until if row.has_admitted_until else None)
