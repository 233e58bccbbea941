/* A thin VFS over SQLite's default one that writes each commit's WAL frames with one write.
 *
 * SQLite appends a WAL frame with two writes, its 24-byte header and then the page, so a
 * purchase (three dirty pages) costs six pwrite() calls. Here the writes to a WAL file are
 * gathered while they are contiguous and go out as one pwrite() as soon as the page of a
 * commit frame (a frame header whose "database size after commit" field is non-zero) has
 * been handed over: before SQLite publishes the commit in the wal-index, so every reader, in
 * this process or another, finds the frames in the file as it would without this layer.
 * Anything else that looks at the file (read, sync, truncate, size, file control, close) and
 * a write that is not contiguous or does not fit first writes out what is gathered. A crash
 * before a commit frame loses only frames of a transaction that never committed, as a crash
 * between SQLite's own writes would.
 *
 * Files other than WAL files are the default VFS's own, untouched.
 */
#include <string.h>
#include <sqlite3.h>

#include "wal_vfs.h"

#define GATHER_BYTES (64 * 1024)
#define FRAME_HEADER_BYTES 24

typedef struct WalFile {
    sqlite3_file base;      /* base.pMethods = &wal_methods */
    sqlite3_file *real;     /* the default VFS's file, right after this struct */
    char *gathered;         /* GATHER_BYTES: bytes waiting to be written at `start` */
    int used;
    sqlite3_int64 start;
    int commit_page_next;   /* the last header gathered was a commit frame's */
    int after_commit_page;  /* the last write completed (part of) a commit frame's page */
    sqlite3_int64 last_end; /* where the last write ended */
} WalFile;

static sqlite3_vfs wal_vfs;
static sqlite3_io_methods wal_methods;
static volatile long long commits_written;  /* commits that went out as one write */
static volatile long long writes_issued;    /* writes this layer made to WAL files */

/* the VFS this layer stands on: the default one, or a test's (dropsvc_wal_vfs_register_over) */
static sqlite3_vfs *real_vfs(sqlite3_vfs *layer) { return (sqlite3_vfs *)layer->pAppData; }

static int flush(WalFile *w) {
    int rc;
    if (w->used == 0) return SQLITE_OK;
    rc = w->real->pMethods->xWrite(w->real, w->gathered, w->used, w->start);
    __atomic_add_fetch(&writes_issued, 1, __ATOMIC_RELAXED);
    w->used = 0;
    return rc;
}

static int is_frame_header(int amount, sqlite3_int64 offset) {
    /* the WAL file header is 32 bytes at offset 0; frame headers follow it */
    return amount == FRAME_HEADER_BYTES && offset >= 32;
}

static int is_commit_header(const void *data) {
    const unsigned char *h = data;
    return (h[4] | h[5] | h[6] | h[7]) != 0;  /* "database size after commit", 0 otherwise */
}

static int wal_write(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
    WalFile *w = (WalFile *)f;
    int header = is_frame_header(amount, offset);
    int commit_page = w->commit_page_next && !header;  /* the page that completes a commit */
    /* SQLite splits a frame at a sync point (its sector padding on devices without powersafe
       overwrite): the rest of a commit frame's page comes in its own write after the sync, and
       must go out at once like the part before it, never wait in memory for the next
       transaction (where a failed write would lose it, and readers would meet a short frame) */
    int rest_of_commit = w->after_commit_page && !header && offset == w->last_end;
    int rc;
    w->commit_page_next = header && is_commit_header(data);
    w->after_commit_page = commit_page || rest_of_commit;
    w->last_end = offset + amount;
    if (w->used > 0 && (offset != w->start + w->used || amount > GATHER_BYTES - w->used)) {
        rc = flush(w);
        if (rc != SQLITE_OK) return rc;
    }
    if (amount > GATHER_BYTES) {
        __atomic_add_fetch(&writes_issued, 1, __ATOMIC_RELAXED);
        return w->real->pMethods->xWrite(w->real, data, amount, offset);
    }
    if (w->used == 0) w->start = offset;
    memcpy(w->gathered + w->used, data, (size_t)amount);
    w->used += amount;
    if (!commit_page && !rest_of_commit) return SQLITE_OK;
    /* out before SQLite publishes the commit in the wal-index */
    rc = flush(w);
    if (rc == SQLITE_OK && commit_page) __atomic_add_fetch(&commits_written, 1, __ATOMIC_RELAXED);
    return rc;
}

