"""Reading and writing PIDM weights.

Two formats are read:

- our ``.safetensors`` files, whose ``__metadata__`` names the network config and how the model was
  trained (``pidm_format``, ``config``, ``resolution``, ``source_drop_prob``, ``pose_drop_prob``,
  ``name``, free-form ``training``);
- the official ``last.pt`` (ankanbhunia/PIDM): a torch pickle holding ``model``, ``ema``,
  ``scheduler``, ``optimizer`` and ``conf``. It is read by a restricted unpickler: tensors and
  plain containers are rebuilt, every other class becomes an inert ``PickleStub``, and no code
  from the file ever runs (:mod:`.torch_pickle`). Only the tensors that are used are read from disk.

Every tensor of the network must be in the file with its exact shape. The official file's tensors
that the forward pass never uses (184 of them, ~18 M parameters) are accepted and reported; any
other extra tensor is an error.

Files are hostile until checked: every size a file declares (safetensors header and offsets, zip
records, pickled storages and views) is checked against the file's real size, and every config
field against its type and range, before anything is allocated or built (docs/robustness.md, Models).
"""

from __future__ import annotations

import functools

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .config import CONFIGS, PIDMConfig, get_config
from .errors import CheckpointError, CheckpointNotFoundError
from .network import CrossAttentionBlock, PIDMNetwork, ResBlock
from .torch_pickle import LazyTensor, TorchArchive, materialize, view_reach

FORMAT_VERSION = "1"
EMBEDDED_NAME = "embedded"
EMBEDDED_PATH = Path(__file__).resolve().parent / "weights" / "pidm_synthetic_64.safetensors"
OFFICIAL_CONFIG = "deepfashion_256"
# The official training zeroes the source image 10 % of the time and never drops the pose.
OFFICIAL_SOURCE_DROP_PROB = 0.1
OFFICIAL_POSE_DROP_PROB = 0.0

_RESERVED_METADATA = ("pidm_format", "config", "resolution", "source_drop_prob", "pose_drop_prob", "name")


# --------------------------------------------------------------------------------------------
# Model description


