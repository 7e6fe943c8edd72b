"""``python -m pidm_core.generate``, the documented command: runs :mod:`pidm_core.cli.generate`."""

from .cli.generate import main

if __name__ == "__main__":
    main()
