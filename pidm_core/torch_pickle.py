"""A restricted reader for torch pickles (``torch.save`` files, zip and legacy formats).

Tensors and plain containers are rebuilt; every other class or function the pickle names becomes
an inert :class:`PickleStub`, so no code from the file ever runs. Storages are read lazily: only
the tensors that are materialised are read from disk.

Every size the file declares is checked before anything is allocated or read (docs/robustness.md,
Models): the pickle is scanned first (:func:`check_pickle`: its size, opcode count, nesting depth
and what gets hashed), zip records must be stored uncompressed with exactly the bytes their storage
declares, and every tensor must be a non-overlapping view inside its storage.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import reprlib
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


MAX_DIMS = 16
_MAX_INDEX = 1 << 62  # sizes, strides and offsets above this cannot index any file


def _layout_ints(values, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list, torch.Size)) or len(values) > MAX_DIMS:
        raise pickle.UnpicklingError(f"tensor {what} is not a tuple of at most {MAX_DIMS} integers")
    if not all(type(v) is int and 0 <= v < _MAX_INDEX for v in values):
        raise pickle.UnpicklingError(f"tensor {what} {_short(tuple(values))} has a negative, huge or non-integer entry")
    return tuple(values)


def view_reach(size: tuple[int, ...], stride: tuple[int, ...]) -> int:
    """Elements from a view's first to its last element, inclusive (0 for an empty view). Raises
    UnpicklingError when two indices of the view would share an element (a stride 0 with a size
    above 1, or strides that overlap): such a view is tiny in the file and huge once copied."""
    if 0 in size:
        return 0
    last = 0
    for step, count in sorted((st, n) for n, st in zip(size, stride) if n > 1):
        if step <= last:
            raise pickle.UnpicklingError(
                f"tensor of size {list(size)} with strides {list(stride)} is an overlapping view (stride 0 "
                "or strides that reuse elements); a checkpoint stores each element once")
        last += (count - 1) * step
    return last + 1


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> LazyTensor:
    # Backward hooks and metadata that torch may pickle along are dropped: they are never called.
    if not isinstance(storage, _LazyStorage):
        raise pickle.UnpicklingError(f"tensor rebuilt from a {type(storage).__name__}, expected a storage")
    size, stride = _layout_ints(size, "size"), _layout_ints(stride, "stride")
    (offset,) = _layout_ints((storage_offset,), "storage offset")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {list(size)} and strides {list(stride)} differ in length")
    reach = view_reach(size, stride)
    if reach and offset + reach > storage.numel:
        raise pickle.UnpicklingError(
            f"tensor of size {list(size)} at offset {offset} reaches past its storage of {storage.numel} elements")
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


# --------------------------------------------------------------------------------------------
# Checking a pickle before it is unpickled
#
# The C unpickler allocates whatever the opcodes ask for and hashes dict keys recursively in C (a
# 300 KB pickle of a deeply nested tuple used as a key overflows the C stack and kills the process).
# So the opcode stream is first run on a model of the unpickler's stack that only tracks how deep
# each object nests, and is refused when it is larger, deeper or stranger than any checkpoint.

MAX_PICKLE_BYTES = 32 << 20  # the official last.pt's data.pkl is ~0.4 MB
MAX_PICKLE_OPS = 1_000_000  # ~130 k in the official data.pkl; an opcode builds one object at most
MAX_NESTING = 100  # the official layout nests 8 deep (as check_pickle counts); materialize() recurses per level
MAX_KEY_NESTING = 1  # dict keys and set items: plain values or flat tuples of them
_HASHING_GLOBALS = {("builtins", "set"), ("builtins", "frozenset"), ("__builtin__", "set"),
                    ("__builtin__", "frozenset"), ("collections", "OrderedDict")}

# Argument kinds: n >= 0 fixed bytes; _LINE / _LINES2 text up to one / two newlines; otherwise a
# little-endian length prefix of _PREFIXED[kind] = (width, signed) bytes, then that many bytes.
_LINE, _LINES2 = -1, -2
_PREFIXED = {-3: (1, False), -4: (4, True), -5: (4, False), -6: (8, False)}
_PICKLETOOLS_KINDS = {-1: _LINE, -2: -3, -3: -4, -4: -5, -5: -6}  # pickletools' n -> ours
_REFUSED_OPS = {"EXT1", "EXT2", "EXT4", "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}
# Opcodes that push one plain value (number, string, bytes, None, bool) and touch nothing else.
_PLAIN_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
              "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "NONE", "NEWTRUE", "NEWFALSE",
              "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "PERSID"}


def _opcode_table() -> list:
    """Byte -> (name, argument kind), None for bytes that are no opcode."""
    import pickletools

    table = [None] * 256
    for op in pickletools.opcodes:
        kind = None if op.arg is None else (op.arg.n if op.arg.n >= 0 else _PICKLETOOLS_KINDS[op.arg.n])
        if op.name in ("GLOBAL", "INST"):
            kind = _LINES2
        table[ord(op.code)] = (op.name, kind)
    return table


_OPCODES = _opcode_table()


def _refuse(pos: int, why: str):
    raise pickle.UnpicklingError(f"refused pickle (at byte {pos}): {why}")


class _StackModel:
    """The unpickler's stack as :func:`check_pickle` models it. Each object is ``[depth, used, hashes]``:
    how deep it nests, whether it was already put inside another object, and (callables) whether
    calling it hashes its arguments."""

    def __init__(self, data: bytes):
        self.data = data
        self.atom = [0, True, False]  # every plain value (numbers, strings, bytes, None, storages)
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict[int, list] = {}

    def pop(self, at: int) -> list:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            _refuse(at, "stack underflow")
        return self.stack.pop()

    def pop_mark(self, at: int) -> list:
        if not self.marks:
            _refuse(at, "no MARK")
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    def top(self, at: int) -> list:
        if not self.stack:
            _refuse(at, "stack underflow")
        return self.stack[-1]

    def push_new(self, items, at: int) -> None:
        """Push a new object built from ``items`` (which are used by it)."""
        depth = 1
        for item in items:
            item[1] = True
            if item[0] >= depth:
                depth = item[0] + 1
        if depth > MAX_NESTING:
            _refuse(at, f"objects nested more than {MAX_NESTING} deep")
        self.stack.append([depth, False, False])

    def put_into_top(self, items, at: int) -> None:
        """Put ``items`` into the object on top of the stack: it gets deeper, unless it was used already."""
        container = self.top(at)
        for item in items:
            item[1] = True
            depth = item[0] + 1
            if depth > container[0]:
                if container[1]:
                    _refuse(at, "an object is changed after it was used (a cycle or a non-container)")
                if depth > MAX_NESTING:
                    _refuse(at, f"objects nested more than {MAX_NESTING} deep")
                container[0] = depth


def _check_hashable(items, at: int) -> None:
    for item in items:
        if item[0] > MAX_KEY_NESTING:
            _refuse(at, "a nested object is used as a dict key or set item")


# Opcode handlers: (model, name, at = the opcode's offset, arg = its argument's, end = just past it).
# Each pops and pushes what the real unpickler does, checking what it may not do.


def _push_plain(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.stack.append(model.atom)


def _memo_put(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    if not model.stack:
        _refuse(at, "memo of an empty stack")
    model.memo[_memo_index(name, model.data, arg, end, len(model.memo))] = model.stack[-1]


def _memo_get(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    found = model.memo.get(_memo_index(name, model.data, arg, end, 0))
    if found is None:
        _refuse(at, "memo entry never stored")
    model.stack.append(found)


def _mark(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.marks.append(len(model.stack))


def _push_empty(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.stack.append([1, False, False])


def _small_tuple(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.push_new([model.pop(at) for _ in range(int(name[-1]))], at)


def _marked_container(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    items = model.pop_mark(at)
    if name in ("DICT", "FROZENSET"):
        _check_hashable(items[0::2] if name == "DICT" else items, at)
    model.push_new(items, at)


def _append(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.put_into_top((model.pop(at),), at)  # BUILD too: the state goes into the object


def _setitem(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    value, key = model.pop(at), model.pop(at)
    _check_hashable((key,), at)
    model.put_into_top((key, value), at)


def _add_marked(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    items = model.pop_mark(at)
    if name != "APPENDS":
        _check_hashable(items[0::2] if name == "SETITEMS" else items, at)
    model.put_into_top(items, at)


def _reduce(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    args, func = model.pop(at), model.pop(at)
    if func[2] and args[0] > MAX_KEY_NESTING + 2:  # set([items]) hashes the items
        _refuse(at, "a nested object is used as a set item or dict key")
    model.push_new((args,), at)


def _newobj_ex(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    kwargs, args, func = model.pop(at), model.pop(at), model.pop(at)
    if func[2]:
        _refuse(at, "NEWOBJ_EX of a hashing type")
    model.push_new((args, kwargs), at)


def _obj(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    items = model.pop_mark(at)
    hashes = (name == "OBJ" and bool(items) and items[0][2]) or (
        name == "INST" and _global_name(model.data, arg) in _HASHING_GLOBALS)
    if hashes:
        _refuse(at, f"{name} of a hashing type")
    model.push_new(items, at)


def _global(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.stack.append([0, False, _global_name(model.data, arg) in _HASHING_GLOBALS])


def _stack_global(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.pop(at), model.pop(at)
    model.stack.append([0, False, True])  # unknown callable: treated as one that hashes


def _binpersid(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.pop(at)
    model.stack.append(model.atom)


def _refused(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    _refuse(at, f"{name} is not used by torch checkpoints")


def _pop(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    if model.marks and model.marks[-1] == len(model.stack):
        model.marks.pop()  # POP right after MARK drops the mark
    else:
        model.pop(at)


def _dup(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.stack.append(model.top(at))


def _pop_mark(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    model.pop_mark(at)


def _proto(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    if model.data[arg] > 5:
        _refuse(at, f"pickle protocol {model.data[arg]}")


def _frame(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    pass  # framing only groups opcodes for reading


def _unexpected(model: _StackModel, name: str, at: int, arg: int, end: int) -> None:
    _refuse(at, f"unexpected opcode {name}")


def _handler_table() -> dict[str, Callable]:
    handlers = dict.fromkeys(_PLAIN_OPS, _push_plain)
    handlers.update(dict.fromkeys(_REFUSED_OPS, _refused))
    for names, handler in (
        (("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"), _memo_put), (("BINGET", "LONG_BINGET", "GET"), _memo_get),
        (("MARK",), _mark), (("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE"), _push_empty),
        (("TUPLE1", "TUPLE2", "TUPLE3"), _small_tuple), (("TUPLE", "LIST", "DICT", "FROZENSET"), _marked_container),
        (("APPEND", "BUILD"), _append), (("SETITEM",), _setitem), (("APPENDS", "SETITEMS", "ADDITEMS"), _add_marked),
        (("REDUCE", "NEWOBJ"), _reduce), (("NEWOBJ_EX",), _newobj_ex), (("OBJ", "INST"), _obj),
        (("GLOBAL",), _global), (("STACK_GLOBAL",), _stack_global), (("BINPERSID",), _binpersid),
        (("POP",), _pop), (("DUP",), _dup), (("POP_MARK",), _pop_mark), (("PROTO",), _proto), (("FRAME",), _frame),
    ):
        handlers.update(dict.fromkeys(names, handler))
    return handlers


_HANDLERS = _handler_table()


def _skip_argument(data: bytes, at: int, pos: int, name: str, kind: int | None) -> int:
    """The offset just past the argument of the opcode ``name`` at ``at``, whose argument starts at ``pos``."""
    if kind is None:
        return pos
    if kind >= 0:
        pos += kind
    elif kind >= _LINES2:
        for _ in range(2 if kind == _LINES2 else 1):
            newline = data.find(b"\n", pos)
            if newline < 0:
                _refuse(at, "unterminated text argument")
            pos = newline + 1
    else:
        width, signed = _PREFIXED[kind]
        if pos + width > len(data):
            _refuse(at, "the pickle is truncated")
        length = int.from_bytes(data[pos:pos + width], "little", signed=signed)
        if length < 0:
            _refuse(at, "negative length")
        pos += width + length
    if pos > len(data):
        _refuse(at, f"{name} declares more bytes than the pickle has (truncated)")
    return pos


def check_pickle(data: bytes, start: int = 0) -> int:
    """Check the pickle that starts at ``data[start]`` without building anything; return the offset
    just past its STOP opcode. Raises ``pickle.UnpicklingError`` when it is truncated, has more than
    MAX_PICKLE_OPS opcodes, nests deeper than MAX_NESTING, hashes a nested object (dict key, set
    item), changes an object after using it (cycles), or uses extension/out-of-band opcodes.
    Each opcode is run on a :class:`_StackModel` by its handler in ``_HANDLERS``."""
    model = _StackModel(data)
    pos, end, ops = start, len(data), 0
    while True:
        at = pos
        if pos >= end:
            _refuse(at, "the pickle is truncated (no STOP opcode)")
        entry = _OPCODES[data[pos]]
        if entry is None:
            _refuse(at, f"unknown opcode {data[pos]:#04x}")
        name, kind = entry
        ops += 1
        if ops > MAX_PICKLE_OPS:
            _refuse(at, f"more than {MAX_PICKLE_OPS} opcodes")
        pos = _skip_argument(data, at, pos + 1, name, kind)
        if name == "STOP":  # the one opcode that ends the scan
            if len(model.stack) != 1 or model.marks:
                _refuse(at, "STOP with a malformed stack")
            return pos
        _HANDLERS.get(name, _unexpected)(model, name, at, at + 1, pos)


def _memo_index(name: str, data, arg: int, end: int, default: int) -> int:
    if name == "MEMOIZE":
        return default
    if name in ("BINPUT", "BINGET"):
        return data[arg]
    if name in ("LONG_BINPUT", "LONG_BINGET"):
        return int.from_bytes(data[arg:arg + 4], "little")
    text = data[arg:end - 1]
    if not (0 < len(text) <= 20 and text.isdigit()):
        _refuse(arg, f"bad memo key {text[:20]!r}")
    return int(text)


def _global_name(data, arg: int) -> tuple[str, str]:
    parts = data[arg:arg + 4096].split(b"\n", 2)
    return (parts[0].decode("latin1"), parts[1].decode("latin1")) if len(parts) > 2 else ("", "")


def _short(value) -> str:
    """repr of a value from the file, bounded in length and depth."""
    return reprlib.repr(value)


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
            raise pickle.UnpicklingError(f"unknown persistent id {_short(pid)}")
        typename, storage_type, key, _location, numel = pid[:5]
        if isinstance(typename, bytes):
            typename = typename.decode("ascii")
        if typename != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unknown persistent id {_short(pid[:2])}")
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views of the legacy torch format are not supported")
        if type(key) not in (str, int) or len(str(key)) > 64 or type(numel) is not int:
            raise pickle.UnpicklingError(f"storage reference with key {_short(key)} and size {_short(numel)}")
        return self._reader.register(str(key), storage_type.dtype, numel)


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


class _StorageReader:
    """Reads storages' bytes from a torch archive, each at most once."""

    def __init__(self, path: Path):
        self.path = path
        self._storages: dict[str, _LazyStorage] = {}
        self._cache: dict[str, torch.Tensor] = {}

    def register(self, key: str, dtype: torch.dtype, numel: int) -> _LazyStorage:
        if not 0 <= numel < _MAX_INDEX:
            raise pickle.UnpicklingError(f"storage {key} declares {numel} elements")
        if key in self._storages:
            known = self._storages[key]
            if known.dtype != dtype or known.numel != numel:
                raise pickle.UnpicklingError(f"storage {key} is declared twice, with different dtypes or sizes")
            return known
        self._check_record(key, numel * _itemsize(dtype))
        self._storages[key] = _LazyStorage(self, key, dtype, numel)
        return self._storages[key]

    def _check_record(self, key: str, nbytes: int) -> None:
        """Refuse a storage whose declared size the file cannot hold (before anything is read)."""

    def read(self, storage: _LazyStorage) -> torch.Tensor:
        if storage.key not in self._cache:
            itemsize = _itemsize(storage.dtype)
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


