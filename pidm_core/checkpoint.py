"""Reading and writing PIDM weights.

Two formats are read:

- our ``.safetensors`` files, whose ``__metadata__`` names the network config and how the model was
  trained (``pidm_format``, ``config``, ``resolution``, ``source_drop_prob``, ``pose_drop_prob``,
  ``name``, free-form ``training``);
- the official ``last.pt`` (ankanbhunia/PIDM): a torch pickle holding ``model``, ``ema``,
  ``scheduler``, ``optimizer`` and ``conf``. It is read by a restricted unpickler: tensors and
  plain containers are rebuilt, every other class becomes an inert :class:`PickleStub`, and no code
  from the file ever runs. Only the tensors that are used are read from disk.

Every tensor of the network must be in the file with its exact shape. The official file's tensors
that the forward pass never uses (184 of them, ~18 M parameters) are accepted and reported; any
other extra tensor is an error.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .config import CONFIGS, PIDMConfig, get_config
from .network import CrossAttentionBlock, PIDMNetwork, ResBlock

FORMAT_VERSION = "1"
EMBEDDED_NAME = "embedded"
EMBEDDED_PATH = Path(__file__).resolve().parent / "weights" / "pidm_synthetic_64.safetensors"
OFFICIAL_CONFIG = "deepfashion_256"
# The official training zeroes the source image 10 % of the time and never drops the pose.
OFFICIAL_SOURCE_DROP_PROB = 0.1
OFFICIAL_POSE_DROP_PROB = 0.0

_RESERVED_METADATA = ("pidm_format", "config", "resolution", "source_drop_prob", "pose_drop_prob", "name")


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message names the file and what was expected."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The weights file does not exist."""


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
        name = metadata.get("name") or Path(source).stem
        return cls(name=name, config=config, extra=extra, **probs)


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
    prefix = "module." if shapes and all(k.startswith("module.") for k in shapes) else ""
    found = {k[len(prefix):]: (k, tuple(s)) for k, s in shapes.items()}
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}

    problems = []
    for name, shape in expected.items():
        if name not in found:
            problems.append(f"{name}: expected {_format_shape(shape)}, missing")
        elif found[name][1] != shape:
            problems.append(f"{name}: expected {_format_shape(shape)}, found {_format_shape(found[name][1])}")
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
    return LoadReport(
        source=source,
        key_map={name: found[name][0] for name in expected},
        ignored=ignored,
        ignored_parameters=sum(math.prod(shapes[k]) for k in ignored),
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
# Restricted torch unpickler


class PickleStub:
    """Stands in for any class or function the restricted unpickler will not import.

    Construction records the arguments and state the pickle supplies and does nothing else, so a
    pickled ``conf`` object (or a malicious ``__reduce__``) becomes inert data.
    """

    stub_module = ""
    stub_name = ""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.stub_args = args
        obj.stub_kwargs = kwargs
        obj.stub_state = None
        obj.stub_items = {}
        obj.stub_list = []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.stub_state = state

    def __setitem__(self, key, value):
        self.stub_items[key] = value

    def append(self, value):
        self.stub_list.append(value)

    def extend(self, values):
        self.stub_list.extend(values)

    def __repr__(self) -> str:
        return f"<PickleStub {self.stub_module}.{self.stub_name}>"


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}
_DTYPE_NAMES = {
    name: getattr(torch, name)
    for name in ("float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long",
                 "int32", "int", "int16", "short", "int8", "uint8", "bool", "complex64", "complex128")
}


class _Sealed:
    """Objects the unpickler hands to the pickle must not take state from it: BUILD on them
    (which would otherwise write their ``__dict__``, e.g. to change a dtype or a checked tensor
    size, or the defaults of an allowed function) raises instead."""

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"the pickle tried to set the state of {type(self).__name__}")


