"""The nodes' help pages (``js/docs/<NodeId>.md``) where ComfyUI's frontend looks for them.

The frontend's node help panel (select a node, then the info button of the selection toolbox; or
the node library's help) fetches a custom node's page from
``/extensions/<folder>/docs/<NodeId>/<locale>.md`` and then ``/extensions/<folder>/docs/<NodeId>.md``,
where ``<folder>`` is the second part of the node's ``python_module`` (``custom_nodes.<folder>``,
cut at an ``@``) and the server serves the pack's ``WEB_DIRECTORY`` (``js/``) under that same
folder name. This module checks, on the real ComfyUI 0.3.75:

- every node the pack registers has a page, served at the URL the frontend builds, and every page
  belongs to a node; each page names the node's inputs and outputs as the server reports them and
  points at example workflows that use the node;
- in headless Chromium, the docs panel of both frontends, the host's pinned one and the newest
  (``$PIDM_CACHE/frontend-newest``, installed by scripts/setup_env.sh and served with
  ``--front-end-root``), shows our page's heading. Screenshots go to ``$PIDM_ARTIFACTS`` or a
  temporary folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest
import requests

from pidm_core.samplers import SamplingSettings
from tests.optional import chromium_path, missing

from conftest import PACK_NAME, ComfyServer, _require_host, launcher

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "js" / "docs"
EXAMPLES = REPO / "example_workflows"
SECTIONS = ("## Typical graph", "## Common errors", "## Example workflows")
PAGE_LINES = (30, 70)
BROWSER_NODE = "PIDMSampler"
PAGE_READY_S = 180
# scripts/setup_env.sh installs it there (FRONTEND_NEWEST)
NEWEST_FRONTEND = Path(os.environ.get("PIDM_FRONTEND_NEWEST", launcher.CACHE / "frontend-newest"))


def help_urls(name: str, node: dict, locale: str = "en") -> list[str]:
    """The URLs the frontend fetches a custom node's help from, in its order (its NodeHelpService)."""
    module = node["python_module"].split(".")
    assert len(module) >= 2 and module[0] == "custom_nodes", node["python_module"]
    folder = module[1].split("@")[0]
    return [f"/extensions/{folder}/docs/{name}/{locale}.md", f"/extensions/{folder}/docs/{name}.md"]


def pack_nodes(comfy) -> dict[str, dict]:
    return {name: node for name, node in comfy.object_info().items()
            if node.get("python_module") == f"custom_nodes.{PACK_NAME}"}


def _section(page: str, heading: str) -> str:
    return page.split(heading, 1)[1].split("\n## ", 1)[0]


def test_every_node_has_a_page_where_the_frontend_fetches_it(comfy):
    nodes = pack_nodes(comfy)
    assert len(nodes) >= 10, sorted(nodes)
    assert sorted(p.stem for p in DOCS.glob("*.md")) == sorted(nodes), "one page per registered node id, no others"
    for name, node in nodes.items():
        localised, plain = help_urls(name, node)
        # no localised page: the frontend falls back to the plain one
        assert requests.get(comfy.base_url + localised, timeout=30).status_code == 404
        response = requests.get(comfy.base_url + plain, timeout=30)
        assert response.status_code == 200, (plain, response.status_code)
        # the frontend drops an answer served as text/html (a web server's error page)
        assert "text/html" not in response.headers.get("content-type", "")
        assert response.content == (DOCS / f"{name}.md").read_bytes()
        assert response.text.splitlines()[0] == f"# {node['display_name']}", name


# the sampler's settings inputs as of the pages' writing; any other SamplingSettings field may be left to its tooltip
DOCUMENTED_SETTINGS = {"seed", "steps", "sampler", "guidance", "appearance_scale", "pose_scale", "denoise",
                       "frame_noise", "chunk_size", "guidance_start", "guidance_end", "sequence_denoise"}
LATER_SETTINGS = {field.name for field in dataclasses.fields(SamplingSettings)} - DOCUMENTED_SETTINGS


