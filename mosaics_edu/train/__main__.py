"""``python -m mosaics_edu.train`` (and ``torchrun ... -m mosaics_edu.train``): the command line,
which lives in :mod:`mosaics_edu.cli` above the trainer it drives."""

from ..cli import main

main()
