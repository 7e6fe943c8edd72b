"""The pack's web UI in a real browser: ComfyUI's own frontend, served by the real host, in headless Chromium.

The page loads ``example_workflows/pose_editor.json``; the test drags a wrist on the Edit Pose canvas
with real pointer events (mouse, then touch through the DevTools protocol), queues the prompt from
the page, and checks, through the server's /history, that the POSE_KEYPOINT the server received and
used carries the moved wrist. Screenshots go to ``$PIDM_ARTIFACTS`` or a temporary folder (its path
is printed). Any console error or uncaught exception whose source is our js fails the test.

Needs Debian's ``chromium`` and the ``playwright`` package (driving that browser; Playwright's own
browser downloads are never used); scripts/setup_env.sh installs both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from pidm_core.pose.formats import pose_keypoint_from_poses
from pidm_core.pose.keypoints import Pose
from tests.optional import chromium_path, missing

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_workflows" / "pose_editor.json"
OUR_JS = "/extensions/ComfyUI-PIDM/"
OUR_FILES = ("pose_draw.js", "pose_preview.js", "pose_editor.js")
EDITOR, RENDER, PREVIEW, LOAD = 1, 2, 3, 4  # node ids in the example workflow (+ Load Pose, added here)
R_WRIST, L_WRIST = 4, 7
PAGE_READY_S = 180
RUN_TIMEOUT_S = 120
# px on the screen (the page is at zoom 1, but the node's canvas scales the pose to fit)
MOUSE_DRAG = (30, -60)
TOUCH_DRAG = (-24, 36)


_chromium = chromium_path


def _missing(what: str):
    missing(f"{what}: run `bash scripts/setup_env.sh` (it installs Debian's chromium and playwright)")


def _walk_pose_file(server) -> str:
    keypoints = np.zeros((18, 3), np.float32)
    layout = [(0.5, 0.12), (0.5, 0.22), (0.38, 0.22), (0.3, 0.34), (0.24, 0.46), (0.62, 0.22), (0.7, 0.34),
              (0.76, 0.46), (0.43, 0.5), (0.4, 0.68), (0.38, 0.86), (0.57, 0.5), (0.6, 0.68), (0.62, 0.86),
              (0.47, 0.1), (0.53, 0.1), (0.44, 0.11), (0.56, 0.11)]
    for j, (x, y) in enumerate(layout):
        keypoints[j] = (x * 200, y * 300, 1.0)
    (server.dirs["input"] / "frontend_pose.json").write_text(json.dumps(pose_keypoint_from_poses([Pose(keypoints, 200, 300)])))
    return "frontend_pose.json"


class Page:
    """One ComfyUI tab with what its console said."""

    def __init__(self, page, client, artifacts: Path):
        self.page = page
        self.client = client
        self.artifacts = artifacts
        self.console: list[str] = []
        self.our_errors: list[str] = []
        self.our_files: dict[str, int] = {}
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self._error(f"uncaught: {error}\n{error.stack or ''}"))
        page.on("response", self._on_response)

    def _error(self, text: str) -> None:
        self.console.append(text)
        if OUR_JS in text:
            self.our_errors.append(text)

    def _on_console(self, message) -> None:
        where = message.location.get("url", "") if message.location else ""
        text = f"[{message.type}] {message.text} ({where})"
        self.console.append(text)
        if message.type in ("error", "assert") and (OUR_JS in where or OUR_JS in message.text):
            self.our_errors.append(text)

    def _on_response(self, response) -> None:
        if OUR_JS in response.url:
            self.our_files[response.url.split(OUR_JS, 1)[1].split("?")[0]] = response.status

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.artifacts / f"{name}.png"))

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def load(self, workflow: dict) -> None:
        self.js("""async (workflow) => {
            await app.loadGraphData(workflow);
            app.canvas.ds.scale = 1;
            app.canvas.ds.offset = [80, 140];
            app.canvas.setDirty(true, true);
        }""", workflow)
        self.page.wait_for_timeout(500)  # DOM widgets follow the canvas on the next frames

    def joint_on_screen(self, joint: int, node: int = EDITOR) -> dict:
        """Page coordinates of a joint on the editor canvas, and the pose pixels per screen pixel."""
        return self.js("""([nodeId, joint]) => {
            const editor = app.graph.getNodeById(nodeId).pidmPoseEditor;
            const canvas = editor.view.canvas, t = editor.view.transform;
            const rect = canvas.getBoundingClientRect();
            const zoom = rect.width / canvas.clientWidth;
            const p = editor.state.model.people[0];
            return {x: rect.left + (t.ox + (p[joint * 3] + 0.5) * t.scale) * zoom,
                    y: rect.top + (t.oy + (p[joint * 3 + 1] + 0.5) * t.scale) * zoom,
                    pose_px_per_screen_px: 1 / (t.scale * zoom),
                    joint: [p[joint * 3], p[joint * 3 + 1], p[joint * 3 + 2]]};
        }""", [node, joint])

    def editor_value(self, node: int = EDITOR) -> str:
        return self.js("(id) => app.graph.getNodeById(id).widgets.find(w => w.name === 'edited_pose').value", node)

    def editor_joint(self, joint: int, node: int = EDITOR) -> list[float]:
        return self.js("""([id, j]) => { const p = app.graph.getNodeById(id).pidmPoseEditor.state.model.people[0];
                          return [p[j * 3], p[j * 3 + 1], p[j * 3 + 2]]; }""", [node, joint])

    def click_tool(self, action: str, node: int = EDITOR) -> None:
        box = self.js("""([id, action]) => {
            const root = app.graph.getNodeById(id).pidmPoseEditor.view.root;
            const r = root.querySelector(`button[data-action="${action}"]`).getBoundingClientRect();
            return {x: r.left + r.width / 2, y: r.top + r.height / 2};
        }""", [node, action])
        self.page.mouse.click(box["x"], box["y"])

    def mouse_drag(self, start: dict, delta: tuple[float, float], steps: int = 10) -> None:
        mouse = self.page.mouse
        mouse.move(start["x"], start["y"])
        mouse.down()
        for k in range(1, steps + 1):
            mouse.move(start["x"] + delta[0] * k / steps, start["y"] + delta[1] * k / steps)
        mouse.up()

    def touch_drag(self, start: dict, delta: tuple[float, float], steps: int = 8) -> None:
        cdp = self.page.context.new_cdp_session(self.page)
        point = lambda k: [{"x": start["x"] + delta[0] * k / steps, "y": start["y"] + delta[1] * k / steps, "id": 1}]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point(0)})
        for k in range(1, steps + 1):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": point(k)})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        cdp.detach()

    def touch_hold(self, at: dict, milliseconds: int) -> None:
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": at["x"], "y": at["y"], "id": 1}]})
        self.page.wait_for_timeout(milliseconds)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        cdp.detach()

    def queue_and_wait(self) -> dict:
        """Queues the graph from the page (as the Run button does); the prompt's /history entry."""
        before = set(self.client.get("/history").json())
        assert self.js("async () => { await app.queuePrompt(0); return true; }")
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            history = self.client.get("/history").json()
            new = [history[i] for i in set(history) - before]
            if new and new[0].get("status", {}).get("completed") is not None:
                entry = new[0]
                assert entry["status"]["status_str"] == "success", f"{entry['status']}\n{self.client.server.log_tail()}"
                self.page.wait_for_timeout(300)  # let the page take the executed messages
                return entry
            time.sleep(0.25)
        raise TimeoutError(f"the queued prompt did not finish in {RUN_TIMEOUT_S}s\n{self.client.server.log_tail()}")


