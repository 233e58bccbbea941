/* A fault-injecting VFS for tests (bench/crash.py, tests/): never on the serving path.
 *
 * Registered only when a test calls dropsvc._engine.fault_vfs_register(); an engine opened with
 * Engine(path, base_vfs=FAULT_VFS) stands on it everywhere: the writer (through a WAL layer of
 * wal_vfs.c over this VFS), the readers, checkpoints (PASSIVE runs on a reader), the backup's
 * destination and the restore's source. Every file passes through to SQLite's default VFS.
 *
 * Two kinds of fault, as SQLite's own test VFSes inject them (the ioerr and crash tests):
 *
 * 1. I/O errors: the Nth call of one kind (write, sync, read, truncate, file size, lock, shm map),
 *    counted from fault_arm(), fails with that kind's SQLITE_IOERR_* code or SQLITE_FULL, once
 *    or on every call from then on, until fault_clear().
 *
 * 2. Power loss. Writes go through to the files at once (so every handle, the -shm and other
 *    processes see what they would), and each xSync of a file copies the whole file to
 *    "<path>~synced": what the disk holds for sure. Writes since then are listed in
 *    "<path>~dirty" (offset, length; shared by every handle of the path). At the crash point
 *    (the Nth mutating call: write, sync or truncate, whichever file) the VFS goes dead (every
 *    later call fails and nothing more reaches the files), copies the files named by
 *    fault_power_model()'s snapshot (the engine's -lock page, which no VFS call writes) as they
 *    are, and SIGKILLs its own process. bench/crashkit/disk.py then rebuilds each file as a disk
 *    could hold it: the synced image, plus the dirty sectors dropped, kept, or torn (each
 *    sector old, new or garbage), and no -shm.
 *
 * What the model assumes about the directory (no directory fsync is modelled):
 *  - creation: a file is there after a power loss once one xSync of it has completed (SQLite's
 *    unix VFS syncs the directory at a new journal's first sync; for the database file we take
 *    ext4/xfs's behaviour, where fsync of a new file commits its name). A file never synced may
 *    be gone, or there with any of its written sectors.
 *  - deletion: durable at once (the images go with the file). A real disk might bring back a
 *    deleted WAL; SQLite deletes it only after checkpointing and syncing the database, so its
 *    frames would replay onto the same pages. Not modelled.
 *  - truncation: not durable until the file's next xSync: the rebuild may keep the old length
 *    with the synced bytes past the new end.
 *  - one process writes (one writer, any number of threads). Several writer processes at once
 *    are outside this model: the crash point and the dirty lists are per process.
 *
 * The device: xSectorSize reports the configured sector size (512 or 4096 in bench/crash.py);
 * xDeviceCharacteristics claims SQLITE_IOCAP_POWERSAFE_OVERWRITE only when the run does not
 * tear sectors, so SQLite pads WAL commits to sector boundaries when it does. xFetch maps
 * nothing, so reads go through xRead and can fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include "fault_vfs.h"
#include "wal_vfs.h"

#define IMAGE_SUFFIX "~synced"
#define DIRTY_SUFFIX "~dirty"
#define MAX_PATH_BYTES 1024

typedef struct FaultFile {
    sqlite3_file base;   /* base.pMethods = &fault_methods */
    sqlite3_file *real;  /* the default VFS's file, right after this struct */
    const char *path;    /* SQLite keeps the name alive until xClose; NULL for temp files */
    int tracked;         /* main db, WAL, journals: files the power-loss model keeps images of */
} FaultFile;

static struct {
    pthread_mutex_t lock;         /* mutating calls are serialised: images stay whole */
    long long calls[FAULT_KINDS];
    int kind;                     /* armed I/O error: kind, or -1 */
    long long nth;
    int persistent;
    int full;
    long long fired;
    long long mutations;          /* writes, syncs and truncates since fault_power_model() */
    long long crash_at;           /* 0: no crash point */
    int tracking;                 /* keep the images of synced content */
    int lying_sync;               /* a disk whose sync does nothing (a mutant) */
    int sector_size;
    int powersafe;
    volatile int dead;
    char snapshot[2][2][MAX_PATH_BYTES];  /* up to two (from, to) copies made at the crash */
} G = {PTHREAD_MUTEX_INITIALIZER, {0}, -1, 0, 0, 0, 0, 0, 0, 0, 0, 4096, 1, 0, {{{0}}}};

