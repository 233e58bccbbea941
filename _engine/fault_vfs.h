/* The fault-injecting VFS for tests: see fault_vfs.c. */
#ifndef DROPSVC_FAULT_VFS_H
#define DROPSVC_FAULT_VFS_H

#define DROPSVC_FAULT_VFS "dropsvc-fault"

/* the kinds of call an I/O error can be injected into */
enum { FAULT_WRITE, FAULT_SYNC, FAULT_READ, FAULT_TRUNCATE, FAULT_SIZE, FAULT_LOCK, FAULT_SHMMAP, FAULT_KINDS };

/* Register DROPSVC_FAULT_VFS (not as the default) and the WAL layer over it; set the device it
 * reports (sector size, powersafe overwrite). Idempotent; an SQLite code. */
int dropsvc_fault_vfs_register(int sector_size, int powersafe);

/* Fail the nth call of kind (counted from now; kind -1: none), once or from then on; with full,
 * writes and truncates fail with SQLITE_FULL. Resets the call counts. */
void dropsvc_fault_arm(int kind, long long nth, int persistent, int full);

/* Calls of each kind since the last arm (FAULT_KINDS of them), errors injected, mutating calls. */
void dropsvc_fault_counts(long long *calls, long long *fired, long long *mutations);

/* The power-loss model: crash at the crash_at-th mutating call (0: never), keep synced images
 * (tracking), a sync that does nothing (lying_sync), two files copied as they are at the crash
 * ("" for none). An SQLite code. */
int dropsvc_fault_power_model(long long crash_at, int tracking, int lying_sync,
                              const char *from0, const char *to0, const char *from1, const char *to1);

#endif
