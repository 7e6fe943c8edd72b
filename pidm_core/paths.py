"""Names from requests, turned into files that may be read: inside a known folder, and bounded.

A prompt posted to ComfyUI can put any string into a node's file or model name (the host does not
check combo values of V3 nodes), so a name is hostile until proven otherwise. A name is accepted
only when it is relative, has no ``..`` part, and its real path (symlinks resolved) lies inside one
of the allowed folders. Refusals quote the name that was given, never anything from a file.
"""

from __future__ import annotations

import os
import stat
from pathlib import PurePosixPath, PureWindowsPath
from typing import Sequence

from .checks import short_repr

NAME_QUOTE_CHARS = 120  # how much of a refused name an error repeats


def quoted(value: object, limit: int = NAME_QUOTE_CHARS) -> str:
    """``repr`` of a requested name, cut to ``limit`` characters (errors repeat what was asked, briefly)."""
    return short_repr(value, limit)


def _is_plain_relative(name: str) -> bool:
    if not name or "\x00" in name or name.strip() != name:
        return False
    for flavour in (PurePosixPath, PureWindowsPath):  # "C:\\x" and "\\\\server\\x" are absolute too
        path = flavour(name)
        if path.is_absolute() or path.anchor or ".." in path.parts:
            return False
    return True


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def resolve_inside(name: object, folders: Sequence[str], what: str,
                   link_advice: str = "copy the file there instead of linking to it") -> str | None:
    """Real path of the file ``name`` in the first of ``folders`` that holds it, or None when none does.

    Raises ValueError (naming ``what``, the input) when ``name`` is not a plain relative name, when
    the file it names resolves, through a link, to a place outside that folder, or when it is not a
    regular file (a FIFO would block whoever opens it).
    """
    if not isinstance(name, str) or not _is_plain_relative(name):
        raise ValueError(
            f"{what} {quoted(name)} is not a file name inside its folder (absolute paths, '..' and empty "
            f"names are refused); choose one of the files the node lists"
        )
    for folder in folders:
        root = os.path.realpath(folder)
        candidate = os.path.join(folder, name)
        if not os.path.lexists(candidate):
            continue
        real = os.path.realpath(candidate)
        if not _inside(real, root):
            raise ValueError(
                f"{what} {quoted(name)} is a link that leads outside {folder}; files are only read from "
                f"inside it: {link_advice}"
            )
        if os.path.isfile(real):
            return real
        if not os.path.isdir(real):
            raise ValueError(f"{what} {quoted(name)} is not a regular file (a pipe, socket or device); choose a file")
    return None


def read_bounded(path: str | os.PathLike, limit_bytes: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit_bytes``; ValueError naming ``what`` otherwise.

    The size is checked before reading, and the read stops at the limit even if the file grows.
    Opened non-blocking so that a FIFO or device never hangs the caller.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ValueError(f"{what} does not exist") from None
    except OSError as error:
        raise ValueError(f"{what} cannot be opened ({error.strerror})") from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise ValueError(f"{what} is not a regular file")
    with os.fdopen(descriptor, "rb") as handle:
        if info.st_size > limit_bytes:
            raise ValueError(f"{what} is {size_text(info.st_size)}; files of this kind are read up to {size_text(limit_bytes)}")
        data = handle.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise ValueError(f"{what} is larger than {size_text(limit_bytes)}; files of this kind are read up to that size")
    return data


def size_text(count: int) -> str:
    """A byte count for people: '16.0 MiB'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
