"""Hostile model files (issue 14, models): every case ends in a clean CheckpointError, within seconds
and well under the memory budget, in a fresh process under a 4 GB address-space cap (tests/capped.py).

The files are built here, small: torch checkpoints by a pickler that writes torch's layout with any
storage sizes, views and zip records we choose (a zip bomb is a real deflate stream of 2 GiB of
zeros in a 2 MB file), raw pickles opcode by opcode, and safetensors files with forged headers.
docs/robustness.md (Models) lists the cases.
"""

from __future__ import annotations

import collections
import json
import math
import pickle
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
import torch
import torch._utils

from pidm_core.checkpoint import CheckpointError, ModelInfo, load_model, save_model
from pidm_core.config import get_config
from pidm_core.network import PIDMNetwork
from pidm_core.torch_pickle import MAX_NESTING, MAX_PICKLE_OPS, check_pickle
from tests.capped import run_capped

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_SHAPES = json.loads((REPO / "tests" / "fixtures" / "official_state_dict_shapes.json").read_text())
TINY = get_config("tiny_32")
BOMB_BYTES = (2 << 30) - (1 << 20)  # inflated size of the zip bomb: 2 GiB less 1 MiB (no zip64 needed)


# ---------------------------------------------------------------------------------------------
# Writing torch checkpoints with chosen storages, views and records


class Storage:
    """A storage as a torch pickle refers to it: a key in the archive and a declared size."""

    def __init__(self, key: str, numel: int, storage_type=torch.FloatStorage):
        self.key, self.numel, self.storage_type = key, numel, storage_type


class View:
    """Pickles exactly like a tensor saved by torch: _rebuild_tensor_v2(storage, offset, size, stride)."""

    def __init__(self, storage: Storage, size, stride=None, offset: int = 0):
        size = tuple(size)
        if stride is None:
            stride = tuple(math.prod(size[i + 1:]) for i in range(len(size)))
        self.storage, self.size, self.stride, self.offset = storage, size, tuple(stride), offset

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(tree) -> bytes:
    import io

    buffer = io.BytesIO()
    _TorchPickler(buffer, protocol=2).dump(tree)
    return buffer.getvalue()


def write_zip(path: Path, records: list[tuple[str, bytes, tuple[int, int] | None]]) -> Path:
    """A zip of (name, payload, deflated) records. ``deflated`` None stores the payload; (size, crc)
    declares the payload a raw deflate stream that inflates to ``size`` bytes with that CRC."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, payload, _ in records:
            archive.writestr(name, payload)
        patched = []
        for name, _, deflated in records:
            if deflated is not None:
                info = archive.getinfo(name)
                info.compress_type, (info.file_size, info.CRC) = zipfile.ZIP_DEFLATED, deflated
                patched.append(info)
    with open(path, "r+b") as f:  # the central directory was written from the infos; now the local headers
        for info in patched:
            f.seek(info.header_offset + 8)
            f.write(struct.pack("<H", zipfile.ZIP_DEFLATED))
            f.seek(info.header_offset + 14)
            f.write(struct.pack("<III", info.CRC, info.compress_size, info.file_size))
    return path


def write_torch_zip(path: Path, data_pkl: bytes, storages: dict[str, bytes] | None = None,
                    bombs: dict[str, tuple[bytes, int, int]] | None = None, pickle_bomb=None) -> Path:
    """A torch.save-layout zip: archive/data.pkl, byteorder, data/<key> records (stored), and deflated
    ``bombs`` records (stream, inflated size, crc). ``pickle_bomb`` makes data.pkl itself deflated."""
    records = [("archive/data.pkl", data_pkl if pickle_bomb is None else pickle_bomb[0],
                None if pickle_bomb is None else pickle_bomb[1:]),
               ("archive/byteorder", b"little", None), ("archive/version", b"3\n", None)]
    records += [(f"archive/data/{key}", payload, None) for key, payload in (storages or {}).items()]
    records += [(f"archive/data/{key}", stream, (size, crc)) for key, (stream, size, crc) in (bombs or {}).items()]
    return write_zip(path, records)


def zeros_deflated(nbytes: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of ``nbytes`` zeros (a multiple of 1 MiB), its size and CRC: ~1 KB per MiB."""
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)  # self-contained, repeatable
    count = nbytes >> 20
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    return block * count + compressor.flush(zlib.Z_FINISH), nbytes, crc


