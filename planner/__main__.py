"""`python -m planner ...`: see planner/cli.py."""

import sys

from planner.cli import main

sys.exit(main())