@dataclass
class ModelInfo:
    """What a weights file says about its network and training.

    ``source_drop_prob`` / ``pose_drop_prob``: how often each condition was dropped in training
    (probabilities in [0, 1]); guidance along a condition needs a model trained with it dropped.
    ``extra``: the remaining metadata strings (e.g. ``training``, a JSON object).
    """

    name: str
    config: PIDMConfig
    source_drop_prob: float
    pose_drop_prob: float
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def framing(self):
        """How this model's training data framed people (:func:`pidm_core.framing.framing_for`): the file's
        ``framing`` metadata, else a default derived from its config."""
        from .framing import framing_for

        return framing_for(self)

    @property
    def supports_disentangled_guidance(self) -> bool:
        """True when both conditions were dropped in training (the paper's disentangled CFG)."""
        return self.pose_drop_prob > 0 and self.source_drop_prob > 0

    def to_metadata(self) -> dict[str, str]:
        """The safetensors ``__metadata__`` of this model (all values are strings)."""
        clash = set(self.extra) & set(_RESERVED_METADATA)
        if clash:
            raise ValueError(f"ModelInfo.extra must not set the reserved metadata keys {sorted(clash)}")
        meta = {
            "pidm_format": FORMAT_VERSION,
            "config": self.config.to_json(),
            "resolution": str(self.config.image_size),
            "source_drop_prob": repr(float(self.source_drop_prob)),
            "pose_drop_prob": repr(float(self.pose_drop_prob)),
            "name": self.name,
        }
        for key, value in self.extra.items():
            meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return meta

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], source: str = "metadata") -> "ModelInfo":
        """Parse and validate the metadata written by :meth:`to_metadata`; raises CheckpointError."""
        version = metadata.get("pidm_format")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{source}: unsupported pidm_format {version!r}; this version of ComfyUI-PIDM reads "
                f"pidm_format {FORMAT_VERSION!r} (update the node pack?)"
            )
        if "config" not in metadata:
            raise CheckpointError(f"{source}: the metadata has no 'config' (the network config as JSON)")
        try:
            config = PIDMConfig.from_json(metadata["config"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{source}: invalid network config in the metadata: {err}") from None
        if "resolution" in metadata and metadata["resolution"] != str(config.image_size):
            raise CheckpointError(
                f"{source}: metadata resolution {metadata['resolution']!r} does not match the "
                f"config's image_size {config.image_size}"
            )
        probs = {key: _parse_probability(metadata, key, source) for key in ("source_drop_prob", "pose_drop_prob")}
        extra = {k: v for k, v in metadata.items() if k not in _RESERVED_METADATA}
        _check_fit(extra, source)
        _check_framing(extra, source, config)
        name = metadata.get("name") or Path(source).stem
        return cls(name=name, config=config, extra=extra, **probs)


def _check_fit(extra: Mapping[str, str], source: str) -> None:
    if "fit" not in extra:
        return
    from .pipeline import FIT_MODES  # the encoder's fit modes; checked here so a bad file fails at load

    if extra["fit"] not in FIT_MODES:
        raise CheckpointError(f"{source}: metadata fit = {extra['fit'][:40]!r} is not one of {FIT_MODES} (how the "
                              "source photo is fitted to the model's canvas); fix the file's metadata or convert it again")


def _check_framing(extra: Mapping[str, str], source: str, config: PIDMConfig) -> None:
    """``framing`` (optional): how the model's training data framed people (pidm_core.framing), as JSON;
    checked here so a bad file fails at load. Files without it get a default derived from their config."""
    if "framing" not in extra:
        return
    from .framing import Framing

    try:
        Framing.from_json(extra["framing"], config.image_size, config.image_size)
    except ValueError as err:
        raise CheckpointError(f"{source}: invalid framing metadata: {err}; fix the file's metadata or convert it "
                              "again") from None


def _parse_probability(metadata: Mapping[str, str], key: str, source: str) -> float:
    if key not in metadata:
        raise CheckpointError(f"{source}: the metadata has no {key!r} (a probability in [0, 1])")
    try:
        value = float(metadata[key])
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise CheckpointError(f"{source}: metadata {key} = {metadata[key]!r} is not a probability in [0, 1]")
    return value


def official_model_info(name: str = "pidm_deepfashion_256_official", state_dict: str = "ema",
                        config: PIDMConfig | None = None) -> ModelInfo:
    """ModelInfo of the official DeepFashion model (its pickled ``conf`` is not trusted or read).

    ``config`` other than deepfashion_256 describes a torch checkpoint of another PIDM size that
    was trained with the official recipe."""
    return ModelInfo(
        name=name,
        config=config or get_config(OFFICIAL_CONFIG),
        source_drop_prob=OFFICIAL_SOURCE_DROP_PROB,
        pose_drop_prob=OFFICIAL_POSE_DROP_PROB,
        extra={"source": "official ankanbhunia/PIDM checkpoint", "state_dict": state_dict},
    )


@dataclass
class LoadReport:
    """How a checkpoint's tensors map onto a network.

    ``key_map``: network tensor name → key in the checkpoint (they differ by ``prefix_stripped``).
    ``ignored``: checkpoint keys of official tensors that the forward pass never uses.
    """

    source: str
    key_map: dict[str, str]
    ignored: list[str]
    ignored_parameters: int
    prefix_stripped: str = ""

    @property
    def loaded(self) -> int:
        return len(self.key_map)

    def summary(self) -> str:
        text = f"loaded {self.loaded} tensors"
        if self.ignored:
            text += f"; ignored {len(self.ignored)} unused official tensors ({self.ignored_parameters / 1e6:.2f} M parameters)"
        if self.prefix_stripped:
            text += f"; stripped the {self.prefix_stripped!r} prefix"
        return text


@dataclass
class PIDMModel:
    """A network in eval mode with the description of its weights."""

    network: PIDMNetwork
    info: ModelInfo
    report: LoadReport | None = None

    @property
    def device(self) -> torch.device:
        return self.network.out[2].weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.network.out[2].weight.dtype

    @property
    def config(self) -> PIDMConfig:
        return self.network.config


# --------------------------------------------------------------------------------------------
# State-dict matching

# Official tensors that the forward pass never uses, by the kind of module that owns them here.
_UNUSED_RESBLOCK = re.compile(r"^(?P<owner>.+)\.cond_emb_layers\.\d+\.(weight|bias)$")
_UNUSED_ENCODER_EMB = re.compile(r"^(?P<owner>.+)\.emb_layers\.\d+\.(weight|bias)$")
_UNUSED_ATTENTION = re.compile(r"^(?P<owner>.+)\.(qkv|proj_out1)\.(weight|bias)$")
_UNUSED_ENCODER_TIME = re.compile(r"^encoder\.time_embed\.\d+\.(weight|bias)$")

_STABLE_DIFFUSION_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner.embedders.")


def _is_unused_official(name: str, resblocks: set[str], timeless_resblocks: set[str], attention: set[str]) -> bool:
    for pattern, owners in (
        (_UNUSED_RESBLOCK, resblocks),
        (_UNUSED_ENCODER_EMB, timeless_resblocks),
        (_UNUSED_ATTENTION, attention),
    ):
        m = pattern.match(name)
        if m and m.group("owner") in owners:
            return True
    return bool(_UNUSED_ENCODER_TIME.match(name))


def _check_foreign(keys, source: str) -> None:
    keys = list(keys)
    if any(k.startswith(_STABLE_DIFFUSION_PREFIXES) for k in keys):
        raise CheckpointError(
            f"{source} looks like a Stable Diffusion checkpoint, not PIDM (it has tensors such as "
            f"{next(k for k in keys if k.startswith(_STABLE_DIFFUSION_PREFIXES))!r}); load it with "
            "ComfyUI's checkpoint loader instead"
        )
    if any(k.startswith("down_blocks.") for k in keys) and any(k.startswith("mid_block.") for k in keys):
        raise CheckpointError(f"{source} looks like a diffusers UNet, not PIDM")


def _first_few(items: list[str], sep: str, n: int = 5) -> str:
    return sep.join(items[:n]) + (f"{sep}... and {len(items) - n} more" if len(items) > n else "")


def _format_shape(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _match_shapes(network: torch.nn.Module, shapes: Mapping[str, tuple[int, ...]], source: str, hint: str = "") -> LoadReport:
    _check_foreign(shapes, source)
    long_names = [k for k in shapes if len(k) > 300]
    if long_names:
        raise CheckpointError(f"{source} has a tensor name of {len(long_names[0])} characters ({long_names[0][:60]!r}...); "
                              "PIDM tensor names are short: the file is damaged or not a PIDM model")
    prefix = "module." if shapes and all(k.startswith("module.") for k in shapes) else ""
    found = {k[len(prefix):]: (k, tuple(s)) for k, s in shapes.items()}
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}

    wrong, missing = [], []  # wrong shapes first: they say more about the file than missing names
    for name, shape in expected.items():
        if name not in found:
            missing.append(f"{name}: expected {_format_shape(shape)}, missing")
        elif found[name][1] != shape:
            wrong.append(f"{name}: expected {_format_shape(shape)}, found {_format_shape(found[name][1])}")
    problems = wrong + missing
    config = getattr(network, "config", None)
    what = f"the {_config_label(config)} network" if config is not None else "the network"
    if problems:
        raise CheckpointError(
            f"{source} does not fit {what}: {len(problems)} of its {len(expected)} tensors are missing "
            f"or have another shape: {_first_few(problems, '; ')}{hint}"
        )

    modules = dict(network.named_modules())
    resblocks = {n for n, m in modules.items() if isinstance(m, ResBlock)}
    timeless = {n for n in resblocks if not hasattr(modules[n], "emb_layers")}
    attention = {n for n, m in modules.items() if isinstance(m, CrossAttentionBlock)}
    ignored, unknown = [], []
    for name, (key, shape) in found.items():
        if name in expected:
            continue
        (ignored if _is_unused_official(name, resblocks, timeless, attention) else unknown).append(key)
    if unknown:
        raise CheckpointError(
            f"{source} has {len(unknown)} tensors that {what} does not have and that are not known "
            f"unused official tensors: {_first_few(unknown, ', ')}"
        )
    ignored_parameters = sum(math.prod(shapes[k]) for k in ignored)
    network_parameters = sum(math.prod(shape) for shape in expected.values())
    if ignored_parameters > network_parameters:
        # The official file's unused tensors hold 18 M parameters against the network's 162 M.
        raise CheckpointError(
            f"{source}: its {len(ignored)} unused official tensors declare {ignored_parameters} parameters, more "
            f"than the {network_parameters} of {what} itself; the file is forged or damaged")
    return LoadReport(
        source=source,
        key_map={name: found[name][0] for name in expected},
        ignored=ignored,
        ignored_parameters=ignored_parameters,
        prefix_stripped=prefix,
    )


def _config_label(config: PIDMConfig) -> str:
    names = [n for n, c in CONFIGS.items() if c == config]
    return names[0] if names else f"{config.image_size}px custom-config"


def match_state_dict(network: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> LoadReport:
    """Check that ``state_dict`` holds every tensor of ``network`` with its exact shape.

    Keys may carry a ``module.`` (DDP) prefix. Extra tensors are accepted only when they are the
    official checkpoint's unused ones, and are listed in the report; anything else raises
    :class:`CheckpointError`, as do missing tensors and wrong shapes.
    """
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entries {bad[:5]} are not tensors (found {type(state_dict[bad[0]]).__name__})")
    return _match_shapes(network, {k: tuple(v.shape) for k, v in state_dict.items()}, source)


# --------------------------------------------------------------------------------------------
# Opening files


def safe_torch_load(path: str | os.PathLike) -> Any:
    """Load a torch checkpoint without running any code from it.

    Tensors (on CPU, the file's dtype), dicts, lists, tuples, sets and numbers are rebuilt; every
    other class or function named in the pickle becomes an inert :class:`PickleStub`.
    """
    path = _existing(path)
    kind = _sniff(path)
    if kind == "safetensors":
        raise CheckpointError(f"{path} is a safetensors file, not a torch pickle")
    with TorchArchive(path, kind) as archive:
        return materialize(archive.tree)


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"PIDM weights file not found: {path}")
    return path


def _sniff(path: Path) -> str:
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


@dataclass
class _Source:
    """An open checkpoint: tensor shapes, a way to read each tensor, and the model description."""

    path: Path
    shapes: dict[str, tuple[int, ...]]
    get: Callable[[str], torch.Tensor]
    info: ModelInfo
    description: str
    default_dtype: torch.dtype | None
    close: Callable[[], None]
    hint: str = ""  # appended to shape errors


# safetensors dtypes that PIDM weights may have, with their item sizes; any other is refused by name.
_SAFETENSORS_FLOATS = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
_SAFETENSORS_TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
# The header of the official model converted (852 tensors) is ~90 KB; a parsed header takes ~40x
# its size in memory.
MAX_SAFETENSORS_HEADER = 4 << 20


@dataclass
class _SafetensorsHeader:
    metadata: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]


def _read_safetensors_header(path: Path) -> _SafetensorsHeader:
    """Parse and check a safetensors header before any tensor is touched: its size against the file,
    every tensor's dtype (floating point), shape, and byte range (inside the data, one tensor's
    bytes each, no overlaps). Raises CheckpointError naming the file and the tensor."""
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
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path} is a damaged safetensors file: __metadata__ must map names to strings")
    data_len = size - 8 - header_len
    shapes, dtypes, spans = {}, {}, []
    for name, entry in header.items():
        where = f"{path}: tensor {name[:200]!r}"
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
            raise CheckpointError(f"{where} of shape {_format_shape(shape)} needs {nbytes} bytes but its data_offsets "
                                  f"give {offsets[1] - offsets[0]}; the safetensors file is damaged or forged")
        shapes[name], dtypes[name] = tuple(shape), dtype
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise CheckpointError(f"{path}: tensors {first[:100]!r} and {second[:100]!r} overlap in the file; "
                                  "the safetensors file is damaged or forged")
    return _SafetensorsHeader(metadata, shapes, dtypes)