def own_storages(state_dict: dict[str, torch.Tensor], prefix: str = "") -> tuple[dict, dict[str, bytes]]:
    """Views and storage records of real tensors, each in a storage of its own (as torch.save writes)."""
    views, records = {}, {}
    for i, (name, tensor) in enumerate(state_dict.items()):
        tensor = tensor.detach().contiguous()
        key = f"{prefix}{i}"
        storage_type = {torch.float32: torch.FloatStorage, torch.int64: torch.LongStorage,
                        torch.int32: torch.IntStorage, torch.float16: torch.HalfStorage}[tensor.dtype]
        views[name] = View(Storage(key, tensor.numel(), storage_type), tensor.shape)
        records[key] = tensor.numpy().tobytes()
    return views, records


def tiny_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: torch.randn(v.shape) * 0.05 for k, v in PIDMNetwork(TINY).state_dict().items()}


def official_zip_bomb(path: Path, bomb: tuple[bytes, int, int]) -> Path:
    """Issue 14.3: the official last.pt layout whose one deflated storage inflates to ~2 GiB, every
    tensor of the official state dict a stride-0 view of it."""
    stream, size, crc = bomb
    storage = Storage("0", size // 4)
    ema = collections.OrderedDict((k, View(storage, shape, [0] * len(shape))) for k, shape in OFFICIAL_SHAPES.items())
    return write_torch_zip(path, torch_pickle({"ema": ema, "model": ema}), bombs={"0": bomb})


@pytest.fixture(scope="module")
def bomb() -> tuple[bytes, int, int]:
    return zeros_deflated(BOMB_BYTES)


# ---------------------------------------------------------------------------------------------
# Running cases in a capped process


_CASES_BODY = """
import json, os
from pidm_core.checkpoint import CheckpointError, load_model
from pidm_core.cli import convert
cases = json.loads(os.environ["CASES"])
for case in cases:
    try:
        if case.get("convert"):
            convert.convert(case["path"], case["path"] + ".out.safetensors", config=case.get("config"), log=lambda *a: None)
        else:
            load_model(case["path"], config=case.get("config"))
    except CheckpointError as error:
        missing = [f for f in case["fragments"] if f not in str(error)]
        assert not missing and case["path"] in str(error), (case["path"], missing, str(error))
    else:
        raise AssertionError(f"{case['path']} loaded")
raise CheckpointError(f"all {len(cases)} cases refused")
"""


def assert_all_refused(cases: list[dict], max_seconds: float = 30.0) -> None:
    """Load (or convert) every case in one capped process; each must raise a CheckpointError that
    names its file and holds its fragments. Paths and fragments: case["path"], case["fragments"]."""
    cases = [{**case, "path": str(case["path"])} for case in cases]
    result = run_capped(_CASES_BODY, env={"CASES": json.dumps(cases)})
    result.assert_clean_error(CheckpointError, f"all {len(cases)} cases refused", max_seconds=max_seconds)


def assert_refused(path: Path, *fragments: str, config: str | None = None) -> str:
    """load_model(path) in a capped process: a CheckpointError naming the file, with the fragments."""
    env = {"SRC": str(path), **({"CONFIG": config} if config else {})}
    result = run_capped("import os\nfrom pidm_core.checkpoint import load_model\n"
                        "load_model(os.environ['SRC'], config=os.environ.get('CONFIG'))", env=env)
    return result.assert_clean_error(CheckpointError, str(path), *fragments, max_seconds=30)


# ---------------------------------------------------------------------------------------------
# The writer makes files that load (the control for every case below)


def test_the_writer_makes_checkpoints_that_load(tmp_path):
    state_dict = tiny_state_dict()
    views, records = own_storages(state_dict)
    path = write_torch_zip(tmp_path / "tiny.pt", torch_pickle({"ema": views, "conf": None}), records)
    model = load_model(path, config=TINY)
    for name, tensor in model.network.state_dict().items():
        assert torch.equal(tensor, state_dict[name]), name


# ---------------------------------------------------------------------------------------------
# Zip bombs and storages that declare more than the file holds (issue 14.3)


def test_zip_bomb_checkpoint_is_refused_before_inflating(tmp_path, bomb):
    path = official_zip_bomb(tmp_path / "last.pt", bomb)
    assert path.stat().st_size < 3 << 20  # a 2 MB file that would inflate to 2 GiB
    message = assert_refused(path, "data/0 is compressed", "zip bomb")
    assert "download" not in message or "refusing" in message


def test_stride_0_views_of_a_small_stored_storage(tmp_path):
    """The bomb's other half: every official tensor a stride-0 view of a stored 1-element storage."""
    storage = Storage("0", 1)
    ema = {k: View(storage, shape, [0] * len(shape)) for k, shape in OFFICIAL_SHAPES.items()}
    path = write_torch_zip(tmp_path / "last.pt", torch_pickle({"ema": ema}), {"0": bytes(4)})
    assert_refused(path, "overlapping view")


def test_zip_records_that_share_bytes(tmp_path):
    """A non-recursive zip bomb: every storage record's directory entry points at the same stored bytes."""
    views, records = own_storages(tiny_state_dict())
    path = write_torch_zip(tmp_path / "overlap.pt", torch_pickle({"ema": views}), records)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        directory = archive.start_dir
    data = bytearray(path.read_bytes())
    at = directory
    for info in infos:  # central directory entries: 46 bytes, then name, extra and comment
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[at + 28:at + 34])
        if info.filename == "archive/data/1":
            data[at + 42:at + 46] = struct.pack("<I", infos[[i.filename for i in infos].index("archive/data/0")].header_offset)
        at += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))
    assert_refused(path, "overlap in the file", config="tiny_32")