static sqlite3_vfs fault_vfs;
static sqlite3_io_methods fault_methods;

static const int KIND_ERRORS[FAULT_KINDS] = {
    SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC, SQLITE_IOERR_READ, SQLITE_IOERR_TRUNCATE,
    SQLITE_IOERR_FSTAT, SQLITE_IOERR_LOCK, SQLITE_IOERR_SHMMAP,
};

static sqlite3_vfs *base_of(sqlite3_vfs *v) { return (sqlite3_vfs *)v->pAppData; }

/* Count a call of `kind`; the armed error for it, or OK. */
static int injected(int kind) {
    long long n;
    int hit;
    if (G.dead) return SQLITE_IOERR;
    n = __atomic_add_fetch(&G.calls[kind], 1, __ATOMIC_RELAXED);
    hit = G.kind == kind && (n == G.nth || (G.persistent && n > G.nth));
    if (!hit) return SQLITE_OK;
    __atomic_add_fetch(&G.fired, 1, __ATOMIC_RELAXED);
    return G.full && (kind == FAULT_WRITE || kind == FAULT_TRUNCATE) ? SQLITE_FULL : KIND_ERRORS[kind];
}

static int suffixed(char *out, const char *path, const char *suffix) {
    return snprintf(out, MAX_PATH_BYTES, "%s%s", path, suffix) < MAX_PATH_BYTES;
}

/* Copy from -> to (to replaced whole, through a temporary name); 0 on success. */
static int copy_file(const char *from, const char *to) {
    char tmp[MAX_PATH_BYTES], buffer[65536];
    ssize_t got;
    int in, out, ok = 1;
    if (!suffixed(tmp, to, ".tmp")) return -1;
    in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0 && errno == ENOENT) {
        unlink(to);  /* no file: no image of it either */
        return 0;
    }
    if (in < 0) return -1;
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) { close(in); return -1; }
    while (ok && (got = read(in, buffer, sizeof buffer)) > 0) ok = write(out, buffer, (size_t)got) == got;
    close(in);
    close(out);
    return ok && rename(tmp, to) == 0 ? 0 : -1;
}

static void note_dirty(FaultFile *f, sqlite3_int64 offset, sqlite3_int64 amount) {
    char name[MAX_PATH_BYTES];
    sqlite3_int64 range[2] = {offset, amount};
    int fd;
    if (!G.tracking || !f->tracked || !suffixed(name, f->path, DIRTY_SUFFIX)) return;
    fd = open(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, range, sizeof range) != (ssize_t)sizeof range) { /* the rebuild diffs instead */ }
    close(fd);
}

/* What the disk holds for sure after a completed sync: the whole file, its dirty list empty. */
static int keep_synced_image(FaultFile *f) {
    char image[MAX_PATH_BYTES], dirty[MAX_PATH_BYTES];
    if (!G.tracking || !f->tracked) return SQLITE_OK;
    if (!suffixed(image, f->path, IMAGE_SUFFIX) || !suffixed(dirty, f->path, DIRTY_SUFFIX)) return SQLITE_IOERR;
    if (copy_file(f->path, image) != 0) return SQLITE_IOERR_FSYNC;
    unlink(dirty);
    return SQLITE_OK;
}

/* The power goes out: nothing more reaches the files; the process dies where it stands. */
static void power_loss(void) {
    int i;
    G.dead = 1;
    for (i = 0; i < 2; i++)
        if (G.snapshot[i][0][0]) copy_file(G.snapshot[i][0], G.snapshot[i][1]);
    kill(getpid(), SIGKILL);
    pause();
}

/* Before a mutating call: the crash point? Call with G.lock held. */
static int crash_now(void) {
    return ++G.mutations == G.crash_at;  /* crash_at 0: never (the count starts at 1) */
}

static int f_close(sqlite3_file *file) {
    FaultFile *f = (FaultFile *)file;
    return f->real->pMethods->xClose(f->real);
}

