"""A real ComfyUI server with this repository installed as a custom node, for the host tests.

``scripts/setup_env.sh`` unpacks two hosts into the cache directory (never into this repo:
ComfyUI is GPL-3): ComfyUI 0.3.75 (V3 node API) and a March-2024 ComfyUI (V1 only). Each
fixture starts one on a free port, in a temporary tree of its own, with the launcher the demo
uses too (``scripts/comfy_launcher.py``), and yields a :class:`ComfyClient` that talks to it over
HTTP and the websocket, the way
ComfyUI's own ``tests/execution`` suite drives a live server. The server runs for the whole
session and is stopped at the end (terminate, then kill).

Overrides: PIDM_COMFYUI / PIDM_COMFYUI_V1 (host directories), PIDM_CACHE, PIDM_HOST_START_TIMEOUT (s).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import struct
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.optional import missing


def _load_launcher():
    # by path, as the other tests load scripts/: the repository root is not a package
    path = Path(__file__).resolve().parents[2] / "scripts" / "comfy_launcher.py"
    spec = importlib.util.spec_from_file_location("pidm_comfy_launcher", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look classes up by module name
    spec.loader.exec_module(module)
    return module


launcher = _load_launcher()
REPO_ROOT = launcher.REPO_ROOT
PACK_NAME = launcher.PACK_NAME
HOSTS = launcher.HOSTS

# websocket binary frame event types (ComfyUI server.BinaryEventTypes)
PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4


@dataclass
class RunResult:
    """Everything the websocket said about one prompt."""

    prompt_id: str
    messages: list[dict] = field(default_factory=list)  # every JSON message for this prompt, in order
    previews: list[bytes] = field(default_factory=list)  # image bytes (JPEG/PNG) of binary preview frames
    outputs: dict[str, dict] = field(default_factory=dict)  # node id -> "executed" output (ui dict)
    error: dict | None = None  # data of "execution_error"
    interrupted: bool = False  # "execution_interrupted" arrived

    def of_type(self, kind: str) -> list[dict]:
        return [m["data"] for m in self.messages if m["type"] == kind]

    @property
    def progress(self) -> list[dict]:
        return self.of_type("progress")

    @property
    def executed_nodes(self) -> list[str]:
        return [d["node"] for d in self.of_type("executing") if d.get("node") is not None]


class ComfyClient:
    """A small client for one ComfyUI server: HTTP for prompts/history/images, one websocket for events."""

    def __init__(self, server: "ComfyServer"):
        import websocket  # websocket-client

        self.server = server
        self.base_url = f"http://127.0.0.1:{server.port}"
        self.client_id = uuid.uuid4().hex
        self.ws = websocket.WebSocket()
        self.ws.connect(f"ws://127.0.0.1:{server.port}/ws?clientId={self.client_id}", timeout=30)

    # --- HTTP ------------------------------------------------------------------------------
    def get(self, path: str, **params):
        import requests

        response = requests.get(self.base_url + path, params=params, timeout=60)
        response.raise_for_status()
        return response

    def object_info(self, node: str | None = None) -> dict:
        return self.get("/object_info" + (f"/{node}" if node else "")).json()

    def post_prompt(self, graph: dict) -> str:
        """Queue an API-format graph; returns the prompt id. A graph the server refuses (HTTP 400,
        validation errors) raises PromptRejected carrying the server's JSON answer."""
        import requests

        response = requests.post(self.base_url + "/prompt", json={"prompt": graph, "client_id": self.client_id}, timeout=60)
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = {"text": response.text}
            raise PromptRejected(response.status_code, body)
        return response.json()["prompt_id"]

    def history(self, prompt_id: str) -> dict:
        return self.get(f"/history/{prompt_id}").json().get(prompt_id, {})

    def view_image(self, image: dict):
        """PIL image of one entry of an output's ``images`` list ({filename, subfolder, type})."""
        from PIL import Image

        data = self.get("/view", filename=image["filename"], subfolder=image.get("subfolder", ""),
                        type=image.get("type", "output")).content
        return Image.open(io.BytesIO(data))

    def interrupt(self) -> None:
        import requests

        requests.post(self.base_url + "/interrupt", timeout=30).raise_for_status()

    def queue(self) -> dict:
        return self.get("/queue").json()

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak since start) of the server process, in kB."""
        fields = {}
        for line in Path(f"/proc/{self.server.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields

    def node_error(self, graph: dict, node_type: str, *texts: str) -> dict:
        """Run a graph that must fail in ``node_type`` with every one of ``texts`` in the UI message;
        the server must live on."""
        result = self.run(graph, timeout=180)
        assert result.error is not None, f"expected an error from {node_type}\n{self.server.log_tail()}"
        assert result.error["node_type"] == node_type, result.error
        for text in texts:
            assert text in result.error["exception_message"], result.error["exception_message"]
        assert self.server.alive(), self.server.log_tail()
        return result.error

    # --- websocket --------------------------------------------------------------------------
    def wait(self, prompt_id: str, timeout: float = 120.0, on_message=None) -> RunResult:
        """Collect this prompt's messages until the server says it is done with it.

        ``on_message(result, message)`` is called for every JSON message of the prompt (e.g. to
        interrupt after the first progress event). Binary preview frames carry no prompt id and are
        attributed to the prompt being waited for.
        """
        import websocket

        result = RunResult(prompt_id)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f}s\n{self.server.log_tail()}")
            self.ws.settimeout(remaining)
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if isinstance(frame, bytes):
                image = _preview_bytes(frame)
                if image is not None:
                    result.previews.append(image)
                continue
            message = json.loads(frame)
            data = message.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            result.messages.append(message)
            kind = message["type"]
            if kind == "executed":
                result.outputs[str(data["node"])] = data.get("output") or {}
            elif kind == "execution_error":
                result.error = data
            elif kind == "execution_interrupted":
                result.interrupted = True
            if on_message is not None:
                on_message(result, message)
            if kind == "executing" and data.get("node") is None:
                return result

    def run(self, graph: dict, timeout: float = 120.0, on_message=None) -> RunResult:
        return self.wait(self.post_prompt(graph), timeout, on_message)

    def output_images(self, result: RunResult, node_id: str) -> list:
        """PIL images that a saving/preview node reported for this prompt (from /history)."""
        outputs = self.history(result.prompt_id).get("outputs", {})
        return [self.view_image(image) for image in outputs.get(str(node_id), {}).get("images", [])]

    def close(self) -> None:
        self.ws.close()


def _preview_bytes(frame: bytes) -> bytes | None:
    event = struct.unpack(">I", frame[:4])[0]
    if event == PREVIEW_IMAGE:  # event, image type (1 JPEG, 2 PNG), image
        return frame[8:]
    if event == PREVIEW_IMAGE_WITH_METADATA:  # event, metadata length, metadata JSON, image
        length = struct.unpack(">I", frame[4:8])[0]
        return frame[8 + length:]
    return None


class PromptRejected(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(f"HTTP {status}: {json.dumps(body)[:2000]}")
        self.status = status
        self.body = body


class ComfyServer(launcher.ComfyProcess):
    """One ComfyUI process in its own temporary tree; a failed start fails the test with the log's tail."""

    def __init__(self, host_dir: Path, root: Path, api: str):
        super().__init__(host_dir, root, api=api, label="pidm_tests")

    def start(self) -> None:
        try:
            self.prepare()
            super().start()
        except launcher.LaunchError as error:
            pytest.fail(str(error), pytrace=False)


