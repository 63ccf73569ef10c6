"""``python -m mosaics_edu.regbench``: RegBench-mini's command line (train, sweep, tune, factors,
ship), :mod:`mosaics_edu.course.regbench.cli`. Nothing imports this module."""

import sys

from .course.regbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