static int wal_close(sqlite3_file *f) {
    WalFile *w = (WalFile *)f;
    int rc = flush(w);
    int closed = w->real->pMethods->xClose(w->real);
    sqlite3_free(w->gathered);
    w->gathered = NULL;
    return rc != SQLITE_OK ? rc : closed;
}

static int wal_read(sqlite3_file *f, void *data, int amount, sqlite3_int64 offset) {
    WalFile *w = (WalFile *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, data, amount, offset);
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size) {
    WalFile *w = (WalFile *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_sync(sqlite3_file *f, int flags) {
    WalFile *w = (WalFile *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size) {
    WalFile *w = (WalFile *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wal_lock(sqlite3_file *f, int level) {
    WalFile *w = (WalFile *)f;
    return w->real->pMethods->xLock(w->real, level);
}

static int wal_unlock(sqlite3_file *f, int level) {
    WalFile *w = (WalFile *)f;
    return w->real->pMethods->xUnlock(w->real, level);
}

static int wal_check_reserved_lock(sqlite3_file *f, int *out) {
    WalFile *w = (WalFile *)f;
    return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg) {
    WalFile *w = (WalFile *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wal_sector_size(sqlite3_file *f) {
    WalFile *w = (WalFile *)f;
    return w->real->pMethods->xSectorSize(w->real);
}

static int wal_device_characteristics(sqlite3_file *f) {
    WalFile *w = (WalFile *)f;
    return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* A WAL file has no shared memory of its own (the database file has) and is never mapped. */
static int wal_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
    (void)f; (void)page; (void)size; (void)extend;
    *out = NULL;
    return SQLITE_IOERR_SHMMAP;
}

static int wal_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
    (void)f; (void)offset; (void)n; (void)flags;
    return SQLITE_IOERR_SHMLOCK;
}

static void wal_shm_barrier(sqlite3_file *f) { (void)f; }

static int wal_shm_unmap(sqlite3_file *f, int delete_flag) {
    (void)f; (void)delete_flag;
    return SQLITE_OK;
}

static int wal_fetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) {
    (void)f; (void)offset; (void)amount;
    *out = NULL;  /* "use xRead" */
    return SQLITE_OK;
}

static int wal_unfetch(sqlite3_file *f, sqlite3_int64 offset, void *page) {
    (void)f; (void)offset; (void)page;
    return SQLITE_OK;
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
    sqlite3_vfs *real = real_vfs(vfs);
    WalFile *w;
    int rc;
    if (!(flags & SQLITE_OPEN_WAL)) return real->xOpen(real, name, f, flags, out_flags);
    w = (WalFile *)f;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)&w[1];
    w->gathered = sqlite3_malloc(GATHER_BYTES);
    if (w->gathered == NULL) return SQLITE_NOMEM;
    rc = real->xOpen(real, name, w->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (w->real->pMethods != NULL) w->real->pMethods->xClose(w->real);
        sqlite3_free(w->gathered);
        w->gathered = NULL;
        return rc;  /* base.pMethods stays NULL: SQLite will not call xClose */
    }
    w->base.pMethods = &wal_methods;
    return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *v, const char *name, int sync_dir) {
    return real_vfs(v)->xDelete(real_vfs(v), name, sync_dir);
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
    return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out) {
    return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}

static void *vfs_dl_open(sqlite3_vfs *v, const char *name) {
    return real_vfs(v)->xDlOpen(real_vfs(v), name);
}

static void vfs_dl_error(sqlite3_vfs *v, int n, char *out) {
    real_vfs(v)->xDlError(real_vfs(v), n, out);
}

static void (*vfs_dl_sym(sqlite3_vfs *v, void *handle, const char *symbol))(void) {
    return real_vfs(v)->xDlSym(real_vfs(v), handle, symbol);
}

static void vfs_dl_close(sqlite3_vfs *v, void *handle) {
    real_vfs(v)->xDlClose(real_vfs(v), handle);
}

static int vfs_randomness(sqlite3_vfs *v, int n, char *out) {
    return real_vfs(v)->xRandomness(real_vfs(v), n, out);
}

static int vfs_sleep(sqlite3_vfs *v, int microseconds) {
    return real_vfs(v)->xSleep(real_vfs(v), microseconds);
}

static int vfs_current_time(sqlite3_vfs *v, double *out) {
    return real_vfs(v)->xCurrentTime(real_vfs(v), out);
}

static int vfs_get_last_error(sqlite3_vfs *v, int n, char *out) {
    return real_vfs(v)->xGetLastError(real_vfs(v), n, out);
}

static int vfs_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out) {
    return real_vfs(v)->xCurrentTimeInt64(real_vfs(v), out);
}

int dropsvc_wal_vfs_register(void) {
    sqlite3_vfs *real;
    if (wal_vfs.pAppData != NULL) return SQLITE_OK;
    real = sqlite3_vfs_find(NULL);
    /* the default must be one this layer can stand on: version 2+ (xCurrentTimeInt64) */
    if (real == NULL || real->iVersion < 2) return SQLITE_ERROR;

    wal_methods.iVersion = 3;
    wal_methods.xClose = wal_close;
    wal_methods.xRead = wal_read;
    wal_methods.xWrite = wal_write;
    wal_methods.xTruncate = wal_truncate;
    wal_methods.xSync = wal_sync;
    wal_methods.xFileSize = wal_file_size;
    wal_methods.xLock = wal_lock;
    wal_methods.xUnlock = wal_unlock;
    wal_methods.xCheckReservedLock = wal_check_reserved_lock;
    wal_methods.xFileControl = wal_file_control;
    wal_methods.xSectorSize = wal_sector_size;
    wal_methods.xDeviceCharacteristics = wal_device_characteristics;
    wal_methods.xShmMap = wal_shm_map;
    wal_methods.xShmLock = wal_shm_lock;
    wal_methods.xShmBarrier = wal_shm_barrier;
    wal_methods.xShmUnmap = wal_shm_unmap;
    wal_methods.xFetch = wal_fetch;
    wal_methods.xUnfetch = wal_unfetch;

    wal_vfs.iVersion = 2;
    wal_vfs.szOsFile = (int)sizeof(WalFile) + real->szOsFile;
    wal_vfs.mxPathname = real->mxPathname;
    wal_vfs.zName = DROPSVC_WAL_VFS;
    wal_vfs.pAppData = real;
    wal_vfs.xOpen = vfs_open;
    wal_vfs.xDelete = vfs_delete;
    wal_vfs.xAccess = vfs_access;
    wal_vfs.xFullPathname = vfs_full_pathname;
    wal_vfs.xDlOpen = vfs_dl_open;
    wal_vfs.xDlError = vfs_dl_error;
    wal_vfs.xDlSym = vfs_dl_sym;
    wal_vfs.xDlClose = vfs_dl_close;
    wal_vfs.xRandomness = vfs_randomness;
    wal_vfs.xSleep = vfs_sleep;
    wal_vfs.xCurrentTime = vfs_current_time;
    wal_vfs.xGetLastError = vfs_get_last_error;
    wal_vfs.xCurrentTimeInt64 = vfs_current_time_int64;
    return sqlite3_vfs_register(&wal_vfs, 0);
}

int dropsvc_wal_vfs_register_over(const char *base_name) {
    /* one layer per base, named "dropsvc-wal/<base>", never unregistered (tests only) */
    sqlite3_vfs *base = sqlite3_vfs_find(base_name), *layer;
    char *name;
    int rc = dropsvc_wal_vfs_register();
    if (rc != SQLITE_OK) return rc;
    if (base == NULL || base->iVersion < 2) return SQLITE_ERROR;
    name = sqlite3_mprintf("%s/%s", DROPSVC_WAL_VFS, base_name);
    if (name == NULL) return SQLITE_NOMEM;
    if (sqlite3_vfs_find(name) != NULL) {
        sqlite3_free(name);
        return SQLITE_OK;
    }
    layer = sqlite3_malloc(sizeof *layer);
    if (layer == NULL) {
        sqlite3_free(name);
        return SQLITE_NOMEM;
    }
    *layer = wal_vfs;
    layer->szOsFile = (int)sizeof(WalFile) + base->szOsFile;
    layer->mxPathname = base->mxPathname;
    layer->zName = name;
    layer->pAppData = base;
    return sqlite3_vfs_register(layer, 0);
}

void dropsvc_wal_vfs_counts(long long *commits, long long *writes) {
    *commits = __atomic_load_n(&commits_written, __ATOMIC_RELAXED);
    *writes = __atomic_load_n(&writes_issued, __ATOMIC_RELAXED);
}
