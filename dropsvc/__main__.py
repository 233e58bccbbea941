"""``python -m dropsvc``: the same as the ``dropsvc`` console script."""

import sys

from dropsvc.cli import main

sys.exit(main())