def test_data_pkl_that_is_a_deflate_bomb(tmp_path, bomb):
    stream, size, crc = bomb
    path = write_torch_zip(tmp_path / "last.pt", b"", pickle_bomb=(stream, size, crc))
    assert_refused(path, "data.pkl is compressed")


def _state_dict_file(tmp_path: Path, name: str, tamper) -> Path:
    """tiny_32 weights in the official layout, changed by ``tamper(views, records)``."""
    views, records = own_storages(tiny_state_dict())
    tree = tamper(views, records) or {"ema": views}
    return write_torch_zip(tmp_path / name, torch_pickle(tree), records)


def _replace(name: str, view):
    def tamper(views, records):
        views[name] = view(views[name], records)
    return tamper


def test_storages_and_views_that_declare_more_than_the_file(tmp_path):
    weight = "out.2.weight"  # [6, 32, 3, 3]
    big = Storage("big", 1 << 20)

    def oversized(views, records):
        records["big"] = bytes(4 << 20)
        views[weight] = View(big, (6, 32, 3, 3))

    def int_keys(views, records):
        return {"ema": {i: v for i, v in enumerate(views.values())}}

    def int_weights(views, records):
        for i, (name, view) in enumerate(list(views.items())):
            records[f"i{i}"] = bytes(8 * math.prod(view.size))
            views[name] = View(Storage(f"i{i}", math.prod(view.size), torch.LongStorage), view.size)

    def int32_weights(views, records):
        for i, (name, view) in enumerate(list(views.items())):
            records[f"i{i}"] = bytes(4 * math.prod(view.size))
            views[name] = View(Storage(f"i{i}", math.prod(view.size), torch.IntStorage), view.size)

    cases = [
        ("declared_numel.pt", _replace(weight, lambda v, r: View(Storage(v.storage.key, 10**12), v.size)),
         ["declare a storage of 4000000000000 bytes"]),
        ("past_the_end.pt", _replace(weight, lambda v, r: View(v.storage, v.size, offset=5)), ["reaches past its storage"]),
        ("negative_stride.pt", _replace(weight, lambda v, r: View(v.storage, v.size, (288, 9, 3, -1))),
         ["negative, huge or non-integer"]),
        ("negative_offset.pt", _replace(weight, lambda v, r: View(v.storage, v.size, offset=-4)),
         ["negative, huge or non-integer"]),
        ("huge_size.pt", _replace(weight, lambda v, r: View(v.storage, (1 << 70, 32, 3, 3), (288, 9, 3, 1))),
         ["negative, huge or non-integer"]),
        ("self_overlap.pt", _replace(weight, lambda v, r: View(v.storage, v.size, (1, 1, 1, 1))), ["overlapping view"]),
        ("oversized_storage.pt", oversized, ["use only 1728 of them", "does not pad storages"]),
        ("missing_record.pt", _replace(weight, lambda v, r: View(Storage("nowhere", 1728), v.size)),
         ["data/nowhere is missing"]),
        ("int_keys.pt", int_keys, ["168 keys that are not tensor names (e.g. the int 0)"]),
        ("int64_weights.pt", int_weights, ["not floating point", "int64"]),
        ("int32_weights.pt", int32_weights, ["not floating point", "int32"]),
    ]
    assert_all_refused([{"path": _state_dict_file(tmp_path, name, tamper), "fragments": fragments,
                         "config": "tiny_32"} for name, tamper, fragments in cases])


