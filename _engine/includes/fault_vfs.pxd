# The fault-injecting VFS for tests (fault_vfs.c); registered only when a test asks.

cdef extern from "fault_vfs.h" nogil:
    const char *DROPSVC_FAULT_VFS
    enum:
        FAULT_KINDS
    int dropsvc_fault_vfs_register(int sector_size, int powersafe)
    void dropsvc_fault_arm(int kind, long long nth, int persistent, int full)
    void dropsvc_fault_counts(long long *calls, long long *fired, long long *mutations)
    int dropsvc_fault_power_model(long long crash_at, int tracking, int lying_sync,
                                  const char *from0, const char *to0, const char *from1, const char *to1)