static int f_read(sqlite3_file *file, void *data, int amount, sqlite3_int64 offset) {
    FaultFile *f = (FaultFile *)file;
    int rc = injected(FAULT_READ);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, data, amount, offset);
}

static int f_write(sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset) {
    FaultFile *f = (FaultFile *)file;
    int rc = injected(FAULT_WRITE), crash;
    if (rc != SQLITE_OK) return rc;
    pthread_mutex_lock(&G.lock);
    crash = crash_now();
    /* the crashing write reaches the file: the rebuild decides what of it the disk kept */
    if (!G.dead) {
        note_dirty(f, offset, amount);
        rc = f->real->pMethods->xWrite(f->real, data, amount, offset);
    } else {
        rc = SQLITE_IOERR_WRITE;
    }
    if (crash) power_loss();
    pthread_mutex_unlock(&G.lock);
    return rc;
}

static int f_truncate(sqlite3_file *file, sqlite3_int64 size) {
    FaultFile *f = (FaultFile *)file;
    int rc = injected(FAULT_TRUNCATE);
    if (rc != SQLITE_OK) return rc;
    pthread_mutex_lock(&G.lock);
    if (crash_now()) power_loss();
    rc = G.dead ? SQLITE_IOERR_TRUNCATE : f->real->pMethods->xTruncate(f->real, size);
    pthread_mutex_unlock(&G.lock);
    return rc;
}

static int f_sync(sqlite3_file *file, int flags) {
    FaultFile *f = (FaultFile *)file;
    int rc = injected(FAULT_SYNC);
    if (rc != SQLITE_OK) return rc;
    pthread_mutex_lock(&G.lock);
    if (crash_now()) power_loss();  /* before the sync completes: nothing new is durable */
    if (G.dead) rc = SQLITE_IOERR_FSYNC;
    else if (!G.lying_sync) rc = f->real->pMethods->xSync(f->real, flags);
    if (rc == SQLITE_OK && !G.lying_sync) rc = keep_synced_image(f);
    pthread_mutex_unlock(&G.lock);
    return rc;
}