class _SafeCallable(_Sealed):
    """An allow-listed function as the pickle sees it."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable):
        object.__setattr__(self, "fn", fn)

    def __setattr__(self, name, value):
        raise AttributeError("read-only")

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


@dataclass(frozen=True)
class _StorageType(_Sealed):
    dtype: torch.dtype


@dataclass
class _LazyStorage(_Sealed):
    reader: "_StorageReader"
    key: str
    dtype: torch.dtype
    numel: int


@dataclass
class _LazyTensor(_Sealed):
    """A tensor whose bytes are read from the archive only when :meth:`materialize` is called."""

    storage: _LazyStorage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.size

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.dtype

    def materialize(self) -> torch.Tensor:
        flat = self.storage.reader.read(self.storage)
        return torch.as_strided(flat, self.size, self.stride, self.offset)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _LazyTensor:
    # Backward hooks and metadata that torch may pickle along are dropped: they are never called.
    if not isinstance(storage, _LazyStorage):
        raise pickle.UnpicklingError(f"tensor rebuilt from a {type(storage).__name__}, expected a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise pickle.UnpicklingError(f"invalid tensor layout size={size} stride={stride} offset={offset}")
    if 0 not in size and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
        raise pickle.UnpicklingError(f"tensor of size {size} reaches past its storage of {storage.numel} elements")
    return _LazyTensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data  # an nn.Parameter is kept as its tensor


def _rebuild_from_type(func, new_type, args, state):
    if not isinstance(func, _SafeCallable) or func.fn not in (_rebuild_tensor, _rebuild_parameter):
        raise pickle.UnpicklingError("tensor subclass rebuilt by an unknown function")
    return func(*args)


def _codecs_encode(text, encoding="utf-8"):
    # Protocol 2 pickles bytes as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return text.encode("latin1")


def _reconstructor(cls, base, state):
    # copyreg._reconstructor (protocols 0/1): only ever builds stubs.
    if isinstance(cls, type) and issubclass(cls, PickleStub):
        return cls(state)
    raise pickle.UnpicklingError(f"copyreg._reconstructor for {cls!r} refused")


def _newobj(cls, *args, **kwargs):
    if isinstance(cls, type) and issubclass(cls, PickleStub):
        return cls(*args, **kwargs)
    raise pickle.UnpicklingError(f"copyreg.__newobj__ for {cls!r} refused")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import collections

    functions = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
        ("_codecs", "encode"): _codecs_encode,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("copy_reg", "_reconstructor"): _reconstructor,
        ("copyreg", "__newobj__"): _newobj,
    }
    allowed: dict[tuple[str, str], Any] = {key: _SafeCallable(fn) for key, fn in functions.items()}
    # Built-in (C) types: their attributes cannot be set, so BUILD on them fails harmlessly.
    allowed[("torch", "Size")] = torch.Size
    allowed[("torch", "device")] = torch.device
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    # Only what pickles of plain data need; nothing that allocates a size chosen by the file.
    for name in ("set", "frozenset", "slice", "complex"):
        allowed[("builtins", name)] = allowed[("__builtin__", name)] = getattr(__import__("builtins"), name)
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(dtype)
    for name, dtype in _DTYPE_NAMES.items():
        allowed[("torch", name)] = dtype
    return allowed


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals only from a fixed allow-list; anything else becomes a PickleStub subclass."""

    def __init__(self, file, reader: "_StorageReader | None"):
        super().__init__(file, encoding="utf-8")
        self._reader = reader
        self._stubs: dict[tuple[str, str], type] = {}
        self.stubbed: list[str] = []

    def find_class(self, module: str, name: str):
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        key = (module, name)
        if key not in self._stubs:
            self._stubs[key] = type(name if name.isidentifier() else "Stub", (PickleStub,),
                                    {"stub_module": module, "stub_name": name, "__module__": __name__})
            self.stubbed.append(f"{module}.{name}")
        return self._stubs[key]

    def persistent_load(self, pid):
        if self._reader is None:
            raise pickle.UnpicklingError("storage reference outside a torch archive")
        if not isinstance(pid, tuple) or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        typename, storage_type, key, _location, numel = pid[:5]
        if isinstance(typename, bytes):
            typename = typename.decode("ascii")
        if typename != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unknown persistent id {pid[:2]!r}")
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views of the legacy torch format are not supported")
        return self._reader.register(str(key), storage_type.dtype, int(numel))