def _open_safetensors(path: Path, device: torch.device) -> _Source:
    from safetensors import SafetensorError, safe_open

    header = _read_safetensors_header(path)
    _check_foreign(header.shapes, str(path))
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
    return _Source(path, header.shapes, get, info, "safetensors", _SAFETENSORS_TORCH.get(float_dtype), lambda: None)


_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _pick_state_dict(tree, path: Path) -> tuple[str, dict]:
    def is_state_dict(obj) -> bool:
        return isinstance(obj, dict) and bool(obj) and all(isinstance(v, (LazyTensor, torch.Tensor)) for v in obj.values())

    if isinstance(tree, dict):
        for key in ("ema", "model", "state_dict"):
            if key in tree and isinstance(tree[key], dict):
                _check_names(tree[key], path, f"the {key!r} state dict")
                _check_foreign(tree[key], str(path))
                if is_state_dict(tree[key]):
                    return key, tree[key]
        if is_state_dict(tree):
            _check_names(tree, path, "the state dict")
            _check_foreign(tree, str(path))
            return "", tree
        _check_foreign((k for k in tree if isinstance(k, str)), str(path))
        found = sorted(str(k)[:80] for k in tree)[:10]
    else:
        found = type(tree).__name__
    raise CheckpointError(
        f"{path} holds no PIDM state dict: expected the official last.pt (a dict with 'ema' or "
        f"'model' mapping names to tensors) or a plain state dict; found {found}"
    )


