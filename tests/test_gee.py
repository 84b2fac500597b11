"""ltlib.gee (and its tiled downloader ltlib.gee.download), offline: object graphs (structure, snapshot, and numbers via a
small numpy evaluator of the serialised graph), tile planning, the tiled downloader with
fake fetch functions, Drive task polling, and initialize() without credentials.

Tests marked ``ee`` need the live service and credentials; they are skipped by default.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from ltlib import config, io, maps

from .ee_offline import Evaluator, Img, ee_offline, graph_text, invocations, make_image  # noqa: F401

ee = pytest.importorskip("ee")
from ltlib import gee  # noqa: E402
from ltlib.gee import auth, download as dl  # noqa: E402

SNAPSHOTS = Path(__file__).parent / "snapshots"
SMALL_BBOX = (-112.16, 40.52, -112.156, 40.523)  # ~ 12 x 12 px of 30 m in the pit


# --- helpers -------------------------------------------------------------------------------
def _millis(y, m, d):
    return int(dt.datetime(y, m, d, tzinfo=dt.timezone.utc).timestamp() * 1000)


def _dn(refl):
    """Collection 2 Level-2 DN (an integer, as stored) for a surface reflectance."""
    return np.round((np.asarray(refl, float) - config.C2_SR_OFFSET) / config.C2_SR_SCALE)


def _sr(refl):
    """LT-GEE's surface reflectance of a scene band, by hand from ``scaleLTdata``:
    ``((DN * 0.0000275) + -0.2) * 10000`` then ``toUint16()`` (truncated, clamped to 0..65535)."""
    return np.clip(np.trunc(((_dn(refl) * 0.0000275) + -0.2) * 10000), 0, 65535)


def _scene(shape, date, refl, qa=0, sensor="LT05", **props):
    """A fake Collection 2 L2 scene: ``refl`` maps blue..swir2 to reflectance (scalar or (H, W))."""
    bands = {}
    for name, src in zip(gee.BANDS, gee.SR_BANDS[sensor]):
        bands[src] = np.broadcast_to(_dn(refl[name]), shape).astype(float)
    bands["QA_PIXEL"] = np.broadcast_to(np.asarray(qa, float), shape).astype(float)
    return make_image(shape, {"system:time_start": _millis(*date), **props}, **bands)


def _refl(blue=0.05, green=0.08, red=0.1, nir=0.3, swir1=0.2, swir2=0.12):
    return dict(blue=blue, green=green, red=red, nir=nir, swir1=swir1, swir2=swir2)


def _ndvi1000(r):
    """LT-GEE's NDVI x 1000 (normalizedDifference of the uint16 bands) of reflectances ``r``."""
    nir, red = _sr(r["nir"]), _sr(r["red"])
    return 1000 * (nir - red) / (nir + red)


def _cols(**by_sensor):
    return {config.EE_LANDSAT_C2_L2[s]: v for s, v in by_sensor.items()}


# --- harness -------------------------------------------------------------------------------
def test_algorithms_json_has_landtrendr(ee_offline):
    from ee import apitestcase

    sig = apitestcase.GetAlgorithms()["TemporalSegmentation.LandTrendr"]
    names = [a["name"] for a in sig["args"]]
    assert names[:2] == ["timeSeries", "maxSegments"] and "minObservationsNeeded" in names


def test_offline_harness_blocks_server_calls(ee_offline):
    from .ee_offline import NetworkCall

    with pytest.raises(NetworkCall):
        ee.Number(1).getInfo()


# --- AOI and grid --------------------------------------------------------------------------
def test_grid_for_bingham_bbox_is_utm12_30m_and_covers_aoi():
    grid = gee.grid_for_aoi(config.AOI_BBOX)
    assert grid.crs.to_epsg() == 32612
    t = grid.transform
    assert (t.a, t.e) == (30.0, -30.0) and t.c % 30 == 0 and t.f % 30 == 0
    assert grid.shape == (482, 478)  # the seed box is ~14.3 km x 14.1 km
    from rasterio.warp import transform

    xs, ys = transform("EPSG:4326", "EPSG:32612", [config.AOI_BBOX[0], config.AOI_BBOX[2]],
                       [config.AOI_BBOX[1], config.AOI_BBOX[3]])
    left, bottom, right, top = grid.bounds
    assert left <= min(xs) and right >= max(xs) and bottom <= min(ys) and top >= max(ys)
    assert right - max(xs) < 30 + 200 and min(xs) - left < 30 + 200  # snapped, not padded


def test_aoi_forms_agree(tmp_path):
    w, s, e, n = SMALL_BBOX
    poly = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    feature = {"type": "Feature", "properties": {}, "geometry": poly}
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    for aoi in (SMALL_BBOX, list(SMALL_BBOX), poly, feature, path, str(path)):
        assert gee.aoi_bounds(aoi) == pytest.approx(SMALL_BBOX)
    assert gee.utm_crs(-112.1, 40.5) == "EPSG:32612" and gee.utm_crs(151.2, -33.9) == "EPSG:32756"
    with pytest.raises(FileNotFoundError, match="not found"):
        gee.aoi_bounds(tmp_path / "missing.geojson")
    with pytest.raises(ValueError, match="west, south, east, north"):
        gee.aoi_bounds((-112.0, 40.6, -112.2, 40.5))
    with pytest.raises(ValueError, match="GeoJSON"):
        gee.aoi_bounds({"type": "Nope"})


# --- composites: graph structure and snapshot ---------------------------------------------
def test_composite_graph_names_collections_filters_and_band_maths(ee_offline):
    col = gee.annual_composites(config.AOI_BBOX, 1984, 2022)
    inv = invocations(col)
    names = [n for n, _ in inv]
    loads = {a["id"] for n, a in inv if n == "ImageCollection.load"}
    assert loads == set(config.EE_LANDSAT_C2_L2.values())
    assert "Filter.intersects" in names and "Filter.dateRangeContains" in names
    # season window built per year on the server from 06-20 and 09-20
    ymd = {(a["month"], a["day"]) for n, a in inv if n == "Date.fromYMD"}
    assert {(6, 20), (9, 20)} <= ymd
    seq = [a for n, a in inv if n == "List.sequence"]
    assert seq == [{"start": 1984, "end": 2022}]
    # Collection 2 scaling and LT-GEE's QA bits: cloud (3), shadow (4), snow (5)
    assert any(n == "Image.multiply" and a["image2"] == {"functionInvocationValue": {
        "arguments": {"value": {"constantValue": 2.75e-05}}, "functionName": "Image.constant"}} for n, a in inv)
    qa = {json.dumps(a["image2"]) for n, a in inv if n == "Image.bitwiseAnd"}
    assert qa == {json.dumps({"functionInvocationValue": {"arguments": {"value": {"constantValue": 56}},
                                                          "functionName": "Image.constant"}})}
    assert [a["bandNames"] for n, a in inv if n == "Image.normalizedDifference"] == [["nir", "red"]]
    assert "Reducer.min" in names and "reduce.median" in names  # medoid = min distance to the median
    sel = [a for n, a in inv if n == "Image.select" and a.get("newNames") == list(gee.BANDS)]
    assert {tuple(a["bandSelectors"]) for a in sel} == {gee.SR_BANDS[s] for s in gee.SENSORS}


