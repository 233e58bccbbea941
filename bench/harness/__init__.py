"""What the HTTP benchmarks share (bench/http_rates.py, bench/journey_check.py, bench/herd/).

- ``wrk``: one wrk run with bench/lua/buyers.lua, its output parsed (``Load``);
- ``servers``: a server in its own process group, started until healthy and
  stopped (SIGTERM, then SIGKILL), free ports, and the servers the runs start
  (the ceiling app, ``dropsvc serve`` with its settings, the naive app, Redis
  and its app, the PayOS sandbox);
- ``meters``: peak RssAnon of a server's processes, a process group's CPU time,
  the CPU share other jobs took;
- ``client``: a lean asyncio HTTP/1.1 client, a bounded keep-alive pool (crowds);
- ``scrape``: the service's latency histogram from ``/metrics``, before and after;
- ``databases``: a fresh database seeded with the engine, SPEC 3's invariant on
  it afterwards and on Redis, against the 201s wrk counted;
- ``rows``: one measured row, its line in the table, results.json;
- ``loads``: a warm-up and a measured load per row, run again when noisy;
- here: where the repository is, and a run's folder under bench/results/.

Run the benchmarks as modules from the repository root
(``python -m bench.http_rates``), so that the repository is on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable


def results_folder(kind: str) -> tuple[str, Path]:
    """The run's time stamp, and bench/results/<kind>-<stamp>/ (made) for its logs and results."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = RESULTS / f"{kind}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    return stamp, folder


@contextlib.contextmanager
def scratch_folder(kind: str, keep: bool) -> Iterator[Path]:
    """A temporary folder for a run's databases, removed at the end unless ``keep`` (then named)."""
    folder = Path(tempfile.mkdtemp(prefix=f"dropsvc-{kind}-"))
    try:
        yield folder
    finally:
        if keep:
            print(f"databases kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
