/* The engine's VFS layer over SQLite's default one: see wal_vfs.c. */
#ifndef DROPSVC_WAL_VFS_H
#define DROPSVC_WAL_VFS_H

#define DROPSVC_WAL_VFS "dropsvc-wal"

/* Register the layer under DROPSVC_WAL_VFS (not as the default); idempotent. An SQLite code. */
int dropsvc_wal_vfs_register(void);

/* The same layer over the VFS named base_name, as "dropsvc-wal/<base_name>" (tests stand the
 * engine on a fault-injecting VFS this way); idempotent. An SQLite code. */
int dropsvc_wal_vfs_register_over(const char *base_name);

/* Commits written as one write, and writes made to WAL files, by this process so far. */
void dropsvc_wal_vfs_counts(long long *commits, long long *writes);

#endif