@pytest.fixture(scope="module")
def ui(comfy, artifacts):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    chromium = _chromium()
    if chromium is None:
        _missing("Debian's chromium is not installed")
    _walk_pose_file(comfy.server)
    # A fresh user folder would open the template browser over the graph.
    requests.post(comfy.base_url + "/settings/Comfy.TutorialCompleted", json=True, timeout=30).raise_for_status()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1400, "height": 900}, has_touch=True)
        page = Page(context.new_page(), comfy, artifacts)
        try:
            page.page.goto(comfy.base_url, timeout=PAGE_READY_S * 1000)
            page.page.wait_for_function(
                "window.app?.vueAppReady && window.app.graph && "
                "window.app.extensions.some(e => e.name === 'ComfyUI-PIDM.PoseEditor')",
                timeout=PAGE_READY_S * 1000,
            )
            yield page
        finally:
            (artifacts / "console.log").write_text("\n".join(page.console))
            context.close()
            browser.close()


def _example() -> dict:
    return json.loads(EXAMPLE.read_text())


def _wrist_of(frames: list, joint: int = R_WRIST) -> list[float]:
    return frames[0]["people"][0]["pose_keypoints_2d"][joint * 3: joint * 3 + 3]


def test_page_loads_our_extensions_without_errors(ui):
    ui.load(_example())
    ui.shot("01_example_loaded")
    assert {name: ui.our_files.get(name) for name in OUR_FILES} == {name: 200 for name in OUR_FILES}, ui.our_files
    widgets = ui.js(f"() => app.graph.getNodeById({EDITOR}).widgets.map(w => [w.name, !!w.hidden, w.serialize !== false])")
    # The JSON widget is kept (serialised, hidden); the canvas after it is not serialised.
    assert widgets == [["edited_pose", True, True], ["pidm_pose_editor", False, False]]
    assert ui.our_errors == [], "\n".join(ui.our_errors)


