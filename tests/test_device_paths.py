"""Device paths proved on the CPU: the ``meta`` device stands in for the GPU.

:class:`DeviceAudit` is a TorchDispatchMode that sees every tensor op. It records any float64 tensor
created on, or moved to, the compute device (MPS has no float64) and any op whose tensor operands
sit on different devices (CUDA and MPS refuse those). Meta tensors have shapes but no values, so the
audit answers the few reads the code makes (``.item()``, copies back to the CPU) with zeros: the
whole sampling, guidance, img2img and training loops then run "on the device" here.

The ComfyUI side uses the real host's ``ModelPatcher`` and ``load_models_gpu`` with ``meta`` as the
load device, a faked free-memory reading and each VRAM state, and then samples under the audit.

Tests marked ``gpu`` run the same paths on a real CUDA device (``scripts/gpu_check.sh``).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import types
import warnings
import weakref
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import pidm_core.training as train_module
from pidm_core import checkpoint, diffusion, memory, pipeline
from pidm_core.config import get_config
from pidm_core.network import PIDMNetwork
from pidm_core.samplers import SAMPLERS, SamplingSettings

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("PIDM_CACHE", Path.home() / ".cache" / "comfyui-pidm"))
HOST = Path(os.environ.get("PIDM_COMFYUI", CACHE / "comfyui-0.3.75"))
DEVICE = torch.device("meta")
aten = torch.ops.aten
# ops whose whole point is to move data between devices
_TRANSFERS = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default,
              aten._copy_from_and_resize.default, aten.lift_fresh.default}

# scripts/gpu_check.sh sets PIDM_REQUIRE_GPU=1: there a missing GPU fails these tests instead of skipping them
cuda = pytest.mark.skipif(not torch.cuda.is_available() and not os.environ.get("PIDM_REQUIRE_GPU"),
                          reason="needs a CUDA device (scripts/gpu_check.sh)")


class DeviceAudit(TorchDispatchMode):
    """Records float64 tensors on ``device`` and ops that mix devices; fakes reads of meta tensors."""

    def __init__(self, device: torch.device = DEVICE):
        super().__init__()
        self.device = torch.device(device)
        self.float64: list[str] = []
        self.mixed: list[tuple[str, list[str]]] = []
        self.ops_by_device: dict[str, dict[str, int]] = {}

    def _on_device(self, tensor: torch.Tensor) -> bool:
        return tensor.device.type == self.device.type

    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        devices = sorted({str(t.device) for t in tensors if t.dim() > 0})  # 0-dim CPU scalars mix legally
        if len(devices) > 1 and func not in _TRANSFERS:
            self.mixed.append((str(func), devices))
        if tensors:
            counts = self.ops_by_device.setdefault(str(tensors[0].device.type), {})
            counts[str(func)] = counts.get(str(func), 0) + 1
        fake = self._fake_read(func, tensors, kwargs)
        if fake is not None:
            return fake
        out = func(*args, **kwargs)
        for t in [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)] + tensors:
            if self._on_device(t) and t.dtype in (torch.float64, torch.complex128):
                self.float64.append(str(func))
                break
        return out

    def _fake_read(self, func, tensors, kwargs):
        if self.device.type != "meta" or not tensors or tensors[0].device.type != "meta":
            return None
        source = tensors[0]
        if func is aten._local_scalar_dense.default:
            return True if source.dtype == torch.bool else 0
        if func is aten._to_copy.default and torch.device(kwargs.get("device") or "meta").type == "cpu":
            return torch.zeros(source.shape, dtype=kwargs.get("dtype") or source.dtype)
        return None

    def convolutions_on(self, device_type: str) -> int:
        return sum(n for op, n in self.ops_by_device.get(device_type, {}).items() if "convolution" in op)

    def assert_clean(self) -> None:
        assert not self.float64, f"float64 tensors on {self.device}: {sorted(set(self.float64))[:5]}"
        assert not self.mixed, f"ops mixing devices: {self.mixed[:5]}"
        assert self.convolutions_on(self.device.type) > 0, "the network never ran on the compute device"


def _tiny_network(device=DEVICE, dtype=torch.float32) -> PIDMNetwork:
    torch.manual_seed(0)
    return PIDMNetwork(get_config("tiny_32")).eval().to(device=device, dtype=dtype)


def _old_at(values, t, like):
    """The variant issue 19 found: the float64 table moved to the device, then gathered."""
    out = values.to(t.device)[t.long()].float()
    return out.view(-1, *([1] * (like.dim() - 1)))


# ---------------------------------------------------------------------------------------------
# Sampling, guidance, img2img, appearance masks


def _sample(network, device, *, sampler="ddim", guidance_mode="official", appearance_scale=2.0, img2img=False,
            masked=False, batch=2):
    s = network.config.image_size
    dtype = network.out[2].weight.dtype
    source = torch.rand(1, 3, s, s).mul(2).sub(1).to(device)
    pose = torch.rand(batch, 20, s, s).to(device)
    texture, null = pipeline.encode_texture_pair(network, source.expand(batch, -1, -1, -1))
    inputs = {}
    if img2img:
        inputs.update(init=torch.rand(batch, 3, s, s).to(device))
    if masked:
        inputs.update(mask=torch.ones(batch, 1, s, s).to(device), reference=torch.zeros(batch, 3, s, s).to(device))
    settings = SamplingSettings(steps=3, sampler=sampler, guidance=guidance_mode, appearance_scale=appearance_scale,
                                denoise=0.6 if img2img else 1.0)
    out = pipeline.sample_tensors(network, texture, null, pose.to(dtype), settings, seeds=[1, 2][:batch],
                                  callback=lambda info: int(info["t"]), **inputs)
    assert out.shape == (batch, 3, s, s) and out.device.type == torch.device(device).type
    return out


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("guidance_mode,appearance_scale", [("official", 2.0), ("official", 1.0), ("disentangled", 2.0)])
def test_sampling_keeps_float64_off_the_device_and_never_mixes_devices(sampler, guidance_mode, appearance_scale):
    network = _tiny_network()
    with DeviceAudit() as audit:
        _sample(network, DEVICE, sampler=sampler, guidance_mode=guidance_mode, appearance_scale=appearance_scale)
    audit.assert_clean()


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_img2img_and_appearance_masks_on_the_device(sampler):
    network = _tiny_network(dtype=torch.float16)
    with DeviceAudit() as audit:
        _sample(network, DEVICE, sampler=sampler, img2img=True, masked=True)
    audit.assert_clean()


def test_the_audit_catches_a_float64_table_moved_to_the_device(monkeypatch):
    # the variant before the fix: every sampler's first step moved float64 ᾱ to the device
    monkeypatch.setattr(diffusion, "_at", _old_at)
    network = _tiny_network()
    with DeviceAudit() as audit:
        _sample(network, DEVICE, sampler="ddpm")
    assert audit.float64, "the audit missed a float64 table on the device"
    with pytest.raises(AssertionError, match="float64"):
        audit.assert_clean()


def test_schedule_lookups_are_float32_on_the_device():
    t = torch.tensor([0, 999], device=DEVICE)
    like = torch.empty(2, 3, 4, 4, device=DEVICE)
    with DeviceAudit() as audit:
        a = diffusion.alpha_bar(diffusion.linear_schedule(), t, like)
    assert a.dtype == torch.float32 and a.device == DEVICE and a.shape == (2, 1, 1, 1)
    assert not audit.float64
    # and casting before the gather changed no value
    cpu_t = torch.arange(-1, 1000)
    schedule = diffusion.linear_schedule()
    assert torch.equal(diffusion.alpha_bar(schedule, cpu_t, torch.empty(1001, 1)).flatten(),
                       _old_at(torch.cat([schedule.betas.new_ones(1), schedule.alphas_cumprod]), cpu_t + 1,
                               torch.empty(1001, 1)).flatten())


# ---------------------------------------------------------------------------------------------
# Training: resume, EMA, the sample grid


def _train_options(out: Path, **changes) -> train_module.TrainOptions:
    base = dict(config="tiny_32", data="synthetic", out=str(out), steps=1, batch_size=2, lr=1e-3, warmup=1,
                ema_start=1, ema_decay=0.9, save_every=1, sample_every=0, workers=0, threads=1)
    return train_module.TrainOptions(**{**base, **changes})


@pytest.fixture
def cpu_training_state(tmp_path):
    """A run of one step on the CPU: its last.pt holds the EMA on the CPU, as any resumed run loads it."""
    train_module.train(_train_options(tmp_path), log=lambda *_: None)
    return tmp_path


def _resume_on_device(out: Path, monkeypatch) -> DeviceAudit:
    monkeypatch.setattr(train_module, "_device", lambda local_rank: DEVICE)
    full_grid = pipeline.generate_from_tensors  # the sample grid's 25 steps, cut to 3 (the audit is slow)
    monkeypatch.setattr(pipeline, "generate_from_tensors", lambda network, source, pose, settings, **k: full_grid(
        network, source, pose, dataclasses.replace(settings, steps=3), **k))
    with warnings.catch_warnings(), DeviceAudit() as audit:
        warnings.simplefilter("ignore")  # copying the CPU state into meta parameters warns per tensor
        result = train_module.train(_train_options(out, steps=2, sample_every=2), log=lambda *_: None)
    assert result["step"] == 2
    return audit


def test_resumed_training_runs_on_the_device_with_its_ema_and_sample_grid(cpu_training_state, monkeypatch):
    audit = _resume_on_device(cpu_training_state, monkeypatch)
    audit.assert_clean()
    # the sample grid (ddpm, 25 steps) ran on the training device too, not on the CPU
    assert audit.convolutions_on("cpu") == 0
    assert (cpu_training_state / "samples_0000002.png").exists()


def test_the_audit_catches_an_ema_left_on_the_cpu(cpu_training_state, monkeypatch):
    monkeypatch.setattr(train_module, "ema_on_device", lambda ema, network: ema)  # the variant before the fix
    with pytest.raises(RuntimeError, match="device"):
        _resume_on_device(cpu_training_state, monkeypatch)


def test_ema_on_device_follows_the_network():
    network = _tiny_network()
    ema = {k: torch.zeros(v.shape, dtype=torch.float64) for k, v in _tiny_network("cpu").state_dict().items()}
    moved = train_module.ema_on_device(ema, network)
    assert all(v.device == DEVICE and v.dtype == torch.float32 for v in moved.values())
    with DeviceAudit() as audit:
        train_module.update_ema(moved, network, 0.9)
    assert not audit.mixed and not audit.float64


# ---------------------------------------------------------------------------------------------
# The activation-memory estimate ComfyUI is told


class LiveBytes(TorchDispatchMode):
    """Peak bytes of the tensor storages created inside the mode and still referenced (CPU)."""

    def __init__(self):
        super().__init__()
        self.refs, self.sizes, self.live, self.peak = {}, {}, 0, 0

    def _release(self, key):
        self.refs[key] -= 1
        if not self.refs[key]:
            del self.refs[key]
            self.live -= self.sizes.pop(key)

    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes():
                key = t.untyped_storage().data_ptr()
                if key not in self.refs:
                    self.refs[key], self.sizes[key] = 0, t.untyped_storage().nbytes()
                    self.live += self.sizes[key]
                    self.peak = max(self.peak, self.live)
                self.refs[key] += 1
                weakref.finalize(t, self._release, key)
        return out


@pytest.mark.parametrize("config_name,batch,guidance_mode,dtype", [
    ("tiny_32", 1, "official", torch.float32), ("tiny_32", 4, "official", torch.bfloat16),
    ("synthetic_64", 1, "official", torch.float32), ("synthetic_64", 3, "disentangled", torch.bfloat16),
])
def test_memory_estimate_bounds_the_measured_peak(config_name, batch, guidance_mode, dtype):
    config = get_config(config_name)
    s = config.image_size
    torch.manual_seed(0)
    network = PIDMNetwork(config).eval().to(dtype)
    source = torch.rand(1, 3, s, s).mul(2).sub(1).expand(batch, -1, -1, -1)
    pose = torch.rand(batch, 20, s, s)
    with torch.no_grad(), LiveBytes() as measured:
        pipeline.generate_from_tensors(network, source, pose, SamplingSettings(steps=2, sampler="ddim",
                                                                               guidance=guidance_mode))
    assert measured.live == 0  # every storage was accounted for and released
    estimate = memory.sampling_memory_bytes(config, batch, memory.guidance_rows(guidance_mode, 2.0), dtype)
    assert measured.peak <= estimate <= 2 * measured.peak, (estimate, measured.peak)


def test_memory_estimate_scales_with_the_request():
    config = get_config("deepfashion_256")
    one = memory.sampling_memory_bytes(config, 1, 2, torch.bfloat16)
    # measured on CPU: 261 MiB for one pose at 256 px in bf16 (issue 19 estimated 0.25-0.3 GB)
    assert 261 * 2**20 <= one <= 2 * 261 * 2**20
    assert memory.sampling_memory_bytes(config, 32, 2, torch.bfloat16) > 30 * one * 0.9
    assert memory.sampling_memory_bytes(config, 1, 3, torch.bfloat16) > one > memory.sampling_memory_bytes(config, 1, 1, torch.bfloat16)
    assert memory.sampling_memory_bytes(config, 1, 2, torch.float32) > 1.5 * one
    assert [memory.guidance_rows(*a) for a in [("official", 2.0), ("official", 1.0), ("disentangled", 1.0)]] == [2, 1, 3]
    with pytest.raises(ValueError, match="batch"):
        memory.sampling_memory_bytes(config, 0, 2, torch.bfloat16)


# ---------------------------------------------------------------------------------------------
# ComfyUI: the real ModelPatcher and load_models_gpu, with meta as the GPU


@pytest.fixture(scope="module")
def host():
    """The real ComfyUI 0.3.75 model management (CPU mode) and this pack's node modules."""
    if not (HOST / "comfy" / "model_management.py").exists():
        pytest.skip(f"no ComfyUI host at {HOST}: run scripts/setup_env.sh")
    sys.path.insert(0, str(HOST))
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    mm = importlib.import_module("comfy.model_management")
    if "pidm_pack" not in sys.modules:
        package = types.ModuleType("pidm_pack")
        package.__path__ = [str(ROOT)]
        sys.modules["pidm_pack"] = package
    nodes_model = importlib.import_module("pidm_pack.nodes.model")
    return types.SimpleNamespace(mm=mm, patcher=importlib.import_module("comfy.model_patcher"), nodes_model=nodes_model,
                                 checkpoint=importlib.import_module("pidm_pack.pidm_core.checkpoint"))