def test_composite_graph_options_change_the_graph(ee_offline):
    base = gee.annual_composites(config.AOI_BBOX, 2000, 2002)
    water = invocations(gee.annual_composites(config.AOI_BBOX, 2000, 2002, mask=("cloud", "shadow", "snow", "water")))
    qa = [a["image2"]["functionInvocationValue"]["arguments"]["value"]["constantValue"]
          for n, a in water if n == "Image.bitwiseAnd"]
    assert set(qa) == {56 + 128}
    median = [n for n, _ in invocations(gee.annual_composites(config.AOI_BBOX, 2000, 2002, method="median"))]
    assert "Reducer.min" not in median and "reduce.median" in median
    nbr = invocations(gee.annual_composites(config.AOI_BBOX, 2000, 2002, index="NBR"))
    assert [a["bandNames"] for n, a in nbr if n == "Image.normalizedDifference"] == [["nir", "swir2"]]
    assert graph_text(base) != graph_text(gee.annual_composites(config.AOI_BBOX, 2000, 2002, season=("07-01", "08-31")))


def test_composite_graph_snapshot(ee_offline):
    """A known AOI and years give a stable graph (set LTLIB_UPDATE_SNAPSHOTS=1 to refresh)."""
    text = graph_text(gee.annual_composites(config.AOI_BBOX, 1984, 1986))
    assert text == graph_text(gee.annual_composites(config.AOI_BBOX, 1984, 1986))  # deterministic
    snap = SNAPSHOTS / "annual_composites_ndvi_bingham_1984_1986.json"
    if os.environ.get("LTLIB_UPDATE_SNAPSHOTS") or not snap.exists():
        snap.parent.mkdir(exist_ok=True)
        snap.write_text(text)
        if not os.environ.get("LTLIB_UPDATE_SNAPSHOTS"):
            pytest.fail(f"snapshot {snap.name} was missing and has been written; rerun")
    assert text == snap.read_text(), "composite graph changed; review and set LTLIB_UPDATE_SNAPSHOTS=1"


@pytest.mark.parametrize("kw, match", [
    (dict(season=("6-20", "09-20")), "MM-DD"),
    (dict(season=("02-30", "09-20")), "day is out of range"),
    (dict(index="SAVI"), "unknown index"),
    (dict(sr_type="uint8"), "sr_type"),
    (dict(mask="fmask"), "preset"),
    (dict(exclude=["LT05_038032_19900710"]), "exclude"),
    (dict(method="mean"), "method"),
    (dict(mask=("clouds",)), "unknown mask"),
])
def test_composite_bad_options(ee_offline, kw, match):
    with pytest.raises(ValueError, match=match):
        gee.annual_composites(config.AOI_BBOX, 2000, 2001, **kw)


def test_composite_bad_years(ee_offline):
    with pytest.raises(ValueError, match="start_year <= end_year"):
        gee.annual_composites(config.AOI_BBOX, 2001, 2000)


# --- composites: numbers, through the evaluator ------------------------------------------
def test_composite_masks_clouds_and_picks_the_medoid(ee_offline):
    shape = (1, 3)
    a = _refl(red=0.10, nir=0.30)
    b = _refl(red=0.08, nir=0.34, blue=0.06)
    c = _refl(red=0.12, nir=0.28, blue=0.04)
    cloud = _refl(blue=0.5, green=0.5, red=0.5, nir=0.55, swir1=0.5, swir2=0.5)
    qa_cloud = np.array([[0, 1 << 3, 0]])  # scene 4: cloud flagged at pixel 1 only
    qa_all = np.array([[0, 0, (1 << 4)]])  # pixel 2 shadow in every other scene
    scenes = [
        _scene(shape, (1990, 7, 1), a, qa_all),
        _scene(shape, (1990, 7, 17), b, qa_all),
        _scene(shape, (1990, 8, 2), c, qa_all),
        _scene(shape, (1990, 8, 18), cloud, qa_cloud),
        _scene(shape, (1990, 5, 1), cloud, 0),  # outside the season window
        _scene(shape, (1991, 7, 1), b, 0),
    ]
    ev = Evaluator(shape, collections=_cols(LT05=scenes))
    out = ev.run(gee.annual_composites(SMALL_BBOX, 1990, 1992, index=("NDVI", "NBR")))
    assert [img.props["year"] for img in out] == [1990, 1991, 1992]
    assert out[0].props["system:time_start"] == _millis(1990, 8, 1)
    ndvi90 = out[0].values("NDVI")[0]
    # medoid over {a, b, c, cloud} at pixel 0: the 4-scene median is closest to scene a
    stack = np.array([[v[k] for k in gee.BANDS] for v in (a, b, c, cloud)])
    d = ((stack - np.median(stack, axis=0)) ** 2).sum(1)
    assert np.argmin(d) == 0
    assert ndvi90[0] == pytest.approx(_ndvi1000(a), abs=1e-6)
    # pixel 1: the flagged scene is masked, medoid of {a, b, c} is a (middle values)
    assert ndvi90[1] == pytest.approx(_ndvi1000(a), abs=1e-6)
    # pixel 2: shadow in scenes a, b, c; the unflagged bright scene is all that is left
    assert ndvi90[2] == pytest.approx(_ndvi1000(cloud), abs=1e-6)
    assert out[0].values("NBR")[0, 0] == pytest.approx(1000 * (_sr(a["nir"]) - _sr(a["swir2"]))
                                                       / (_sr(a["nir"]) + _sr(a["swir2"])))
    assert out[1].values("NDVI")[0, 0] == pytest.approx(_ndvi1000(b))
    assert np.isnan(out[2].values("NDVI")).all()  # a year with no scene stays, fully masked


def test_composite_median_and_water_mask(ee_offline):
    shape = (1, 2)
    scenes = [_scene(shape, (2000, 7, d), _refl(red=r, nir=0.3), np.array([[0, 1 << 7]]))
              for d, r in ((1, 0.05), (10, 0.07), (20, 0.12))]
    ev = Evaluator(shape, collections=_cols(LE07=scenes))
    keep = ev.run(gee.annual_composites(SMALL_BBOX, 2000, 2000, method="median"))[0].values("NDVI")[0]
    assert keep == pytest.approx([_ndvi1000(_refl(red=0.07))] * 2)
    masked = ev.run(gee.annual_composites(SMALL_BBOX, 2000, 2000, method="median",
                                          mask=("cloud", "shadow", "snow", "water")))[0].values("NDVI")[0]
    assert masked[0] == pytest.approx(_ndvi1000(_refl(red=0.07))) and np.isnan(masked[1])


def test_oli_harmonisation_is_an_option_and_tasseled_cap_in_lt_gee_units(ee_offline):
    shape = (1, 1)
    oli = _refl(blue=0.04, green=0.07, red=0.09, nir=0.32, swir1=0.21, swir2=0.13)
    ev = Evaluator(shape, collections=_cols(LC08=[_scene(shape, (2015, 7, 1), oli, sensor="LC08")],
                                            LC09=[_scene(shape, (2023, 7, 1), oli, sensor="LC09")]))
    # default (LT-GEE 0.2.0): no harmonisation; Tasseled Cap on reflectance x 10000
    out = ev.run(gee.annual_composites(SMALL_BBOX, 2015, 2015, index=("NDVI", "TCB", "TCG", "TCW")))[0]
    assert out.values("NDVI")[0, 0] == pytest.approx(_ndvi1000(oli), abs=1e-9)
    for tc in ("TCB", "TCG", "TCW"):
        expected = sum(c * _sr(oli[b]) for c, b in zip(config.TC_COEFFS[tc], gee.BANDS))
        assert out.values(tc)[0, 0] == pytest.approx(expected, abs=1e-6)
    # harmonize=True: Roy et al. 2016 on reflectance x 10000, before the uint16 cast
    harm = ev.run(gee.annual_composites(SMALL_BBOX, 2015, 2015, harmonize=True))[0]
    etm = {k: np.trunc((((_dn(oli[k]) * 0.0000275) + -0.2) * 10000 - i * 10000) / sl)
           for k, i, sl in zip(gee.BANDS, gee.OLI_TO_ETM_INTERCEPT, gee.OLI_TO_ETM_SLOPE)}
    assert harm.values("NDVI")[0, 0] == pytest.approx(1000 * (etm["nir"] - etm["red"]) / (etm["nir"] + etm["red"]))
    assert harm.values("NDVI")[0, 0] != pytest.approx(_ndvi1000(oli), abs=0.5)  # harmonisation matters
    # LC09 is read from its own collection with the same band mapping
    out23 = ev.run(gee.annual_composites(SMALL_BBOX, 2023, 2023))[0]
    assert out23.values("NDVI")[0, 0] == pytest.approx(_ndvi1000(oli), abs=1e-9)


