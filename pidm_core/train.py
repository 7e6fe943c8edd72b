"""``python -m pidm_core.train``, the documented command: runs :mod:`pidm_core.cli.train`."""

from .cli.train import main

if __name__ == "__main__":
    main()