def _check_names(state_dict: dict, path: Path, what: str) -> None:
    bad = [k for k in state_dict if not isinstance(k, str)]
    if bad:
        raise CheckpointError(
            f"{path}: {what} has {len(bad)} keys that are not tensor names (e.g. the {type(bad[0]).__name__} "
            f"{str(bad[0])[:40]}); a PIDM state dict maps names such as 'out.2.weight' to tensors: the file "
            "is damaged or not a PIDM checkpoint")


def _check_tensors(state_dict: Mapping[str, LazyTensor], path: Path, what: str) -> None:
    """Floating-point tensors only, and no storage much larger than what the state dict's views of it
    reach (a small view of a huge storage would read the whole storage)."""
    not_float = [k for k, v in state_dict.items() if v.dtype not in _FLOAT_DTYPES]
    if not_float:
        first = state_dict[not_float[0]]
        raise CheckpointError(
            f"{path}: {what} has {len(not_float)} tensors that are not floating point (e.g. {not_float[0]!r} is "
            f"{str(first.dtype).replace('torch.', '')}); PIDM weights are float32/float16/bfloat16: the file is "
            "damaged or not a PIDM checkpoint")
    reach: dict[int, list] = {}
    for tensor in state_dict.values():
        used = tensor.offset + view_reach(tensor.size, tensor.stride)
        entry = reach.setdefault(id(tensor.storage), [tensor.storage, 0])
        entry[1] = max(entry[1], used)
    for storage, used in reach.values():
        if storage.numel > 2 * used + 4096:
            raise CheckpointError(
                f"{path}: storage {storage.key} holds {storage.numel} elements but {what}'s tensors use only "
                f"{used} of them; a checkpoint written by torch.save does not pad storages (forged file?)")


