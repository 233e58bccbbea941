"""The farm runs' table for the README's "Fair admission" (`python -m bench.herd --farms`): one column
per mode, what the farms got and what their identities cost them."""

from __future__ import annotations

from bench.herd.report import Figures, admitted_share, fmt_seconds, markdown


def header(fig: Figures) -> str:
    farm = fig.outcome.settings.farm
    assert farm is not None
    pow_terms = f" ({farm.pow_algorithm}, cost {farm.pow_cost:,})" if fig.outcome.mode.endswith("-pow") else ""
    return f"`{fig.outcome.mode}`{pow_terms}"


def solve_cpu(fig: Figures, group: str) -> tuple[int, float]:
    """(solves, their CPU seconds) of one group: ``shopper`` or ``bot``."""
    tally = fig.outcome.tally
    return tally.solves[group], tally.solve_cpu[group]


def bots_cpu_per_unit(fig: Figures) -> str:
    solves, cpu = solve_cpu(fig, "bot")
    if not solves:
        return "-"
    per_unit = f"{cpu / fig.bot_units:.2f} s" if fig.bot_units else "all of it for nothing"
    return f"{per_unit} ({cpu:.1f} s for {solves:,} identities)"


def shoppers_solve(fig: Figures) -> str:
    solves, cpu = solve_cpu(fig, "shopper")
    return f"{cpu / solves:.3f} s" if solves else "-"


def verified(fig: Figures) -> str:
    if fig.outcome.fairness is None:
        return "-"
    code, text = fig.outcome.fairness
    return "passed" if code == 0 else f"FAILED (exit {code}: {text.splitlines()[-1] if text else ''})"


def farm_table(runs: list[Figures]) -> str:
    """Rows: identities, the bots' share of the units, their CPU seconds per unit won, a shopper's
    mean solve, the time to the finish, verify-fairness."""
    cfg = runs[0].outcome.settings
    farm = cfg.farm
    assert farm is not None
    identities = f"{cfg.shoppers:,} / {farm.count:,} ({farm.bots} bots x {farm.identities})"
    rows: list[tuple[str, list[str]]] = [
        ("identities: people / bot identities", [identities for _ in runs]),
        ("bots' share of the units", [f"{100 * f.bot_share:.0f} % ({f.bot_units} of {f.total})" for f in runs]),
        ("bots' tickets among those admitted", [admitted_share(f) for f in runs]),
        ("bots' CPU seconds per unit won (solving)", [bots_cpu_per_unit(f) for f in runs]),
        ("shoppers' mean solve, CPU seconds", [shoppers_solve(f) for f in runs]),
        ("start of sales to sold out with nothing held", [fmt_seconds(f.outcome.finish_s) for f in runs]),
        ("verify-fairness", [verified(f) for f in runs]),
    ]
    return markdown([header(f) for f in runs], rows)


def print_solves(fig: Figures) -> None:
    """A pow run's solving: per group, solves and CPU seconds."""
    for group in ("shopper", "bot"):
        solves, cpu = solve_cpu(fig, group)
        if solves:
            print(f"  {group}s' proofs of work: {solves:,} solved, {cpu:.1f} CPU s, {cpu / solves:.3f} s each")
