"""Running the WSGI app (SPEC 8): bjoern or meinheld, one process or pre-forked workers; or granian.

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

AppFactory = Callable[[], tuple[Any, Callable[[], None]]]  # () -> (wsgi app, close)
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
        # already stopping: a duplicate SIGTERM still pending (the master's and a supervisor's,
        # say) must not kill the process while it closes the engine
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
        signal.signal(signal.SIGINT, self._previous_handler)


def bind(config: Config) -> socket.socket:
    """The listening socket: IPv4 ``host:port`` or ``unix:/path`` (OSError when taken)."""
    import bjoern

    return bjoern.bind_and_listen(config.host, config.port)


def run_bjoern(sock: socket.socket, app: Any, log: EventLogger) -> None:
    """One libev loop (bjoern) on ``sock`` until SIGTERM or SIGINT."""
    import bjoern

    with GracefulStop(sock.getsockname(), log):
        bjoern.server_run(sock, app)


def run_meinheld(sock: socket.socket, app: Any, log: EventLogger) -> None:
    """meinheld's picoev loop on ``sock``; it stops itself on SIGTERM and SIGINT."""
    import meinheld.server

    meinheld.server.set_listen_socket(sock.fileno())
    meinheld.server.set_access_logger(None)  # our own logs, structured
    meinheld.server.set_keepalive(30)
    try:
        meinheld.server.run(app)
    except KeyboardInterrupt:
        pass
    log.info("stopping", signal="SIGTERM/SIGINT")


Runner = Callable[[socket.socket, Any, EventLogger], None]
RUNNERS: dict[str, Runner] = {"bjoern": run_bjoern, "meinheld": run_meinheld}


def run_granian(config: Config, log: EventLogger) -> None:
    """granian runs its own worker processes, each with ``threads`` blocking threads.

    Every worker builds its app with ``dropsvc.run.wsgi:granian_app`` from the
    environment, so the (possibly adjusted) config is exported first.
    """
    from granian import Granian
    from granian.constants import Interfaces

    os.environ.update(config.to_env())
    log.info("listening", server="granian", url=f"http://{config.host}:{config.port}", workers=config.workers,
             threads=config.threads, public_url=config.public_url)
    Granian("dropsvc.run.wsgi:granian_app", address=config.host, port=config.port, interface=Interfaces.WSGI,
            workers=config.workers, blocking_threads=config.threads, factory=True, log_enabled=False,
            workers_kill_timeout=30).serve()


def serve(config: Config, log: EventLogger, make_app: AppFactory) -> None:
    """Serve until SIGTERM/SIGINT: one process, pre-forked workers, or granian's own.

    ``make_app()`` runs in each serving process (after any fork: the engine
    is opened per worker) and returns the WSGI app and a close function.
    The metrics' multiprocess directory is made (and exported) before any
    worker starts, and removed when the last one is gone.
    """
    from dropsvc.obs.metrics import multiprocess_dir

    with multiprocess_dir(log):
        _serve(config, log, make_app)


def _serve(config: Config, log: EventLogger, make_app: AppFactory) -> None:
    if config.server == "granian":
        run_granian(config, log)
        return
    sock = bind(config)
    log.info("listening", server=config.server, url=f"http://{config.host}:{config.port}",
             workers=config.workers, public_url=config.public_url)
    if config.workers > 1:
        from dropsvc.run.prefork import Prefork

        Prefork(sock, config.workers, lambda: serve_in_process(sock, config, log, make_app), log).run()
        log.info("stopped", server=config.server, workers=config.workers)
    else:
        serve_in_process(sock, config, log, make_app)


def serve_in_process(sock: socket.socket, config: Config, log: EventLogger, make_app: AppFactory) -> None:
    app, close = make_app()
    try:
        RUNNERS[config.server](sock, app, log)
    finally:
        log.info("stopped", server=config.server, pid=os.getpid())
        close()
