"""dtype=auto on the CPU: bf16 only where the CPU computes it (instructions present and a probe that
confirms it is faster), fp32 elsewhere."""

from __future__ import annotations

import pytest
import torch

from pidm_core import checkpoint, devices


@pytest.fixture(autouse=True)
def fresh_choice():
    devices.cpu_prefers_bf16.cache_clear()
    yield
    devices.cpu_prefers_bf16.cache_clear()


def test_no_bf16_instructions_means_fp32_without_a_probe(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16_instructions", lambda: False)
    monkeypatch.setattr(devices, "_convolution_seconds", lambda dtype: pytest.fail("probed without instructions"))
    assert devices.auto_dtype_cpu() == torch.float32


@pytest.mark.parametrize("fp32_s, bf16_s, expected", [(3.0, 1.0, torch.bfloat16), (1.0, 3.0, torch.float32),
                                                       (1.1, 1.0, torch.float32)])
def test_the_probe_decides_where_the_instructions_exist(monkeypatch, fp32_s, bf16_s, expected):
    monkeypatch.setattr(devices, "cpu_has_bf16_instructions", lambda: True)
    monkeypatch.setattr(devices, "_convolution_seconds", {torch.float32: fp32_s, torch.bfloat16: bf16_s}.get)
    assert devices.auto_dtype_cpu() == expected


def test_checkpoint_still_offers_the_choice():
    assert checkpoint.auto_dtype_cpu is devices.auto_dtype_cpu and checkpoint.parse_dtype is devices.parse_dtype


def test_this_cpu_is_read_at_run_time():
    native = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert devices.cpu_has_bf16_instructions() == native or not hasattr(torch.cpu, "_is_avx512_bf16_supported")
    probe = devices._convolution_seconds(torch.float32, repeats=1)
    assert probe > 0
    assert devices.auto_dtype_cpu() in (torch.float32, torch.bfloat16)
    if not devices.cpu_has_bf16_instructions():
        assert devices.auto_dtype_cpu() == torch.float32