def _open_torch(path: Path, kind: str, config: PIDMConfig | None) -> _Source:
    archive = TorchArchive(path, kind)
    try:
        which, state_dict = _pick_state_dict(archive.tree, path)
        _check_tensors(state_dict, path, f"the {which!r} state dict" if which else "the state dict")
    except CheckpointError:
        archive.close()
        raise

    def get(key: str) -> torch.Tensor:
        value = state_dict[key]
        return value.materialize() if isinstance(value, LazyTensor) else value

    where = f"{which!r} state dict" if which else "state dict"
    skipped = sorted(str(k)[:40] for k in archive.tree if k != which) if which and isinstance(archive.tree, dict) else []
    description = f"official torch checkpoint, {where}" + (f" (not used: {_first_few(skipped, ', ')})" if skipped else "")
    if config is None or config == get_config(OFFICIAL_CONFIG):
        info = official_model_info(state_dict=which or "state_dict")
    else:
        info = official_model_info(name=path.stem, state_dict=which or "state_dict", config=config)
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    hint = (f" (a torch checkpoint carries no config we trust; it was read as {_config_label(info.config)}: "
            "pass the network config if it is another PIDM size)")
    return _Source(path, shapes, get, info, description, torch.float32, archive.close, hint)


def _resolve_config(config: PIDMConfig | str | None) -> PIDMConfig | None:
    return get_config(config) if isinstance(config, str) else config


