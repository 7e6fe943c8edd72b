"""A local ComfyUI with this repository installed as a custom node: the demo's and the host tests' one launcher.

:class:`ComfyProcess` builds a tree of its own and starts a cached ComfyUI on it::

    <root>/custom_nodes/ComfyUI-PIDM -> <repository>
    <root>/models/pidm/               (the pack's model folder, via extra.yaml)
    <root>/input, output, temp, user/

Only the standard library is used: ``scripts/demo.py`` runs without installing anything, and
``tests/host/conftest.py`` loads this file by path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACK_NAME = "ComfyUI-PIDM"
CACHE = Path(os.environ.get("PIDM_CACHE", Path.home() / ".cache" / "comfyui-pidm"))
HOSTS = {  # the hosts scripts/setup_env.sh unpacks: ComfyUI 0.3.75 (V3 node API) and March 2024 (V1 only)
    "v3": Path(os.environ.get("PIDM_COMFYUI", CACHE / "comfyui-0.3.75")),
    "v1": Path(os.environ.get("PIDM_COMFYUI_V1", CACHE / "comfyui-v1")),
}
# ~7 s on an idle 2-core machine; much longer when other jobs load the CPU.
START_TIMEOUT_S = float(os.environ.get("PIDM_HOST_START_TIMEOUT", "300"))
TREE_DIRS = ("custom_nodes", "models", "input", "output", "temp", "user")


class LaunchError(RuntimeError):
    """ComfyUI could not be set up or did not come up; the message ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class ComfyProcess:
    """One ComfyUI process serving ``root`` on ``port`` (a free one when None). ``api``: "v3" for
    ComfyUI 0.3.75, "v1" for the 2024 host, which knows fewer options."""

    def __init__(self, host_dir: Path, root: Path, port: int | None = None, api: str = "v3", label: str = "pidm"):
        self.host_dir, self.root, self.api, self.label = Path(host_dir), Path(root), api, label
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.dirs = {name: self.root / name for name in TREE_DIRS}
        self.models_pidm = self.dirs["models"] / "pidm"
        self.log_path = self.root / "server.log"
        self.process: subprocess.Popen | None = None

    def prepare(self) -> None:
        """The tree; a symlink left by an earlier run is replaced, anything else there is an error."""
        for path in (*self.dirs.values(), self.models_pidm):
            path.mkdir(parents=True, exist_ok=True)
        link = self.dirs["custom_nodes"] / PACK_NAME
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise LaunchError(f"{link} exists and is not a symlink; remove it or use another directory")
        link.symlink_to(REPO_ROOT, target_is_directory=True)
        (self.root / "extra.yaml").write_text(
            f"{self.label}:\n"
            f"  custom_nodes: {self.dirs['custom_nodes']}\n"
            f"  pidm: {self.models_pidm}\n"
        )

    def command(self) -> list[str]:
        command = [
            sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--disable-auto-launch", "--extra-model-paths-config", str(self.root / "extra.yaml"),
            "--input-directory", str(self.dirs["input"]), "--output-directory", str(self.dirs["output"]),
            "--temp-directory", str(self.dirs["temp"]),
        ]
        if self.api == "v3":  # options the 2024 host does not know
            command += [
                "--user-directory", str(self.dirs["user"]),
                # a database file: an in-memory one is per connection, and the host's threads then log
                # "SQLite objects created in a thread..." tracebacks
                "--database-url", f"sqlite:///{self.dirs['user'] / 'comfyui.db'}",
                "--disable-api-nodes",  # paid cloud nodes: slow to import, and they would go online
            ]
        return command

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server and wait until it answers (custom nodes are loaded before it listens)."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.host_dir, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                                            start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LaunchError(f"ComfyUI ({self.host_dir}) exited with code {self.process.returncode} while "
                                  f"starting\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/object_info", timeout=10) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise LaunchError(f"ComfyUI ({self.host_dir}) did not answer /object_info within {timeout_s:.0f}s\n"
                          f"{self.log_tail()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 6000) -> str:
        return f"--- server log tail ({self.log_path}) ---\n" + self.log()[-chars:]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