@pytest.fixture
def tiny_file(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from tests.tiny_model import save_tiny_model

    return save_tiny_model(tmp_path / "tiny.safetensors")


def _loaded(host, path, vram_state, free_bytes, monkeypatch, dtype=None):
    mm = host.mm
    monkeypatch.setattr(mm, "current_loaded_models", [])
    monkeypatch.setattr(mm, "vram_state", vram_state)
    monkeypatch.setattr(mm, "get_free_memory", lambda dev=None, torch_free_too=False:
                        (free_bytes(), free_bytes()) if torch_free_too else free_bytes())
    model = host.checkpoint.load_model(path, device="cpu", dtype=dtype)
    patcher = host.patcher.ModelPatcher(model.network, load_device=DEVICE, offload_device=torch.device("cpu"))
    return host.nodes_model.LoadedPIDM(model, patcher)


def _free_for_half_the_model(host, path):
    """Free memory that makes load_models_gpu choose a partial load: half the model above the minimum."""
    network = host.checkpoint.load_model(path).network
    weights = sum(t.numel() * t.element_size() for t in network.state_dict().values())
    return lambda: int(host.mm.minimum_inference_memory() + weights // 2)


@pytest.mark.parametrize("state", ["NORMAL_VRAM", "LOW_VRAM", "NO_VRAM"])
def test_a_small_card_still_gets_the_whole_model(host, tiny_file, monkeypatch, state):
    loaded = _loaded(host, tiny_file, host.mm.VRAMState[state], _free_for_half_the_model(host, tiny_file), monkeypatch)
    model = loaded.load(memory.sampling_memory_bytes(loaded.model.config, 2, 2, loaded.model.dtype))
    assert host.nodes_model.off_device(loaded.patcher) == []
    assert loaded.patcher.loaded_size() == loaded.patcher.model_size()
    with DeviceAudit() as audit:
        _sample(model.network, DEVICE)
    audit.assert_clean()


def test_the_node_flow_on_the_device_images_in_images_out(host, tiny_file, monkeypatch):
    """Load, Encode Source Texture and PIDM Sampler's library calls, img2img with a mask, on the device."""
    import numpy as np

    from pidm_core.pose.keypoints import Pose

    def standing_pose(dx=0.0):  # a stick figure on the 24×32 photo: head, neck, shoulders, hips, knees
        joints = {0: (12, 4), 1: (12, 8), 2: (8, 8), 5: (16, 8), 8: (10, 18), 11: (14, 18), 9: (10, 25), 12: (14, 25)}
        keypoints = np.zeros((18, 3), np.float32)
        for index, (x, y) in joints.items():
            keypoints[index] = (x + dx, y, 1.0)
        return Pose(keypoints, 24, 32)

    loaded = _loaded(host, tiny_file, host.mm.VRAMState.NO_VRAM, _free_for_half_the_model(host, tiny_file), monkeypatch)
    model = loaded.load(memory.sampling_memory_bytes(loaded.model.config, 2, 2, loaded.model.dtype))
    photo = torch.rand(1, 32, 24, 3)
    with DeviceAudit() as audit:
        texture = pipeline.encode_source(model, photo, mask=torch.ones(1, 32, 24))
        images = pipeline.sample(model, texture, [standing_pose(), standing_pose(dx=2)],
                                 SamplingSettings(steps=3, sampler="ddpm", denoise=0.7), init_image=photo,
                                 appearance_mask=torch.ones(1, 32, 24))
    audit.assert_clean()
    assert images.shape == (2, 32, 24, 3) and images.device.type == "meta"


def test_the_host_alone_splits_plain_modules_on_a_small_card(host, tiny_file, monkeypatch):
    """What the fix works around: without force_full_load the host moves only some plain modules,
    and a later load with ample memory returns early instead of finishing the move."""
    free = {"bytes": _free_for_half_the_model(host, tiny_file)()}
    loaded = _loaded(host, tiny_file, host.mm.VRAMState.NORMAL_VRAM, lambda: free["bytes"], monkeypatch)
    host.mm.load_models_gpu([loaded.patcher])
    split = host.nodes_model.off_device(loaded.patcher)
    assert 0 < len(split) < len(loaded.model.network.state_dict())
    free["bytes"] = 64 * 2**30
    host.mm.load_models_gpu([loaded.patcher])
    assert host.nodes_model.off_device(loaded.patcher) == split
    with pytest.raises(RuntimeError, match="device"), DeviceAudit():
        _sample(loaded.model.network, DEVICE)
    loaded.load()  # ours finishes the move
    assert host.nodes_model.off_device(loaded.patcher) == []


@pytest.mark.parametrize("state", ["NORMAL_VRAM", "NO_VRAM"])
def test_loading_again_keeps_the_whole_model_on_the_device(host, tiny_file, monkeypatch, state):
    # (ComfyUI's partial unload to the CPU cannot be played here: meta tensors hold no data to move back)
    loaded = _loaded(host, tiny_file, host.mm.VRAMState[state], _free_for_half_the_model(host, tiny_file), monkeypatch)
    for _ in range(2):
        loaded.load()
        assert host.nodes_model.off_device(loaded.patcher) == []
    assert len(host.mm.current_loaded_models) == 1


def test_load_tells_comfyui_the_activation_memory(host, tiny_file, monkeypatch):
    loaded = _loaded(host, tiny_file, host.mm.VRAMState.NORMAL_VRAM, lambda: 64 * 2**30, monkeypatch)
    calls = []
    real = host.mm.load_models_gpu
    monkeypatch.setattr(host.mm, "load_models_gpu", lambda models, **kw: (calls.append(kw), real(models, **kw))[1])
    loaded.load(123 * 2**20)
    assert calls == [{"memory_required": 123 * 2**20, "force_full_load": True}]


_V1_SCRIPT = r"""
import json, sys, types, importlib
host, root, model_file = sys.argv[1:4]
sys.path.insert(0, host)
import comfy.cli_args
comfy.cli_args.args.cpu = True
import comfy.model_management as mm, comfy.model_patcher
package = types.ModuleType("pidm_pack"); package.__path__ = [root]; sys.modules["pidm_pack"] = package
nodes_model = importlib.import_module("pidm_pack.nodes.model")
checkpoint = importlib.import_module("pidm_pack.pidm_core.checkpoint")
import torch
results = {}
for state in ("NORMAL_VRAM", "LOW_VRAM", "NO_VRAM"):
    mm.current_loaded_models.clear()
    mm.vram_state = mm.VRAMState[state]
    model = checkpoint.load_model(model_file)
    size = sum(t.numel() * t.element_size() for t in model.network.state_dict().values())
    free = int(mm.minimum_inference_memory() + size // 2)
    mm.get_free_memory = lambda dev=None, torch_free_too=False: (free, free) if torch_free_too else free
    patcher = comfy.model_patcher.ModelPatcher(model.network, load_device=torch.device("meta"),
                                               offload_device=torch.device("cpu"))
    nodes_model.LoadedPIDM(model, patcher).load(2**20)
    results[state] = len(nodes_model.off_device(patcher))
print("RESULT " + json.dumps(results))
"""


def test_the_v1_host_loads_the_whole_model_too(tiny_file):
    """The March-2024 host (V1 nodes) has no force_full_load: the same call must work there."""
    import json
    import subprocess

    v1 = Path(os.environ.get("PIDM_COMFYUI_V1", CACHE / "comfyui-v1"))
    if not (v1 / "comfy" / "model_management.py").exists():
        pytest.skip(f"no V1 ComfyUI host at {v1}: run scripts/setup_env.sh")
    done = subprocess.run([sys.executable, "-c", _V1_SCRIPT, str(v1), str(ROOT), str(tiny_file)],
                          capture_output=True, text=True, timeout=300)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert done.returncode == 0 and line, done.stderr[-3000:]
    assert json.loads(line[len("RESULT "):]) == {"NORMAL_VRAM": 0, "LOW_VRAM": 0, "NO_VRAM": 0}


@pytest.mark.parametrize("device,dtype,expect_nhwc", [("cpu", "fp16", True), ("meta", "fp16", False),
                                                      ("meta", "bf16", False), ("cpu", "fp32", False)])
def test_channels_last_only_where_it_was_measured_to_pay(host, monkeypatch, device, dtype, expect_nhwc):
    node = host.nodes_model
    monkeypatch.setattr(host.mm, "get_torch_device", lambda: torch.device(device))
    monkeypatch.setattr(host.mm, "unet_offload_device", lambda: torch.device("cpu"))
    (loaded,) = node.PIDMLoadModel.execute(node.EMBEDDED, dtype).result
    convs = [m.weight for m in loaded.model.network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) == expect_nhwc for w in convs if w.shape[-1] > 1)


def test_the_loader_defaults_to_channels_last_on_the_cpu_only(tiny_file, monkeypatch):
    def nhwc(model):
        convs = [m.weight for m in model.network.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
        return {w.is_contiguous(memory_format=torch.channels_last) for w in convs}

    assert nhwc(checkpoint.load_model(tiny_file, dtype=torch.float16)) == {True}
    real_open = checkpoint.load.open_checkpoint  # safetensors cannot map a file to meta: read on the CPU, then move
    monkeypatch.setattr(checkpoint.load, "open_checkpoint",
                        lambda path, device, config: real_open(path, torch.device("cpu"), config))
    assert nhwc(checkpoint.load_model(tiny_file, device=DEVICE, dtype=torch.float16)) == {False}
    assert nhwc(checkpoint.load_model(tiny_file, device=DEVICE, dtype=torch.float16, channels_last=True)) == {True}


# ---------------------------------------------------------------------------------------------
# On a real GPU (scripts/gpu_check.sh)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_gpu_sampling_has_no_float64_and_matches_the_cpu(sampler):
    from benchmarks.bench_sampler import exact_fp32

    with exact_fp32():
        cpu = _sample(_tiny_network("cpu"), "cpu", sampler=sampler, guidance_mode="disentangled")
        with DeviceAudit(torch.device("cuda")) as audit:
            gpu = _sample(_tiny_network("cuda"), "cuda", sampler=sampler, guidance_mode="disentangled")
    audit.assert_clean()
    assert (gpu.cpu() - cpu).abs().max() < 1e-3


@pytest.mark.gpu
@cuda
def test_gpu_loads_keep_conv_weights_nchw_unless_asked(tiny_file):
    def nhwc(model):
        convs = [m.weight for m in model.network.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
        return {w.is_contiguous(memory_format=torch.channels_last) for w in convs}

    assert nhwc(checkpoint.load_model(tiny_file, device="cpu", dtype=torch.float16)) == {True}
    assert nhwc(checkpoint.load_model(tiny_file, device="cuda", dtype=torch.float16)) == {False}
    assert nhwc(checkpoint.load_model(tiny_file, device="cuda", dtype=torch.float16, channels_last=True)) == {True}


@pytest.mark.gpu
@cuda
def test_gpu_resumed_training(cpu_training_state, monkeypatch):
    monkeypatch.setattr(train_module, "_device", lambda local_rank: torch.device("cuda"))
    with DeviceAudit(torch.device("cuda")) as audit:
        train_module.train(_train_options(cpu_training_state, steps=2, sample_every=2), log=lambda *_: None)
    audit.assert_clean()


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("dtype,batch", [(torch.float16, 1), (torch.float16, 4), (torch.bfloat16, 2)])
def test_gpu_memory_estimate_bounds_the_allocated_peak(dtype, batch):
    config = get_config("deepfashion_256")
    network = PIDMNetwork(config).eval().to(device="cuda", dtype=dtype)
    source = torch.rand(1, 3, 256, 256, device="cuda").expand(batch, -1, -1, -1)
    pose = torch.rand(batch, 20, 256, 256, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    pipeline.generate_from_tensors(network, source, pose, SamplingSettings(steps=2, sampler="ddim"))
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    estimate = memory.sampling_memory_bytes(config, batch, 2, dtype)
    print(f"memory estimate {estimate / 2**20:.0f} MiB, measured peak {peak / 2**20:.0f} MiB ({dtype}, batch {batch})")
    assert peak <= estimate


def test_exact_fp32_switches_off_both_tf32_flags_and_restores_them(monkeypatch):
    from benchmarks import bench_sampler

    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    seen = []
    monkeypatch.setattr(bench_sampler, "_main", lambda argv=None: seen.append(
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)))
    try:
        # cuDNN's default on Ampere+ (TF32 convolutions), and a matmul flag someone switched on
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        bench_sampler.main([])
        assert seen == [(False, False)]  # the whole benchmark runs with exact fp32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
