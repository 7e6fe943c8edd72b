"""``python -m pidm_core.convert``, the documented command: runs :mod:`pidm_core.cli.convert`."""

import sys

from .cli.convert import main

if __name__ == "__main__":
    sys.exit(main())
