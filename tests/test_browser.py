"""Notebooks 01, 02 and 05 in JupyterLab in headless Chromium, as a reader uses them (marker
``browser``; make test-browser, run by .ci/run): Run All without error output or "Error
displaying widget", then on each map: the data overlay and its legend are shown and cover no
control, the layer panel opens on click and switching the top layer off hides its overlay and
legend entry, the year slider (01) changes the overlay, and a click on the map (01, 02) shows
the inspector's trajectory plot; no JavaScript error in the page (offline resource loads aside).

Screenshots: ``$LTLIB_BROWSER_OUT`` (default ``outputs/browser/``), ``<notebook>_<step>.png``.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from . import browser
from .conftest import DATA, NOTEBOOKS, ROOT

pytestmark = pytest.mark.browser

#: The notebooks run in the browser, in order (05 reads 02's outputs beside its own).
NAMES = ("01_collect_landsat", "02_fit_landtrendr", "05_detect_sar_change")
#: Notebooks whose maps have the click inspector (ltlib's maps in notebooks 01-04).
INSPECTOR = {"01_collect_landsat", "02_fit_landtrendr"}
RUN_TIMEOUT = 1500  # s per notebook on 2 busy cores (02 compiles LandTrendr's numba kernels)
WAIT = 60  # s for anything the page does after a click


@pytest.fixture(scope="module")
def shots() -> Path:
    out = Path(os.environ.get("LTLIB_BROWSER_OUT", ROOT / "outputs" / "browser")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {out}")
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a folder with parameterised copies of :data:`NAMES`, and a browser on it."""
    missing = browser.browser_missing()
    if missing:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"browser test: {missing}")
    import papermill

    base = tmp_path_factory.mktemp("browser")
    root = base / "notebooks"
    root.mkdir()
    for name in NAMES:  # papermill's own parameter cell, as make demo would run them
        nb = papermill.iorw.load_notebook_node(str(NOTEBOOKS / f"{name}.ipynb"))
        nb = papermill.parameterize.parameterize_notebook(
            nb, {"data_dir": str(DATA), "output_dir": str(base / "outputs" / name)})
        papermill.iorw.write_ipynb(nb, str(root / f"{name}.ipynb"))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with browser.jupyterlab(root, base / "jupyterlab.log", env=env) as (url, token), \
            browser.chromium(base / "chromedriver.log") as driver:
        yield browser.Lab(driver, url, token, root)


def _shot(lab, shots: Path, name: str, step: str, element=None) -> Path:
    if element is not None:
        lab.js("arguments[0].scrollIntoView({block: 'center'})", element)
    path = shots / f"{name}_{step}.png"
    lab.driver.save_screenshot(str(path))
    return path


def _maps(lab):
    from selenium.webdriver.common.by import By

    found = lab.driver.find_elements(By.CSS_SELECTOR, ".ltlib-map .leaflet-container, "
                                                      ".leaflet-container.ltlib-map")
    assert found, "no map with class 'ltlib-map' in the outputs (ltlib.maps marks every map it makes)"
    return found


def _check_map(lab, container, name: str, i: int, shots: Path):
    """Overlay and legend shown and covering no control; the layer panel opens on click, and
    switching the top layer off hides its overlay and its legend entry."""
    from selenium.webdriver.common.by import By

    lab.js("arguments[0].scrollIntoView({block: 'center'})", container)
    state = lab.wait(lambda d: (s := browser.map_state(lab, container))["legends"]
                     and any(o["shown"] for o in s["overlays"]) and s, WAIT,
                     f"{name} map {i}: no data overlay with a legend shown: {browser.map_state(lab, container)}")
    shown = [o for o in state["overlays"] if o["shown"]]
    assert all(browser.overlap(o["box"], state["map"]) for o in shown), f"{name} map {i}: overlay off the map"
    legend = state["legends"][0]
    assert legend["images"] or re.search(r"\d", legend["text"]), f"{name} map {i}: empty legend {legend}"
    for control in state["controls"]:
        assert not browser.overlap(legend["box"], control["box"]), \
            f"{name} map {i}: the legend covers the control {control['what']!r}"
    _shot(lab, shots, name, f"map{i}")

    toggle = container.find_element(By.CSS_SELECTOR, ".ltlib-layers-toggle")
    toggle.click()  # selenium refuses a click that another element would receive
    opened = lab.wait(lambda d: (s := browser.map_state(lab, container))["layers"] and s, WAIT,
                      f"{name} map {i}: the layer panel did not open on click")
    _shot(lab, shots, name, f"map{i}_layers")
    top = opened["layers"][0]  # the panel lists the top layer first
    assert top in legend["text"], f"{name} map {i}: top layer {top!r} has no legend entry: {legend['text']!r}"
    box = container.find_element(By.CSS_SELECTOR, ".ltlib-layers .widget-checkbox input")
    box.click()
    hidden = lab.wait(lambda d: (s := browser.map_state(lab, container))
                      and sum(o["shown"] for o in s["overlays"]) < len(shown)
                      and all(top not in g["text"] for g in s["legends"]) and s, WAIT,
                      f"{name} map {i}: switching {top!r} off did not hide its overlay and legend entry")
    box.click()  # back on
    lab.wait(lambda d: sum(o["shown"] for o in browser.map_state(lab, container)["overlays"]) == len(shown),
             WAIT, f"{name} map {i}: switching {top!r} on again did not show it")
    toggle.click()
    lab.wait(lambda d: not browser.map_state(lab, container)["layers"], WAIT,
             f"{name} map {i}: the layer panel did not close on a second click")
    print(f"{name} map {i}: layers {opened['layers']}; legend without the top layer: "
          f"{[g['text'][:80] for g in hidden['legends']]}")
    return state


