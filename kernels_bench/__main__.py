"""`python -m kernels_bench ...`: see kernels_bench/cli.py."""

import sys

from kernels_bench.cli import main

sys.exit(main(exiting=True))
