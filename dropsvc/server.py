"""Running the WSGI app on a server (SPEC 8). bjoern now; meinheld and granian plug in here.

Each runner binds, logs ``listening``, serves until SIGTERM or SIGINT, and
returns so the caller can close the engine.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from dropsvc.config import Config
from dropsvc.logs import EventLogger

Runner = Callable[[Any, Config, EventLogger], None]
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
SWEEP_SECONDS = 0.2  # how often idle connections are hung up while stopping


def same_endpoint(local: Any, listening: Any) -> bool:
    """Whether a socket's local address belongs to the listening socket."""
    if isinstance(local, tuple) and isinstance(listening, tuple):
        return local[1] == listening[1]  # accepted sockets share the port (any local IP)
    return local == listening


def hang_up_readers(listening: Any) -> int:
    """Shut the reading side of every connection accepted on ``listening``.

    An idle keep-alive connection then reads EOF and the server closes it; a
    request already read still gets its response written. Linux (/proc) only;
    elsewhere this does nothing and stopping waits for clients to leave.
    """
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    count = 0
    for name in names:
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=fd)
        except (OSError, ValueError):
            continue
        try:
            if same_endpoint(sock.getsockname(), listening):
                sock.getpeername()  # the listening socket has no peer: skipped
                sock.shutdown(socket.SHUT_RD)
                count += 1
        except OSError:
            pass
        finally:
            sock.detach()  # the fd stays the server's
    return count


class GracefulStop:
    """Stop a C event loop (bjoern's libev) on SIGTERM or SIGINT, even with idle keep-alive clients.

    bjoern stops accepting on SIGINT but then waits for every connection to
    close, and never lets a Python SIGTERM handler stop it. So both signals
    are blocked and a helper thread waits for them with sigwait; it then hands
    bjoern its SIGINT (sent to itself, the one thread where SIGINT is open)
    and hangs up idle connections until the loop returns. The Python-level
    SIGINT handler only takes note, so no KeyboardInterrupt can land while the
    engine closes. A second signal while stopping kills the process.
    """

    def __init__(self, listening: Any, log: EventLogger) -> None:
        self.listening = listening
        self.log = log
        self.stopped = threading.Event()
        self.waiter = threading.Thread(target=self._wait, name="graceful-stop", daemon=True)
        self._previous_handler: Any = None
        self._previous_mask: set[signal.Signals] = set()

    def _wait(self) -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        if self.stopped.is_set():
            return
        self.log.info("stopping", signal=signal.Signals(signum).name)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        while not self.stopped.wait(SWEEP_SECONDS):
            hang_up_readers(self.listening)

    def __enter__(self) -> GracefulStop:
        self._previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: None)
        self._previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        self.waiter.start()  # inherits the blocked mask: only its sigwait sees the signals
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stopped.set()
        if self.waiter.is_alive() and self.waiter.ident is not None:
            signal.pthread_kill(self.waiter.ident, signal.SIGTERM)  # ends its sigwait, if still there
            self.waiter.join(timeout=2)
        signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
        signal.signal(signal.SIGINT, self._previous_handler)


def run_bjoern(app: Any, config: Config, log: EventLogger) -> None:
    """One process, one libev loop (bjoern); IPv4 host or ``unix:/path``."""
    import bjoern

    listening = bjoern.listen(app, config.host, config.port)  # OSError when the address is taken
    log.info("listening", server="bjoern", url=f"http://{config.host}:{config.port}",
             public_url=config.public_url)
    with GracefulStop(listening.getsockname(), log):
        bjoern.run()
    log.info("stopped", server="bjoern")


RUNNERS: dict[str, Runner] = {"bjoern": run_bjoern}


def serve(app: Any, config: Config, log: EventLogger) -> None:
    """Serve ``app`` with the configured server until asked to stop."""
    RUNNERS[config.server](app, config, log)
