# POSIX calls Cython's bundled declarations lack.

cdef extern from "<sys/file.h>" nogil:
    int flock(int fd, int operation)
    enum:
        LOCK_EX
        LOCK_UN
