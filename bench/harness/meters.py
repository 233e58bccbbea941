"""What a load costs and who else ran meanwhile, read from /proc."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator

NOISY_PCT = 10.0  # other jobs using more of the CPU than this during a row: its figures are suspect


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) for every live process."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                yield int(name), stat.read().rpartition(")")[2].split()
        except OSError:
            continue  # it ended meanwhile


def group_members(pgid: int) -> list[int]:
    """Processes in process group ``pgid`` (the server and whatever it forked or spawned)."""
    return [pid for pid, fields in process_stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of process group ``pgid``."""
    return sum(int(fields[11]) + int(fields[12]) for _, fields in process_stats()
               if int(fields[2]) == pgid) / HZ


def rss_anon_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


HZ = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time spent by the whole machine (every core, /proc/stat), in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / HZ


PF_KTHREAD = 0x00200000


def ours_cpu_seconds(pgids: list[int]) -> float:
    """CPU time used so far by the live processes of these process groups, and by kernel threads.

    Kernel threads (writeback, the journal, block I/O) work mostly for the load that writes the
    database, so their time is not counted as another job's.
    """
    total = sum(int(fields[11]) + int(fields[12])  # utime, stime
                for _, fields in process_stats() if int(fields[2]) in pgids or int(fields[6]) & PF_KTHREAD)
    return total / HZ


class OthersMeter:
    """The share of the machine's CPU that neither the servers, wrk nor this script used during a load.

    A noisy neighbour (another job on the same cores) shows up here: figures of a row where it is
    high are low and noisy. Kernel time on loopback is mostly charged to the processes involved;
    kernel threads count as ours (see ours_cpu_seconds).
    """

    def __init__(self, pgids: list[int]) -> None:
        self.pgids = pgids

    def _sample(self) -> tuple[float, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once waited for
        me = resource.getrusage(resource.RUSAGE_SELF)
        ours = ours_cpu_seconds(self.pgids) + children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime
        return time.monotonic(), busy_seconds(), ours

    def __enter__(self) -> OthersMeter:
        self.start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        wall = end[0] - self.start[0]
        others = (end[1] - self.start[1]) - (end[2] - self.start[2])
        self.percent = max(0.0, 100.0 * others / (wall * (os.cpu_count() or 1))) if wall > 0 else 0.0


class RssSampler:
    """Peak RssAnon of every process of a server's group while a load runs (SQLite's mmap is not anon)."""

    def __init__(self, pgid: int, interval: float = 0.1) -> None:
        self.pgid = pgid
        self.interval = interval
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        members: list[int] = []
        next_scan = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_scan:
                members = group_members(self.pgid)
                next_scan = time.monotonic() + 1.0
            for pid in members:
                kb = rss_anon_kb(pid)
                if kb is not None and kb > self.peak.get(pid, 0):
                    self.peak[pid] = kb
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float | None:
        return max(self.peak.values()) / 1024 if self.peak else None



def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])