def test_season_crossing_new_year_uses_previous_year(ee_offline):
    shape = (1, 1)
    scenes = [_scene(shape, (1999, 12, 20), _refl(red=0.05)), _scene(shape, (2000, 12, 20), _refl(red=0.2))]
    ev = Evaluator(shape, collections=_cols(LT05=scenes))
    out = ev.run(gee.annual_composites(SMALL_BBOX, 2000, 2000, season=("12-01", "02-28")))[0]
    assert out.values("NDVI")[0, 0] == pytest.approx(_ndvi1000(_refl(red=0.05)))


def test_llr_asset_flattened_to_year_bands(ee_offline):
    shape = (1, 2)
    fit = np.empty(shape, object)
    fit[0, 0] = np.arange(51) * 10.0 + 100
    fit[0, 1] = np.arange(51) * -3.0
    asset = make_image(shape, ndvi_fit=fit)
    ev = Evaluator(shape, images={"projects/me/assets/LandsatLinkr/041032/landtrendr": asset})
    out = ev.run(gee.llr_fitted_stack("projects/me/assets/LandsatLinkr/041032/landtrendr", "NDVI", 1972, 1983,
                                      llr_ftv=("NDVI",)))
    assert out.names == config.year_band_names(range(1972, 1984))
    assert out.values("yr1975")[0].tolist() == [130.0, -9.0]
    with pytest.raises(ValueError, match="outside the asset"):
        gee.llr_fitted_stack("x", "TCB", 1972, 1990, asset_end_year=1985)


def test_collection_to_stack_names_bands_by_year(ee_offline):
    shape = (1, 1)
    ev = Evaluator(shape, collections=_cols(LT05=[_scene(shape, (1990 + k, 7, 1), _refl(red=0.05 + 0.01 * k))
                                                  for k in range(3)]))
    stack = ev.run(gee.collection_to_stack(gee.annual_composites(SMALL_BBOX, 1990, 1992), 1990, 1992, "NDVI"))
    assert stack.names == ["yr1990", "yr1991", "yr1992"]
    assert stack.values("yr1992")[0, 0] == pytest.approx(_ndvi1000(_refl(red=0.07)))


# --- LandTrendr ----------------------------------------------------------------------------
def _lt_call(obj):
    calls = [a for n, a in invocations(obj) if n == "TemporalSegmentation.LandTrendr"]
    assert len(calls) == 1
    return {k: v for k, v in calls[0].items() if k != "timeSeries"}


def test_landtrendr_defaults_are_gee_defaults(ee_offline):
    lt = gee.landtrendr(gee.annual_composites(config.AOI_BBOX, 1984, 2022))
    assert _lt_call(lt) == dict(maxSegments=6, spikeThreshold=0.9, vertexCountOvershoot=3,
                                preventOneYearRecovery=False, recoveryThreshold=0.25, pvalThreshold=0.1,
                                bestModelProportion=0.75, minObservationsNeeded=6)


def test_landtrendr_seed_parameters_reach_the_algorithm(ee_offline):
    col = gee.annual_composites(config.AOI_BBOX, 1984, 2022)
    args = _lt_call(gee.landtrendr(col, **config.LANDTRENDR_PARAMS))
    assert args["preventOneYearRecovery"] is True and args["pvalThreshold"] == 0.05
    args = _lt_call(gee.landtrendr(col, max_segments=4, spike_threshold=0.75, min_observations_needed=10))
    assert (args["maxSegments"], args["spikeThreshold"], args["minObservationsNeeded"]) == (4, 0.75, 10)


