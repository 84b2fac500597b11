"""The chain 01 -> 05 on a STAC scene, as a user without an account runs it: notebook 01 with
``source="stac"`` on a local catalog of Collection 2 Level-2 COGs (the world the Earth Engine
stand-in serves, tests/stac_catalog.py), 02-04 on its output folder, 05 with Sentinel-1 RTC
from a STAC catalog.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ltlib import io

from .conftest import run_notebook
from .ee_served import World
from .stac_catalog import build_catalog, build_s1_catalog, padded_grid
from .test_chain import FAST, NAMES

pytest.importorskip("odc.stac")
YEARS = (1984, 1995)


@pytest.fixture(scope="module")
def stac_chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("stac_chain")
    world = World()
    landsat = build_catalog(root / "landsat_catalog", world, range(YEARS[0], YEARS[1] + 1))
    s1 = build_s1_catalog(root / "s1_catalog", world, padded_grid(world))
    extra = {
        "01_collect_landsat": dict(source="stac", stac_url=str(landsat), aoi=list(world.bbox), start_year=YEARS[0],
                                   end_year=YEARS[1], indices=["NDVI", "NBR", "TCW"]),
        "05_detect_sar_change": dict(source="stac", stac_url=str(s1), s1_start=world.s1_start, s1_end=world.s1_end),
    }
    out = {}
    for name in NAMES:
        folder = root / name
        folder.mkdir()
        src = folder if name == "01_collect_landsat" else root / "01_collect_landsat"
        out[name] = run_notebook(name, folder, data_dir=str(src), **FAST[name], **extra.get(name, {}))
    return world, out


def test_stac_01_writes_a_scene_folder_02_05_chain_on(stac_chain):
    world, out = stac_chain
    s1 = out["01_collect_landsat"]
    assert s1["scene"]["source"] == "stac" and s1["scene"]["years"] == list(YEARS)
    assert s1["scene"]["indices"] == ["NDVI", "NBR", "TCW"] and s1["scene"]["crs"] == "EPSG:32612"
    folder = Path(s1["_output_dir"])
    assert (folder / "stac_request.json").exists() and (folder / "landsat" / "stac_summary.json").exists()
    for name, s in out.items():
        assert s["status"] == "complete", (name, s.get("sections"))
    # LandTrendr finds the world's disturbance year in the patch
    s2 = out["02_fit_landtrendr"]
    loss, grid, names = io.read_raster(Path(s2["_output_dir"]) / s2["files"]["loss_map"])
    patch = world.in_patch(grid)
    yod = loss[names.index("yod")]
    assert np.mean(yod[patch] == world.disturbance_year) > 0.9
    # Sentinel-1 from STAC: the orbit and dates the world has, on the Landsat grid; the VV rise detected
    s5 = out["05_detect_sar_change"]
    assert s5["period"]["start"] == world.s1_start and s5["n_images"] == len(world.s1_dates()) if "n_images" in s5 \
        else s5["period"]["start"] == world.s1_start
    vv, g, dates = io.read_raster(Path(s5["_output_dir"]) / "sentinel1" / "s1_vv.tif")
    assert g.same_as(grid) and dates == world.s1_dates()