def test_drag_wrist_with_the_mouse_and_run(ui):
    ui.load(_example())
    start = ui.joint_on_screen(R_WRIST)
    ui.mouse_drag(start, MOUSE_DRAG)
    scale = start["pose_px_per_screen_px"]
    expected = [start["joint"][0] + MOUSE_DRAG[0] * scale, start["joint"][1] + MOUSE_DRAG[1] * scale]
    assert ui.editor_joint(R_WRIST)[:2] == pytest.approx(expected, abs=0.6)
    # What the workflow file now carries.
    saved = ui.js(f"() => app.graph.serialize().nodes.find(n => n.id === {EDITOR}).widgets_values[0]")
    assert _wrist_of(json.loads(saved))[:2] == pytest.approx(expected, abs=0.6)
    ui.shot("02_wrist_dragged")

    entry = ui.queue_and_wait()
    sent = entry["prompt"][2][str(EDITOR)]["inputs"]["edited_pose"]
    assert _wrist_of(json.loads(sent))[:2] == pytest.approx(expected, abs=0.6)
    # The editor's output, and the pose Render Pose drew from it, as the server reports them.
    assert _wrist_of(entry["outputs"][str(EDITOR)]["pidm_pose"])[:2] == pytest.approx(expected, abs=0.6)
    assert _wrist_of(entry["outputs"][str(RENDER)]["pidm_pose"]) == pytest.approx([*expected, 1.0], abs=0.6)
    image = ui.client.view_image(entry["outputs"][str(PREVIEW)]["images"][0]).convert("RGB")
    x, y = (round(v) for v in expected)
    assert max(np.asarray(image)[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).max(axis=1)) > 100, \
        "no skeleton drawn at the moved wrist"
    ui.page.wait_for_timeout(300)
    ui.shot("03_after_run")
    assert ui.our_errors == [], "\n".join(ui.our_errors)