def test_landtrendr_keywords_match_local_segment():
    import inspect

    sig = inspect.signature(gee.landtrendr)
    ours = {k: p.default for k, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert ours == {**gee.LT_DEFAULTS, "distdir": None, "index": None}
    local = pytest.importorskip("ltlib.landtrendr")
    theirs = {k: p.default for k, p in inspect.signature(local.segment).parameters.items()
              if k in ours}
    assert theirs == {k: v for k, v in ours.items() if k in theirs}


@pytest.mark.parametrize("kw, match", [
    (dict(max_segments=0), "max_segments"), (dict(spike_threshold=1.5), "spike_threshold"),
    (dict(pval_threshold=0), "pval_threshold"), (dict(distdir=0), "distdir"),
    (dict(min_observations_needed=2.5), "min_observations_needed"), (dict(index="NDXI"), "index must be one of"),
])
def test_landtrendr_rejects_bad_parameters(ee_offline, kw, match):
    with pytest.raises(ValueError, match=match):
        gee.landtrendr(ee.ImageCollection([]), **kw)


def test_landtrendr_direction_from_the_index(ee_offline):
    col = ee.ImageCollection([])

    def distdir(img):  # the property set on the result (the input's multiplier is the same value)
        (args,) = [a for n, a in invocations(img) if n == "Element.set" and a.get("key") == "ltlib_distdir"]
        return args["value"]

    assert distdir(gee.landtrendr(col, index="TCB")) == 1
    assert distdir(gee.landtrendr(col)) == -1
    with pytest.warns(UserWarning, match="distdir=1 contradicts index 'NBR', which drops on disturbance"):
        gee.landtrendr(col, index="nbr", distdir=1)


def test_landtrendr_input_flips_the_first_band_and_keeps_ftv(ee_offline):
    shape = (1, 1)
    ev = Evaluator(shape, collections=_cols(LT05=[_scene(shape, (1990, 7, 1), _refl())]))
    col = gee.annual_composites(SMALL_BBOX, 1990, 1990, index=("NDVI", "TCW"))
    img = ev.run(gee.landtrendr_input(col, -1))[0]
    assert img.names == ["lt_input", "ndvi", "tcw"]
    assert img.values("lt_input")[0, 0] == pytest.approx(-_ndvi1000(_refl()))
    assert img.values("ndvi")[0, 0] == pytest.approx(_ndvi1000(_refl()))
    tcb = ev.run(gee.landtrendr_input(gee.annual_composites(SMALL_BBOX, 1990, 1990, index="TCB"), 1))[0]
    assert tcb.values("lt_input")[0, 0] == pytest.approx(tcb.values("tcb")[0, 0])


def test_fitted_stack_flattens_fit_band(ee_offline):
    shape = (1, 1)
    fit = np.empty(shape, object)
    fit[0, 0] = np.array([700.0, 650.0, 300.0])
    ev = Evaluator(shape, images={"lt": make_image(shape, nbr_fit=fit)})
    out = ev.run(gee.fitted_stack(ee.Image("lt"), "NBR", 2000, 2002))
    assert out.names == ["yr2000", "yr2001", "yr2002"] and out.values("yr2002")[0, 0] == 300.0


# --- change map ----------------------------------------------------------------------------
def _lt_pixel(years, vert_years, vert_vals, distdir=-1):
    """A LandTrendr array (4, T) for a fitted path through the vertices (index orientation)."""
    fit = np.interp(years, vert_years, vert_vals)
    return np.stack([years, fit * distdir, fit * distdir, np.isin(years, vert_years).astype(float)])


YEARS = np.arange(1990, 2011)
# NDVI x 1000: loss 800->300 (1990-1995), gain 300->700 (1995-2005), small loss 700->650 (2005-2010)
PIXEL = _lt_pixel(YEARS, [1990, 1995, 2005, 2010], [800, 300, 700, 650])


def _run_change(arrays, rmse, **kw):
    shape = arrays.shape
    ev = Evaluator(shape, images={"lt": make_image(shape, LandTrendr=arrays, rmse=np.full(shape, rmse))})
    return ev.run(gee.change_map_image(ee.Image("lt"), int(YEARS[0]), int(YEARS[-1]), **kw))


def _one(arr):
    out = np.empty((1, 1), object)
    out[0, 0] = arr
    return out


@pytest.mark.parametrize("kw, expected", [
    (dict(), (1991, 500, 5, 800, 100)),
    (dict(sort="least"), (2006, 50, 5, 700, 10)),
    (dict(sort="newest"), (2006, 50, 5, 700, 10)),
    (dict(sort="oldest"), (1991, 500, 5, 800, 100)),
    (dict(sort="newest", mag_min=100), (1991, 500, 5, 800, 100)),
    (dict(year_range=(2000, 2010)), (2006, 50, 5, 700, 10)),
    (dict(preval_min=750), (1991, 500, 5, 800, 100)),
    (dict(delta="gain"), (1996, 400, 10, 300, 40)),
    (dict(delta="gain", dur_max=11), (1996, 400, 10, 300, 40)),
    (dict(delta="gain", dur_max=10), None),
    (dict(mag_min=500), None),
    (dict(year_range=(1992, 2005)), None),
])
def test_change_map_selects_like_lt_gee(ee_offline, kw, expected):
    out = _run_change(_one(PIXEL), 25.0, **kw)
    assert out.names == ["yod", "mag", "dur", "preval", "rate", "dsnr"]
    got = [out.values(n)[0, 0] for n in out.names]
    if expected is None:
        assert np.isnan(got).all()
    else:
        assert got[:5] == pytest.approx(list(expected)) and got[5] == pytest.approx(expected[1] / 25.0)


def test_change_map_fastest_slowest_and_tcb_orientation(ee_offline):
    years = YEARS
    px = _lt_pixel(years, [1990, 1992, 2000, 2010], [800, 600, 200, 200])  # loss 200 in 2 y, 400 in 8 y
    assert _run_change(_one(px), 10.0, sort="fastest").values("dur")[0, 0] == 2
    assert _run_change(_one(px), 10.0, sort="slowest").values("dur")[0, 0] == 8
    # TCB: disturbance raises brightness (distdir +1): a rise is a loss
    tcb = _lt_pixel(years, [1990, 2000, 2010], [1000, 1600, 1500], distdir=1)
    out = _run_change(_one(tcb), 10.0, distdir=1)
    assert (out.values("yod")[0, 0], out.values("mag")[0, 0], out.values("preval")[0, 0]) == (1991, 600, 1000)


def test_change_map_edge_pixels(ee_offline):
    arrays = np.empty((1, 4), object)
    arrays[0, 0] = _lt_pixel(YEARS, [1990, 2010], [800, 400])  # one segment: a slow loss
    arrays[0, 1] = _lt_pixel(YEARS, [1990, 2010], [500, 500])  # flat: no change
    arrays[0, 2] = None  # LandTrendr gave no output (masked)
    arrays[0, 3] = _lt_pixel(YEARS, [1990, 2000, 2010], [500, 300, 100])  # two equal losses
    out = _run_change(arrays, 20.0)
    yod, mag = out.values("yod")[0], out.values("mag")[0]
    assert (yod[0], mag[0], out.values("rate")[0, 0], out.values("dsnr")[0, 0]) == (1991, 400, 20, 20)
    assert np.isnan(yod[1]) and np.isnan(yod[2])
    assert yod[3] in (1991, 2001) and mag[3] == 200


def test_change_map_mmu_removes_small_patches_of_the_same_year(ee_offline):
    shape = (3, 5)
    big = _lt_pixel(YEARS, [1990, 1995, 2010], [800, 300, 300])
    other = _lt_pixel(YEARS, [1990, 2003, 2010], [800, 300, 300])
    flat = _lt_pixel(YEARS, [1990, 2010], [500, 500])
    arrays = np.empty(shape, object)
    for idx in np.ndindex(shape):
        arrays[idx] = flat
    for idx in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]:  # 5 pixels, 8-connected via the diagonal
        arrays[idx] = big
    arrays[0, 4] = other  # a lone pixel with another year
    arrays[1, 4] = big  # same year as the patch but not connected to it
    yod_all = _run_change(arrays, 10.0).values("yod")
    assert np.isfinite(yod_all).sum() == 7
    yod = _run_change(arrays, 10.0, mmu=5).values("yod")
    assert sorted(map(tuple, np.argwhere(np.isfinite(yod)))) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]
    assert np.nanmax(yod) == 1991


def test_change_map_bad_options(ee_offline):
    lt = ee.Image("lt")
    for kw, match in [(dict(delta="both"), "delta"), (dict(sort="biggest"), "sort"), (dict(mmu=0), "mmu"),
                      (dict(year_range=(2000, 1990)), "year_range"), (dict(year_range=(1950, 1960)), "overlap"),
                      (dict(dur_max=0), "dur_max")]:
        with pytest.raises(ValueError, match=match):
            gee.change_map_image(lt, 1990, 2010, **kw)


def test_change_map_options_match_local_change_map(ee_offline):
    """The server-side change map takes the options of ltlib.landtrendr.change_map."""
    local = pytest.importorskip("ltlib.landtrendr")
    if not hasattr(local, "change_map"):
        pytest.skip("ltlib.landtrendr.change_map not available")
    import inspect

    params = set(inspect.signature(local.change_map).parameters)
    opts = {"delta", "sort", "year_range", "mag_min", "dur_max", "preval_min", "mmu"}
    assert opts <= params, f"local change_map lacks {opts - params}"


# --- Sentinel-1 ----------------------------------------------------------------------------
def test_s1_collection_filters(ee_offline):
    inv = invocations(gee.s1_collection(config.AOI_BBOX, "2019-04-02", "2020-10-29", relative_orbit=20))
    assert {a["id"] for n, a in inv if n == "ImageCollection.load"} == {"COPERNICUS/S1_GRD_FLOAT"}
    eqs = {(a["leftField"], a["rightValue"]) for n, a in inv if n == "Filter.equals"}
    assert eqs == {("instrumentMode", "IW"), ("orbitProperties_pass", "ASCENDING"), ("relativeOrbitNumber_start", 20)}
    assert {a["rightValue"] for n, a in inv if n == "Filter.listContains"} == {"VV", "VH"}


