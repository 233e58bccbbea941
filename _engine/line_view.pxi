# A process's copy of a line's figures, for the ticket view (ticket_view.pxi): what the ledger
# read of the drop (dropsvc.ledger.queue.LINE_SQL, WAITING_SQL) and decided from its own rules (when
# a view starts checking a holder in, for which states), held as C values so a view reads no
# Python object. The ledger makes a new one each time it reads the line again (0.4 s at most).

cdef class LineView:
    """The line's figures a ticket's view needs: the waiting positions in order (``ahead`` counts
    those before a position, by bisection), ``remaining`` units, ``per_user_limit``, ``admit_seconds``
    (None: the drop has no window), and the check-in rule: from ``check_in_from`` (Unix ms; None:
    never) a view of a ticket in one of ``check_in_states``, not checked in yet, checks its holder in."""

    cdef long long *waiting     # ascending
    cdef Py_ssize_t waiting_count
    cdef readonly long long remaining
    cdef readonly long long per_user_limit
    cdef long long window_s     # admit_seconds, 0 for None
    cdef long long check_in_at  # check_in_from, LLONG_MAX for None
    cdef unsigned int check_in_mask  # bit i: TICKET_STATES[i] checks in

    def __cinit__(self, waiting, long long remaining, long long per_user_limit, admit_seconds, check_in_from,
                  check_in_states):
        cdef Py_ssize_t index
        cdef long long previous = 0
        self.waiting_count = len(waiting)
        self.waiting = <long long *>PyMem_Malloc(max(self.waiting_count, 1) * sizeof(long long))
        if self.waiting == NULL:
            raise MemoryError()
        for index in range(self.waiting_count):
            self.waiting[index] = waiting[index]
            if index and self.waiting[index] <= previous:
                raise ValueError("waiting positions must be ascending")
            previous = self.waiting[index]
        self.remaining = remaining
        self.per_user_limit = per_user_limit
        self.window_s = 0 if admit_seconds is None else admit_seconds
        self.check_in_at = LLONG_MAX if check_in_from is None else check_in_from
        self.check_in_mask = 0
        for state in check_in_states:
            self.check_in_mask |= 1u << TICKET_STATES.index(state)

    def __dealloc__(self):
        PyMem_Free(self.waiting)

    @property
    def admit_seconds(self):
        return self.window_s or None

    @property
    def check_in_from(self):
        return None if self.check_in_at == LLONG_MAX else self.check_in_at

    def ahead(self, position):
        """The waiting tickets before ``position`` (None without one)."""
        return None if position is None else line_ahead(self, position)


cdef inline Py_ssize_t line_ahead(LineView line, long long position) noexcept:
    """How many waiting positions are below ``position`` (bisect_left)."""
    cdef Py_ssize_t low = 0, high = line.waiting_count, middle
    while low < high:
        middle = (low + high) >> 1
        if line.waiting[middle] < position:
            low = middle + 1
        else:
            high = middle
    return low