def test_mixed_top_level_keys(tmp_path):
    views, records = own_storages(tiny_state_dict())
    mixed = write_torch_zip(tmp_path / "mixed.pt", torch_pickle({"ema": views, 3: "x", "conf": None}), records)
    model = load_model(mixed, config=TINY)  # a valid 'ema' is used whatever the other keys are
    assert model.report.loaded == len(views)
    no_state = write_torch_zip(tmp_path / "none.pt", torch_pickle({1: views["out.2.weight"], "a": 2}), records)
    with pytest.raises(CheckpointError, match=r"holds no PIDM state dict.*found \['1', 'a'\]"):
        load_model(no_state, config=TINY)


def test_legacy_format_storage_that_declares_another_size(tmp_path):
    state_dict = tiny_state_dict()
    path = tmp_path / "legacy.pt"
    torch.save({"ema": state_dict}, path, _use_new_zipfile_serialization=False)
    data = bytearray(path.read_bytes())
    # the first storage record: its int64 element count follows the key list; make it declare 10**12
    first = next(iter(state_dict.values()))
    marker = struct.pack("<q", first.numel()) + first.numpy().tobytes()[:16]
    at = bytes(data).index(marker)
    data[at:at + 8] = struct.pack("<q", 10**12)
    path.write_bytes(bytes(data))
    assert_refused(path, "but its tensors declare", config="tiny_32")


# ---------------------------------------------------------------------------------------------
# Pickles: declared sizes, nesting, hashing, cycles (the restricted unpickler checks them first)


