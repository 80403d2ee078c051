"""``python -m oscbind_tools``: see ``oscbind_tools.cli``."""

import sys

from .cli import main

sys.exit(main())