def _open(path: Path, device: torch.device, config: PIDMConfig | None) -> _Source:
    kind = _sniff(path)
    if kind != "safetensors":
        return _open_torch(path, kind, config)
    source = _open_safetensors(path, device)
    if config is not None and config != source.info.config:
        raise CheckpointError(
            f"{path} was saved for the network config {source.info.config.to_json()}, not the requested "
            f"{config.to_json()}"
        )
    return source


def resolve_model_path(path_or_name: str | os.PathLike) -> Path:
    """``"embedded"`` → the bundled synthetic_64 weights; anything else is a file path."""
    if str(path_or_name) == EMBEDDED_NAME:
        if not EMBEDDED_PATH.is_file():
            raise CheckpointNotFoundError(
                f"the embedded PIDM model is missing: {EMBEDDED_PATH} does not exist (it is produced by "
                "training the synthetic_64 config); pass the path of a .safetensors or the official last.pt"
            )
        return EMBEDDED_PATH
    return _existing(path_or_name)


def _meta_network(config: PIDMConfig, source: str = "a weights file") -> PIDMNetwork:
    # Built on the meta device: no memory and no random init; the weights are assigned afterwards.
    # PIDMConfig bounds every field, so this takes well under a second for any config.
    try:
        with torch.device("meta"):
            return PIDMNetwork(config)
    except (ValueError, RuntimeError) as err:  # a combination the config checks did not foresee
        raise CheckpointError(f"{source}: its network config {config.to_json()} cannot be built: {err}") from None


def load_model(path_or_name: str | os.PathLike = EMBEDDED_NAME, device: torch.device | str | None = None,
               dtype: torch.dtype | None = None, *, config: PIDMConfig | str | None = None,
               channels_last: bool | None = None) -> PIDMModel:
    """Load PIDM weights (our .safetensors or the official last.pt) into a network in eval mode.

    ``dtype`` None keeps a safetensors file's dtype and gives fp32 for the official file; ``device``
    None means CPU. ``config`` (a PIDMConfig or a name) is the network of a torch checkpoint, which
    carries no trusted config (default deepfashion_256); for a safetensors file it must match the
    file's. ``channels_last`` stores conv weights NHWC, which the convolutions then follow; None
    turns it on for fp16/bf16 weights loaded to the CPU only (faster there: benchmarks/bench_sampler.py;
    in fp32 it would change results by more than the 1e-4 we allow against the official algorithm; on
    other devices it is unmeasured: scripts/gpu_check.sh).
    Raises :class:`CheckpointError` (or CheckpointNotFoundError) with the reason.
    """
    path = resolve_model_path(path_or_name)
    device = torch.device("cpu" if device is None else device)
    source = _open(path, device, _resolve_config(config))
    try:
        network = _meta_network(source.info.config, str(path))
        report = _match_shapes(network, source.shapes, str(path), source.hint)
        target = dtype or source.default_dtype
        if channels_last is None:  # measured to pay on the CPU only (on CUDA GroupNorm returns NCHW tensors)
            channels_last = target in (torch.float16, torch.bfloat16) and device.type == "cpu"
        tensors = {}
        for name, key in report.key_map.items():
            tensor = source.get(key)
            tensor_dtype = target if target is not None and tensor.is_floating_point() else tensor.dtype
            if channels_last:
                # One copy per tensor, conv weights NHWC: no tensor keeps viewing the memory-mapped
                # file, so the mapping and the pages read from it go when loading ends.
                layout = torch.channels_last if tensor.dim() == 4 else torch.contiguous_format
                tensor = tensor.to(device=device, dtype=tensor_dtype, memory_format=layout, copy=True)
            else:
                tensor = tensor.to(device=device, dtype=tensor_dtype)
            tensors[name] = tensor
    finally:
        source.close()
    network.load_state_dict(tensors, strict=True, assign=True)
    network.eval()
    return PIDMModel(network=network, info=source.info, report=report)


# --------------------------------------------------------------------------------------------
# Writing


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    tensor = tensor.detach()
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    return tensor.to("cpu").contiguous()


