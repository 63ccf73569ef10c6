"""``python -m mosaics_edu.moons``: the three-moons command line,
:mod:`mosaics_edu.course.moons.cli`. Nothing imports this module."""

import sys

from .course.moons.cli import main

if __name__ == "__main__":
    sys.exit(main())
