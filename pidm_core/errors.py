"""Errors raised while reading weights files (shared by the checkpoint reader and the unpickler)."""


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message names the file and what was expected."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The weights file does not exist."""
