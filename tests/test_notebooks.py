"""Every notebook: stored clean with one parameters cell, and runs top to bottom on the sample."""
import json
from pathlib import Path

import numpy as np
import pytest

from ltlib import io

from .conftest import DATA, NOTEBOOKS, notebook_names

NAMES = notebook_names()
COMMON_PARAMETERS = ("data_dir", "output_dir", "use_gee", "ee_project")


def _nb(name):
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())


def test_the_five_notebooks_exist():
    assert NAMES[:1] == ["01_collect_landsat"]
    assert all(n[:2].isdigit() and n[2] == "_" for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs_and_with_one_parameters_cell(name):
    nb = _nb(name)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{name} has {len(params)} cells tagged 'parameters'"
    src = "".join(params[0]["source"])
    for p in COMMON_PARAMETERS:
        assert f"\n{p} =" in "\n" + src, f"{name}: parameter {p} missing"
    assert f'output_dir = "../outputs/{name}"' in src
    # nothing below the parameters cell hard-codes the sample path
    below = code[code.index(params[0]) + 1:]
    assert not any("data/sample" in "".join(c["source"]) for c in below)


@pytest.mark.parametrize("name", NAMES)
def test_papermill_sees_every_parameter(name):
    """`papermill --help-notebook` and `-p` rely on papermill parsing each line of the cell."""
    import re

    from papermill.inspection import _infer_parameters
    from papermill.iorw import load_notebook_node

    nb = load_notebook_node(str(NOTEBOOKS / f"{name}.ipynb"))
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = re.findall(r"^(\w+) =", cell.source, flags=re.M)
    inferred = [p.name for p in _infer_parameters(nb)]
    assert inferred == assigned, f"papermill cannot parse {sorted(set(assigned) - set(inferred))}"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_writes_summary(executed_notebook, name):
    summary = executed_notebook(name)
    out = Path(summary["_output_dir"])
    assert (out / f"{name}.ipynb").exists()
    assert len(summary) > 3
    # every GeoTIFF the notebook wrote is on the sample's grid (CRS and transform kept)
    for tif in out.glob("*.tif"):
        _, grid, _ = io.read_raster(tif)
        assert grid.crs.to_epsg() == 32612, tif


def test_collect_landsat_summary(executed_notebook):
    s = executed_notebook("01_collect_landsat")
    sc = s["scene"]
    assert sc["source"] == "sample" and "SIMULATED" in sc["provenance"]
    assert sc["years"] == [1972, 2022] and sc["n_years"] == 51
    assert (sc["height"], sc["width"]) == (200, 200)
    c = s["completeness"]
    assert c["years_without_data"] == [1974, 1978, 1983]
    assert 0.05 < c["missing_fraction"] < 0.2
    assert c["missing_fraction_mss"] > 4 * c["missing_fraction_tm_oli"]
    assert sum(s["truth_class_counts"].values()) == 200 * 200
    assert s["sections"] == {"trajectories_by_class": "ran"}
    out = Path(s["_output_dir"])
    miss, grid, names = io.read_raster(out / s["files"]["missing_fraction"])
    assert names == ["missing_fraction"] and grid.shape == (200, 200)
    assert np.nanmean(miss) == pytest.approx(c["missing_fraction"], abs=1e-3)
    # a complete scene folder for the next notebooks: the same stacks, truth and Sentinel-1
    for key in ("landsat_ndvi", "landsat_tcw", "landsat_truth", "s1_vv", "s1_vh", "scene"):
        assert (out / s["files"][key]).exists(), key
    assert (out / "landsat" / "ndvi.tif").read_bytes() == (DATA / "landsat" / "ndvi.tif").read_bytes()
    # the timelapse: one frame per year, a GIF Pillow reads
    from PIL import Image

    assert s["timelapse"]["n_frames"] == 51 and s["timelapse"]["first_year"] == 1972
    with Image.open(out / s["files"]["timelapse_gif"]) as gif:
        assert gif.format == "GIF" and gif.n_frames == 51


MAP_CELL = "maps.show("


@pytest.mark.parametrize("name", NAMES)
def test_map_cells_leave_a_static_image(executed_notebook, name):
    """An HTML render (nbconvert, GitHub) shows no widget: each map cell also leaves a PNG."""
    summary = executed_notebook(name)
    nb = json.loads((Path(summary["_output_dir"]) / f"{name}.ipynb").read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and MAP_CELL in "".join(c["source"])]
    assert len(cells) == 1, f"{name}: {len(cells)} map cells"
    for cell in cells:
        kinds = [set(o.get("data", {})) for o in cell["outputs"]]
        assert not any(o["output_type"] == "error" for o in cell["outputs"])
        assert any("application/vnd.jupyter.widget-view+json" in k for k in kinds), f"{name}: no map widget"
        assert any("image/png" in k for k in kinds), f"{name}: the map cell has no static image"


@pytest.mark.parametrize("name", [n for n in NAMES if n[:2] in ("01", "02", "03", "04")])
def test_notebook_tells_the_reader_to_click_the_map(name):
    nb = _nb(name)
    text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "Click a pixel on the map" in text
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert MAP_CELL in code


def _code_cells(name):
    nb = _nb(name)
    return [c for c in nb["cells"] if c["cell_type"] == "code"
            and "parameters" not in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_thin(name):
    """House style: no function or class definitions, no code cell over 12 lines but parameters."""
    import re

    for i, cell in enumerate(_code_cells(name)):
        src = "".join(cell["source"])
        assert not re.search(r"^\s*(def|class|lambda)\b", src, flags=re.M), f"{name} cell {i} defines a function"
        n = len([line for line in src.splitlines() if line.strip()])
        assert n <= 12, f"{name} cell {i} has {n} lines"
    src = "".join("".join(c["source"]) for c in _code_cells(name))
    assert "summary.json" not in src and "json.dumps" not in src, f"{name} builds summary.json by hand"
    assert "rep.write()" in src, f"{name} does not end with the report"


def test_fit_landtrendr_recovery_and_change_area(executed_notebook):
    """02 on the sample: the recovery map, its agreement with the simulated truth, and the loss
    area estimated from the truth-labelled sample beside the mapped area."""
    s = executed_notebook("02_fit_landtrendr")
    out = Path(s["_output_dir"])
    data, grid, names = io.read_raster(out / s["files"]["recovery_map"])
    assert names == ["dindex", "rri", "r80p", "yryr", "y2r", "status"] and grid.shape == (200, 200)
    rec = s["recovery"]
    assert rec["index"] == "NBR" and rec["series"] == "fitted"
    counts = rec["counts"]
    assert sum(counts[k] for k in ("no_loss", "recovered", "not_yet_recovered", "undefined")) == 200 * 200
    assert counts["recovered"] == int((data[5] == 1).sum()) and counts["window_incomplete"] > 0
    assert rec["medians"]["y2r"] == float(np.nanmedian(data[4]))
    agree = s["recovery_agreement"]
    assert agree["n_compared"] > 10_000 and agree["status_agreement"] > 0.75
    assert agree["r80p"]["pearson_r"] > 0.8 and agree["dindex"]["pearson_r"] > 0.6
    area = s["change_area"]
    assert area["reference"] == "truth" and area["n_points"] == sum(area["design"]["n_per_stratum"].values())
    loss = area["estimates"]["loss"]
    # the truth's census loss area (dist_mag > loss_mag_min) lies within the 95% interval
    truth, _, tnames = io.read_raster(DATA / "truth" / "landsat_truth.tif")
    census = float(((truth[tnames.index("dist_year")] > 0) & (truth[tnames.index("dist_mag")] > 150)).sum() * 0.09)
    assert abs(loss["area_ha"] - census) <= loss["ci_ha"], (loss, census)
    assert area["mapped_ha"]["loss"] == pytest.approx(s["landtrendr"]["loss_fraction"] * 3600, rel=1e-3)
    assert (out / s["files"]["change_area_estimates"]).exists() and (out / s["files"]["change_area"]).exists()