def test_pages_follow_the_schema_and_point_at_examples(comfy):
    examples = {path.stem: {n["type"] for n in json.loads(path.read_text())["nodes"]}
                for path in EXAMPLES.glob("*.json")}
    for name, node in pack_nodes(comfy).items():
        page = (DOCS / f"{name}.md").read_text()
        assert PAGE_LINES[0] <= len(page.splitlines()) <= PAGE_LINES[1], (name, len(page.splitlines()))
        for heading in SECTIONS:
            assert f"\n{heading}\n" in page, (name, heading)
        assert re.search(r"\n## Inputs?\n", page) and re.search(r"\n## Outputs?\n", page), name
        inputs = [*node["input"].get("required", {}), *node["input"].get("optional", {})]
        # an input made from a sampling setting added later is described by its tooltip (the field's help), so
        # a new option stays one SamplingSettings field; the settings of today are on the page
        later = set(LATER_SETTINGS) if name == "PIDMSampler" else set()
        missing = [n for n in [*inputs, *node["output_name"]] if f"**{n}**" not in page and n not in later]
        assert not missing, f"{name}'s page does not name {missing} (as **name**)"
        assert "](" not in page and "http" not in page, f"{name}: the pages carry no links"
        named = re.findall(r"\*\*([a-z0-9_]+)\*\*", _section(page, "## Example workflows"))
        assert named, f"{name}'s page names no example workflow"
        for stem in named:
            assert stem in examples, f"{name}'s page names {stem}, which is not in example_workflows/"
            assert name in examples[stem], f"{name}'s page names {stem}, which does not use the node"


# --- the docs panel in a real browser ---------------------------------------------------------------

_skip_or_fail = missing


class _NewestFrontendServer(ComfyServer):
    def __init__(self, host_dir: Path, root: Path, static: Path):
        super().__init__(host_dir, root, "v3")
        self.static = static

    def command(self) -> list[str]:
        return super().command() + ["--front-end-root", str(self.static)]


def _newest_version() -> str | None:
    found = sorted(NEWEST_FRONTEND.glob("comfyui_frontend_package-*.dist-info"))
    return found[0].name.removesuffix(".dist-info").split("-")[1] if found else None


@pytest.fixture(scope="module")
def comfy_newest_frontend(tmp_path_factory):
    """A ComfyUI 0.3.75 of its own, serving the newest frontend from the cache."""
    static = NEWEST_FRONTEND / "comfyui_frontend_package" / "static"
    if not (static / "index.html").is_file():
        _skip_or_fail(f"the newest ComfyUI frontend is not installed at {NEWEST_FRONTEND}: "
                      "run `bash scripts/setup_env.sh`")
    server = _NewestFrontendServer(_require_host("v3"), tmp_path_factory.mktemp("newest_frontend"), static)
    server.root.mkdir(parents=True, exist_ok=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("frontend", ["host", "newest"])
def test_docs_panel_shows_our_page(frontend, request, comfy, artifacts):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed: run `bash scripts/setup_env.sh`")
    chromium = chromium_path()
    if chromium is None:
        _skip_or_fail("Debian's chromium is not installed: run `bash scripts/setup_env.sh`")
    if frontend == "host":
        base_url, version = comfy.base_url, None
    else:
        base_url, version = request.getfixturevalue("comfy_newest_frontend").url, _newest_version()
    node = pack_nodes(comfy)[BROWSER_NODE]
    page_url = help_urls(BROWSER_NODE, node)[1]
    heading = node["display_name"]
    # A fresh user folder would open the template browser over the graph.
    requests.post(base_url + "/settings/Comfy.TutorialCompleted", json=True, timeout=30).raise_for_status()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            fetched: dict[str, int] = {}
            page.on("response", lambda r: fetched.__setitem__(r.url.split("?")[0], r.status) if "/docs/" in r.url else None)
            page.goto(base_url, timeout=PAGE_READY_S * 1000)
            page.wait_for_function("window.app?.vueAppReady && window.app.graph", timeout=PAGE_READY_S * 1000)
            served = page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")
            if version is not None:
                assert served == version, f"--front-end-root did not take: the page is frontend {served}"
            page.evaluate("""(type) => {
                app.graph.clear();
                const node = LiteGraph.createNode(type);
                node.pos = [300, 200];
                app.graph.add(node);
                app.canvas.selectNode(node);
                app.canvas.setDirty(true, true);
            }""", BROWSER_NODE)
            # the selection toolbox's info button (1.32: node library help; 1.58: the right side panel's Info tab)
            info = page.locator("button:has(i[class*='lucide--info'])").first
            info.wait_for(state="visible", timeout=30_000)
            info.click()
            title = page.locator("h1", has_text=heading).first
            title.wait_for(state="visible", timeout=30_000)
            panel = title.locator("xpath=..")
            assert panel.locator("h2", has_text="Common errors").count() == 1
            page.screenshot(path=str(artifacts / f"node_docs_{frontend}_{served}.png"))
        finally:
            browser.close()
    assert fetched.get(base_url + page_url) == 200, fetched
