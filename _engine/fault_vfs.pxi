# The fault-injecting VFS (fault_vfs.c) for tests and bench/crash.py: registered only when one
# of them calls fault_vfs_register(); an engine stands on it with Engine(path, base_vfs=FAULT_VFS).

FAULT_VFS = DROPSVC_FAULT_VFS.decode()
FAULT_KIND_NAMES = ("write", "sync", "read", "truncate", "size", "lock", "shm_map")


def fault_vfs_register(int sector_size=4096, bint powersafe=True):
    """Register the fault VFS (and the WAL layer over it); set the sector size and whether it
    claims powersafe overwrite. Returns its name. Safe to call again to change the device."""
    if sector_size not in (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536):
        raise ValueError("sector_size must be a power of two from 512 to 65536")
    cdef int rc = dropsvc_fault_vfs_register(sector_size, powersafe)
    if rc != SQLITE_OK:
        raise make_error(rc, "could not register SQLite VFS %s" % FAULT_VFS)
    return FAULT_VFS


def fault_arm(str kind, long long nth, bint persistent=False, bint full=False):
    """Fail the nth call of kind from now (1 = the next one), once or (persistent) from then on;
    full: writes and truncates fail with SQLITE_FULL instead of an I/O error."""
    if kind not in FAULT_KIND_NAMES:
        raise ValueError("kind must be one of %s" % ", ".join(FAULT_KIND_NAMES))
    if nth < 1:
        raise ValueError("nth counts from 1")
    dropsvc_fault_arm(FAULT_KIND_NAMES.index(kind), nth, persistent, full)


def fault_clear():
    """No more injected errors (the call counts start again)."""
    dropsvc_fault_arm(-1, 0, False, False)


def fault_counts():
    """Calls of each kind since the last arm or clear, errors injected, mutating calls since
    fault_power_model()."""
    cdef long long calls[FAULT_KINDS]
    cdef long long fired, mutations
    dropsvc_fault_counts(calls, &fired, &mutations)
    return {"calls": {FAULT_KIND_NAMES[i]: calls[i] for i in range(FAULT_KINDS)},
            "fired": fired, "mutations": mutations}


def fault_power_model(long long crash_at=0, bint tracking=False, bint lying_sync=False, snapshots=()):
    """Set up the power-loss model: crash (go dead, copy the snapshots, SIGKILL this process) at
    the crash_at-th write, sync or truncate (0: never); tracking keeps the synced images a
    rebuild needs; lying_sync makes every sync do nothing; snapshots: up to two (from, to) paths
    copied as they are at the crash (files no VFS call writes, such as the engine's -lock)."""
    pairs = [(os.fsencode(a), os.fsencode(b)) for a, b in snapshots] + [(b"", b"")] * 2
    if len(snapshots) > 2:
        raise ValueError("at most two snapshots")
    cdef int rc = dropsvc_fault_power_model(crash_at, tracking, lying_sync,
                                            pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1])
    if rc != SQLITE_OK:
        raise make_error(rc, "snapshot path too long")
