"""bench/herd: a herd of shoppers and bots against one drop, in `open` and in `queue` mode (SPEC 11).

- ``people``: what a shopper and a bot do in each mode, and the seeded population;
- ``run``: one mode's run (database, PayOS sandbox, `dropsvc serve`, the drop, the crowd, the finish);
- ``report``: the figures, the checks against the database, the README's table;
- ``__main__``: `python -m bench.herd` (`make bench-herd`).
"""
