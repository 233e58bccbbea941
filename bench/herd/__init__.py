"""bench/herd: a herd of shoppers and bots against one drop, in `open` and in `queue` mode (SPEC 11).

- ``people``: what a shopper and a bot do in each mode, and the seeded population;
- ``run``: one mode's run (database, PayOS sandbox, `dropsvc serve`, the drop, the crowd, the finish);
- ``report``: the figures, the checks against the database, the README's table;
- ``farms``: ``--farms``: bots holding many identities, ``queue``/``draw`` with and without proof of work;
- ``proof``: challenges solved with the altcha library in a pool of processes, their CPU seconds;
- ``farm_report``: the farm runs' table;
- ``__main__``: `python -m bench.herd` (`make bench-herd`).
"""
