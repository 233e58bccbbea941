"""Pre-forked workers sharing one listening socket (bjoern, meinheld).

The master binds, forks ``count`` workers and then only supervises: a worker
that dies is replaced (unless workers keep dying: then everything stops);
SIGTERM or SIGINT is passed on to every worker, which finishes the requests
in flight and closes its engine, and the master waits for them. Each worker
opens its own engine after the fork (SQLite handles must never cross a fork).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable

from dropsvc.logs import EventLogger

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
WATCHED = STOP_SIGNALS | {signal.SIGCHLD}
STOP_TIMEOUT = 30.0  # then the stragglers are killed
RESPAWN_LIMIT = 10  # deaths within RESPAWN_WINDOW seconds before the master gives up
RESPAWN_WINDOW = 10.0


class Prefork:
    def __init__(self, sock: socket.socket, count: int, worker_main: Callable[[], None], log: EventLogger) -> None:
        self.sock = sock
        self.count = count
        self.worker_main = worker_main
        self.log = log
        self.children: dict[int, int] = {}  # pid -> slot
        self.deaths: list[float] = []
        self._mask: set[signal.Signals] = set()

    def run(self) -> int:
        """Fork, supervise, stop; returns the number of workers that exited abnormally."""
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
        failures = 0
        try:
            for slot in range(self.count):
                self._spawn(slot)
            stopping = False
            deadline = float("inf")
            while self.children:
                timeout = max(0.0, deadline - time.monotonic()) if stopping else None
                info = signal.sigtimedwait(WATCHED, timeout) if timeout is not None else signal.sigwaitinfo(WATCHED)
                if info is None:  # stop timeout: kill what is left
                    for pid in self.children:
                        self.log.warning("worker_killed", pid=pid)
                        os.kill(pid, signal.SIGKILL)
                    deadline = float("inf")
                    continue
                if info.si_signo in STOP_SIGNALS and not stopping:
                    stopping = True
                    deadline = time.monotonic() + STOP_TIMEOUT
                    self.log.info("stopping", signal=signal.Signals(info.si_signo).name, workers=len(self.children))
                    for pid in self.children:
                        os.kill(pid, signal.SIGTERM)
                failures += self._reap(respawn=not stopping)
                if not stopping and self._too_many_deaths():
                    self.log.error("workers_keep_dying", deaths=len(self.deaths), window_s=RESPAWN_WINDOW)
                    os.kill(os.getpid(), signal.SIGTERM)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
        return failures

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid:
            self.children[pid] = slot
            self.log.info("worker_started", pid=pid, slot=slot)
            return
        status = 0
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            self.worker_main()
        except BaseException:  # a worker must never return into the master's loop
            self.log.exception("worker_failed", pid=os.getpid())
            status = 1
        finally:
            os._exit(status)

    def _reap(self, respawn: bool) -> int:
        failures = 0
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot = self.children.pop(pid, None)
            if slot is None:
                continue  # not a worker (e.g. a helper process of the master's)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                failures += 1
            self.log.info("worker_exited", pid=pid, slot=slot, code=code)
            if respawn:
                self.deaths.append(time.monotonic())
                self._spawn(slot)
        return failures

    def _too_many_deaths(self) -> bool:
        horizon = time.monotonic() - RESPAWN_WINDOW
        self.deaths = [t for t in self.deaths if t >= horizon]
        return len(self.deaths) >= RESPAWN_LIMIT
