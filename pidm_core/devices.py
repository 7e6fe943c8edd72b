"""Device and dtype choices: what ``dtype=auto`` gives on the CPU, and dtype names.

Reduced precision on the CPU: bf16 pays only where the CPU computes it (AVX512-BF16 or AMX on x86,
the BF16 extension on Arm). Elsewhere oneDNN emulates it through fp32 and it is slower: 2-4x slower
convolutions than fp32 measured on an AVX-512 Xeon without BF16.
"""

from __future__ import annotations

import functools
import time

import torch

BF16_PROBE_SPEEDUP = 1.2  # bf16 must beat fp32 by this much in the probe

DTYPES_BY_NAME = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
                  "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def parse_dtype(name: str) -> torch.dtype:
    """'fp32' / 'fp16' / 'bf16' (or the torch names) → torch dtype."""
    try:
        return DTYPES_BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose one of fp32, fp16, bf16") from None


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
