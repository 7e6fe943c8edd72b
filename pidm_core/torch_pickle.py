"""A restricted reader for torch pickles (``torch.save`` files, zip and legacy formats).

Tensors and plain containers are rebuilt; every other class or function the pickle names becomes
an inert :class:`PickleStub`, so no code from the file ever runs. Storages are read lazily: only
the tensors that are materialised are read from disk.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import CheckpointError



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
class LazyTensor(_Sealed):
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


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> LazyTensor:
    # Backward hooks and metadata that torch may pickle along are dropped: they are never called.
    if not isinstance(storage, _LazyStorage):
        raise pickle.UnpicklingError(f"tensor rebuilt from a {type(storage).__name__}, expected a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise pickle.UnpicklingError(f"invalid tensor layout size={size} stride={stride} offset={offset}")
    if 0 not in size and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
        raise pickle.UnpicklingError(f"tensor of size {size} reaches past its storage of {storage.numel} elements")
    return LazyTensor(storage, offset, size, stride)


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


class RestrictedUnpickler(pickle.Unpickler):
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


class TorchArchive:
    """An open torch checkpoint whose object tree holds :class:`LazyTensor` leaves."""

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
            unpickler = RestrictedUnpickler(io.BytesIO(f.read()), self.reader)
            tree = unpickler.load()
        self.stubbed = unpickler.stubbed
        return tree

    def _load_legacy(self):
        def plain():
            return RestrictedUnpickler(self._file, None).load()

        if plain() != _LEGACY_MAGIC:
            raise CheckpointError(f"{self.path} is a pickle but not a torch checkpoint (bad magic number)")
        if plain() != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{self.path}: unsupported legacy torch protocol version")
        sys_info = plain()
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise CheckpointError(f"{self.path}: big-endian legacy torch checkpoints are not supported")
        self.reader = _LegacyReader(self.path, self._file)
        unpickler = RestrictedUnpickler(self._file, self.reader)
        tree = unpickler.load()
        self.stubbed = unpickler.stubbed
        keys = plain()
        if not isinstance(keys, list):
            raise CheckpointError(f"{self.path}: corrupt legacy torch checkpoint (no storage key list)")
        self.reader.index([str(k) for k in keys])
        return tree

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "TorchArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def materialize(obj, memo: dict[int, Any] | None = None):
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, LazyTensor):
        out = memo[id(obj)] = obj.materialize()
    elif isinstance(obj, dict):
        memo[id(obj)] = obj
        for k in list(obj):
            obj[k] = materialize(obj[k], memo)
        out = obj
    elif isinstance(obj, list):
        memo[id(obj)] = obj
        obj[:] = [materialize(v, memo) for v in obj]
        out = obj
    elif isinstance(obj, tuple):
        out = memo[id(obj)] = tuple(materialize(v, memo) for v in obj)
    elif isinstance(obj, PickleStub):
        memo[id(obj)] = obj
        obj.stub_args = materialize(obj.stub_args, memo)
        obj.stub_kwargs = materialize(obj.stub_kwargs, memo)
        obj.stub_state = materialize(obj.stub_state, memo)
        obj.stub_items = materialize(obj.stub_items, memo)
        obj.stub_list = materialize(obj.stub_list, memo)
        out = obj
    else:
        out = obj
    return out
