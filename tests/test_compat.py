"""nodes/compat.py tells the hosts apart once: V3 API, V1 only, or no ComfyUI at all."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import pytest

COMPAT = Path(__file__).resolve().parents[1] / "nodes" / "compat.py"


def _compat(monkeypatch, **modules: types.ModuleType | None):
    """nodes/compat.py loaded by path (it needs only the standard library) with ``modules`` standing in
    for the host's (None = not importable)."""
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        if name in modules:
            return None if modules[name] is None else importlib.machinery.ModuleSpec(name, None)
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    spec = importlib.util.spec_from_file_location("pidm_compat_under_test", COMPAT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def v1_host():
    return {"folder_paths": _fake("folder_paths"), "comfy": _fake("comfy")}


def test_no_comfyui_is_no_host(monkeypatch):
    compat = _compat(monkeypatch, comfy_api=None, **{"comfy_api.latest": None}, folder_paths=None, comfy=None)
    assert compat.HOST_API is None and compat.ComfyExtension is None
    assert compat.io.Schema is compat._Schema  # the stand-in, so node classes still define


def test_v3_api_is_used_where_it_imports(monkeypatch, v1_host):
    io = _fake("io", Schema=object, Custom=lambda io_type: io_type)
    latest = _fake("comfy_api.latest", ComfyExtension=type("ComfyExtension", (), {}), io=io)
    compat = _compat(monkeypatch, comfy_api=_fake("comfy_api", latest=latest), **{"comfy_api.latest": latest},
                     **v1_host)
    assert compat.HOST_API == "v3" and compat.io is io


def test_host_with_comfy_api_but_no_latest_is_served_as_v1(monkeypatch, v1_host):
    # once, the root __init__ saw comfy_api and asked for comfy_entrypoint, which only comfy_api.latest gives
    compat = _compat(monkeypatch, comfy_api=_fake("comfy_api"), **{"comfy_api.latest": None}, **v1_host)
    assert compat.HOST_API == "v1" and compat.ComfyExtension is None
    assert compat.io.Schema is compat._Schema