def test_s1_collection_keeps_the_right_scenes(ee_offline):
    shape = (1, 1)

    def s1(date, **p):
        props = dict(instrumentMode="IW", transmitterReceiverPolarisation=["VV", "VH"],
                     orbitProperties_pass="ASCENDING", relativeOrbitNumber_start=20)
        props.update(p)
        return make_image(shape, {"system:time_start": _millis(*date), **props},
                          VV=np.full(shape, 0.1), VH=np.full(shape, 0.02), angle=np.full(shape, 35.0))

    scenes = [s1((2019, 4, 2)), s1((2019, 4, 14), instrumentMode="EW"),
              s1((2019, 4, 26), transmitterReceiverPolarisation=["VV"]),
              s1((2019, 5, 8), orbitProperties_pass="DESCENDING"), s1((2019, 5, 20), relativeOrbitNumber_start=93),
              s1((2019, 6, 1)), s1((2019, 6, 13))]
    ev = Evaluator(shape, collections={config.EE_S1: scenes})
    out = ev.run(gee.s1_collection(SMALL_BBOX, "2019-04-02", "2019-06-01", relative_orbit=20))
    assert [img.props["system:time_start"] for img in out] == [_millis(2019, 4, 2), _millis(2019, 6, 1)]
    assert out[0].names == ["VV", "VH"]
    assert len(ev.run(gee.s1_collection(SMALL_BBOX, "2019-04-02", "2019-06-13"))) == 4  # any orbit
    with pytest.raises(ValueError, match="before start"):
        gee.s1_collection(SMALL_BBOX, "2019-06-13", "2019-04-02")
    with pytest.raises(ValueError, match="orbit_pass"):
        gee.s1_collection(SMALL_BBOX, "2019-04-02", "2019-06-13", orbit_pass="UP")


def test_s1_daily_mosaics_merge_slices_of_one_day(ee_offline):
    shape = (1, 2)
    a = make_image(shape, {"system:time_start": _millis(2019, 4, 2) + 1000}, VV=np.array([[0.1, np.nan]]),
                   VH=np.array([[0.01, np.nan]]))
    b = make_image(shape, {"system:time_start": _millis(2019, 4, 2) + 5000}, VV=np.array([[np.nan, 0.3]]),
                   VH=np.array([[np.nan, 0.03]]))
    ev = Evaluator(shape, collections={"s1": [a, b]})
    ev.f_ImageCollection_mosaic = lambda collection: _mosaic(ev, collection)
    out = ev.run(gee.s1_daily_mosaics(ee.ImageCollection("s1"), ["2019-04-02"]))
    assert len(out) == 1 and out[0].props["date"] == "2019-04-02"
    assert out[0].values("VV")[0].tolist() == [0.1, 0.3]


def _mosaic(ev, collection):
    names = collection[0].names
    bands = []
    for j, n in enumerate(names):
        vals = np.empty(ev.shape, object)
        mask = np.zeros(ev.shape, bool)
        for idx in np.ndindex(ev.shape):
            vals[idx] = 0.0
            for img in collection:  # later images on top
                if img.bands[j][2][idx]:
                    vals[idx], mask[idx] = img.bands[j][1][idx], True
        bands.append((n, vals, mask))
    return Img(bands)


# --- tile planning -------------------------------------------------------------------------
def _coverage(tiles, shape):
    count = np.zeros(shape, int)
    for t in tiles:
        count[t.row_off:t.row_off + t.height, t.col_off:t.col_off + t.width] += 1
    return count


def test_tiles_for_bingham_stack_cover_once_under_limits():
    grid = gee.grid_for_aoi(config.AOI_BBOX)  # EPSG:32612, 30 m
    tiles = dl.plan_tiles(grid.height, grid.width, 51, "int16")
    total = dl.estimate_bytes(grid.shape, 51, "int16")
    assert total == grid.height * grid.width * 51 * 2 and total > 16 * 2**20
    assert len(tiles) == 2  # 23 MB in two full-width strips of <= 16 MB
    assert (_coverage(tiles, grid.shape) == 1).all()
    assert all(dl.estimate_bytes((t.height, t.width), 51, "int16") <= 16 * 2**20 for t in tiles)
    # tile transforms line up with the grid: tile 1 starts tiles[0].height rows lower
    t1 = tiles[1].transform(grid)
    assert t1.f == grid.transform.f - 30.0 * tiles[0].height and t1.c == grid.transform.c


def test_tiles_for_a_large_region_at_the_48mb_limit():
    # 200 km x 150 km of 30 m in UTM 12N, 51 int16 bands: 3.4 GB
    h, w = 5000, 6667
    tiles = dl.plan_tiles(h, w, 51, "int16", max_bytes=dl.EE_MAX_REQUEST_BYTES, max_side=dl.EE_MAX_SIDE)
    assert (_coverage(tiles, (h, w)) == 1).all()
    sizes = [dl.estimate_bytes((t.height, t.width), 51, "int16") for t in tiles]
    assert max(sizes) <= 48 * 2**20 and sum(sizes) == h * w * 102
    assert len(tiles) <= 2 * np.ceil(h * w * 102 / (48 * 2**20))  # not wastefully small
    # one band of bytes, 40000 px wide: the 32768 px side limit cuts the rows
    tiles = dl.plan_tiles(10, 40000, 1, "uint8", max_bytes=dl.EE_MAX_REQUEST_BYTES, max_side=dl.EE_MAX_SIDE)
    assert max(t.width for t in tiles) <= 32768 and (_coverage(tiles, (10, 40000)) == 1).all()


@pytest.mark.parametrize("args, kw, match", [
    ((0, 10, 1, "int16"), {}, "positive size"), ((10, 10, 2000, "int16"), {}, "bands"),
    ((10, 10, 1, "int16"), dict(max_bytes=49 * 2**20), "48 MB"), ((10, 10, 1, "int16"), dict(max_side=40000), "max_side"),
    ((10, 10, 100, "float32"), dict(max_bytes=100), "exceeds"),
])
def test_plan_tiles_rejects_bad_requests(args, kw, match):
    with pytest.raises(ValueError, match=match):
        dl.plan_tiles(*args, **kw)


# --- downloader ------------------------------------------------------------------------------
def _grid(h=37, w=23):
    return io.Grid("EPSG:32612", Affine(30.0, 0, 405000.0, 0, -30.0, 4490010.0), h, w)


def _truth(grid, n_bands):
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    return np.stack([rows * 100 + cols + 1000 * b for b in range(n_bands)]).astype(np.int16)


def _fetch_from(truth, calls=None):
    def fetch(tile):
        if calls is not None:
            calls.append(tile.index)
        return truth[:, tile.row_off:tile.row_off + tile.height, tile.col_off:tile.col_off + tile.width]
    return fetch


def test_download_assembles_tiles_into_a_readable_stack(tmp_path, capsys):
    grid = _grid()
    truth = _truth(grid, 3)
    truth[1, 5, 7] = config.NODATA_INT16  # a masked pixel
    calls = []
    out = dl.download_to_geotiff(_fetch_from(truth, calls), grid, tmp_path / "ndvi.tif",
                                 band_names=config.year_band_names([2000, 2001, 2002]), dtype="int16",
                                 nodata=config.NODATA_INT16, tags={"name": "NDVI", "scale": 0.001},
                                 max_bytes=600, progress=False)
    n_tiles = len(dl.plan_tiles(grid.height, grid.width, 3, "int16", max_bytes=600))
    assert n_tiles > 4 and sorted(calls) == list(range(n_tiles))
    assert "3 bands x 37 x 23 px (int16)" in capsys.readouterr().out
    stack = io.read_stack(out, expected_years=[2000, 2001, 2002])
    assert stack.grid.same_as(grid) and stack.scale == 0.001 and stack.name == "NDVI"
    expected = truth.astype(np.float32)
    expected[1, 5, 7] = np.nan
    np.testing.assert_array_equal(stack.data, expected)
    assert not (tmp_path / "ndvi.tif.tiles").exists()
    with pytest.raises(FileExistsError):
        dl.download_to_geotiff(_fetch_from(truth), grid, out, band_names=["yr2000", "yr2001", "yr2002"],
                               progress=False)


