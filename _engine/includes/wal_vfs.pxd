# The engine's VFS layer (wal_vfs.c): each commit's WAL frames written with one write.

cdef extern from "wal_vfs.h" nogil:
    const char *DROPSVC_WAL_VFS
    int dropsvc_wal_vfs_register()
    int dropsvc_wal_vfs_register_over(const char *base_name)
    void dropsvc_wal_vfs_counts(long long *commits, long long *writes)
