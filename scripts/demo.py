"""The ComfyUI-PIDM demo: a local ComfyUI with this pack, one example workflow run, the UI left open.

Run it through ``bash scripts/demo.sh`` (which prepares the environment first); see that script for
the options. Only the standard library is used here: HTTP with urllib, completion by polling
/history, progress from ComfyUI's websocket (a minimal client below), so the client has nothing to
install.

Steps: build a ComfyUI tree under the demo directory (custom_nodes/ComfyUI-PIDM -> this repository,
models/pidm, input, output, temp, user, extra.yaml), start the cached ComfyUI 0.3.75 on it (loading
the pack copies the examples' inputs, assets/pidm_*, into its input folder, as in any ComfyUI),
post example_workflows/api/<workflow>.json, print each node and the sampler's steps as they run,
save the first image of its SaveImage node to the output path, print that path and the UI's URL,
and then keep the server in the foreground until Ctrl-C (or stop at once with --exit).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from comfy_launcher import CACHE, HOSTS, PACK_NAME, REPO_ROOT, ComfyProcess, LaunchError, free_port, port_free

DEFAULT_HOST = HOSTS["v3"]
DEFAULT_DIR = Path(os.environ.get("PIDM_DEMO_DIR", CACHE / "demo"))
DEFAULT_WORKFLOW = "photo_to_new_pose"
RUN_TIMEOUT_S = float(os.environ.get("PIDM_DEMO_RUN_TIMEOUT", "900"))
HEARTBEAT_S = 10.0  # say "still running" after this long without news


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


class Server(ComfyProcess):
    """The demo's ComfyUI (scripts/comfy_launcher.py), with the few HTTP calls the demo makes."""

    def __init__(self, host_dir: Path, root: Path, port: int):
        super().__init__(host_dir, root, port, api="v3", label="pidm_demo")
        self.client_id = uuid.uuid4().hex  # the websocket's id: ComfyUI sends a prompt's progress to its client

    def start(self) -> None:
        say(f"starting ComfyUI ({self.host_dir}) on {self.url}; log: {self.log_path}")
        try:
            super().start()
        except LaunchError as error:
            raise SystemExit(f"demo: {error}") from None
        if "PIDMSampler" not in self.get_json("/object_info/PIDMSampler"):
            self.stop()
            raise SystemExit(f"demo: ComfyUI started without the {PACK_NAME} nodes\n{self.log_tail()}")

    # --- HTTP ----------------------------------------------------------------------------------
    def get_json(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return json.load(response)

    def post_prompt(self, graph: dict) -> str:
        body = json.dumps({"prompt": graph, "client_id": self.client_id}).encode()
        request = urllib.request.Request(self.url + "/prompt", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["prompt_id"]
        except urllib.error.HTTPError as error:
            raise SystemExit(f"demo: ComfyUI refused the workflow (HTTP {error.code}): {error.read().decode(errors='replace')[:3000]}")

    def wait(self, prompt_id: str, timeout: float, progress: "Progress | None" = None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if progress is not None:
                progress.heartbeat()
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"demo: ComfyUI exited while running the workflow\n{self.log_tail()}")
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            status = (entry or {}).get("status") or {}
            # A finished prompt has status_str "success" or "error"; anything else is still running.
            if status.get("status_str") in ("success", "error") or status.get("completed") is True:
                if status.get("status_str") != "success":
                    errors = [m for m in status.get("messages", []) if m[0] in ("execution_error", "execution_interrupted")]
                    raise SystemExit(f"demo: the workflow failed: {json.dumps(errors)[:3000]}\n{self.log_tail()}")
                return entry
            time.sleep(0.5)
        raise SystemExit(f"demo: the workflow did not finish within {timeout:.0f}s\n{self.log_tail()}")

    def image_bytes(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({"filename": image["filename"], "subfolder": image.get("subfolder", ""),
                                        "type": image.get("type", "output")})
        with urllib.request.urlopen(f"{self.url}/view?{query}", timeout=60) as response:
            return response.read()


class Progress(threading.Thread):
    """Prints which node runs and the sampler's steps, read from ComfyUI's websocket.

    A minimal RFC 6455 client (server frames are never masked; this one only reads, and answers
    pings), so the demo needs no package. Without the websocket the demo still finishes: ``wait``
    polls /history, and ``heartbeat`` says "still running" every HEARTBEAT_S seconds.
    """

    def __init__(self, server: Server, graph: dict):
        super().__init__(daemon=True)
        self.server, self.graph = server, graph
        self.started = self.last_news = time.monotonic()
        self.sock: socket.socket | None = None
        self.prompt_id: str | None = None
        self.lock = threading.Lock()

    def connect(self) -> bool:
        try:
            sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall((f"GET /ws?clientId={self.server.client_id} HTTP/1.1\r\nHost: 127.0.0.1:{self.server.port}\r\n"
                          f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(1)
                if not chunk:
                    raise OSError("closed during the handshake")
                head += chunk
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                raise OSError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        except OSError as error:
            say(f"no progress from the websocket ({error}); waiting for the result")
            return False
        sock.settimeout(None)
        self.sock = sock
        return True

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise OSError("websocket closed")
            data += chunk
        return data

    def _frames(self):
        """(opcode, payload) of each frame the server sends."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(self._read(2), "big")
            elif length == 127:
                length = int.from_bytes(self._read(8), "big")
            yield first & 0x0F, self._read(length)

    def _pong(self, payload: bytes) -> None:
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:125]))
        self.sock.sendall(bytes([0x8A, 0x80 | len(body)]) + mask + body)

    def _say(self, message: str) -> None:
        with self.lock:
            self.last_news = time.monotonic()
        say(f"[{time.monotonic() - self.started:5.1f}s] {message}")

    def run(self) -> None:
        try:
            for opcode, payload in self._frames():
                if opcode == 8:  # close
                    return
                if opcode == 9:
                    self._pong(payload)
                if opcode != 1:  # binary frames are preview images
                    continue
                self._on_message(json.loads(payload))
        except (OSError, ValueError):
            return

    def _on_message(self, message: dict) -> None:
        data = message.get("data") or {}
        if self.prompt_id is None or data.get("prompt_id") != self.prompt_id:
            return
        node = data.get("node")
        if message.get("type") == "executing" and node is not None:
            self._say(f"running node {node} ({self.graph.get(node, {}).get('class_type', '?')})")
        elif message.get("type") == "progress":
            value, total = int(data.get("value", 0)), max(1, int(data.get("max", 1)))
            if value == total or value % max(1, total // 5) == 0:  # about five lines per sampler run
                self._say(f"  step {value}/{total}")

    def heartbeat(self) -> None:
        with self.lock:
            quiet = time.monotonic() - self.last_news
        if quiet >= HEARTBEAT_S:
            self._say("still running")

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass


def saved_images(graph: dict, entry: dict) -> list[dict]:
    """The SaveImage nodes' images of a finished prompt, in node order."""
    images = []
    for node_id, node in graph.items():
        if node["class_type"] == "SaveImage":
            images += entry.get("outputs", {}).get(node_id, {}).get("images", [])
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exit", action="store_true", default=os.environ.get("PIDM_DEMO_EXIT", "") not in ("", "0"),
                        help="stop the server once the image is written (env PIDM_DEMO_EXIT=1)")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the PNG (env PIDM_DEMO_OUTPUT; default demo_output/<workflow>.png)")
    parser.add_argument("--workflow", default=os.environ.get("PIDM_DEMO_WORKFLOW", DEFAULT_WORKFLOW),
                        help=f"example workflow name (example_workflows/api/<name>.json; default {DEFAULT_WORKFLOW})")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PIDM_DEMO_PORT", "8188")),
                        help="port to serve on (env PIDM_DEMO_PORT; default 8188; 0, or a taken port, = a free one)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="ComfyUI tree (env PIDM_DEMO_DIR)")
    parser.add_argument("--comfyui", type=Path, default=DEFAULT_HOST, help="ComfyUI host directory (env PIDM_COMFYUI)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    workflow_path = REPO_ROOT / "example_workflows" / "api" / f"{args.workflow}.json"
    if not workflow_path.is_file():
        names = sorted(p.stem for p in workflow_path.parent.glob("*.json"))
        raise SystemExit(f"demo: no workflow {args.workflow!r}; choose one of {names}")
    output = args.output or Path(os.environ.get("PIDM_DEMO_OUTPUT", REPO_ROOT / "demo_output" / f"{args.workflow}.png"))
    output = output.resolve()
    if not (args.comfyui / "main.py").is_file():
        raise SystemExit(f"demo: ComfyUI is not installed at {args.comfyui}: run bash scripts/setup_env.sh")
    embedded = REPO_ROOT / "pidm_core" / "weights" / "pidm_synthetic_64.safetensors"
    if not embedded.is_file():
        raise SystemExit(f"demo: the embedded model {embedded} is missing")

    port = args.port
    if port == 0:
        port = free_port()
    elif not port_free(port):
        port = free_port()
        say(f"port {args.port} is taken; using {port}")
    server = Server(args.comfyui, args.dir.resolve(), port)
    try:
        server.prepare()
    except LaunchError as error:
        raise SystemExit(f"demo: {error}") from None

    def _on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_term)
    try:
        server.start()
        say(f"ComfyUI ready after {time.monotonic() - started:.1f}s")
        graph = json.loads(workflow_path.read_text())
        run_start = time.monotonic()
        say(f"running {workflow_path.relative_to(REPO_ROOT)} (25 sampler steps; 33-83 s measured on "
            "a 2-core CPU, depending on its load)")
        progress = Progress(server, graph)
        if progress.connect():
            progress.start()
        progress.prompt_id = server.post_prompt(graph)
        try:
            entry = server.wait(progress.prompt_id, RUN_TIMEOUT_S, progress)
        finally:
            progress.close()
        images = saved_images(graph, entry)
        if not images:
            raise SystemExit(f"demo: the workflow finished but saved no image\n{server.log_tail()}")
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(server.image_bytes(images[0]))
        say(f"workflow ran in {time.monotonic() - run_start:.1f}s ({len(images)} image(s) saved in "
            f"{server.dirs['output']})")
        print(f"demo: wrote {output}", flush=True)
        print(f"demo: ComfyUI UI at {server.url}  (Workflow > Browse Templates > {PACK_NAME} for the other examples)",
              flush=True)
        say(f"total {time.monotonic() - started:.1f}s")
        if args.exit:
            return 0
        say("serving until Ctrl-C")
        while server.process.poll() is None:
            time.sleep(1)
        say(f"ComfyUI exited with code {server.process.returncode}\n{server.log_tail()}")
        return 1
    except KeyboardInterrupt:
        say("stopping ComfyUI")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
