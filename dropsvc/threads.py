"""Helper threads that leave the stop signals to the server.

The servers stop on SIGTERM/SIGINT through ``sigwait`` (bjoern's graceful
stop, the pre-fork master, which also waits for SIGCHLD). A thread started
with those signals unblocked could take one and kill the process or lose
it, so every helper thread (background work, metrics, Litestream's
watchers, the demo sandbox) inherits a mask that blocks them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SERVER_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}


@contextmanager
def server_signals_blocked() -> Iterator[None]:
    """Threads started inside this block never receive the server's signals."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SERVER_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_daemon(target: Callable[..., Any], name: str, *args: Any) -> threading.Thread:
    """Start a daemon thread that leaves SIGINT, SIGTERM and SIGCHLD to the server."""
    with server_signals_blocked():
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
    return thread
