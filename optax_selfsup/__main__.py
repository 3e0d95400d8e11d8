"""``python -m optax_selfsup``: the ``optax-selfsup`` command line."""

import sys

from .cli import main

sys.exit(main())
