"""What every benchmark script shares: the run header, devices and timing, random-weight networks,
fixed inputs, matmul peaks, memory readings and markdown tables.

Only measured numbers are printed as measurements; anything derived is labelled where it is printed.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from pidm_core import checkpoint
from pidm_core.config import PIDMConfig, get_config
from pidm_core.network import PIDMNetwork
from pidm_core.pose.keypoints import NUM_JOINTS
from pidm_core.pose.render import render_pose_map

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


# ---------------------------------------------------------------------------------------------
# Devices, threads, header


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` → a torch device; a missing GPU is an error, not a fallback."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device {name}: choose cpu, cuda or cuda:N")
    return device


def default_half(device: torch.device) -> torch.dtype:
    """The reduced precision we ship per device: bf16 on CPU (no fast fp16 there), fp16 on GPU."""
    return torch.bfloat16 if device.type == "cpu" else torch.float16


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.1f} GiB), CUDA {torch.version.cuda}"
    model = platform.processor() or "CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores usable"


def command_line() -> str:
    return shlex.join(["python", *sys.argv])


def print_header(title: str, device: torch.device) -> None:
    """Date, versions, device and threads, and the exact command, as a block the README can keep."""
    print(f"# {title}\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- torch {torch.__version__}, python {platform.python_version()}, {platform.platform()}")
    print(f"- device: {device} — {device_description(device)}")
    print(f"- torch threads: {torch.get_num_threads()} (inter-op {torch.get_num_interop_threads()})")
    print(f"- command: `{command_line()}`")
    try:
        load = os.getloadavg()
        print(f"- load average at start: {load[0]:.2f} (other work on the machine slows every row alike)")
    except OSError:
        pass
    print()


def finished_prompt(call: Callable[[str], dict], server, prompt: str, poll: float = 0.25) -> dict:
    """The ``/history`` entry of ``prompt`` once ComfyUI completed it (``call(path)`` gets a JSON path of the
    server); RuntimeError with the server's log when the server stopped or the prompt failed."""
    while True:
        history = call(f"/history/{prompt}").get(prompt)
        if history and history.get("status", {}).get("completed") is not None:
            break
        if not server.alive():
            raise RuntimeError(f"the server stopped\n{server.log_tail()}")
        time.sleep(poll)
    if not history["status"]["completed"]:
        raise RuntimeError(f"the prompt failed: {json.dumps(history['status'])[:3000]}\n{server.log_tail()}")
    return history


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """Seconds one call of ``fn`` takes (device work included) and its result."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def median_time(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        timed(fn, device)
    return statistics.median(timed(fn, device)[0] for _ in range(max(1, repeats)))


# ---------------------------------------------------------------------------------------------
# Networks with random weights


def randomise_untrained(network: nn.Module, seed: int = 0) -> nn.Module:
    """Give the zero-initialised layers (residual out-convs, attention output projections, the
    final conv) their default init back, and GroupNorm affine parameters random values
    (1 + 0.2·N, 0.2·N), so that every path changes the output — as the official-code fixture does
    (tests/fixtures/official_tiny). A freshly built PIDM ignores its texture encoder otherwise."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in network.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)) and not module.weight.any():
                module.reset_parameters()
            elif isinstance(module, nn.GroupNorm) and module.affine:
                module.weight.copy_(1 + 0.2 * torch.randn_like(module.weight))
                module.bias.copy_(0.2 * torch.randn_like(module.bias))
    return network