def test_failing_tile_is_retried_with_backoff_then_succeeds(tmp_path):
    grid = _grid()
    truth = _truth(grid, 2)
    failures = {"n": 0}
    sleeps = []

    def flaky(tile):
        if tile.index == 1 and failures["n"] < 2:
            failures["n"] += 1
            raise ConnectionError("503 Service Unavailable")
        return _fetch_from(truth)(tile)

    out = dl.download_to_geotiff(flaky, grid, tmp_path / "x.tif", band_names=["a", "b"], nodata=-32768,
                                 max_bytes=800, sleep=sleeps.append, backoff=1.5, progress=False)
    assert sleeps == [1.5, 3.0]
    data, _, names = io.read_raster(out)
    np.testing.assert_array_equal(data, truth.astype(np.float32)) and names == ["a", "b"]


def test_failing_tile_is_reported_and_the_rest_resumes(tmp_path):
    grid = _grid()
    truth = _truth(grid, 2)
    calls = []
    sleeps = []

    def broken(tile):
        calls.append(tile.index)
        if tile.index == 2:
            raise RuntimeError("User memory limit exceeded.")
        return _fetch_from(truth)(tile)

    kw = dict(band_names=["a", "b"], nodata=-32768, max_bytes=800, progress=False)
    with pytest.raises(dl.DownloadError, match=r"1 of \d+ tiles failed after 3 attempts.*tile 2 .*memory limit"):
        dl.download_to_geotiff(broken, grid, tmp_path / "x.tif", retries=2, sleep=sleeps.append, **kw)
    assert calls.count(2) == 3 and sleeps == [2.0, 4.0] and not (tmp_path / "x.tif").exists()
    n_tiles = len(set(calls))
    assert len(list((tmp_path / "x.tif.tiles").glob("tile_*.npy"))) == n_tiles - 1
    resumed = []
    dl.download_to_geotiff(_fetch_from(truth, resumed), grid, tmp_path / "x.tif", **kw)
    assert resumed == [2]  # only the missing tile is fetched again
    np.testing.assert_array_equal(io.read_raster(tmp_path / "x.tif")[0], truth.astype(np.float32))


def test_resume_never_mixes_tiles_of_another_request(tmp_path, capsys):
    """An interrupted download of image A, then a download of image B to the same file: A's
    tiles are removed (the request fingerprint differs), B is fetched whole."""
    grid = _grid()
    a, b = _truth(grid, 2), _truth(grid, 2) + 7
    kw = dict(band_names=["a", "b"], nodata=-32768, max_bytes=800, progress=False, retries=0)

    def a_then_fail(tile):
        if tile.index == 3:
            raise ConnectionError("reset")
        return _fetch_from(a)(tile)

    with pytest.raises(dl.DownloadError):
        dl.download_to_geotiff(a_then_fail, grid, tmp_path / "x.tif", request_key="image A", **kw)
    kept = len(list((tmp_path / "x.tif.tiles").glob("tile_*.npy")))
    assert kept >= 3
    calls = []
    dl.download_to_geotiff(_fetch_from(b, calls), grid, tmp_path / "x.tif", request_key="image B", **kw)
    assert f"{kept} tile(s) of another request" in capsys.readouterr().out
    assert sorted(calls) == list(range(len(dl.plan_tiles(37, 23, 2, "int16", max_bytes=800))))
    np.testing.assert_array_equal(io.read_raster(tmp_path / "x.tif")[0], b.astype(np.float32))
    assert not (tmp_path / "x.tif.tiles").exists()
    # other bands or another grid are other requests too
    g2 = _grid(37, 24)
    assert dl.request_fingerprint(grid, ["a", "b"], "int16", "k") != dl.request_fingerprint(g2, ["a", "b"], "int16", "k")
    assert dl.request_fingerprint(grid, ["a", "b"], "int16", "k") != dl.request_fingerprint(grid, ["a", "c"], "int16", "k")
    assert dl.request_fingerprint(grid, ["a"], "int16", "k") == dl.request_fingerprint(grid, ["a"], np.int16, "k")


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "bands"])
def test_damaged_finished_tile_is_fetched_again(tmp_path, capsys, damage):
    grid = _grid()
    truth = _truth(grid, 2)
    kw = dict(band_names=["a", "b"], nodata=-32768, max_bytes=800, progress=False, retries=0, request_key="same")

    def fail_last(tile):
        if tile.index == 4:
            raise ConnectionError("reset")
        return _fetch_from(truth)(tile)

    with pytest.raises(dl.DownloadError):
        dl.download_to_geotiff(fail_last, grid, tmp_path / "x.tif", **kw)
    victim = sorted((tmp_path / "x.tif.tiles").glob("tile_00001_*.npy"))[0]
    if damage == "empty":
        victim.write_bytes(b"")
    elif damage == "garbage":
        victim.write_bytes(b"\x93NUMPY not really")
    elif damage == "truncated":  # a valid header, half the pixels
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    else:
        np.save(victim, np.zeros((3,) + np.load(victim).shape[1:], np.int16))
    calls = []
    dl.download_to_geotiff(_fetch_from(truth, calls), grid, tmp_path / "x.tif", **kw)
    assert sorted(calls) == [1, 4]
    out = capsys.readouterr().out
    assert victim.name in out and ("unreadable" in out or "expected int16 (2," in out)
    np.testing.assert_array_equal(io.read_raster(tmp_path / "x.tif")[0], truth.astype(np.float32))


def test_outage_stops_early_and_resumes(tmp_path):
    """Every request fails (network down): three tiles in a row after their retries, then stop,
    instead of 2+4+8+16 s of backoff for every one of the tiles."""
    grid = _grid()
    truth = _truth(grid, 2)
    n_tiles = len(dl.plan_tiles(37, 23, 2, "int16", max_bytes=400))
    assert n_tiles > 6
    calls, sleeps = [], []

    def down(tile):
        calls.append(tile.index)
        raise ConnectionError("Failed to establish a new connection")

    kw = dict(band_names=["a", "b"], nodata=-32768, max_bytes=400, progress=False)
    with pytest.raises(dl.DownloadError, match=r"stopped after 3 tiles in a row failed \(3 attempts each; last: tile 2 "
                                               r".*ConnectionError.*looks down\. 0 of \d+ tiles are kept.*resume"):
        dl.download_to_geotiff(down, grid, tmp_path / "x.tif", retries=2, sleep=sleeps.append, **kw)
    assert calls == [0, 0, 0, 1, 1, 1, 2, 2, 2] and sleeps == [2.0, 4.0] * 3
    resumed = []
    dl.download_to_geotiff(_fetch_from(truth, resumed), grid, tmp_path / "x.tif", **kw)
    assert sorted(resumed) == list(range(n_tiles))
    np.testing.assert_array_equal(io.read_raster(tmp_path / "x.tif")[0], truth.astype(np.float32))


def test_wrong_tile_shape_is_an_error(tmp_path):
    grid = _grid()
    with pytest.raises(dl.DownloadError, match=r"shape \(1, .*expected \(2,"):
        dl.download_to_geotiff(lambda t: np.zeros((1, t.height, t.width)), grid, tmp_path / "x.tif",
                               band_names=["a", "b"], retries=0, progress=False)


