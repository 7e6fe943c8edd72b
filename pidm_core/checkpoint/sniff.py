"""Which kind of weights file a path holds, judged from its first bytes (file sniffing)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError, CheckpointNotFoundError


def existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"PIDM weights file not found: {path}")
    return path


def sniff_format(path: Path) -> str:
    """'safetensors', 'torch_zip' or 'torch_legacy', judged from the file's first bytes."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); the download or save did not finish")
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"PK\x03\x04"):
        return "torch_zip"
    if len(head) > 8 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if header_len > size - 8:
            raise CheckpointError(
                f"{path} is a truncated safetensors file: its header claims {header_len} bytes but the "
                f"file has {size} bytes"
            )
        return "safetensors"
    if head[:1] == b"\x80":
        return "torch_legacy"
    if not head.strip(b"\0"):
        raise CheckpointError(
            f"{path} is not a weights file: its first {len(head)} bytes are all zeros (an incomplete "
            "download or a preallocated file?); expected a PIDM .safetensors or the official last.pt"
        )
    raise CheckpointError(
        f"{path} is not a recognised weights file (starts with {head[:8]!r}); expected a PIDM "
        ".safetensors or the official PIDM last.pt"
    )
