"""Building the service in one serving process: engine, background work, app.

``open_service`` is what every worker runs after any fork; ``granian_app``
is the factory granian's worker processes call (config from the environment).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any

from dropsvc.config import Config
from dropsvc.http.app import serving_app
from dropsvc.ledger import Engine
from dropsvc.logs import EventLogger, configure
from dropsvc.run.background import BackgroundWorker

CHECKPOINTS_ENV = "DROPSVC_BACKGROUND_CHECKPOINTS"  # "0" while Litestream owns checkpoints


def open_service(config: Config, log: EventLogger, *, checkpoints: bool = True) -> tuple[Any, Callable[[], None]]:
    """(WSGI app, close) on a freshly opened engine; checkpoints leave the commit path."""
    engine = Engine(config.db, readers=config.readers, synchronous=config.synchronous, autocheckpoint=0)
    background = BackgroundWorker(engine, log=log, checkpoints=checkpoints).start()

    def close() -> None:
        background.stop()
        engine.close()
        log.info("engine_closed", db=config.db, pid=os.getpid())

    return serving_app(engine, config), close


def granian_app() -> Any:
    """granian's per-worker factory: the config the master exported, the engine opened here."""
    config = Config.load()
    log = configure(config.log_level, config.secrets)
    app, close = open_service(config, log, checkpoints=os.environ.get(CHECKPOINTS_ENV, "1") != "0")
    atexit.register(close)
    return app