def _own_storages(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies of the tensors that share a storage (or view part of one): safetensors refuses shared
    memory, and writes each tensor's own bytes anyway."""
    seen = set()
    for name, tensor in tensors.items():
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensors[name] = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
    return tensors


def save_state_dict(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], info: ModelInfo,
                    dtype: torch.dtype | None = None) -> Path:
    """Write tensors and ``info`` as a PIDM .safetensors (atomically: a temp file, then rename).

    The tensors are checked against ``info.config`` first (unused official tensors may be included).
    """
    path = Path(path)
    prefix = len(match_state_dict(_meta_network(info.config), state_dict, source=str(path)).prefix_stripped)
    from safetensors.torch import save_file

    tensors = _own_storages({k[prefix:]: _cast(v, dtype) for k, v in state_dict.items()})
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=info.to_metadata())
    os.replace(tmp, path)
    return path


def save_model(path: str | os.PathLike, network: PIDMNetwork, info: ModelInfo, dtype: torch.dtype | None = None) -> Path:
    """Save a network's weights with its description; ``dtype`` None keeps the network's."""
    if info.config != network.config:
        raise ValueError(f"ModelInfo.config {info.config} does not match the network's config {network.config}")
    return save_state_dict(path, network.state_dict(), info, dtype)


_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
           "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def parse_dtype(name: str) -> torch.dtype:
    """'fp32' / 'fp16' / 'bf16' (or the torch names) → torch dtype."""
    try:
        return _DTYPES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose one of fp32, fp16, bf16") from None


def read_checkpoint(path: str | os.PathLike, config: PIDMConfig | str | None = None
                    ) -> tuple[dict[str, torch.Tensor], ModelInfo, LoadReport, str]:
    """Every tensor of a checkpoint's state dict (unused official ones included, ``module.``
    stripped), checked against its config, with the model description and a one-line summary of
    what was read. Used by the converter."""
    path = _existing(path)
    source = _open(path, torch.device("cpu"), _resolve_config(config))
    try:
        report = _match_shapes(_meta_network(source.info.config, str(path)), source.shapes, str(path), source.hint)
        prefix = len(report.prefix_stripped)
        tensors = {key[prefix:]: source.get(key) for key in source.shapes}
    finally:
        source.close()
    return tensors, source.info, report, source.description


# Reduced precision on the CPU: bf16 pays only where the CPU computes it (AVX512-BF16 or AMX on x86,
# the BF16 extension on Arm). Elsewhere oneDNN emulates it through fp32 and it is slower: 2-4x slower
# convolutions than fp32 measured on an AVX-512 Xeon without BF16.
BF16_PROBE_SPEEDUP = 1.2  # bf16 must beat fp32 by this much in the probe


def cpu_has_bf16_instructions() -> bool:
    """Whether this CPU reports bf16 arithmetic (x86 AVX512-BF16 / AMX-BF16, Arm BF16), read at run time."""
    capabilities = getattr(torch.cpu, "get_capabilities", lambda: {})()
    if any(capabilities.get(flag) for flag in ("avx512_bf16", "amx_bf16")):
        return True
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        if getattr(torch.cpu, probe, lambda: False)():
            return True
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    return bool({"avx512_bf16", "amx_bf16", "bf16"} & set(line.split(":", 1)[-1].split()))
    except OSError:
        pass
    return False


def _convolution_seconds(dtype: torch.dtype, repeats: int = 5) -> float:
    """Best time of a small channels-last 3x3 convolution (a PIDM residual block's kind) in ``dtype``."""
    import time

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 32, 32, generator=generator).to(dtype).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(64, 64, 3, 3, generator=generator).to(dtype).contiguous(memory_format=torch.channels_last)
    best = float("inf")
    with torch.no_grad():
        torch.nn.functional.conv2d(x, weight, padding=1)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.nn.functional.conv2d(x, weight, padding=1)
            best = min(best, time.perf_counter() - start)
    return best


@functools.lru_cache(maxsize=1)
def cpu_prefers_bf16() -> bool:
    """bf16 on this CPU: it has bf16 instructions, and a 20 ms probe confirms bf16 convolutions are
    faster than fp32 ones (checked once per process)."""
    if not cpu_has_bf16_instructions():
        return False
    return _convolution_seconds(torch.float32) > BF16_PROBE_SPEEDUP * _convolution_seconds(torch.bfloat16)


def auto_dtype_cpu() -> torch.dtype:
    """The weight dtype ``dtype=auto`` gives on the CPU: bf16 where :func:`cpu_prefers_bf16`, else fp32."""
    return torch.bfloat16 if cpu_prefers_bf16() else torch.float32
