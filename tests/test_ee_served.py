"""Earth Engine served offline (tests/ee_served.py): ltlib's Earth Engine workflows run end to
end, in this process and in a papermill kernel, with numbers computed from the graphs ltlib
builds on a fake world (Collection 2 Level-2 Landsat and Sentinel-1 GRD scenes).
"""
from __future__ import annotations

import io as _io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from .ee_served import C2_OFFSET, C2_SCALE, World, served_ee, served_ee_in_process  # noqa: F401

ee = pytest.importorskip("ee")
from ltlib import gee, io  # noqa: E402

YEARS = list(range(1984, 1996))
ROOT = Path(__file__).resolve().parents[1]


def _pixels(world, grid):
    """Two pixels: the centre of the disturbed patch, and one outside the patch and the cloud."""
    patch = world.in_patch(grid)
    inside = tuple(np.argwhere(patch)[len(np.argwhere(patch)) // 2])
    clear = ~patch
    for y in YEARS:
        cloud, shadow = world.cloudy("LT05", y, grid)
        clear &= ~cloud & ~shadow
    rows, cols = np.nonzero(clear)
    k = np.argmin(np.hypot(rows - grid.height * 0.7, cols - grid.width * 0.3))
    return inside, (int(rows[k]), int(cols[k]))


def _by_hand(world, grid, year, pixel, num, den):
    """An index x 1000 from the world's LT05 DN at one pixel: LT-GEE's Collection 2 scaling
    ``((DN * 0.0000275) + -0.2) * 10000`` cast to uint16 (truncated), then
    (num - den) / (num + den)."""
    dn = world.landsat_dn("LT05", year, grid)
    a, b = (np.clip(np.trunc((dn[band][pixel] * C2_SCALE + C2_OFFSET) * 10000), 0, 65535) for band in (num, den))
    return 1000 * (a - b) / (a + b)


@pytest.fixture
def landsat(served_ee_in_process, tmp_path_factory):
    out = tmp_path_factory.mktemp("landsat")
    assert gee.initialize("test") is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1984-1995 needs no MSS asset: no warning
        paths = gee.collect_landsat_to_dir(out, aoi=served_ee_in_process.bbox, start_year=YEARS[0],
                                           end_year=YEARS[-1], indices=("NDVI", "NBR"), progress=False)
    return served_ee_in_process, paths


def test_initialize_and_landsat_stacks_match_the_world_by_hand(landsat):
    served, paths = landsat
    world = served.world
    assert set(paths) == {"NDVI", "NBR"}
    ndvi = io.read_stack(paths["NDVI"], expected_years=YEARS)
    nbr = io.read_stack(paths["NBR"], expected_years=YEARS)
    grid = ndvi.grid
    assert grid.same_as(gee.grid_for_aoi(world.bbox)) and grid.crs.to_epsg() == 32612 and 12 <= grid.height <= 18
    # what was asked of the service: one GeoTIFF request per index on the AOI's grid
    reqs = served.requests("computePixels")
    assert len(reqs) == 2 and all(r["shape"] == list(grid.shape) and r["fileFormat"] == "GEO_TIFF" for r in reqs)
    assert reqs[0]["bands"] == [f"yr{y}" for y in YEARS] and reqs[0]["dtype"] == "int16"
    assert "ImageCollection.load" in reqs[0]["algorithms"] and "Reducer.min" in reqs[0]["algorithms"]
    # NDVI and NBR at two pixels equal those computed by hand from the scenes' DN (LT05 is
    # the only summer scene of these years; the January scenes of 1985/1990/1995 are out
    # of the season window)
    for pixel in _pixels(world, grid):
        for k, y in enumerate(YEARS):
            assert abs(ndvi.data[k][pixel] - _by_hand(world, grid, y, pixel, "SR_B4", "SR_B3")) <= 0.5 + 1e-9
            assert abs(nbr.data[k][pixel] - _by_hand(world, grid, y, pixel, "SR_B4", "SR_B7")) <= 0.5 + 1e-9
    # the disturbed patch: NDVI drops by > 300 (x 1000) in the disturbance year, not elsewhere
    d = YEARS.index(world.disturbance_year)
    patch = world.in_patch(grid)
    drop = ndvi.data[d] - ndvi.data[d - 1]
    assert patch.sum() >= 12 and (drop[patch] < -300).all()
    assert np.nanmax(np.abs(drop[~patch])) < 100
    # clouds flagged in QA_PIXEL are masked: nodata in that year only
    cloud, shadow = world.cloudy("LT05", 1985, grid)
    assert cloud.sum() >= 3 and shadow.sum() >= 1
    assert np.isnan(ndvi.data[YEARS.index(1985)][cloud | shadow]).all()
    assert np.isfinite(ndvi.data[YEARS.index(1986)][cloud | shadow]).all()
    assert np.isfinite(ndvi.data).sum() == ndvi.data.size - 3 * (cloud | shadow).sum()  # 1985, 1989, 1993


def test_two_tiles_of_one_grid_agree_with_one(served_ee_in_process, tmp_path):
    bbox = served_ee_in_process.bbox
    one = gee.collect_landsat_to_dir(tmp_path / "one", aoi=bbox, start_year=1988, end_year=1991, indices=("NDVI",),
                                     progress=False)
    tiled = gee.collect_landsat_to_dir(tmp_path / "tiled", aoi=bbox, start_year=1988, end_year=1991,
                                       indices=("NDVI",), progress=False, max_bytes=4 * 2 * 15 * 6)
    reqs = served_ee_in_process.requests("computePixels")
    assert len(reqs) >= 3 and {r["shape"][1] for r in reqs} == {reqs[0]["shape"][1]}
    a, b = io.read_stack(one["NDVI"]).data, io.read_stack(tiled["NDVI"]).data
    np.testing.assert_array_equal(a, b)
    assert np.nanstd(a[0]) > 20  # values differ across space


def _fit_landtrendr(out_dir, served):
    """fit_landtrendr_to_dir on the served AOI with a loss map of magnitude > 300.

    Written against the current signature (``change_params``); the lead is adding
    separate loss and gain maps (``loss=``/``gain=`` ChangeMapParams, ``loss_map`` in the
    returned paths), which is used instead when the signature has it."""
    import inspect

    kw = dict(aoi=served.bbox, start_year=YEARS[0], end_year=YEARS[-1], index="NDVI", ftv=("NBR",),
              download_kw=dict(progress=False))
    if "loss" in inspect.signature(gee.fit_landtrendr_to_dir).parameters:
        from ltlib.params import ChangeMapParams

        kw["loss"] = ChangeMapParams.loss(mag_min=300)
    else:
        kw["change_params"] = dict(delta="loss", sort="greatest", mag_min=300)
    return gee.fit_landtrendr_to_dir(out_dir, **kw)


def _loss_map_path(paths):
    for key in ("loss_map", "change_map"):
        if key in paths:
            return paths[key]
    raise AssertionError(f"no loss/change map among {sorted(paths)}")


def test_fit_landtrendr_yod_is_the_disturbance_year(served_ee_in_process, tmp_path):
    served = served_ee_in_process
    world = served.world
    assert gee.initialize("test") is True
    paths = _fit_landtrendr(tmp_path, served)
    fit = io.read_stack(paths["NDVI_fit"], expected_years=YEARS)
    nbr_fit = io.read_stack(paths["NBR_fit"], expected_years=YEARS)
    grid = fit.grid
    patch = world.in_patch(grid)
    d = YEARS.index(world.disturbance_year)
    assert (fit.data[d - 1][patch] > 650).all() and (fit.data[d][patch] < 250).all()
    assert (nbr_fit.data[d - 1][patch] - nbr_fit.data[d][patch] > 200).all()  # FTV breaks in the same year
    cmap, cgrid, names = io.read_raster(_loss_map_path(paths))
    assert cgrid.same_as(grid) and names[:2] == ["yod", "mag"]
    yod = cmap[names.index("yod")]
    assert (yod[patch] == world.disturbance_year).all()
    assert np.isnan(yod[~patch]).all()  # the background changes by far less than 300
    assert (cmap[names.index("mag")][patch] > 400).all()
    reqs = served.requests("computePixels")
    assert all("TemporalSegmentation.LandTrendr" in r["algorithms"] for r in reqs)
    assert [r["dtype"] for r in reqs[:2]] == ["int16", "int16"] and reqs[-1]["dtype"] == "float32"


def test_collect_s1_writes_the_worlds_dates(served_ee_in_process, tmp_path, capsys):
    served = served_ee_in_process
    world = served.world
    assert gee.initialize("test") is True
    paths = gee.collect_s1_to_dir(tmp_path, aoi=served.bbox, start=served.s1_start, end=served.s1_end,
                                  progress=False)
    assert {p.name for p in paths.values()} == {"s1_vv.tif", "s1_vh.tif"}
    assert f"relative orbit {world.s1_orbit}" in capsys.readouterr().out  # most frequent: 12-day orbit
    data, dates, grid = gee.read_s1_dir(tmp_path)
    assert dates == served.s1_dates == world.s1_dates(served.s1_start, served.s1_end)
    assert len(dates) == 7 and dates[0] == served.s1_start and grid.transform.a == 10.0
    assert data.shape == (len(dates), 2, grid.height, grid.width) and 40 <= grid.width <= 50
    assert np.isfinite(data).all()  # the two slices of each day mosaic to full cover
    patch = world.in_patch(grid)
    after = np.array([d >= world.s1_change_date for d in dates])
    vv = data[:, 0]
    ratio = np.nanmean(vv[after][:, patch]) / np.nanmean(vv[~after][:, patch])
    assert 3 < ratio < 5 and 0.8 < np.nanmean(vv[after][:, ~patch]) / np.nanmean(vv[~after][:, ~patch]) < 1.25
    assert 0 < np.nanmedian(data[:, 1]) < np.nanmedian(vv) < 1  # linear VH < VV
    kinds = [(r["kind"], r.get("algorithms", [])) for r in served.requests()]
    assert [k for k, _ in kinds] == ["computeValue", "computeValue", "computePixels", "computePixels"]
    assert "AggregateFeatureCollection.histogram" in kinds[0][1] and "AggregateFeatureCollection.array" in kinds[1][1]
    assert "ImageCollection.mosaic" in kinds[2][1]


def test_unsupported_calls_name_what_is_missing(served_ee_in_process):
    with pytest.raises(NotImplementedError, match="Image.sqrt"):
        ee.Image(4).sqrt().getInfo()
    with pytest.raises(NotImplementedError, match="getMapId"):
        ee.data.getMapId({"image": ee.Image(1)})
    assert ee.Number(3).getInfo() == 3
    info = ee.ImageCollection("COPERNICUS/S1_GRD_FLOAT").filterDate("2019-04-02", "2019-04-03").getInfo()
    assert info["type"] == "ImageCollection" and len(info["features"]) == 2  # two slices of one pass
    assert [b["id"] for b in info["features"][0]["bands"]] == ["VV", "VH", "angle"]


def test_npy_format_and_request_limits(served_ee_in_process):
    grid = {"dimensions": {"width": 3, "height": 2}, "crsCode": "EPSG:32612",
            "affineTransform": {"scaleX": 30.0, "shearX": 0.0, "translateX": 401730.0, "shearY": 0.0,
                                "scaleY": -30.0, "translateY": 4486590.0}}
    img = ee.Image.constant([1.5, 2]).rename(["a", "b"]).toFloat()
    raw = ee.data.computePixels({"expression": img, "fileFormat": "NPY", "grid": grid})
    arr = np.load(_io.BytesIO(raw))
    assert arr.dtype.names == ("a", "b") and arr.shape == (2, 3) and arr["a"].dtype == np.float32
    assert (arr["a"] == 1.5).all() and (arr["b"] == 2).all()
    masked = ee.Image(7).toInt16().updateMask(ee.Image(0))  # masked pixels come back as 0
    assert (ee.data.computePixels({"expression": masked, "fileFormat": "NUMPY_NDARRAY", "grid": grid})
            ["constant"] == 0).all()
    with pytest.raises(ee.EEException, match="did not match"):
        ee.data.computePixels({"expression": img, "fileFormat": "NPY", "grid": grid, "bandIds": ["c"]})
    big = dict(grid, dimensions={"width": 4000, "height": 4000})
    with pytest.raises(ee.EEException, match="request size"):
        ee.data.computePixels({"expression": ee.Image.constant([1] * 2), "fileFormat": "GEO_TIFF", "grid": big})


def test_uninstall_restores_ee(tmp_path):
    from .ee_served import installed

    before = (ee.Initialize, ee.data.computePixels, ee.data.computeValue, os.environ.get("CLOUDSDK_CONFIG"))
    with installed(World(), credentials_dir=tmp_path / "gcloud"):
        assert gee.has_credentials() and ee.Initialize is not before[0]
    assert (ee.Initialize, ee.data.computePixels, ee.data.computeValue,
            os.environ.get("CLOUDSDK_CONFIG")) == before


def test_papermill_kernel_serves_earth_engine_via_startup_file(served_ee, tmp_path):
    """The served_ee fixture's IPython startup file runs in a papermill-launched kernel."""
    import nbformat
    import papermill as pm

    assert served_ee.startup_file.exists() and os.environ["IPYTHONDIR"] == str(served_ee.ipython_dir)
    out = tmp_path / "out"
    code = f"""\
import json, os, sys
from pathlib import Path
from ltlib import gee, io
assert gee.initialize('x')
paths = gee.collect_landsat_to_dir(Path({str(out)!r}) / 'landsat', aoi={tuple(served_ee.bbox)!r},
                                   start_year=1988, end_year=1991, indices=('NDVI',), progress=False)
stack = io.read_stack(paths['NDVI'])
Path({str(out)!r}, 'done.json').write_text(json.dumps({{
    'pid': os.getpid(), 'served': 'tests.ee_served' in sys.modules,
    'ipythondir': os.environ.get('IPYTHONDIR'), 'shape': list(stack.data.shape),
    'patch_ndvi': [float(v) for v in stack.data[:, stack.data.shape[1] // 2, stack.data.shape[2] // 2]]}}))
"""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, tmp_path / "served.ipynb")
    pm.execute_notebook(str(tmp_path / "served.ipynb"), str(tmp_path / "served_out.ipynb"), cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)
    done = json.loads((out / "done.json").read_text())
    assert done["served"] and done["pid"] != os.getpid() and done["ipythondir"] == str(served_ee.ipython_dir)
    assert done["shape"][0] == 4
    reqs = served_ee.requests()
    assert not [r for r in reqs if r["kind"] == "install_error"]
    assert [r["kind"] for r in reqs] == ["computePixels"] and reqs[0]["pid"] == done["pid"]
    assert reqs[0]["bands"] == ["yr1988", "yr1989", "yr1990", "yr1991"]


def test_parity_check_script_runs_end_to_end_on_the_served_world(served_ee_in_process, capsys):
    """scripts/ee_parity_check.py's path (ltlib.gee.parity.run) with the service served
    offline: requests on the reference's EPSG:32610 grid, Earth Engine's LandTrendr (here the
    port, in the interpreter) and the local port agree on every pixel."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ee_parity_check", ROOT / "scripts" / "ee_parity_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--project", "test"]) == 0
    out = capsys.readouterr().out
    assert "agree on the vertices of 5 of 5 pixels" in out
    reqs = served_ee_in_process.requests("computePixels")
    assert len(reqs) == 2 and all(r["crs"] == "EPSG:32610" and r["shape"] == [3, 3] for r in reqs)


def test_tasseled_cap_on_earth_engine_comes_back_in_ltlib_units(served_ee_in_process, tmp_path):
    """Earth Engine works in LT-GEE's units (TCG x 10000); a scene and a LandTrendr run from it
    are in ltlib's (x 1000): the scene reader converts the stacks, fit_scene the thresholds
    (x 10 to the server) and the fitted stacks and maps (/ 10 back)."""
    from ltlib import landtrendr, scene
    from ltlib.params import ChangeMapParams

    served = served_ee_in_process
    sc = scene.load(None, indices=("TCG", "NDVI"), use_gee=True, aoi=served.bbox, years=(YEARS[0], YEARS[-1]),
                    ee_project="test", download_dir=tmp_path / "01", quiet=True)
    # downloaded with tag scale 0.0001 (x 10000), read and rewritten in ltlib's x 1000
    assert any("scale tag 0.0001" in n and "TCG x 1000" in n for n in sc.notes), sc.notes
    assert sc.stack("TCG").scale == 0.001
    run = landtrendr.fit_scene(sc, index="TCG", ftv=["NDVI"], loss=ChangeMapParams.loss(100),
                               gain=ChangeMapParams.gain(100), use_gee=True, download_dir=tmp_path / "02")
    ee_fit = io.read_stack(tmp_path / "02" / "earth_engine" / "tcg_fit.tif")
    np.testing.assert_allclose(run.fitted["TCG"], ee_fit.data / 10, rtol=1e-6)
    with rasterio_open(tmp_path / "02" / "earth_engine" / "loss_map.tif") as src:
        assert json.loads(src.tags()["params"])["mag_min"] == 1000  # 100 x 1000 -> 1000 x 10000
        mag = src.read(2)
    np.testing.assert_allclose(run.loss["mag"], mag / 10, rtol=1e-6, equal_nan=True)
    assert np.nanmax(np.abs(run.fitted["TCG"])) < 500  # TCG x 1000 of vegetation, not x 10000


def rasterio_open(path):
    import rasterio

    return rasterio.open(path)