def test_download_image_float_fill_becomes_nan_and_s1_reads_as_k2hw(ee_offline, tmp_path):
    grid = _grid(8, 6)
    dates = ["2019-04-02", "2019-04-14", "2019-04-26"]
    vv = np.full((3, 8, 6), 0.1, np.float32)
    vv[2, 0, 0] = gee.FLOAT_FILL
    vh = vv * 0.2
    vh[2, 0, 0] = gee.FLOAT_FILL
    for pol, arr in (("vv", vv), ("vh", vh)):
        gee.download_image(ee.Image(0), grid, tmp_path / f"s1_{pol}.tif", band_names=["d1", "d2", "d3"],
                           descriptions=dates, dtype="float32", fetch=_fetch_from(arr), progress=False)
    data, got_dates, got_grid = gee.read_s1_dir(tmp_path)
    assert data.shape == (3, 2, 8, 6) and got_dates == dates and got_grid.same_as(grid)
    assert np.isnan(data[2, :, 0, 0]).all() and data[0, 1, 3, 3] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="direct-download limit"):
        gee.download_image(ee.Image(0), grid, tmp_path / "big.tif", band_names=["a"], max_direct_bytes=10,
                           fetch=_fetch_from(vv))


def test_computepixels_fetch_request_and_georeference_check(ee_offline, monkeypatch):
    from rasterio.io import MemoryFile

    grid = _grid(40, 30)
    tile = dl.Tile(3, 20, 10, 20, 15)
    requests = []

    def fake_compute_pixels(req, shift=0.0):
        requests.append(req)
        g = req["grid"]
        a = g["affineTransform"]
        with MemoryFile() as mem:
            with mem.open(driver="GTiff", height=g["dimensions"]["height"], width=g["dimensions"]["width"],
                          count=len(req["bandIds"]), dtype="int16", crs=g["crsCode"],
                          transform=Affine(a["scaleX"], 0, a["translateX"] + shift, 0, a["scaleY"],
                                           a["translateY"])) as dst:
                dst.write(np.ones((len(req["bandIds"]), 20, 15), np.int16))
            return mem.read()

    monkeypatch.setattr(ee.data, "computePixels", fake_compute_pixels)
    arr = gee.computepixels_fetch(ee.Image(1), grid, ["yr2000", "yr2001"])(tile)
    assert arr.shape == (2, 20, 15)
    req = requests[0]
    assert req["fileFormat"] == "GEO_TIFF" and req["bandIds"] == ["yr2000", "yr2001"]
    assert req["grid"]["crsCode"] == "EPSG:32612"
    assert req["grid"]["affineTransform"]["translateX"] == 405000.0 + 10 * 30
    assert req["grid"]["affineTransform"]["translateY"] == 4490010.0 - 20 * 30
    monkeypatch.setattr(ee.data, "computePixels", lambda req: fake_compute_pixels(req, shift=30.0))
    with pytest.raises(ValueError, match="returned origin"):
        gee.computepixels_fetch(ee.Image(1), grid, ["a"])(tile)


def test_collect_landsat_to_dir_end_to_end_offline(ee_offline, monkeypatch, tmp_path):
    """Composites -> int16 stack -> tiles -> GeoTIFF, with the graph evaluated locally per tile."""
    clear = _refl(red=0.06, nir=0.36)

    def scenes(shape):
        return [_scene(shape, (y, 7, 10), clear) for y in (1984, 1986)]

    prepared = []

    def eval_fetch(image, grid, band_ids):
        prepared.append(image)

        def fetch(tile):
            ev = Evaluator((tile.height, tile.width), collections=_cols(LT05=scenes))
            img = ev.run(image)
            return np.stack([img.values(b) for b in band_ids])
        return fetch

    monkeypatch.setattr(dl, "computepixels_fetch", eval_fetch)  # where download_image looks it up
    with pytest.warns(UserWarning, match="1981-1981"):
        paths = gee.collect_landsat_to_dir(tmp_path, aoi=SMALL_BBOX, start_year=1981, end_year=1986,
                                           indices=("NDVI", "TCG"), max_bytes=400, progress=False,
                                           retries=0)
    assert set(paths) == {"NDVI", "TCG"} and paths["NDVI"] == tmp_path / "ndvi.tif"
    # nodata also outside the footprint (computePixels would give 0 there)
    unmask = [a for n, a in invocations(prepared[0]) if n == "Image.unmask"]
    assert len(unmask) == 1 and unmask[0]["sameFootprint"] is False
    stack = io.read_stack(paths["NDVI"], expected_years=list(range(1981, 1987)))
    assert stack.grid.same_as(gee.grid_for_aoi(SMALL_BBOX)) and stack.scale == 0.001
    assert np.isnan(stack.data[[0, 1, 2, 4]]).all()  # 1981 (MSS, no asset), 1982-83 and 1985: no scene
    np.testing.assert_array_equal(stack.data[[3, 5]], np.round(_ndvi1000(clear)))
    tcg = io.read_stack(paths["TCG"])
    expected = sum(c * _sr(clear[b]) for c, b in zip(config.TC_COEFFS["TCG"], gee.BANDS))
    assert tcg.data[3, 0, 0] == np.round(expected) and tcg.scale == 0.0001  # LT-GEE units, tagged


def test_fit_landtrendr_to_dir_builds_seed_graph(ee_offline, monkeypatch, tmp_path):
    from ltlib import params

    seen = []

    def fake_download(image, grid, out_path, **kw):
        seen.append((Path(out_path).name, image, kw))
        return Path(out_path)

    monkeypatch.setattr(dl, "download_image", fake_download)
    paths = gee.fit_landtrendr_to_dir(tmp_path, aoi=SMALL_BBOX, start_year=1984, end_year=2022)
    assert list(paths) == ["NDVI_fit", "NBR_fit", "TCG_fit", "TCW_fit", "loss_map", "gain_map"]
    assert [s[0] for s in seen] == ["ndvi_fit.tif", "nbr_fit.tif", "tcg_fit.tif", "tcw_fit.tif", "loss_map.tif",
                                    "gain_map.tif"]
    args = _lt_call(seen[0][1])
    assert args["pvalThreshold"] == 0.05 and args["preventOneYearRecovery"] is True  # seed parameters
    assert seen[-1][2]["band_names"] == ["yod", "mag", "dur", "preval", "rate", "dsnr"]
    assert seen[-1][2]["dtype"] == "float32" and seen[0][2]["dtype"] == "int16"
    assert seen[-2][2]["tags"]["delta"] == "loss" and seen[-1][2]["tags"]["delta"] == "gain"
    assert any(n == "Image.arrayFlatten" for n, _ in invocations(seen[1][1]))
    # loss: mag > 150, gain (the seed's): mag > 300; the loss map keeps increases in LT orientation
    loss, gain = invocations(seen[-2][1]), invocations(seen[-1][1])
    assert any(n == "Image.gt" and json.dumps(a["image2"]).count("150") for n, a in loss)
    assert any(n == "Image.gt" and json.dumps(a["image2"]).count("300") for n, a in gain)
    # the parameter object reaches the server in its Earth Engine form
    seen.clear()
    gee.fit_landtrendr_to_dir(tmp_path, aoi=SMALL_BBOX, start_year=1984, end_year=2022,
                              params=params.LandTrendrParams(max_segments=4, pval_threshold=0.1))
    args = _lt_call(seen[0][1])
    assert args["maxSegments"] == 4 and args["pvalThreshold"] == 0.1
    with pytest.raises(TypeError, match="LandTrendrParams"):
        gee.fit_landtrendr_to_dir(tmp_path, aoi=SMALL_BBOX, start_year=1984, end_year=2022, params={"maxSegments": 4})
    with pytest.raises(ValueError, match="delta='loss'"):
        gee.fit_landtrendr_to_dir(tmp_path, aoi=SMALL_BBOX, start_year=1984, end_year=2022,
                                  loss=params.ChangeMapParams.gain())


