"""The programs: train, evaluate, generate, convert. Each holds its argument parsing and program flow
and calls the library; the library never imports them. Run as ``python -m pidm_core.train`` (the
documented commands, thin modules that call these) or ``python -m pidm_core.cli.train``."""