# The central directory of the official last.pt (~4,300 records) is ~0.4 MB; this bounds how many
# record descriptions zipfile builds for a hostile archive.
MAX_ZIP_DIRECTORY_BYTES = 16 << 20
_SMALL_RECORD_BYTES = 64  # byteorder, version


def _zip_record(archive: zipfile.ZipFile, name: str, path: Path, file_size: int, max_bytes: int | None = None,
                nbytes: int | None = None) -> zipfile.ZipInfo:
    """The record ``name``, checked against what it may hold before it is read: compressed records
    are refused (torch.save stores them; a deflated record can inflate 1000-fold), as are records
    larger than ``max_bytes``, of another size than ``nbytes``, or reaching past the file's end."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(f"{path}: record {name} is missing from the archive; the file is corrupt") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(
            f"{path}: record {name} is compressed (zip method {info.compress_type}); torch.save stores "
            "records uncompressed, so this is not a checkpoint written by torch (a zip bomb?); refusing to "
            "inflate it")
    if max_bytes is not None and info.file_size > max_bytes:
        raise CheckpointError(f"{path}: record {name} declares {info.file_size} bytes, more than the "
                              f"{max_bytes} a checkpoint's {name.rsplit('/', 1)[-1]} may have")
    if nbytes is not None and info.file_size != nbytes:
        raise CheckpointError(
            f"{path}: storage record {name} has {info.file_size} bytes but its tensors declare a storage of "
            f"{nbytes} bytes; the file is corrupt or forged")
    if info.header_offset + info.file_size > file_size:
        raise CheckpointError(f"{path} is truncated: record {name} reaches past the end of the file")
    return info


class _ZipReader(_StorageReader):
    def __init__(self, path: Path, archive: zipfile.ZipFile, prefix: str, file_size: int):
        super().__init__(path)
        self.archive = archive
        self.prefix = prefix
        self.file_size = file_size
        order = f"{prefix}byteorder"
        if order in archive.NameToInfo:
            _zip_record(archive, order, path, file_size, max_bytes=_SMALL_RECORD_BYTES)
            self.big_endian = archive.read(order).strip() == b"big"

    def _check_record(self, key: str, nbytes: int) -> None:
        _zip_record(self.archive, f"{self.prefix}data/{key}", self.path, self.file_size, nbytes=nbytes)

    def _read_bytes(self, key: str, nbytes: int) -> bytearray:
        name = f"{self.prefix}data/{key}"
        _zip_record(self.archive, name, self.path, self.file_size, nbytes=nbytes)
        try:
            return bytearray(self.archive.read(name))
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
            raise CheckpointError(
                f"{self.path}: cannot read storage data/{key} ({err}); the file is truncated or corrupt"
            ) from None


class _LegacyReader(_StorageReader):
    """The pre-1.6 torch format: pickles followed by raw storages (int64 numel + little-endian bytes)."""

    def __init__(self, path: Path, file):
        super().__init__(path)
        self.file = file
        self.file_size = os.fstat(file.fileno()).st_size
        self.offsets: dict[str, int] = {}

    def index(self, keys: list[str]) -> None:
        if len(keys) != len(set(keys)):
            raise CheckpointError(f"{self.path}: a storage is listed twice; corrupt file")
        for key in keys:
            if key not in self._storages:
                raise CheckpointError(f"{self.path}: storage {key!r} listed but never referenced; corrupt file")
            header = self.file.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{self.path} is truncated: storage {key} is missing")
            numel = struct.unpack("<q", header)[0]
            storage = self._storages[key]
            if numel != storage.numel:
                raise CheckpointError(f"{self.path}: storage {key} holds {numel} elements but its tensors declare "
                                      f"{storage.numel}; the file is corrupt or forged")
            self.offsets[key] = self.file.tell()
            end = self.offsets[key] + numel * _itemsize(storage.dtype)
            if end > self.file_size:
                raise CheckpointError(f"{self.path} is truncated: storage {key} reaches past the end of the file")
            self.file.seek(end)

    def _read_bytes(self, key: str, nbytes: int) -> bytearray:
        if key not in self.offsets or self.offsets[key] + nbytes > self.file_size:
            return bytearray()  # reported as truncated by the caller
        self.file.seek(self.offsets[key])
        buf = bytearray(nbytes)
        got = self.file.readinto(buf)
        return buf if got == nbytes else buf[:got]


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while a pickle's containers are made: with up to MAX_PICKLE_OPS of
    them, the collector's repeated passes cost more than the unpickling (4x on 1 M empty sets)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class TorchArchive:
    """An open torch checkpoint whose object tree holds :class:`LazyTensor` leaves."""

    def __init__(self, path: Path, kind: str):
        self.path = path
        self._file = open(path, "rb")
        self.size = os.fstat(self._file.fileno()).st_size
        self.stubbed: list[str] = []
        try:
            self.tree = self._load_zip() if kind == "torch_zip" else self._load_legacy()
        except CheckpointError:
            self.close()
            raise
        except RecursionError:
            self.close()
            raise CheckpointError(f"{path} nests objects too deeply for a torch checkpoint; refusing it") from None
        except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError, AttributeError,
                IndexError, KeyError, OverflowError, struct.error, OSError, RuntimeError) as err:
            self.close()
            raise CheckpointError(
                f"{path} is a damaged, truncated or unsupported torch checkpoint "
                f"({type(err).__name__}: {err}); download it again"
            ) from None

    def _unpickle(self, data: bytes, reader: "_StorageReader | None"):
        """Check, then unpickle, the one pickle that ``data`` holds."""
        with _gc_paused():
            if check_pickle(data) != len(data):
                raise pickle.UnpicklingError("bytes after the pickle's STOP opcode")
            unpickler = RestrictedUnpickler(io.BytesIO(data), reader)
            tree = unpickler.load()
        self.stubbed += unpickler.stubbed
        return tree

    def _check_zip_directory(self) -> None:
        end = zipfile._EndRecData(self._file)  # the end-of-directory record (zip64 aware)
        if not end:
            raise zipfile.BadZipFile("no end-of-archive record (truncated?)")
        if end[zipfile._ECD_SIZE] > MAX_ZIP_DIRECTORY_BYTES:
            raise CheckpointError(
                f"{self.path}: its zip directory declares {end[zipfile._ECD_SIZE]} bytes, more than the "
                f"{MAX_ZIP_DIRECTORY_BYTES} any PIDM checkpoint needs; refusing it")
        self._file.seek(0)

    def _check_records_apart(self, archive: zipfile.ZipFile) -> None:
        """Records must not share bytes: overlapping records let a small file hold many large storages."""
        spans = sorted((info.header_offset, info.header_offset + info.compress_size, info.filename)
                       for info in archive.infolist())
        for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
            if start < end:
                raise CheckpointError(f"{self.path}: zip records {first} and {second} overlap in the file (a zip "
                                      "bomb?); a checkpoint written by torch.save stores each record once")

    def _load_zip(self):
        self._check_zip_directory()
        archive = zipfile.ZipFile(self._file)
        self._check_records_apart(archive)
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{self.path} is a zip archive but not a torch checkpoint (no */data.pkl record)")
        prefix = pickles[0][: -len("data.pkl")]
        _zip_record(archive, pickles[0], self.path, self.size, max_bytes=MAX_PICKLE_BYTES)
        self.reader = _ZipReader(self.path, archive, prefix, self.size)
        return self._unpickle(archive.read(pickles[0]), self.reader)

    def _next_pickle(self) -> bytes:
        """The bytes of the pickle at the file position (checked), leaving the file just after it."""
        start = self._file.tell()
        data = self._file.read(MAX_PICKLE_BYTES)
        try:
            end = check_pickle(data)
        except pickle.UnpicklingError:
            if len(data) == MAX_PICKLE_BYTES:
                raise CheckpointError(f"{self.path}: a pickle in it is larger than {MAX_PICKLE_BYTES} bytes, "
                                      "more than any PIDM checkpoint has") from None
            raise
        self._file.seek(start + end)
        return data[:end]

    def _load_legacy(self):
        def plain():
            return self._unpickle(self._next_pickle(), None)

        if plain() != _LEGACY_MAGIC:
            raise CheckpointError(f"{self.path} is a pickle but not a torch checkpoint (bad magic number)")
        if plain() != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{self.path}: unsupported legacy torch protocol version")
        sys_info = plain()
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise CheckpointError(f"{self.path}: big-endian legacy torch checkpoints are not supported")
        self.reader = _LegacyReader(self.path, self._file)
        tree = self._unpickle(self._next_pickle(), self.reader)
        keys = plain()
        if not isinstance(keys, list) or not all(type(k) in (str, int) for k in keys):
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
