"""``python -m ntksym``: the command line."""

import sys

from ntksym.cli import main

sys.exit(main())