class _StorageReader:
    """Reads storages' bytes from a torch archive, each at most once."""

    def __init__(self, path: Path):
        self.path = path
        self._storages: dict[str, _LazyStorage] = {}
        self._cache: dict[str, torch.Tensor] = {}

    def register(self, key: str, dtype: torch.dtype, numel: int) -> _LazyStorage:
        if numel < 0:
            raise pickle.UnpicklingError(f"storage {key} has a negative size")
        if key in self._storages:
            known = self._storages[key]
            if known.dtype != dtype:
                raise pickle.UnpicklingError(f"storage {key} used with two dtypes")
            return known
        self._storages[key] = _LazyStorage(self, key, dtype, numel)
        return self._storages[key]

    def read(self, storage: _LazyStorage) -> torch.Tensor:
        if storage.key not in self._cache:
            itemsize = torch.empty((), dtype=storage.dtype).element_size()
            nbytes = storage.numel * itemsize
            data = self._read_bytes(storage.key, nbytes)
            if len(data) != nbytes:
                raise CheckpointError(
                    f"{self.path}: storage {storage.key} has {len(data)} bytes, expected {nbytes}; "
                    "the file is truncated or corrupt"
                )
            flat = torch.frombuffer(data, dtype=torch.uint8) if nbytes else torch.empty(0, dtype=torch.uint8)
            if self.big_endian and itemsize > 1:
                flat = flat.view(-1, itemsize).flip(-1).reshape(-1)
            self._cache[storage.key] = flat.view(storage.dtype)
        return self._cache[storage.key]

    big_endian = False

    def _read_bytes(self, key: str, nbytes: int) -> bytearray:
        raise NotImplementedError


class _ZipReader(_StorageReader):
    def __init__(self, path: Path, archive: zipfile.ZipFile, prefix: str):
        super().__init__(path)
        self.archive = archive
        self.prefix = prefix
        names = set(archive.namelist())
        order = f"{prefix}byteorder"
        self.big_endian = order in names and archive.read(order).strip() == b"big"

    def _read_bytes(self, key: str, nbytes: int) -> bytearray:
        try:
            return bytearray(self.archive.read(f"{self.prefix}data/{key}"))
        except KeyError:
            raise CheckpointError(f"{self.path}: storage record data/{key} is missing from the archive") from None
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
            raise CheckpointError(
                f"{self.path}: cannot read storage data/{key} ({err}); the file is truncated or corrupt"
            ) from None