def _p(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


HOSTILE_PICKLES = {
    # 200,000 nested lists: RecursionError in any recursive walk
    "deep_lists": (_p(b"]" * 200_000 + b"a" * 199_999), f"nested more than {MAX_NESTING} deep"),
    # a 300,000-deep tuple used as a dict key: hashing it overflows the C stack (a crash, not an error)
    "deep_tuple_key": (_p(b"}N" + b"\x85" * 300_000 + b"Ns"), f"nested more than {MAX_NESTING} deep"),
    # t = (t', t'), 60 times, as a key: hashing walks 2**60 tuples
    "hash_bomb": (_p(b"}N" + b"2\x86" * 60 + b"Ns"), "used as a dict key"),
    "set_bomb": (_p(b"c__builtin__\nset\n" + b"N" + b"2\x86" * 30 + b"\x85\x85R"), "set item"),
    "huge_string": (_p(b"X" + struct.pack("<I", 0xFFFFFFF0) + b"abc"), "declares more bytes than the pickle has"),
    "huge_bytes8": (b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"abc.", "declares more bytes than the pickle has"),
    "too_many_ops": (_p(b"N0" * (MAX_PICKLE_OPS // 2 + 1) + b"N"), f"more than {MAX_PICKLE_OPS} opcodes"),
    "cycle": (_p(b"]q\x002h\x00a"), "changed after it was used"),
    "extension": (_p(b"\x82\x01"), "EXT1 is not used by torch checkpoints"),
    "no_stop": (b"\x80\x02]" + b"N" * 10, "truncated (no STOP opcode)"),
    "memo_miss": (_p(b"h\x07"), "memo entry never stored"),
}


def test_hostile_pickles_are_refused_before_unpickling(tmp_path):
    cases = []
    for name, (data, fragment) in HOSTILE_PICKLES.items():
        with pytest.raises(pickle.UnpicklingError, match=re.escape(fragment)):
            check_pickle(data)
        path = write_torch_zip(tmp_path / f"{name}.pt", data)
        cases.append({"path": path, "fragments": [fragment], "config": "tiny_32"})
    # the legacy format's pickles are read straight from the file: the same checks apply
    legacy = tmp_path / "legacy_deep.pt"
    legacy.write_bytes(HOSTILE_PICKLES["deep_tuple_key"][0])
    cases.append({"path": legacy, "fragments": [f"nested more than {MAX_NESTING} deep"], "config": "tiny_32"})
    assert_all_refused(cases)


def test_official_like_pickle_passes_the_check():
    """The official last.pt's shape (model, ema, Adam state of 852 tensors): well within every bound."""
    sd = lambda: collections.OrderedDict((k, View(Storage(k, 1), (1,))) for k in OFFICIAL_SHAPES)  # noqa: E731
    optimizer = {"state": {i: {"step": View(Storage(f"s{i}", 1), ()), "exp_avg": View(Storage(f"a{i}", 1), (1,)),
                               "exp_avg_sq": View(Storage(f"q{i}", 1), (1,))} for i in range(852)},
                 "param_groups": [{"lr": 2e-5, "betas": (0.9, 0.999), "params": list(range(852))}]}
    data = torch_pickle({"model": sd(), "ema": sd(), "optimizer": optimizer, "scheduler": {"last_epoch": 3}})
    assert check_pickle(data) == len(data)


# ---------------------------------------------------------------------------------------------
# safetensors: configs (issue 14.4) and headers


def _safetensors(path: Path, header: dict, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _metadata(**config_changes) -> dict[str, str]:
    config = json.loads(TINY.to_json())
    config.update(config_changes)
    return {"pidm_format": "1", "config": json.dumps(config), "source_drop_prob": "0.1", "pose_drop_prob": "0.0",
            "name": "hostile"}


def test_huge_or_invalid_configs_are_refused_before_building(tmp_path):
    cases = [
        ({"num_res_blocks": 3000}, "num_res_blocks must be from 1 to 8, got 3000"),
        ({"model_channels": 0}, "model_channels must be from 1 to 1024, got 0"),
        ({"model_channels": -32}, "model_channels must be from 1 to 1024, got -32"),
        ({"num_heads": 0}, "num_heads must be from 1 to 1024, got 0"),
        ({"num_heads": 3}, "num_heads 3 must divide"),
        ({"num_res_blocks": 1.5}, "num_res_blocks must be an integer from 1 to 8, got 1.5"),
        ({"num_res_blocks": True}, "num_res_blocks must be an integer"),
        ({"image_size": "32"}, "image_size must be an integer"),
        ({"image_size": 10**9}, "image_size must be from 8 to 2048"),
        ({"embed_channels": 10**12}, "embed_channels must be from 1 to 8192"),
        ({"channel_mult": "banana"}, "channel_mult must be a list of integers"),
        ({"channel_mult": [1] * 40}, "channel_mult must have 1 to 8 entries"),
        ({"channel_mult": [1, 0]}, "each channel_mult entry must be from 1 to 16, got 0"),
        ({"channel_mult": [1, [2]]}, "each channel_mult entry must be an integer"),
        ({"attention_resolutions": [16, 16]}, "repeats a resolution"),
        ({"model_channels": 48}, "GroupNorm widths"),
        ({"dropout": 2}, "dropout must be a number in [0, 1)"),
        ({"learn_sigma": "yes"}, "learn_sigma must be true or false"),
        ({"prediction": 5}, "prediction must be one of"),
        ({"pose_channels": 10**6}, "pose_channels must be from 20 to 20"),
    ]
    files = [{"path": _safetensors(tmp_path / f"config_{i}.safetensors", {"__metadata__": _metadata(**change)}),
              "fragments": ["invalid network config", fragment]} for i, (change, fragment) in enumerate(cases)]
    nested = _metadata()
    nested["config"] = "[" * 40_000 + "]" * 40_000
    files.append({"path": _safetensors(tmp_path / "nested.safetensors", {"__metadata__": nested}),
                  "fragments": ["not valid JSON"]})
    fit = {**_metadata(), "fit": "banana"}
    files.append({"path": _safetensors(tmp_path / "fit.safetensors", {"__metadata__": fit}),
                  "fragments": ["fit = 'banana' is not one of ('pad', 'stretch')"]})
    assert Path(files[0]["path"]).stat().st_size < 600  # the 468-byte file
    assert_all_refused(files)


def test_a_large_valid_config_against_a_small_file_fails_fast(tmp_path):
    """Within every bound, the largest network (8 levels of 16384 channels, 8 blocks each) is built on
    the meta device (no memory) and compared with the file's one tensor: an error in seconds."""
    big = _metadata(image_size=2048, model_channels=1024, channel_mult=[16] * 8, num_res_blocks=8,
                    attention_resolutions=[16], embed_channels=8192)
    header = {"__metadata__": {**big, "resolution": "2048"},
              "out.2.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    path = _safetensors(tmp_path / "big.safetensors", header, bytes(4))
    message = assert_refused(path, "does not fit", "out.2.weight")
    assert "expected [6, 16384, 3, 3]" in message


def test_forged_safetensors_headers(tmp_path):
    state_dict = tiny_state_dict()
    info = ModelInfo("tiny", TINY, 0.1, 0.0)
    network = PIDMNetwork(TINY)
    network.load_state_dict(state_dict)
    good = save_model(tmp_path / "good.safetensors", network, info)
    header_len = int.from_bytes(good.read_bytes()[:8], "little")
    header = json.loads(good.read_bytes()[8:8 + header_len])
    data = good.read_bytes()[8 + header_len:]
    name = "out.2.weight"

    def forged(file_name: str, change) -> Path:
        copy = json.loads(json.dumps(header))
        change(copy)
        return _safetensors(tmp_path / file_name, copy, data)

    def as_dtype(dtype):
        def change(h):
            for key, entry in h.items():
                if key != "__metadata__":
                    entry["dtype"] = dtype
        return change

    cases = [
        (forged("i64.safetensors", as_dtype("I64")), ["has dtype I64", "floating point"]),
        (forged("i32.safetensors", as_dtype("I32")), ["has dtype I32", "floating point"]),
        (forged("huge_shape.safetensors", lambda h: h[name].update(shape=[200000, 200000])),
         ["needs 160000000000 bytes"]),
        (forged("outside.safetensors", lambda h: h[name].update(data_offsets=[len(data), len(data) + 6912])),
         ["not inside the file"]),
        (forged("negative.safetensors", lambda h: h[name].update(shape=[-6, 32, 3, 3])), ["invalid shape"]),
        (forged("overlap.safetensors", lambda h: h["out.2.bias"].update(
            data_offsets=[h[name]["data_offsets"][0], h[name]["data_offsets"][0] + 24])), ["overlap in the file"]),
        (forged("meta_types.safetensors", lambda h: h["__metadata__"].update(name=[1, 2])), ["__metadata__"]),
        (_nested_header(tmp_path / "nested_header.safetensors"), ["not valid JSON"]),
        (_huge_header(tmp_path / "huge_header.safetensors"), ["header declares 5242880 bytes"]),
    ]
    assert_all_refused([{"path": path, "fragments": fragments} for path, fragments in cases])


def _nested_header(path: Path) -> Path:
    raw = b"{" + b'"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


def _huge_header(path: Path) -> Path:
    """A header that declares 5 MiB (a sparse file of that size, so the size is not a lie)."""
    declared = 5 << 20
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", declared) + b'{"a":')
        f.truncate(8 + declared)
    return path


# ---------------------------------------------------------------------------------------------
# The converter (issue 14.5)


UNUSED_NUMEL = 1 << 20


def _official_with_unused(tmp_path: Path, name: str, unused: dict) -> Path:
    """tiny_32 weights in the official layout plus ``unused`` views of storage "u" (UNUSED_NUMEL floats)."""
    views, records = own_storages(tiny_state_dict())
    views.update(unused)
    records["u"] = bytes(4 * UNUSED_NUMEL)
    return write_torch_zip(tmp_path / name, torch_pickle({"ema": views, "conf": None}), records)


def test_converter_refuses_a_huge_declared_unused_tensor(tmp_path):
    stride_0 = _official_with_unused(tmp_path, "stride0.pt", {
        "input_blocks.1.0.cond_emb_layers.1.weight": View(Storage("u", UNUSED_NUMEL), (200000, 200000), (0, 0))})
    assert stride_0.stat().st_size < 6_000_000  # declares a 160 GB tensor
    result = subprocess.run([sys.executable, "-m", "pidm_core.convert", str(stride_0), str(tmp_path / "o.safetensors"),
                             "--config", "tiny_32"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "error:" in result.stderr and "overlapping view" in result.stderr
    assert not (tmp_path / "o.safetensors").exists()

    # every known unused name as a full view of one shared 1M-element storage: 13 M parameters against
    # the network's 0.33 M (the official file's unused tensors are a tenth of its network)
    network = PIDMNetwork(TINY)
    names = [f"{n}.cond_emb_layers.1.weight" for n, m in network.named_modules() if type(m).__name__ == "ResBlock"]
    assert len(names) * UNUSED_NUMEL > 5 * sum(p.numel() for p in network.parameters())
    shared = _official_with_unused(tmp_path, "shared.pt", {n: View(Storage("u", UNUSED_NUMEL), (1024, 1024))
                                                           for n in names})
    assert_all_refused([{"path": stride_0, "fragments": ["overlapping view"], "config": "tiny_32", "convert": True},
                        {"path": shared, "fragments": ["unused official tensors declare"], "config": "tiny_32",
                         "convert": True}])


def test_tensors_sharing_one_storage_still_convert(tmp_path):
    """Shared storages are legitimate (tied weights; the official-layout fixture test): the converter
    writes each tensor's own bytes (safetensors refuses shared memory)."""
    state_dict = tiny_state_dict()
    flat = torch.cat([t.flatten() for t in state_dict.values()])
    storage, views, offset = Storage("flat", flat.numel()), {}, 0
    for name, tensor in state_dict.items():
        views[name] = View(storage, tensor.shape, offset=offset)
        offset += tensor.numel()
    views["out.2.bias"] = View(storage, (6,), offset=0)  # also overlaps another tensor
    path = write_torch_zip(tmp_path / "flat.pt", torch_pickle({"ema": views}), {"flat": flat.numpy().tobytes()})
    from pidm_core.cli.convert import convert

    out = convert(path, tmp_path / "flat.safetensors", config="tiny_32", log=lambda *a: None)
    model = load_model(out)
    assert torch.equal(model.network.get_parameter("out.2.bias"), flat[:6])
    assert torch.equal(model.network.get_parameter("out.2.weight"), state_dict["out.2.weight"])
