"""JupyterLab in headless Chromium for the real-browser test (tests/test_browser.py).

:func:`jupyterlab` starts a JupyterLab server on a free port with a token in a folder;
:func:`chromium` starts Debian's chromium through its chromedriver (selenium); :class:`Lab`
opens a notebook, runs all cells from the Run menu and reads what the page shows.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Flags for a headless browser that reaches only the notebook server.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                  "--window-size=1500,1100")
#: User settings for the test's JupyterLab: every cell in the DOM (no windowing), no news pop-up.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def browser_missing() -> str | None:
    """Why the browser test cannot run here (None when chromium, its driver and selenium exist)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} not found (apt-get install chromium chromium-driver; .ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[browser]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(root: Path, log: Path, *, env: dict | None = None, timeout: float = 120):
    """Run JupyterLab on ``root`` (127.0.0.1, free port, random token); yields its base URL.

    Settings and workspaces live in a folder beside ``root``, so no earlier layout is restored.
    """
    port, token = _free_port(), secrets.token_hex(16)
    home = root.parent / "jupyter_home"
    settings = home / "settings"
    for name, values in LAB_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    env = {**os.environ, **(env or {}), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--ServerApp.open_browser=False", "--allow-root", "--LabApp.news_url=None",
               "--LabApp.extension_manager=readonly"]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start on {url}; its log: {log}") from None
                time.sleep(0.5)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def chromium(log: Path):
    """A selenium driver for Debian's headless chromium (flags: :data:`CHROMIUM_FLAGS`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER, log_output=str(log)))
    try:
        yield driver
    finally:
        driver.quit()


# JavaScript run in the page: the texts a reader sees as errors, and the state of the cells.
_CELL_STATE = """
const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
return cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
"""
# A widget output reads "Loading widget..." until its view is drawn or fails ("Error displaying
# widget: ..."), which may come after the kernel is idle.
_WIDGETS_LOADING = """
return [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')]
  .filter(e => e.textContent.trim() === 'Loading widget...').length;
"""
_ERRORS = """
const out = [];
for (const e of document.querySelectorAll(
    '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')) {
  const t = e.textContent;
  if (/Traceback|\\b\\w*(Error|Exception)\\b/.test(t)) out.push(t.slice(0, 2000));
}
for (const e of document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')) {
  if (e.textContent.includes('Error displaying widget')) out.push(e.textContent.slice(0, 500));
}
return out;
"""


class Lab:
    """One JupyterLab page in ``driver`` on the server at ``url`` serving the folder ``root``:
    open a notebook, run it, look at its outputs."""

    def __init__(self, driver, url: str, token: str, root: Path):
        self.driver, self.url, self.token, self.root = driver, url, token, Path(root)

    def wait(self, condition, timeout: float, message: str):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.5).until(condition, message)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def open(self, notebook: str, timeout: float = 120):
        """Open ``notebook`` (relative to the server root) and wait for its kernel to be idle."""
        self.driver.get(f"{self.url}/lab/tree/{notebook}?token={self.token}&reset")
        self.wait(lambda d: self.js("return document.querySelectorAll('.jp-Notebook .jp-Cell').length") > 0,
                  timeout, f"{notebook}: no notebook cells after {timeout} s")
        # the page says "idle" before the kernel exists: ask the server for this notebook's kernel
        self.wait(lambda d: self.kernel_ready(notebook) and self.kernel_status() == "idle", timeout,
                  f"{notebook}: kernel not ready after {timeout} s (page status {self.kernel_status()!r})")

    def _api(self, path: str):
        with urllib.request.urlopen(f"{self.url}/api/{path}?token={self.token}", timeout=10) as r:
            return json.load(r)

    def kernel_ready(self, notebook: str) -> bool:
        """True when ``notebook``'s session has a kernel with a connected client, not running."""
        for session in self._api("sessions"):
            if session["path"] == notebook and session.get("kernel"):
                kernel = self._api(f"kernels/{session['kernel']['id']}")
                return kernel["execution_state"] == "idle" and kernel["connections"] > 0
        return False

    def kernel_status(self) -> str:
        return self.js("const e = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
                       ".jp-Notebook-ExecutionIndicator'); return e ? e.getAttribute('data-status') : '';")

    def menu(self, menu: str, command: str):
        """Click ``menu`` in the menu bar, then the item that runs ``command`` (a command id)."""
        from selenium.webdriver.common.by import By

        for item in self.driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item"):
            if item.text.strip() == menu:
                item.click()
                break
        else:
            raise AssertionError(f"no {menu!r} menu in the menu bar")
        entry = self.wait(lambda d: d.find_element(By.CSS_SELECTOR, f'.lm-Menu-item[data-command="{command}"]'),
                          10, f"no {command} item in the {menu} menu")
        entry.click()

    def run_all(self, timeout: float) -> float:
        """Run All Cells from the Run menu; wait until every code cell ran and every widget was
        drawn, or one failed.

        Returns the seconds it took. Raises ``AssertionError`` with the error texts when a cell
        failed or a widget could not be displayed, ``TimeoutException`` when cells still run.
        """
        start = time.monotonic()
        self.menu("Run", "runmenu:run-all")

        def finished(_):
            prompts = self.js(_CELL_STATE)
            settled = self.kernel_status() == "idle" and not any("*" in p for p in prompts) \
                and not self.js(_WIDGETS_LOADING)
            ran = bool(prompts) and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts)
            return settled and (ran or bool(self.errors()))  # Run All stops at a failing cell

        self.wait(finished, timeout, f"cells still running after {timeout} s: {self.js(_CELL_STATE)}")
        errors = self.errors()
        assert not errors, "error output in the notebook:\n" + "\n---\n".join(errors)
        return time.monotonic() - start

    def errors(self) -> list[str]:
        return self.js(_ERRORS)


# ------------------------------------------------------------------ what a map shows
# ltlib's maps (ltlib.map_controls): class ltlib-map, a layer panel ltlib-layers opened by the
# button ltlib-layers-toggle, a legend panel ltlib-legend; the inspector's output ltlib-inspector.
_MAP_STATE = """
const map = arguments[0];
const visible = e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  return r.width > 2 && r.height > 2 && s.visibility !== 'hidden' && s.display !== 'none'; };
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const text = e => (e.innerText || '').replace(/\\s+/g, ' ').trim();
const overlays = [...map.querySelectorAll('.leaflet-overlay-pane img.leaflet-image-layer')].map(i => ({
  src: i.src, shown: visible(i) && i.complete && i.naturalWidth > 0 && parseFloat(getComputedStyle(i).opacity) > 0,
  box: box(i)}));
const legends = [...map.querySelectorAll('.ltlib-legend')].filter(visible).map(e => ({box: box(e), text: text(e),
  images: [...e.querySelectorAll('img')].filter(i => visible(i) && i.complete && i.naturalWidth > 0).length}));
const controls = [...map.querySelectorAll('.ltlib-layers, .leaflet-control-zoom, .leaflet-control-fullscreen')]
  .filter(visible).map(e => ({box: box(e), what: e.className}));
const layers = [...map.querySelectorAll('.ltlib-layers .widget-checkbox')].filter(visible).map(text);
const slider = map.querySelector('.widget-slider .widget-readout');
return {map: box(map), overlays, legends, controls, layers, year: slider ? slider.textContent.trim() : null};
"""


def overlap(a, b) -> bool:
    """Whether two [left, top, right, bottom] boxes share area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def map_state(lab: Lab, container) -> dict:
    """What the map ``container`` (its .leaflet-container) shows: overlays (src, shown, box),
    legend panels (box, text, images), control boxes, the layer panel's entries, the year."""
    return lab.js(_MAP_STATE, container)
