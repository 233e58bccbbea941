# The cross-process critical section: a robust, process-shared pthread mutex
# in a small file next to the database (<db>-lock), mmap'd by every process
# that opens the file. A process killed while holding it leaves it
# recoverable: the next locker gets EOWNERDEAD, marks it consistent and goes
# on (SQLite itself ignores the dead writer's uncommitted WAL frames).
#
# A power loss is another matter: the page may reach the disk saying "held" by a thread of a
# boot that is gone, which no kernel will ever mark dead, so the next locker would wait
# forever. The page carries the boot id of the machine that initialised it
# (/proc/sys/kernel/random/boot_id); a page from another boot is initialised again: no
# process of this boot can be using it.

cdef enum:
    LOCKFILE_MAGIC = 0x6C64726F706C6B32  # "ldroplk2"
    BOOT_ID_BYTES = 40

cdef struct SharedLock:
    unsigned long long magic
    unsigned long long size
    char boot_id[BOOT_ID_BYTES]     # NUL-padded
    pthread_mutex_t mutex

_boot_id_for_tests = None


def set_boot_id_for_tests(value):
    """Pretend the machine booted again (bench/crash.py after a modelled power loss): lock
    files from another boot id are initialised again. None: the real boot id."""
    global _boot_id_for_tests
    _boot_id_for_tests = None if value is None else str(value)[:BOOT_ID_BYTES - 1]


cdef bytes current_boot_id():
    if _boot_id_for_tests is not None:
        return (<str>_boot_id_for_tests).encode()
    try:
        fd = os.open("/proc/sys/kernel/random/boot_id", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.read(fd, 64).strip()[:BOOT_ID_BYTES - 1]
        finally:
            os.close(fd)
    except OSError:
        return b"unknown"  # no /proc: a stale page after a power loss is then not recognised


cdef SharedLock *map_lock_file(bytes path) except NULL:
    """Open (creating and initialising under flock if need be) and mmap the lock file."""
    cdef const char *cpath = path
    cdef int fd
    cdef void *mapped
    cdef SharedLock *shared
    cdef pthread_mutexattr_t attr
    cdef stat_t info
    cdef bytes boot_id = current_boot_id()
    with nogil:
        fd = open(cpath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    if fd < 0:
        # no write access to the lock file means none to the database either
        raise make_error(SQLITE_READONLY if errno in (EACCES, EPERM, EROFS) else SQLITE_CANTOPEN,
                         "cannot open lock file %s: %s"
                         % (path.decode("utf-8", "replace"), os.strerror(errno)))
    try:
        with nogil:
            flock(fd, LOCK_EX)
        if fstat(fd, &info) != 0:
            raise make_error(SQLITE_IOERR, "cannot stat %s" % path.decode("utf-8", "replace"))
        if info.st_size < <long>sizeof(SharedLock):
            if ftruncate(fd, sizeof(SharedLock)) != 0:
                raise make_error(SQLITE_IOERR, "cannot size lock file %s: %s"
                                 % (path.decode("utf-8", "replace"), os.strerror(errno)))
        mapped = mmap(NULL, sizeof(SharedLock), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        if mapped == MAP_FAILED:
            raise make_error(SQLITE_IOERR, "cannot map lock file %s: %s"
                             % (path.decode("utf-8", "replace"), os.strerror(errno)))
        shared = <SharedLock *>mapped
        if (shared.magic != LOCKFILE_MAGIC or shared.size != sizeof(SharedLock)
                or shared.boot_id[:BOOT_ID_BYTES].rstrip(b"\0") != boot_id):
            # first user of the file, a file from another build or from before a reboot
            memset(shared.boot_id, 0, BOOT_ID_BYTES)
            memcpy(shared.boot_id, <const char *>boot_id, len(boot_id))
            pthread_mutexattr_init(&attr)
            pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)
            pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)
            pthread_mutex_init(&shared.mutex, &attr)
            pthread_mutexattr_destroy(&attr)
            shared.size = sizeof(SharedLock)
            shared.magic = LOCKFILE_MAGIC
        return shared
    finally:
        flock(fd, LOCK_UN)
        close(fd)  # the mapping outlives the descriptor


cdef void unmap_lock_file(SharedLock *shared) noexcept nogil:
    if shared != NULL:
        munmap(shared, sizeof(SharedLock))
