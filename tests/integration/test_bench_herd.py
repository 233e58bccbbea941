"""bench/herd at a tiny scale: a queue run on a real `dropsvc serve` and PayOS sandbox passes the
bench's own checks (the invariant, no oversell, the finish, every person in a final state,
`dropsvc verify-fairness`). The bots' share is left out: with a handful of units it is chance."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bench.herd.report import Figures, figures, table
from bench.herd.run import Settings, run_mode


def checked_run(mode: str, cfg: Settings, tmp_path) -> Figures:
    """One mode's run; every check of the bench passed but the bots' share (there, and left out)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    # in a thread of its own: the bench runs its crowd with asyncio.run(), which refuses a thread whose
    # event loop is running (the browser tests' Playwright leaves one in the main thread)
    with ThreadPoolExecutor(1) as pool:
        fig = figures(pool.submit(run_mode, mode, cfg, tmp_path, logs).result())
    broken = [text for good, text in fig.checks if not good and not text.startswith("bots' share")]
    assert broken == [], "\n".join(broken)
    assert any(text.startswith("bots' share") for _, text in fig.checks)
    return fig


def test_a_tiny_queue_run_passes_the_bench_checks(tmp_path):
    cfg = Settings(shoppers=24, bots=3, stock=3, hold_seconds=2, seed=7, lead=2.0, pay_share=0.7, timeout=60.0,
                   server="bjoern", workers=1, pool=8, bot_pool=2, bot_pause=0.005)
    fig = checked_run("queue", cfg, tmp_path)
    assert any(text.startswith("dropsvc verify-fairness: exit 0") for _, text in fig.checks)
    assert fig.paid_units == fig.sold == 3
    assert sum(fig.states.values()) == 27 and fig.states["bought"] == 3
    assert fig.outcome.tally.requests["shopper"] > 0 and fig.outcome.tally.requests["bot"] > 0
    assert "`queue`" in table([fig])