def test_input_pose_preview_tools_touch_and_run(ui):
    workflow = _example()
    editor = next(n for n in workflow["nodes"] if n["id"] == EDITOR)
    editor["widgets_values"] = [""]  # no edit: the editor passes Load Pose's pose through
    editor["inputs"][0]["link"] = 3
    editor["pos"] = [380, 60]
    for node in workflow["nodes"]:
        if node["id"] in (RENDER, PREVIEW):
            node["pos"] = [node["pos"][0] + 340, node["pos"][1]]
    workflow["nodes"].append({
        "id": LOAD, "type": "PIDMLoadPose", "pos": [20, 60], "size": [320, 420], "flags": {}, "order": 0, "mode": 0,
        "inputs": [], "outputs": [{"name": "pose", "type": "POSE_KEYPOINT", "links": [3], "slot_index": 0}],
        "properties": {"Node name for S&R": "PIDMLoadPose"}, "widgets_values": ["frontend_pose.json", -1, 0, 0],
    })
    workflow["links"].append([3, LOAD, 0, EDITOR, 0, "POSE_KEYPOINT"])
    workflow["last_node_id"], workflow["last_link_id"] = LOAD, 3
    ui.js("() => { app.canvas.ds.scale = 1; }")
    ui.load(workflow)
    ui.js("() => { app.canvas.ds.offset = [60, 140]; app.canvas.setDirty(true, true); }")

    # Run 1: Load Pose shows its preview; the editor receives the input pose and shows it.
    entry = ui.queue_and_wait()
    loaded = entry["outputs"][str(LOAD)]["pidm_pose"]
    assert ui.js(f"() => app.graph.getNodeById({LOAD}).widgets.some(w => w.name === 'pidm_pose_preview')")
    assert ui.js(f"() => app.graph.getNodeById({LOAD}).pidmPreview.frames.length") == 1
    ui.page.wait_for_timeout(300)
    assert ui.editor_value() == ""
    assert ui.editor_joint(L_WRIST) == pytest.approx(_wrist_of(loaded, L_WRIST), abs=1e-3)
    ui.shot("04_input_pose_in_editor")

    # Mirror swaps the wrists (x -> width - 1 - x); Undo brings the pose back.
    width = loaded[0]["canvas_width"]
    right_before, left_before = ui.editor_joint(R_WRIST), ui.editor_joint(L_WRIST)
    ui.click_tool("mirror")
    assert ui.editor_joint(R_WRIST)[:2] == pytest.approx([width - 1 - left_before[0], left_before[1]], abs=1e-3)
    ui.shot("05_mirrored")
    ui.click_tool("undo")
    assert ui.editor_joint(R_WRIST) == pytest.approx(right_before, abs=1e-3)

    # Right-click hides the left wrist (missing joint); touch drags the right wrist.
    left = ui.joint_on_screen(L_WRIST)
    ui.page.mouse.click(left["x"], left["y"], button="right")
    assert ui.editor_joint(L_WRIST)[2] == 0
    start = ui.joint_on_screen(R_WRIST)
    ui.touch_drag(start, TOUCH_DRAG)
    scale = start["pose_px_per_screen_px"]
    expected = [start["joint"][0] + TOUCH_DRAG[0] * scale, start["joint"][1] + TOUCH_DRAG[1] * scale]
    assert ui.editor_joint(R_WRIST)[:2] == pytest.approx(expected, abs=0.6)
    ui.shot("06_hidden_and_touch_dragged")

    # Run 2: the server gets the edited pose, which wins over Load Pose's.
    entry = ui.queue_and_wait()
    sent = json.loads(entry["prompt"][2][str(EDITOR)]["inputs"]["edited_pose"])
    assert _wrist_of(sent)[:2] == pytest.approx(expected, abs=0.6)
    assert _wrist_of(sent, L_WRIST)[2] == 0
    used = entry["outputs"][str(RENDER)]["pidm_pose"]
    assert _wrist_of(used) == pytest.approx([*expected, 1.0], abs=0.6)
    assert _wrist_of(used, L_WRIST) == [0, 0, 0]  # missing for the model, not at (0, 0)

    # A long press (touch) restores the hidden wrist where it was.
    ui.touch_hold(ui.joint_on_screen(L_WRIST), 900)
    assert ui.editor_joint(L_WRIST) == pytest.approx([*left["joint"][:2], 1.0], abs=1e-3)

    # The larger editor window shows the same pose; Escape closes it.
    ui.click_tool("expand")
    assert ui.js("() => !!document.querySelector('.pidm-pose-dialog canvas')")
    ui.page.wait_for_timeout(200)
    ui.shot("07_dialog")
    ui.page.keyboard.press("Escape")
    assert ui.js("() => !document.querySelector('.pidm-pose-dialog')")
    assert ui.our_errors == [], "\n".join(ui.our_errors)