def random_network(config: PIDMConfig | str, seed: int = 0, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> PIDMNetwork:
    """A PIDM network of ``config`` with random weights on every path, in eval mode."""
    config = get_config(config) if isinstance(config, str) else config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = PIDMNetwork(config)
    randomise_untrained(network, seed + 1)
    return network.to(device=device, dtype=dtype).eval()


def converted(network: PIDMNetwork, dtype: torch.dtype | None = None, channels_last: bool = False) -> PIDMNetwork:
    """A copy of ``network`` in another dtype and/or with channels-last conv weights."""
    out = copy.deepcopy(network)
    if dtype is not None:
        out = out.to(dtype)
    if channels_last:
        out = out.to(memory_format=torch.channels_last)
    return out.eval()


def embedded_or_random(device: torch.device, seed: int = 0) -> tuple[PIDMNetwork, str]:
    """The embedded synthetic_64 model in fp32, or random synthetic_64 weights (with a printed note)
    when the embedded file does not exist yet."""
    try:
        model = checkpoint.load_model(checkpoint.EMBEDDED_NAME, device=device, dtype=torch.float32)
        return model.network, f"embedded model {checkpoint.EMBEDDED_PATH.name} ({model.info.name})"
    except checkpoint.CheckpointNotFoundError:
        print(f"> note: {checkpoint.EMBEDDED_PATH} does not exist yet; the embedded-model rows below use "
              "RANDOM synthetic_64 weights instead (rerun once the model is trained).\n")
        return random_network("synthetic_64", seed, device), "synthetic_64 with RANDOM weights (embedded model missing)"


def parameter_count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def write_random_checkpoint(path: Path, network: PIDMNetwork, dtype: torch.dtype,
                            extra_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Save ``network`` (plus, optionally, the official file's unused tensors) as a PIDM safetensors."""
    info = checkpoint.ModelInfo(name=f"benchmark_random_{DTYPE_NAMES[dtype]}", config=network.config,
                                source_drop_prob=0.1, pose_drop_prob=0.0)
    state = dict(network.state_dict())
    state.update(extra_tensors or {})
    return checkpoint.save_state_dict(path, state, info, dtype)


# ---------------------------------------------------------------------------------------------
# Inputs

# A person standing, arms slightly out, COCO-18 order, as fractions of the canvas (x, y).
_STANDING = (
    (0.50, 0.12), (0.50, 0.22), (0.40, 0.22), (0.36, 0.36), (0.34, 0.50), (0.60, 0.22), (0.64, 0.36),
    (0.66, 0.50), (0.44, 0.50), (0.44, 0.70), (0.44, 0.90), (0.56, 0.50), (0.56, 0.70), (0.56, 0.90),
    (0.48, 0.10), (0.52, 0.10), (0.46, 0.11), (0.54, 0.11),
)
assert len(_STANDING) == NUM_JOINTS


def standing_pose_map(size: int, shift_px: float = 0.0) -> torch.Tensor:
    """Pose map [20, S, S] in [0, 1] of a standing person, moved right by ``shift_px``."""
    keypoints = np.array([(x * size + shift_px, y * size, 1.0) for x, y in _STANDING], dtype=np.float32)
    return torch.from_numpy(render_pose_map(keypoints, size, size))


def smooth_source(size: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A smooth random image batch [B, 3, S, S] in [-1, 1] (low-frequency noise, image-like)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch, 3, max(2, size // 8), max(2, size // 8), generator=g)
    return torch.tanh(torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False))


def pose_batch(size: int, batch: int) -> torch.Tensor:
    """``batch`` different standing-pose maps [B, 20, S, S] (shifted sideways)."""
    return torch.stack([standing_pose_map(size, shift_px=(i - batch // 2) * size / 32) for i in range(batch)])


def step_inputs(size: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t [B, 3, S, S] ~ N(0, 1) and t [B] = 500 for timing a single step."""
    g = torch.Generator().manual_seed(seed + 7)
    return torch.randn(batch, 3, size, size, generator=g), torch.full((batch,), 500, dtype=torch.long)


# ---------------------------------------------------------------------------------------------
# Peaks and FLOPs


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 5) -> float:
    """Best GFLOP/s of a size³ matmul (2·size³ FLOPs) in ``dtype``: this machine's practical peak."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=g).to(device=device, dtype=dtype)
    timed(lambda: a @ b, device)  # warm-up
    best = min(timed(lambda: a @ b, device)[0] for _ in range(max(1, repeats)))
    return 2 * size**3 / best / 1e9


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as torch's FlopCounterMode counts them (convolutions and matrix
    products; normalisations and element-wise work are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


# ---------------------------------------------------------------------------------------------
# Memory


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this process image. Not ru_maxrss:
    after fork + exec that still carries the parent's peak (the kernel copies it over at exec), so a
    worker started by a large parent would report at least the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def rss_split_mb() -> tuple[float, float]:
    """Current (anonymous, file-backed) resident memory in MiB: private allocations vs pages of
    shared libraries and memory-mapped files."""
    values = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssFile:")):
                    key, amount = line.split(":")
                    values[key] = int(amount.split()[0]) / 1024
    except OSError:
        pass
    return values.get("RssAnon", float("nan")), values.get("RssFile", float("nan"))


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


# ---------------------------------------------------------------------------------------------
# Output


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def fmt_seconds(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def fmt_float(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def fmt_sci(value: float) -> str:
    return "n/a" if value != value else f"{value:.1e}"
