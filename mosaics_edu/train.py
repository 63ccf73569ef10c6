"""``python -m mosaics_edu.train`` (and ``torchrun ... -m mosaics_edu.train``): the command line
of the trainer, :mod:`mosaics_edu.training.cli`. Nothing imports this module."""

from .training.cli import main

if __name__ == "__main__":
    main()