class _LegacyReader(_StorageReader):
    """The pre-1.6 torch format: pickles followed by raw storages (int64 numel + little-endian bytes)."""

    def __init__(self, path: Path, file):
        super().__init__(path)
        self.file = file
        self.offsets: dict[str, int] = {}

    def index(self, keys: list[str]) -> None:
        for key in keys:
            if key not in self._storages:
                raise CheckpointError(f"{self.path}: storage {key!r} listed but never referenced; corrupt file")
            header = self.file.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{self.path} is truncated: storage {key} is missing")
            numel = struct.unpack("<q", header)[0]
            itemsize = torch.empty((), dtype=self._storages[key].dtype).element_size()
            self.offsets[key] = self.file.tell()
            self.file.seek(numel * itemsize, io.SEEK_CUR)

    def _read_bytes(self, key: str, nbytes: int) -> bytearray:
        if self.offsets[key] + nbytes > os.fstat(self.file.fileno()).st_size:
            return bytearray()  # reported as truncated by the caller
        self.file.seek(self.offsets[key])
        buf = bytearray(nbytes)
        got = self.file.readinto(buf)
        return buf if got == nbytes else buf[:got]


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _TorchArchive:
    """An open torch checkpoint whose object tree holds :class:`_LazyTensor` leaves."""

    def __init__(self, path: Path, kind: str):
        self.path = path
        self._file = open(path, "rb")
        self.stubbed: list[str] = []
        try:
            self.tree = self._load_zip() if kind == "torch_zip" else self._load_legacy()
        except CheckpointError:
            self.close()
            raise
        except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError, AttributeError,
                IndexError, KeyError, OverflowError, struct.error, OSError, RuntimeError) as err:
            self.close()
            raise CheckpointError(
                f"{path} is a damaged, truncated or unsupported torch checkpoint "
                f"({type(err).__name__}: {err}); download it again"
            ) from None

    def _load_zip(self):
        archive = zipfile.ZipFile(self._file)
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{self.path} is a zip archive but not a torch checkpoint (no */data.pkl record)")
        prefix = pickles[0][: -len("data.pkl")]
        self.reader = _ZipReader(self.path, archive, prefix)
        with archive.open(pickles[0]) as f:
            unpickler = _RestrictedUnpickler(io.BytesIO(f.read()), self.reader)
            tree = unpickler.load()
        self.stubbed = unpickler.stubbed
        return tree

    def _load_legacy(self):
        def plain():
            return _RestrictedUnpickler(self._file, None).load()

        if plain() != _LEGACY_MAGIC:
            raise CheckpointError(f"{self.path} is a pickle but not a torch checkpoint (bad magic number)")
        if plain() != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{self.path}: unsupported legacy torch protocol version")
        sys_info = plain()
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise CheckpointError(f"{self.path}: big-endian legacy torch checkpoints are not supported")
        self.reader = _LegacyReader(self.path, self._file)
        unpickler = _RestrictedUnpickler(self._file, self.reader)
        tree = unpickler.load()
        self.stubbed = unpickler.stubbed
        keys = plain()
        if not isinstance(keys, list):
            raise CheckpointError(f"{self.path}: corrupt legacy torch checkpoint (no storage key list)")
        self.reader.index([str(k) for k in keys])
        return tree

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "_TorchArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _materialize(obj, memo: dict[int, Any] | None = None):
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, _LazyTensor):
        out = memo[id(obj)] = obj.materialize()
    elif isinstance(obj, dict):
        memo[id(obj)] = obj
        for k in list(obj):
            obj[k] = _materialize(obj[k], memo)
        out = obj
    elif isinstance(obj, list):
        memo[id(obj)] = obj
        obj[:] = [_materialize(v, memo) for v in obj]
        out = obj
    elif isinstance(obj, tuple):
        out = memo[id(obj)] = tuple(_materialize(v, memo) for v in obj)
    elif isinstance(obj, PickleStub):
        memo[id(obj)] = obj
        obj.stub_args = _materialize(obj.stub_args, memo)
        obj.stub_kwargs = _materialize(obj.stub_kwargs, memo)
        obj.stub_state = _materialize(obj.stub_state, memo)
        obj.stub_items = _materialize(obj.stub_items, memo)
        obj.stub_list = _materialize(obj.stub_list, memo)
        out = obj
    else:
        out = obj
    return out


def safe_torch_load(path: str | os.PathLike) -> Any:
    """Load a torch checkpoint without running any code from it.

    Tensors (on CPU, the file's dtype), dicts, lists, tuples, sets and numbers are rebuilt; every
    other class or function named in the pickle becomes an inert :class:`PickleStub`.
    """
    path = _existing(path)
    kind = _sniff(path)
    if kind == "safetensors":
        raise CheckpointError(f"{path} is a safetensors file, not a torch pickle")
    with _TorchArchive(path, kind) as archive:
        return _materialize(archive.tree)


# --------------------------------------------------------------------------------------------
# Opening files


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


def _open_safetensors(path: Path, device: torch.device) -> _Source:
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(str(path), framework="pt", device=str(device))
        metadata = handle.metadata() or {}
        keys = list(handle.keys())
        shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in keys}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is a damaged or truncated safetensors file ({err})") from None
    _check_foreign(keys, str(path))
    if "pidm_format" not in metadata:
        raise CheckpointError(
            f"{path} is a safetensors file without PIDM metadata (no 'pidm_format' key); PIDM files "
            "are written by pidm_core.checkpoint.save_model or by converting the official last.pt: "
            "python -m pidm_core.convert last.pt out.safetensors"
        )
    info = ModelInfo.from_metadata(metadata, str(path))
    dtypes = {handle.get_slice(k).get_dtype() for k in keys}
    float_dtype = next((d for d in ("F32", "F16", "BF16", "F64") if d in dtypes), None)
    default = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}.get(float_dtype)
    return _Source(path, shapes, handle.get_tensor, info, "safetensors", default, lambda: None)