def _require_host(api: str) -> Path:
    host_dir = HOSTS[api]
    if (host_dir / "main.py").is_file():
        return host_dir
    missing(f"the ComfyUI host for the {api} tests is not installed at {host_dir}: "
            "run `bash scripts/setup_env.sh` (or `bash scripts/test.sh`, which runs it)")


@pytest.fixture(scope="module")
def artifacts(request) -> Path:
    """Where a browser test keeps its screenshots: PIDM_ARTIFACTS, or a new temporary folder named after the
    test file."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    folder = Path(os.environ.get("PIDM_ARTIFACTS") or tempfile.mkdtemp(prefix=f"pidm-{name}-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\n{name} screenshots: {folder}")
    return folder


@pytest.fixture(scope="session")
def _session_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("comfy")


def _serve(api: str, tmp: Path):
    server = ComfyServer(_require_host(api), tmp / api, api)
    server.root.mkdir(parents=True)
    try:
        server.start()
        client = ComfyClient(server)
    except BaseException:
        server.stop()
        raise
    try:
        yield client
    finally:
        client.close()
        server.stop()


@pytest.fixture(scope="session")
def comfy(_session_tmp) -> ComfyClient:
    """Client of a running ComfyUI 0.3.75 (V3 API) with ComfyUI-PIDM loaded."""
    yield from _serve("v3", _session_tmp)


@pytest.fixture(scope="module")
def comfy_fresh(tmp_path_factory) -> ComfyClient:
    """A ComfyUI 0.3.75 of its own for one test module, started on a new tree whose input folder is
    empty, as in a ComfyUI where the pack was just installed (the session server's input folder
    collects other tests' files)."""
    yield from _serve("v3", tmp_path_factory.mktemp("fresh"))


@pytest.fixture(scope="session")
def comfy_v1(_session_tmp) -> ComfyClient:
    """Client of a running March-2024 ComfyUI (V1 nodes only) with ComfyUI-PIDM loaded."""
    yield from _serve("v1", _session_tmp)

