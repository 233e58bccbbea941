"""``python -m dropsvc``: the same as the ``dropsvc`` console script."""

import sys

from dropsvc.run.cli import main

sys.exit(main())