def _pick_state_dict(tree, path: Path) -> tuple[str, dict]:
    def is_state_dict(obj) -> bool:
        return isinstance(obj, dict) and bool(obj) and all(isinstance(v, (_LazyTensor, torch.Tensor)) for v in obj.values())

    if isinstance(tree, dict):
        for key in ("ema", "model", "state_dict"):
            if key in tree and isinstance(tree[key], dict):
                _check_foreign(tree[key], str(path))
                if is_state_dict(tree[key]):
                    return key, tree[key]
        if is_state_dict(tree):
            _check_foreign(tree, str(path))
            return "", tree
        _check_foreign((k for k in tree if isinstance(k, str)), str(path))
        found = sorted(str(k) for k in tree)[:10]
    else:
        found = type(tree).__name__
    raise CheckpointError(
        f"{path} holds no PIDM state dict: expected the official last.pt (a dict with 'ema' or "
        f"'model' mapping names to tensors) or a plain state dict; found {found}"
    )


def _open_torch(path: Path, kind: str, config: PIDMConfig | None) -> _Source:
    archive = _TorchArchive(path, kind)
    try:
        which, state_dict = _pick_state_dict(archive.tree, path)
    except CheckpointError:
        archive.close()
        raise

    def get(key: str) -> torch.Tensor:
        value = state_dict[key]
        return value.materialize() if isinstance(value, _LazyTensor) else value

    where = f"{which!r} state dict" if which else "state dict"
    skipped = sorted(k for k in archive.tree if k != which) if which and isinstance(archive.tree, dict) else []
    description = f"official torch checkpoint, {where}" + (f" (not used: {', '.join(map(str, skipped))})" if skipped else "")
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


def _meta_network(config: PIDMConfig) -> PIDMNetwork:
    # Built on the meta device: no memory and no random init; the weights are assigned afterwards.
    with torch.device("meta"):
        return PIDMNetwork(config)


def load_model(path_or_name: str | os.PathLike = EMBEDDED_NAME, device: torch.device | str | None = None,
               dtype: torch.dtype | None = None, *, config: PIDMConfig | str | None = None,
               channels_last: bool | None = None) -> PIDMModel:
    """Load PIDM weights (our .safetensors or the official last.pt) into a network in eval mode.

    ``dtype`` None keeps a safetensors file's dtype and gives fp32 for the official file; ``device``
    None means CPU. ``config`` (a PIDMConfig or a name) is the network of a torch checkpoint, which
    carries no trusted config (default deepfashion_256); for a safetensors file it must match the
    file's. ``channels_last`` stores conv weights NHWC, which the convolutions then follow; None
    turns it on for fp16/bf16 weights only (faster there: benchmarks/bench_sampler.py; in fp32 it
    would change results by more than the 1e-4 we allow against the official algorithm).
    Raises :class:`CheckpointError` (or CheckpointNotFoundError) with the reason.
    """
    path = resolve_model_path(path_or_name)
    device = torch.device("cpu" if device is None else device)
    source = _open(path, device, _resolve_config(config))
    try:
        network = _meta_network(source.info.config)
        report = _match_shapes(network, source.shapes, str(path), source.hint)
        target = dtype or source.default_dtype
        if channels_last is None:
            channels_last = target in (torch.float16, torch.bfloat16)
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


def save_state_dict(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], info: ModelInfo,
                    dtype: torch.dtype | None = None) -> Path:
    """Write tensors and ``info`` as a PIDM .safetensors (atomically: a temp file, then rename).

    The tensors are checked against ``info.config`` first (unused official tensors may be included).
    """
    path = Path(path)
    prefix = len(match_state_dict(_meta_network(info.config), state_dict, source=str(path)).prefix_stripped)
    from safetensors.torch import save_file

    tensors = {k[prefix:]: _cast(v, dtype) for k, v in state_dict.items()}
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
        report = _match_shapes(_meta_network(source.info.config), source.shapes, str(path), source.hint)
        prefix = len(report.prefix_stripped)
        tensors = {key[prefix:]: source.get(key) for key in source.shapes}
    finally:
        source.close()
    return tensors, source.info, report, source.description
