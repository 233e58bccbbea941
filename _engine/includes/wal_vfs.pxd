# The engine's VFS layer (wal_vfs.c): each commit's WAL frames written with one write.

cdef extern from "wal_vfs.h" nogil:
    const char *DROPSVC_WAL_VFS
    int dropsvc_wal_vfs_register()
    void dropsvc_wal_vfs_counts(long long *commits, long long *writes)
