"""Our .safetensors files: the header checked against the file before any tensor is touched, then
the file opened with its PIDM metadata."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError
from .metadata import ModelInfo
from .official_keys import check_foreign, format_shape
from .opened import OpenedCheckpoint

# safetensors dtypes that PIDM weights may have, with their item sizes; any other is refused by name.
_SAFETENSORS_FLOATS = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
_SAFETENSORS_TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
# The header of the official model converted (852 tensors) is ~90 KB; a parsed header takes ~40x
# its size in memory.
MAX_SAFETENSORS_HEADER = 4 << 20


@dataclass
class _SafetensorsHeader:
    """A checked header: the metadata strings, and each tensor's shape and safetensors dtype name."""

    metadata: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]


def _read_header_object(path: Path) -> tuple[dict, int]:
    """The header's JSON object, read only when its declared size is sane, and the file's data length."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        if header_len > MAX_SAFETENSORS_HEADER:
            raise CheckpointError(f"{path}: its safetensors header declares {header_len} bytes, more than the "
                                  f"{MAX_SAFETENSORS_HEADER} any PIDM model needs; the file is damaged or forged")
        if header_len > size - 8:
            raise CheckpointError(f"{path} is a truncated safetensors file: its header claims {header_len} bytes "
                                  f"but the file has {size} bytes")
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as err:  # RecursionError: absurdly nested JSON
        raise CheckpointError(f"{path} is a damaged safetensors file: its header is not valid JSON "
                              f"({type(err).__name__}: {str(err)[:100]})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is a damaged safetensors file: its header is not a JSON object")
    return header, size - 8 - header_len


def _checked_entry(where: str, entry, data_len: int) -> tuple[str, list[int], list[int]]:
    """One tensor's dtype, shape and data_offsets, each checked against what a PIDM file may hold."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise CheckpointError(f"{where} has no dtype/shape/data_offsets; the safetensors file is damaged")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _SAFETENSORS_FLOATS:
        raise CheckpointError(
            f"{where} has dtype {str(dtype)[:20]}; PIDM weights are floating point "
            f"({', '.join(_SAFETENSORS_FLOATS)}): this is not a PIDM model file, or it was damaged (convert the "
            "original checkpoint again)")
    if not (isinstance(shape, list) and len(shape) <= 16 and all(type(n) is int and n >= 0 for n in shape)):
        raise CheckpointError(f"{where} has an invalid shape {str(shape)[:80]}; the safetensors file is damaged")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_len):
        raise CheckpointError(f"{where}: its data_offsets {str(offsets)[:80]} are not inside the file's "
                              f"{data_len} data bytes; the file is truncated or damaged")
    nbytes = math.prod(shape) * _SAFETENSORS_FLOATS[dtype]
    if offsets[1] - offsets[0] != nbytes:
        raise CheckpointError(f"{where} of shape {format_shape(shape)} needs {nbytes} bytes but its data_offsets "
                              f"give {offsets[1] - offsets[0]}; the safetensors file is damaged or forged")
    return dtype, shape, offsets


def _read_safetensors_header(path: Path) -> _SafetensorsHeader:
    """Parse and check a safetensors header before any tensor is touched: its size against the file,
    every tensor's dtype (floating point), shape, and byte range (inside the data, one tensor's
    bytes each, no overlaps). Raises CheckpointError naming the file and the tensor."""
    header, data_len = _read_header_object(path)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path} is a damaged safetensors file: __metadata__ must map names to strings")
    shapes, dtypes, spans = {}, {}, []
    for name, entry in header.items():
        dtype, shape, offsets = _checked_entry(f"{path}: tensor {name[:200]!r}", entry, data_len)
        shapes[name], dtypes[name] = tuple(shape), dtype
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise CheckpointError(f"{path}: tensors {first[:100]!r} and {second[:100]!r} overlap in the file; "
                                  "the safetensors file is damaged or forged")
    return _SafetensorsHeader(metadata, shapes, dtypes)


def open_safetensors(path: Path, device: torch.device) -> OpenedCheckpoint:
    from safetensors import SafetensorError, safe_open

    header = _read_safetensors_header(path)
    check_foreign(header.shapes, str(path))
    if "pidm_format" not in header.metadata:
        raise CheckpointError(
            f"{path} is a safetensors file without PIDM metadata (no 'pidm_format' key); PIDM files "
            "are written by pidm_core.checkpoint.save_model or by converting the official last.pt: "
            "python -m pidm_core.convert last.pt out.safetensors"
        )
    info = ModelInfo.from_metadata(header.metadata, str(path))
    try:
        handle = safe_open(str(path), framework="pt", device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is a damaged or truncated safetensors file ({err})") from None

    def get(key: str) -> torch.Tensor:
        try:
            return handle.get_tensor(key)
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path}: cannot read tensor {key!r} ({err}); the file is damaged") from None

    found = set(header.dtypes.values())
    float_dtype = next((d for d in ("F32", "F16", "BF16", "F64") if d in found), None)
    return OpenedCheckpoint(path, header.shapes, get, info, "safetensors", _SAFETENSORS_TORCH.get(float_dtype), lambda: None)