# --- Drive export ----------------------------------------------------------------------------
class _FakeTask:
    def __init__(self, states, error=None):
        self.states = list(states)
        self.error = error
        self.started = False

    def start(self):
        self.started = True

    def status(self):
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        out = {"state": state, "description": "ndvi_stack"}
        if self.error:
            out["error_message"] = self.error
        return out


def test_wait_for_task_polls_until_done(capsys):
    sleeps = []
    status = gee.wait_for_task(_FakeTask(["READY", "RUNNING", "RUNNING", "COMPLETED"]), poll_seconds=7,
                              sleep=sleeps.append)
    assert status["state"] == "COMPLETED" and sleeps == [7, 7, 7]
    assert capsys.readouterr().out.count("task ndvi_stack") == 3  # one line per state change
    with pytest.raises(RuntimeError, match="FAILED: Computation timed out"):
        gee.wait_for_task(_FakeTask(["RUNNING", "FAILED"], error="Computation timed out."), sleep=lambda s: None)
    clock = iter(range(0, 1000, 100))
    with pytest.raises(TimeoutError, match="still RUNNING"):
        gee.wait_for_task(_FakeTask(["RUNNING"]), timeout=250, sleep=lambda s: None, clock=lambda: next(clock))


def test_export_to_drive_uses_the_grid(ee_offline, monkeypatch):
    captured = {}

    def fake_to_drive(**kw):
        captured.update(kw)
        return _FakeTask(["COMPLETED"])

    monkeypatch.setattr(ee.batch.Export.image, "toDrive", fake_to_drive)
    grid = _grid(100, 80)
    task = gee.export_to_drive(ee.Image(1), grid, "ndvi_stack", folder="ltlib", poll_seconds=0)
    assert task.started
    assert captured["crs"] == "EPSG:32612" and captured["dimensions"] == "80x100"
    assert captured["crsTransform"] == [30.0, 0.0, 405000.0, 0.0, -30.0, 4490010.0]
    assert captured["folder"] == "ltlib" and captured["fileNamePrefix"] == "ndvi_stack"


# --- initialize ----------------------------------------------------------------------------
@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("EE_PROJECT", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setattr(ee.oauth, "get_credentials_path", lambda: str(tmp_path / "earthengine" / "credentials"))
    monkeypatch.setattr(auth, "_STATE", {"initialized": False, "project": None})
    return tmp_path


def test_initialize_without_credentials_returns_false_and_says_so(no_credentials, monkeypatch, capsys):
    def must_not_run(*a, **k):
        raise AssertionError("ee.Initialize must not be called without credentials")

    monkeypatch.setattr(ee, "Initialize", must_not_run)
    assert gee.initialize("my-project") is False
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "no credentials" in out[0] and "earthengine authenticate" in out[0]


def _with_credentials(tmp_path):
    path = tmp_path / "earthengine" / "credentials"
    path.parent.mkdir(parents=True)
    path.write_text("{}")


def test_initialize_reports_a_failing_initialisation(no_credentials, monkeypatch, capsys):
    _with_credentials(no_credentials)

    def fail(project=None, **k):
        raise ee.EEException("Caller does not have required permission to use project x.\nmore detail")

    monkeypatch.setattr(ee, "Initialize", fail)
    assert gee.initialize("x") is False
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["Earth Engine initialisation failed: Caller does not have required permission to use project x."]


def test_initialize_is_time_boxed(no_credentials, monkeypatch, capsys):
    _with_credentials(no_credentials)
    release = threading.Event()
    monkeypatch.setattr(ee, "Initialize", lambda project=None, **k: release.wait(30))
    t0 = time.monotonic()
    assert gee.initialize("x", timeout=0.3) is False
    release.set()
    assert time.monotonic() - t0 < 10
    assert "did not answer within" in capsys.readouterr().out


def test_initialize_uses_ee_project_env(no_credentials, monkeypatch):
    _with_credentials(no_credentials)
    got = []
    monkeypatch.setattr(ee, "Initialize", lambda project=None, **k: got.append(project))
    monkeypatch.setenv("EE_PROJECT", "env-project")
    assert gee.initialize() is True and got == ["env-project"]
    assert gee.initialize() is True and got == ["env-project"]  # already initialised: no second call
    assert gee.initialize("param-project") is True and got == ["env-project", "param-project"]


# --- live service (skipped without credentials) ------------------------------------------------
@pytest.fixture
def live_ee():
    if not gee.has_credentials():
        pytest.skip("no Earth Engine credentials")
    if not gee.initialize(os.environ.get("EE_PROJECT"), timeout=60):
        pytest.skip("Earth Engine not available")


@pytest.mark.ee
def test_live_small_composite_download(live_ee, tmp_path):
    paths = gee.collect_landsat_to_dir(tmp_path, aoi=SMALL_BBOX, start_year=2000, end_year=2002, indices=("NDVI",))
    stack = io.read_stack(paths["NDVI"], expected_years=[2000, 2001, 2002])
    assert np.nanmedian(stack.data) > -1000 and np.isfinite(stack.data).mean() > 0.5


def test_add_ee_time_slider_labels_years(ee_offline):
    calls = []

    class FakeMap:
        def add_time_slider(self, ee_object, vis_params, **kw):
            calls.append((ee_object, vis_params, kw))

    col = gee.annual_composites(SMALL_BBOX, 2000, 2003)
    m = FakeMap()
    assert maps.add_ee_time_slider(m, col, {"min": 0, "max": 800}, start_year=2000, end_year=2003) is m
    (obj, vis, kw), = calls
    assert kw["labels"] == ["2000", "2001", "2002", "2003"] and vis == {"min": 0, "max": 800}
    assert graph_text(obj) == graph_text(col)


@pytest.mark.ee
def test_live_landtrendr_and_change_map(live_ee, tmp_path):
    from ltlib.params import ChangeMapParams

    paths = gee.fit_landtrendr_to_dir(tmp_path, aoi=SMALL_BBOX, start_year=1990, end_year=2010, ftv=("NBR",),
                                      loss=ChangeMapParams.loss(mag_min=None))
    fit = io.read_stack(paths["NDVI_fit"], expected_years=range(1990, 2011))
    cmap, cmap_grid, names = io.read_raster(paths["loss_map"])
    assert names == ["yod", "mag", "dur", "preval", "rate", "dsnr"] and fit.grid.same_as(cmap_grid)
    yod = cmap[0][np.isfinite(cmap[0])]
    assert ((yod >= 1991) & (yod <= 2010)).all()


@pytest.mark.ee
def test_live_sentinel1_download(live_ee, tmp_path):
    gee.collect_s1_to_dir(tmp_path, aoi=SMALL_BBOX, start="2019-04-02", end="2019-05-20")
    data, dates, grid = gee.read_s1_dir(tmp_path)
    assert data.shape[:2] == (len(dates), 2) and len(dates) >= 3
    assert 0 < np.nanmedian(data[:, 0]) < 1  # linear VV, not dB
