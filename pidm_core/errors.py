"""Project exceptions (weights files) and the wording of errors shared by several modules."""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence

import torch

from .checks import short_repr


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message names the file and what was expected."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The weights file does not exist."""


# How allocators word a failed allocation: CUDA and MPS ("out of memory"), torch's CPU allocator
# ("DefaultCPUAllocator: can't allocate memory: you tried to allocate ..." or "... not enough memory ...",
# depending on the platform), the C library's ENOMEM ("Cannot allocate memory").
OUT_OF_MEMORY_WORDS = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory",
                       "defaultcpuallocator", "failed to allocate")


def _is_out_of_memory(error: BaseException) -> bool:
    # torch.OutOfMemoryError covers CUDA/XPU/MPS; a failed CPU allocation is a plain RuntimeError.
    text = str(error).lower()
    return isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)) or (
        isinstance(error, RuntimeError) and any(words in text for words in OUT_OF_MEMORY_WORDS))


@contextlib.contextmanager
def explain_out_of_memory(what: str, dtype: Optional[torch.dtype], hint: str = "") -> Iterator[None]:
    """Re-raise an out-of-memory error with what to do, keeping its type (ComfyUI frees models on
    torch.OutOfMemoryError) and its original text. ``hint``: what to do, instead of the general advice;
    ``dtype``: the weights' (None: no model runs, as in Put Back Into Photo)."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not _is_out_of_memory(error):
            raise
        dtype_name = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))
        advice = hint or "give fewer poses or source images per run (a smaller batch)"
        if dtype == torch.float32:
            advice += ", or load the model in bf16 or fp16 (Load PIDM Model's dtype)"
        weights = "" if dtype is None else f" with {dtype_name} weights"
        message = f"out of memory while {what}{weights}: {advice}\n({error})"
        try:
            replacement = type(error)(message)
        except Exception:
            replacement = RuntimeError(message)
        raise replacement from error


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def check_choice(name: str, value, choices: Sequence[str]) -> None:
    """A combo's value. ComfyUI 0.3.75 does not check V3 combos against their options, so a /prompt can send
    any JSON value; it is named, shortened, in the error."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {short_repr(value)}")