def _move_year_slider(lab, container, name: str, shots: Path):
    """Drag the map's year slider; the year readout and an overlay image must change."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.action_chains import ActionChains

    before = browser.map_state(lab, container)
    handle = container.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
    ActionChains(lab.driver).click_and_hold(handle).move_by_offset(40, 0).release().perform()

    def changed(_):
        now = browser.map_state(lab, container)
        moved = now["year"] != before["year"]
        redrawn = {o["src"] for o in now["overlays"]} != {o["src"] for o in before["overlays"]}
        return moved and redrawn and now

    after = lab.wait(changed, WAIT, f"{name}: moving the year slider from {before['year']} did not change "
                                    "the overlay image")
    assert int(after["year"]) > int(before["year"])
    _shot(lab, shots, name, "slider", container)


def _inspect_pixel(lab, container, state: dict, name: str, shots: Path):
    """Click the middle of the data overlay; the inspector shows a plot and the pixel's position."""
    from selenium.webdriver.common.action_chains import ActionChains

    left, top, right, bottom = next(o["box"] for o in state["overlays"] if o["shown"])
    mleft, mtop = state["map"][0], state["map"][1]
    # offsets from the map's centre (selenium's origin) to the overlay's centre
    cx, cy = (left + right) / 2 - (mleft + state["map"][2]) / 2, (top + bottom) / 2 - (mtop + state["map"][3]) / 2
    lab.js("arguments[0].scrollIntoView({block: 'center'})", container)
    ActionChains(lab.driver).move_to_element_with_offset(container, int(cx), int(cy)).click().perform()

    def plotted(_):
        out = lab.js("""return [...document.querySelectorAll('.ltlib-inspector')].map(e => ({
            img: [...e.querySelectorAll('img')].some(i => i.complete && i.naturalWidth > 50),
            text: e.innerText}))""")
        return next((o for o in out if o["img"]), None)

    found = lab.wait(plotted, WAIT, f"{name}: a click on the map showed no plot in the '.ltlib-inspector' output")
    for word in ("row", "col", "lon", "lat"):
        assert re.search(rf"\b{word}\w*\W+-?\d", found["text"], re.I), \
            f"{name}: the inspector's text does not give the pixel's {word}: {found['text'][:300]!r}"
    inspector = lab.driver.find_element("css selector", ".ltlib-inspector")
    _shot(lab, shots, name, "inspector", inspector)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_in_jupyterlab(lab, shots, name):
    start = time.monotonic()
    lab.open(f"{name}.ipynb")
    try:
        seconds = lab.run_all(RUN_TIMEOUT)
        maps = _maps(lab)
        first = None
        for i, container in enumerate(maps):
            state = _check_map(lab, container, name, i, shots)
            first = first or (container, state)
        container, state = first
        if name == "01_collect_landsat":
            _move_year_slider(lab, container, name, shots)
        if name in INSPECTOR:
            _inspect_pixel(lab, container, state, name, shots)
        errors = lab.errors()
        assert not errors, f"{name}: error output after using the widgets:\n" + "\n---\n".join(errors)
        js_errors = [e["message"] for e in lab.driver.get_log("browser")  # since the last notebook
                     if e["level"] == "SEVERE" and "net::ERR_" not in e["message"]]  # offline tiles, fonts
        assert not js_errors, f"{name}: JavaScript errors in the page:\n" + "\n".join(js_errors)
    except BaseException:
        print(f"{name}: failed; the page as it was: {_shot(lab, shots, name, 'failed')}")
        raise
    print(f"{name}: Run All {seconds:.0f} s, {len(maps)} map(s), total {time.monotonic() - start:.0f} s")


def test_error_output_fails_run_all(lab):
    """The checks the notebooks pass must catch errors: a widget view of a model that does not
    exist ("Error displaying widget") and a cell that raises fail Run All."""
    import nbformat

    bogus = {"application/vnd.jupyter.widget-view+json": {"model_id": "no-such-model", "version_major": 2,
                                                          "version_minor": 0}}
    cells = (f"display({bogus!r}, raw=True)", "raise ValueError('ltlib browser check')", "print('after')")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root / "zz_error.ipynb")
    lab.open("zz_error.ipynb")
    with pytest.raises(AssertionError) as failed:
        lab.run_all(WAIT * 2)
    assert "ValueError: ltlib browser check" in str(failed.value)
    assert "Error displaying widget" in str(failed.value)
