"""``python -m bench``: see bench/cli.py and ``python -m bench --help``."""

import sys

from .cli import main

sys.exit(main())
