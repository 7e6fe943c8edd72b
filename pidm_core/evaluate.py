"""``python -m pidm_core.evaluate``, the documented command: runs :mod:`pidm_core.cli.evaluate`."""

from .cli.evaluate import main

if __name__ == "__main__":
    main()