static int f_file_size(sqlite3_file *file, sqlite3_int64 *size) {
    FaultFile *f = (FaultFile *)file;
    int rc = injected(FAULT_SIZE);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int f_lock(sqlite3_file *file, int level) {
    FaultFile *f = (FaultFile *)file;
    int rc = injected(FAULT_LOCK);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int f_unlock(sqlite3_file *file, int level) {
    FaultFile *f = (FaultFile *)file;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int f_check_reserved_lock(sqlite3_file *file, int *out) {
    FaultFile *f = (FaultFile *)file;
    if (G.dead) return SQLITE_IOERR_CHECKRESERVEDLOCK;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int f_file_control(sqlite3_file *file, int op, void *arg) {
    FaultFile *f = (FaultFile *)file;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int f_sector_size(sqlite3_file *file) {
    (void)file;
    return G.sector_size;
}

static int f_device_characteristics(sqlite3_file *file) {
    FaultFile *f = (FaultFile *)file;
    int real = f->real->pMethods->xDeviceCharacteristics(f->real) & ~SQLITE_IOCAP_POWERSAFE_OVERWRITE;
    return G.powersafe ? real | SQLITE_IOCAP_POWERSAFE_OVERWRITE : real;
}

static int f_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out) {
    FaultFile *f = (FaultFile *)file;
    int rc = injected(FAULT_SHMMAP);
    if (rc != SQLITE_OK) {
        *out = NULL;
        return rc;
    }
    return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

static int f_shm_lock(sqlite3_file *file, int offset, int n, int flags) {
    FaultFile *f = (FaultFile *)file;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *file) {
    FaultFile *f = (FaultFile *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static int f_shm_unmap(sqlite3_file *file, int delete_flag) {
    FaultFile *f = (FaultFile *)file;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int f_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out) {
    (void)file; (void)offset; (void)amount;
    *out = NULL;  /* no memory map: every read is an xRead this VFS can fail */
    return SQLITE_OK;
}

static int f_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *page) {
    (void)file; (void)offset; (void)page;
    return SQLITE_OK;
}

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags) {
    sqlite3_vfs *base = base_of(vfs);
    FaultFile *f = (FaultFile *)file;
    int rc;
    if (G.dead) return SQLITE_CANTOPEN;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)&f[1];
    f->path = name;
    f->tracked = name != NULL && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL));
    rc = base->xOpen(base, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods != NULL) f->real->pMethods->xClose(f->real);
        return rc;
    }
    f->base.pMethods = &fault_methods;
    return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
    char image[MAX_PATH_BYTES], dirty[MAX_PATH_BYTES];
    int rc;
    if (G.dead) return SQLITE_IOERR_DELETE;
    rc = base_of(vfs)->xDelete(base_of(vfs), name, sync_dir);
    if (rc == SQLITE_OK && suffixed(image, name, IMAGE_SUFFIX) && suffixed(dirty, name, DIRTY_SUFFIX)) {
        unlink(image);  /* deletion is durable at once (see the model above) */
        unlink(dirty);
    }
    return rc;
}

int dropsvc_fault_vfs_register(int sector_size, int powersafe) {
    static const sqlite3_io_methods methods = {
        3, f_close, f_read, f_write, f_truncate, f_sync, f_file_size, f_lock, f_unlock,
        f_check_reserved_lock, f_file_control, f_sector_size, f_device_characteristics,
        f_shm_map, f_shm_lock, f_shm_barrier, f_shm_unmap, f_fetch, f_unfetch,
    };
    sqlite3_vfs *base;
    int rc;
    G.sector_size = sector_size;
    G.powersafe = powersafe;
    if (fault_vfs.pAppData != NULL) return SQLITE_OK;
    base = sqlite3_vfs_find(NULL);
    if (base == NULL || base->iVersion < 2) return SQLITE_ERROR;
    fault_methods = methods;
    /* the rest (access, full pathname, randomness, time, ...) is the base's own: the unix VFS's
       versions of them do not look at the sqlite3_vfs they are called with */
    fault_vfs = *base;
    fault_vfs.pNext = NULL;
    fault_vfs.szOsFile = (int)sizeof(FaultFile) + base->szOsFile;
    fault_vfs.zName = DROPSVC_FAULT_VFS;
    fault_vfs.pAppData = base;
    fault_vfs.xOpen = v_open;
    fault_vfs.xDelete = v_delete;
    rc = sqlite3_vfs_register(&fault_vfs, 0);
    return rc != SQLITE_OK ? rc : dropsvc_wal_vfs_register_over(DROPSVC_FAULT_VFS);
}

void dropsvc_fault_arm(int kind, long long nth, int persistent, int full) {
    int i;
    for (i = 0; i < FAULT_KINDS; i++) __atomic_store_n(&G.calls[i], 0, __ATOMIC_RELAXED);
    G.nth = nth;
    G.persistent = persistent;
    G.full = full;
    G.fired = 0;
    __atomic_store_n(&G.kind, kind, __ATOMIC_RELEASE);
}

void dropsvc_fault_counts(long long *calls, long long *fired, long long *mutations) {
    int i;
    for (i = 0; i < FAULT_KINDS; i++) calls[i] = __atomic_load_n(&G.calls[i], __ATOMIC_RELAXED);
    *fired = __atomic_load_n(&G.fired, __ATOMIC_RELAXED);
    *mutations = G.mutations;
}

int dropsvc_fault_power_model(long long crash_at, int tracking, int lying_sync,
                              const char *from0, const char *to0, const char *from1, const char *to1) {
    const char *paths[4] = {from0, to0, from1, to1};
    int i;
    pthread_mutex_lock(&G.lock);
    for (i = 0; i < 4; i++) {
        if (strlen(paths[i]) >= MAX_PATH_BYTES) { pthread_mutex_unlock(&G.lock); return SQLITE_TOOBIG; }
        strcpy(G.snapshot[i / 2][i % 2], paths[i]);
    }
    G.crash_at = crash_at;
    G.mutations = 0;
    G.tracking = tracking;
    G.lying_sync = lying_sync;
    G.dead = 0;
    pthread_mutex_unlock(&G.lock);
    return SQLITE_OK;
}
