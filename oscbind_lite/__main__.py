"""``python -m oscbind_lite``: see ``oscbind_lite.cli``."""

import sys

from .cli import main

sys.exit(main())
