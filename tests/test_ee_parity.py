"""Parity of ltlib.gee with LT-GEE (eMapR/LT-GEE ``LandTrendr.js`` v0.2.0) and LandsatLinkr
(gee-community/ee-LandsatLinkr ``landsatlinkr.py``), item by item of issue 13.

Each test computes what LT-GEE's (or LandsatLinkr's) code gives, by hand from its formula, on
a few synthetic pixels, and compares it with what ltlib's graph gives in the offline
interpreter (tests/ee_offline.py, which has Earth Engine's pixel types, casts with clamping,
per-band masks and the export type check). The numbers in the comments quote the reference
code.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from ltlib import config

from .ee_offline import (
    Evaluator,
    ExportTypeError,
    check_export_types,
    ee_offline,  # noqa: F401
    llr_landtrendr_asset,
    make_image,
)

ee = pytest.importorskip("ee")
from ltlib import gee  # noqa: E402
from ltlib.gee import download as dl  # noqa: E402

BBOX = (-112.16, 40.52, -112.156, 40.523)
ASSET = "projects/me/assets/LandsatLinkr/041032/landtrendr"


# --- LT-GEE by hand --------------------------------------------------------------------------
def _millis(y, m, d):
    return int(dt.datetime(y, m, d, tzinfo=dt.timezone.utc).timestamp() * 1000)


def dn(refl):
    """Collection 2 Level-2 DN (integer) of a surface reflectance."""
    return np.round((np.asarray(refl, float) + 0.2) / 0.0000275)


def ltgee_sr(refl):
    """LT-GEE ``scaleLTdata``: ``((img.multiply(0.0000275)).add(-0.2)).multiply(10000).toUint16()``."""
    return np.clip(np.trunc(((dn(refl) * 0.0000275) + -0.2) * 10000), 0, 65535)


def ltgee_nd(a, b):
    """LT-GEE ``normalizedDifference([a, b]).multiply(1000)`` of two reflectances."""
    x, y = ltgee_sr(a), ltgee_sr(b)
    return 1000 * (x - y) / (x + y)


TC = {"TCB": (0.2043, 0.4158, 0.5524, 0.5741, 0.3124, 0.2303),  # LandTrendr.js tcTransform
      "TCG": (-0.1603, -0.2819, -0.4934, 0.7940, -0.0002, -0.1446),
      "TCW": (0.0315, 0.2021, 0.3102, 0.1594, -0.6806, -0.6109)}


def refl(blue=0.05, green=0.08, red=0.1, nir=0.3, swir1=0.2, swir2=0.12):
    return dict(blue=blue, green=green, red=red, nir=nir, swir1=swir1, swir2=swir2)


def scene(shape, date, r, qa=0, sensor="LT05", radsat=0, **props):
    bands = {src: np.broadcast_to(dn(r[b]), shape).astype(float) for b, src in zip(gee.BANDS, gee.SR_BANDS[sensor])}
    bands["QA_PIXEL"] = np.broadcast_to(np.asarray(qa, float), shape).astype(float)
    bands["QA_RADSAT"] = np.broadcast_to(np.asarray(radsat, float), shape).astype(float)
    types = {k: "uint16" for k in bands}  # as Collection 2 Level-2 stores them
    return make_image(shape, {"system:time_start": _millis(*date), **props}, types=types, **bands)


def cols(**by_sensor):
    return {config.EE_LANDSAT_C2_L2[s]: v for s, v in by_sensor.items()}


def composite(ev, year, **kw):
    return ev.run(gee.annual_composites(BBOX, year, year, **kw))[0]


# --- the interpreter behaves like the service where these items depend on it -----------------
def test_interpreter_casts_clamp_and_integer_images_divide_as_integers(ee_offline):
    shape = (1, 3)
    ev = Evaluator(shape, images={"x": make_image(shape, a=np.array([[-5.7, 3.9, 70000.0]]),
                                                  b=np.array([[7.0, np.nan, 2.0]]), types={"b": "int16"})})
    img = ee.Image("x")
    assert ev.run(img.select("a").toUint16()).values("a").tolist() == [[0, 3, 65535]]
    assert ev.run(img.select("a").toInt16()).values("a").tolist() == [[-5, 3, 32767]]
    assert ev.run(img.select("a").toUint16()).types == ["uint16"]
    # integer / integer is an integer division on the server
    assert ev.run(img.select("b").divide(ee.Image.constant(2))).values("b")[0, 0] == 3
    assert ev.run(img.select("b").divide(ee.Image.constant(2.0))).values("b")[0, 0] == 3.5
    # per-band masks: b's mask does not touch a
    both = ev.run(img.select(["a", "b"]).toFloat())
    assert np.isfinite(both.values("a")).all() and np.isnan(both.values("b")[0, 1])
    assert both.types == ["float32", "float32"] and check_export_types(both) == "float32"
    with pytest.raises(ExportTypeError, match="Float64 and Int16"):
        check_export_types(ev.run(img))


# --- 1. Tasseled Cap in LT-GEE's units -------------------------------------------------------
def test_1_tasseled_cap_is_lt_gee_tc_transform_on_reflectance_x_10000(ee_offline):
    shape = (1, 2)
    r = refl(blue=0.04, green=0.07, red=0.09, nir=0.32, swir1=0.21, swir2=0.13)
    ev = Evaluator(shape, collections=cols(LT05=[scene(shape, (1990, 7, 1), r)]))
    out = composite(ev, 1990, index=("TCB", "TCG", "TCW"))
    for name, coeffs in TC.items():  # b.multiply(coeffs).reduce(sum), no rescaling
        expected = sum(c * ltgee_sr(r[b]) for c, b in zip(coeffs, gee.BANDS))
        assert out.values(name)[0, 0] == pytest.approx(expected, abs=1e-6)
    assert gee.EE_INDICES["TCB"].scale == 0.0001  # stored x 10000, tagged so


def test_1_llr_tasseled_cap_splices_without_a_step(ee_offline, monkeypatch, tmp_path):
    """LandsatLinkr's tcb_fit (x 10000) for 1983 and ltlib's 1984 composite have one unit."""
    shape = (1, 1)
    r = refl(red=0.06, nir=0.36)
    tcb84 = sum(c * ltgee_sr(r[b]) for c, b in zip(TC["TCB"], gee.BANDS))
    asset = llr_landtrendr_asset(shape, {(0, 0): dict(vert_years=[1972, 2022], ndvi=[700, 700], rmse=10.0,
                                                      ftv={"tcb": [tcb84, tcb84], "tcg": [0, 0], "tcw": [0, 0]})})
    images = {}

    def fake_download(image, grid, out_path, **kw):
        images[Path(out_path).name] = image
        return Path(out_path)

    monkeypatch.setattr(dl, "download_image", fake_download)
    gee.collect_landsat_to_dir(tmp_path, aoi=BBOX, start_year=1982, end_year=1984, indices=("TCB",), llr_asset=ASSET)
    ev = Evaluator(shape, images={ASSET: asset}, collections=cols(LT05=[scene(shape, (1984, 7, 1), r)]))
    stack = ev.run(images["tcb.tif"])
    v83, v84 = stack.values("yr1983")[0, 0], stack.values("yr1984")[0, 0]
    assert v83 == np.trunc(tcb84) and v84 == pytest.approx(tcb84)  # same unit: no 10x step
    assert stack.values("yr1982")[0, 0] == np.trunc(tcb84)  # LLR covers 1972-1983


# --- 2. LandsatLinkr asset layout -------------------------------------------------------------
def _llr_pixels():
    # NDVI x 1000 800 until 1990, 300 in 1992, back to 700 by 2000; LandTrendr's rmse 25.7
    return {(0, 0): dict(vert_years=[1972, 1990, 1992, 2000, 2022], ndvi=[800, 800, 300, 700, 700], rmse=25.7,
                         ftv={"tcb": [2000, 2000, 3500, 2400, 2400], "tcg": [900, 900, 200, 800, 800],
                              "tcw": [-500, -500, -1500, -700, -700]}, missing=(1975, 1976))}


def test_2_llr_asset_requests_only_what_the_asset_holds(ee_offline, monkeypatch, tmp_path):
    monkeypatch.setattr(dl, "download_image", lambda *a, **k: Path(a[2]))
    # the default indices include NBR, which LandsatLinkr never computes
    with pytest.raises(ValueError, match=r"'NBR'\].*LandsatLinkr"):
        gee.collect_landsat_to_dir(tmp_path, aoi=BBOX, start_year=1972, end_year=1990, llr_asset=ASSET)
    # LandsatLinkr segments NDVI x -1: another index would take the wrong orientation
    with pytest.raises(ValueError, match="segments NDVI"):
        gee.fit_landtrendr_to_dir(tmp_path, aoi=BBOX, start_year=1972, end_year=2022, index="TCB", llr_asset=ASSET)
    from ltlib.params import LandTrendrParams

    with pytest.raises(ValueError, match="finished LandTrendr run"):
        gee.fit_landtrendr_to_dir(tmp_path, aoi=BBOX, start_year=1972, end_year=2022, llr_asset=ASSET,
                                  params=LandTrendrParams())


def test_2_llr_change_map_and_fits_as_lt_gee_reads_the_int16_asset(ee_offline, monkeypatch, tmp_path):
    shape = (1, 1)
    asset = llr_landtrendr_asset(shape, _llr_pixels())
    assert asset.types == ["int16"] * 5 and asset.values("rmse")[0, 0] == 25  # truncated by lt.int16()
    images = {}

    def fake_download(image, grid, out_path, **kw):
        images[Path(out_path).name] = image
        return Path(out_path)

    monkeypatch.setattr(dl, "download_image", fake_download)
    with pytest.warns(UserWarning, match="no ndvi_fit"):
        paths = gee.fit_landtrendr_to_dir(tmp_path, aoi=BBOX, start_year=1972, end_year=2022, llr_asset=ASSET)
    assert list(paths) == ["TCB_fit", "TCG_fit", "TCW_fit", "loss_map", "gain_map"]  # the asset's ftvBands
    ev = Evaluator(shape, images={ASSET: asset})
    loss = ev.run(images["loss_map.tif"])
    # LT-GEE getChangeMap on the asset: segment 1990->1992 of -NDVI: -800 -> -300, mag 500,
    # preval = -(-800) * indexFlipper('NDVI')... = 800, dsnr = 500 / rmse (int16: 25)
    got = {b: loss.values(b)[0, 0] for b in ("yod", "mag", "dur", "preval", "rate", "dsnr")}
    assert got == dict(yod=1991, mag=500, dur=2, preval=800, rate=250, dsnr=20)
    gain = ev.run(images["gain_map.tif"])
    assert gain.values("mag")[0, 0] == 400 and gain.values("dsnr")[0, 0] == 16
    tcb = ev.run(images["tcb_fit.tif"])
    assert tcb.values("yr1991")[0, 0] == 2750 and tcb.values("yr1975")[0, 0] == 2000


# --- 3. OLI -> ETM+ harmonisation off by default ---------------------------------------------
def test_3_oli_is_not_harmonised_by_default(ee_offline):
    shape = (1, 1)
    r = refl(blue=0.04, green=0.07, red=0.09, nir=0.32, swir1=0.21, swir2=0.13)
    ev = Evaluator(shape, collections=cols(LC08=[scene(shape, (2015, 7, 1), r, sensor="LC08")]))
    # LT-GEE 0.2.0: "does NOT use the Roy et al. coefficients": OLI bands scaled like TM
    assert composite(ev, 2015).values("NDVI")[0, 0] == pytest.approx(ltgee_nd(r["nir"], r["red"]), abs=1e-9)
    assert composite(ev, 2015, harmonize=True).values("NDVI")[0, 0] != pytest.approx(
        ltgee_nd(r["nir"], r["red"]), abs=0.5)


# --- 4. QA masks --------------------------------------------------------------------------------
def test_4_lt_gee_cloud_is_bit_3_and_the_presets(ee_offline):
    shape = (1, 5)
    good, bad = refl(red=0.05, nir=0.4), refl(red=0.2, nir=0.25)
    # the 'bad' scene's pixels flagged: dilated cloud (1), cirrus (2), cloud (3), fill (0), none
    qa = np.array([[1 << 1, 1 << 2, 1 << 3, 1 << 0, 0]])
    radsat = np.array([[0, 0, 0, 0, 1]])
    ev = Evaluator(shape, collections=cols(LT05=[scene(shape, (1990, 7, 1), good),
                                                 scene(shape, (1990, 7, 17), bad, qa, radsat=radsat)]))
    only_good = composite(Evaluator(shape, collections=cols(LT05=[scene(shape, (1990, 7, 1), good)])), 1990,
                          method="median").values("NDVI")[0]

    def masked_bad(**kw):  # True where the bad scene was removed (the median is the good scene)
        v = composite(ev, 1990, method="median", **kw).values("NDVI")[0]
        return (v == only_good).tolist()

    # LT-GEE getSRcollection: 'cloud' -> qa.bitwiseAnd(1 << 3) only
    assert masked_bad() == [False, False, True, False, False]
    # LandsatLinkr getCfmask: QA_PIXEL.bitwiseAnd(int('11111', 2)).eq(0)
    assert masked_bad(mask="llr") == [True, True, True, True, False]
    # Earth Engine's Collection 2 example adds QA_RADSAT.eq(0)
    assert masked_bad(mask="ee-example") == [True, True, True, True, True]


def test_4_waterplus_and_nonforest_use_lt_gee_data(ee_offline):
    shape = (1, 3)
    gsw = make_image(shape, recurrence=np.array([[100.0, 50.0, np.nan]]))  # masked: never water
    forest = make_image(shape, forest_type=np.array([[1.0, np.nan, 0.0]]), props={"system:index": "2015"})
    ev = Evaluator(shape, images={gee.composites.EE_GSW: gsw},
                   collections={**cols(LT05=[scene(shape, (1990, 7, 1), refl())]),
                                gee.composites.EE_PROBAV_LANDCOVER: [forest]})
    # 'recurrence > 99 ? 0 : 1' as a mask; never water (recurrence masked) is kept as land
    assert np.isfinite(composite(ev, 1990, mask=("waterplus",)).values("NDVI")[0]).tolist() == [False, True, True]
    # '2015_forest_type >= 0 ? 1 : 0' as a mask: masked off forest
    assert np.isfinite(composite(ev, 1990, mask=("nonforest",)).values("NDVI")[0]).tolist() == [True, False, True]


# --- 5. exports of mixed band types -----------------------------------------------------------
def _lt_image(shape=(1, 2)):
    years = np.arange(1990, 2001, dtype=float)
    fit = np.interp(years, [1990, 1995, 2000], [-800, -300, -300])
    arrays = np.empty(shape, object)
    arrays[0, 0] = np.stack([years, fit, fit, np.isin(years, [1990, 1995, 2000]).astype(float)])
    arrays[0, 1] = np.stack([years, -500 + 0 * years, -500 + 0 * years, np.isin(years, [1990, 2000]) * 1.0])
    return make_image(shape, LandTrendr=arrays, rmse=np.full(shape, 20.0), types={"LandTrendr": "float32",
                                                                                  "rmse": "float32"})


def test_5_export_to_drive_casts_the_change_map_to_one_type(ee_offline, monkeypatch):
    captured = {}

    class Task:
        def start(self):
            pass

    def to_drive(**kw):
        captured.update(kw)
        return Task()

    monkeypatch.setattr(ee.batch.Export.image, "toDrive", to_drive)
    ev = Evaluator((1, 2), images={"lt": _lt_image()})
    cmap = gee.change_map_image(ee.Image("lt"), 1990, 2000)
    with pytest.raises(ExportTypeError, match="compatible data types; found inconsistent types: Float"):
        check_export_types(ev.run(cmap))  # LT-GEE's yod is int16, the others float: EE refuses
    gee.export_to_drive(cmap, gee.grid_for_aoi(BBOX), "loss", wait=False)
    out = ev.run(captured["image"])
    assert check_export_types(out) == "float32"
    assert out.values("yod").tolist() == [[1991.0, -9999.0]] and out.values("mag")[0, 0] == 500
    assert captured["formatOptions"] == {"noData": -9999.0}


# --- 6. MMU: connected pixels of any change ---------------------------------------------------
def _mmu_lt():
    """3 x 3 pixels: an L of 3 changed pixels with yod 1991, 1996, 1996; the rest flat."""
    years = np.arange(1990, 2001, dtype=float)

    def px(v):
        fit = -np.interp(years, [1990, v, 2000], [800, 800 if v != 1990 else 300, 300])
        return np.stack([years, fit, fit, np.isin(years, [1990, v, 2000]).astype(float)])

    flat = np.stack([years, -500 + 0 * years, -500 + 0 * years, np.isin(years, [1990, 2000]).astype(float)])
    arrays = np.empty((3, 3), object)
    for idx in np.ndindex(3, 3):
        arrays[idx] = flat
    arrays[0, 0] = np.stack([years, -np.interp(years, [1990, 1992, 2000], [800, 300, 300]),
                             -np.interp(years, [1990, 1992, 2000], [800, 300, 300]),
                             np.isin(years, [1990, 1992, 2000]).astype(float)])
    arrays[0, 1] = arrays[1, 1] = px(1995)
    return make_image((3, 3), LandTrendr=arrays, rmse=np.full((3, 3), 10.0))


def test_6_mmu_counts_any_change_like_lt_gee(ee_offline):
    ev = Evaluator((3, 3), images={"lt": _mmu_lt()})
    # LT-GEE apply_mmu: yod.gte(1).selfMask().connectedPixelCount() >= 3 -> the L survives
    any_ = ev.run(gee.change_map_image(ee.Image("lt"), 1990, 2000, mmu=3)).values("yod")
    assert np.isfinite(any_).sum() == 3 and any_[0, 0] == 1991
    same = ev.run(gee.change_map_image(ee.Image("lt"), 1990, 2000, mmu=3, mmu_mode="same_year")).values("yod")
    assert np.isnan(same).all()


def test_6_local_change_map_mmu_counts_any_change(ee_offline):
    from ltlib.landtrendr import change_map
    from ltlib.landtrendr.segment import LandTrendrResult

    img = _mmu_lt()
    years = np.arange(1990, 2001)
    lt = np.stack([np.stack(img.bands[0][1][idx]) for idx in np.ndindex(3, 3)])  # (9, 4, T)
    fitted = (-lt[:, 2]).T.reshape(len(years), 3, 3).astype(np.float32)
    isv = lt[:, 3].T.reshape(len(years), 3, 3).astype(bool)
    res = LandTrendrResult(fitted, isv, np.full((3, 3), 10.0), np.zeros((3, 3)), np.zeros((3, 3)), years, fitted,
                           (3, 3), -1)
    assert np.isfinite(change_map(res, mmu=3)["yod"]).sum() == 3
    assert np.isnan(change_map(res, mmu=3, mmu_mode="same_year")["yod"]).all()


# --- 7. negative reflectance ------------------------------------------------------------------
def test_7_negative_reflectance_is_clamped_to_zero_like_lt_gee(ee_offline):
    shape = (1, 1)
    water = refl(blue=0.03, green=0.02, red=-0.004, nir=0.01, swir1=-0.01, swir2=-0.02)
    ev = Evaluator(shape, collections=cols(LT05=[scene(shape, (1990, 7, 1), water)]))
    out = composite(ev, 1990, index=("NDVI", "NBR"))
    # toUint16(): red and swir2 become 0 -> NDVI = NBR = (nir - 0) / (nir + 0) = 1000
    assert ltgee_sr(water["red"]) == 0 and out.values("NDVI")[0, 0] == 1000 and out.values("NBR")[0, 0] == 1000
    # LandsatLinkr's round().int16() keeps the sign (NDVI beyond 1000)
    assert composite(ev, 1990, sr_type="int16").values("NDVI")[0, 0] > 1000


# --- 8. Landsat 4 TM ----------------------------------------------------------------------------
def test_8_landsat_4_tm_is_read(ee_offline):
    shape = (1, 1)
    r = refl(red=0.07, nir=0.33)
    ev = Evaluator(shape, collections=cols(LT04=[scene(shape, (1983, 7, 1), r, sensor="LT04")]))
    assert composite(ev, 1983).values("NDVI")[0, 0] == pytest.approx(ltgee_nd(r["nir"], r["red"]))
    assert gee.SENSORS[0] == "LT04" and config.EE_LANDSAT_C2_L2["LT04"] == "LANDSAT/LT04/C02/T1_L2"


# --- 9. no data before the first observation --------------------------------------------------
def test_9_fitted_years_without_data_are_nodata(ee_offline, monkeypatch, tmp_path):
    shape = (1, 1)
    scenes = [scene(shape, (y, 7, 1), refl(red=0.05 + 0.004 * (y - 1984), nir=0.35)) for y in range(1984, 1992)]
    images = {}

    def fake_download(image, grid, out_path, **kw):
        images[Path(out_path).name] = image
        return Path(out_path)

    monkeypatch.setattr(dl, "download_image", fake_download)
    ev = Evaluator(shape, collections=cols(LT05=scenes))
    with pytest.warns(UserWarning) as warned:
        gee.fit_landtrendr_to_dir(tmp_path, aoi=BBOX, start_year=1978, end_year=1991, ftv=("NBR",))
    fit = ev.run(images["ndvi_fit.tif"])
    assert np.isnan([fit.values(f"yr{y}")[0, 0] for y in range(1978, 1984)]).all()
    assert np.isfinite([fit.values(f"yr{y}")[0, 0] for y in range(1984, 1992)]).all()
    assert "1978-1981" in str(warned[0].message) and "nodata" in str(warned[0].message)
    # LT-GEE getFittedData keeps LandTrendr's flat extension: extrapolated='keep'
    images.clear()
    with pytest.warns(UserWarning, match="flat extension"):
        gee.fit_landtrendr_to_dir(tmp_path, aoi=BBOX, start_year=1978, end_year=1991, ftv=("NBR",),
                                  extrapolated="keep")
    keep = ev.run(images["ndvi_fit.tif"])
    assert keep.values("yr1978")[0, 0] == keep.values("yr1984")[0, 0] == fit.values("yr1984")[0, 0]


# --- 10. seasons across New Year --------------------------------------------------------------
def test_10_season_across_new_year_by_month_and_day(ee_offline):
    shape = (1, 1)
    early, late = refl(red=0.05), refl(red=0.2)
    ev = Evaluator(shape, collections=cols(LT05=[scene(shape, (1999, 12, 25), early),
                                                 scene(shape, (2000, 12, 10), late)]))
    # ('12-20', '12-10') crosses New Year although the months are equal: 1999-12-20 .. 2000-12-10
    # (end exclusive, as LT-GEE's filterDate): only the 1999-12-25 scene is in the 2000 window
    out = composite(ev, 2000, season=("12-20", "12-10"))
    assert out.values("NDVI")[0, 0] == pytest.approx(ltgee_nd(early["nir"], early["red"]))


# --- 11. LT-GEE / LandsatLinkr band names -----------------------------------------------------
def test_11_ftv_band_names_of_lt_gee_are_read(ee_offline):
    shape = (1, 1)
    fit = np.empty(shape, object)
    fit[0, 0] = np.array([700.0, 650.0, 300.0])
    ev = Evaluator(shape, images={"lt": make_image(shape, ftv_ndvi_fit=fit)})  # LT-GEE: 'ftv_' + index + '_fit'
    out = ev.run(gee.fitted_stack(ee.Image("lt"), "NDVI", 2000, 2002))
    assert out.names == ["yr2000", "yr2001", "yr2002"] and out.values("yr2001")[0, 0] == 650


def test_11_yr_underscore_band_names_are_read(tmp_path):
    from affine import Affine

    from ltlib import io

    grid = io.Grid("EPSG:32612", Affine(30, 0, 0, 0, -30, 0), 1, 2)
    path = io.write_raster(tmp_path / "ndvi.tif", np.ones((2, 1, 2), np.float32), grid,
                           band_names=["yr_1990", "yr_1991"])  # LT-GEE getYearBandNames
    assert io.read_stack(path).years.tolist() == [1990, 1991]


# --- what LT-GEE users expect besides ---------------------------------------------------------
def test_exclude_scene_ids_and_slc_off_like_lt_gee(ee_offline):
    shape = (1, 1)
    a, b = refl(red=0.05, nir=0.4), refl(red=0.15, nir=0.3)
    scenes = [scene(shape, (2005, 7, 1), a, **{"system:index": "LT05_038032_20050701", "SPACECRAFT_ID": "LANDSAT_5"}),
              scene(shape, (2005, 7, 9), b, sensor="LE07",
                    **{"system:index": "LE07_038032_20050709", "SPACECRAFT_ID": "LANDSAT_7"})]
    ev = Evaluator(shape, collections=cols(LT05=scenes[:1], LE07=scenes[1:]))
    only = {"a": ltgee_nd(a["nir"], a["red"]), "b": ltgee_nd(b["nir"], b["red"])}
    # removeImages: ID's last path part against system:index; slcOff drops every Landsat 7 scene
    ex = composite(ev, 2005, method="median", exclude={"imgIds": ["LANDSAT/LT05/C02/T1_L2/LT05_038032_20050701"]})
    assert ex.values("NDVI")[0, 0] == pytest.approx(only["b"])
    assert composite(ev, 2005, method="median", exclude={"slcOff": True}).values("NDVI")[0, 0] == pytest.approx(
        only["a"])


def test_more_indices_by_lt_gee_formulas(ee_offline):
    shape = (1, 1)
    r = refl(blue=0.04, green=0.07, red=0.09, nir=0.32, swir1=0.21, swir2=0.13)
    ev = Evaluator(shape, collections=cols(LT05=[scene(shape, (1990, 7, 1), r)]))
    names = ("EVI", "NBR2", "NDSI", "TCA", "B1", "B4", "B7")
    out = composite(ev, 1990, index=names)
    s = {k: ltgee_sr(v) for k, v in r.items()}
    tcb = sum(c * s[b] for c, b in zip(TC["TCB"], gee.BANDS))
    tcg = sum(c * s[b] for c, b in zip(TC["TCG"], gee.BANDS))
    expected = {
        # eviTransform: 2.5 * ((NIR - RED) / (NIR + 6 * RED - 7.5 * BLUE + 1)) x 1000, bands x 10000
        "EVI": 1000 * 2.5 * (s["nir"] - s["red"]) / (s["nir"] + 6 * s["red"] - 7.5 * s["blue"] + 1),
        "NBR2": ltgee_nd(r["swir1"], r["swir2"]), "NDSI": ltgee_nd(r["green"], r["swir1"]),
        "TCA": np.degrees(np.arctan(tcg / tcb)) * 100,  # atan(tcg / tcb) * 180 / pi * 100
        "B1": s["blue"], "B4": s["nir"], "B7": s["swir2"],
    }
    for name in names:
        assert out.values(name)[0, 0] == pytest.approx(expected[name], rel=1e-6), name
    assert [gee.EE_INDICES[n].distdir for n in ("B1", "B4", "TCB", "TCA")] == [1, -1, 1, -1]  # indexFlipper


def test_ndfi_by_unmixing_with_lt_gee_endmembers(ee_offline):
    shape = (1, 1)
    ends = gee.composites.NDFI_ENDMEMBERS
    frac = {"gv": 0.6, "shade": 0.1, "npv": 0.2, "soil": 0.1, "cloud": 0.0}
    mix = sum(np.asarray(ends[k], float) * f for k, f in frac.items()) / 10000  # reflectance
    r = dict(zip(gee.BANDS, mix))
    ev = Evaluator(shape, collections=cols(LT05=[scene(shape, (1990, 7, 1), r)]))
    gvs = frac["gv"] / (1 - frac["shade"])
    expected = 1000 * (gvs - (frac["npv"] + frac["soil"])) / (gvs + frac["npv"] + frac["soil"])
    assert composite(ev, 1990, index="NDFI").values("NDFI")[0, 0] == pytest.approx(expected, abs=2.0)


def test_segment_data_all_and_segment_count(ee_offline):
    ev = Evaluator((1, 2), images={"lt": _lt_image()})
    lt = ee.Image("lt")
    seg = ev.run(gee.segment_data(lt, "all"))
    a = seg.bands[0][1][0, 0]  # getSegmentData(lt, index, 'all'): LandTrendr orientation
    assert a.shape == (8, 2)
    np.testing.assert_allclose(a[:, 0], [1990, 1995, -800, -300, 500, 5, 100, 25])
    np.testing.assert_allclose(a[:, 1], [1995, 2000, -300, -300, 0, 5, 0, 0])
    assert ev.run(gee.segment_count(gee.segment_data(lt, "all"))).values("segCount").tolist() == [[2, 1]]
    loss = ev.run(gee.segment_data(lt, "loss", distdir=-1)).bands[0][1][0, 0]
    np.testing.assert_allclose(loss[:, 0], [1990, 1995, 800, 300, 500, 5, 100, 25])  # index orientation
    assert ev.run(gee.segment_count(gee.segment_data(lt, "loss"))).values("segCount").tolist() == [[1, 0]]


def test_change_filters_with_operators_and_dsnr(ee_offline):
    from ltlib.landtrendr import change_map
    from ltlib.landtrendr.segment import LandTrendrResult
    from ltlib.params import ChangeMapParams

    years = np.arange(1990, 2011)
    # NDVI x 1000: loss 800 -> 300 (1990-1995, 5 y), loss 700 -> 650 (2005-2010), rmse 25
    path = np.interp(years, [1990, 1995, 2005, 2010], [800, 300, 700, 650])
    arr = np.stack([years, -path, -path, np.isin(years, [1990, 1995, 2005, 2010]).astype(float)])
    img = np.empty((1, 1), object)
    img[0, 0] = arr
    ev = Evaluator((1, 1), images={"lt": make_image((1, 1), LandTrendr=img, rmse=np.full((1, 1), 25.0))})
    local = LandTrendrResult(path[:, None, None].astype(np.float32), np.isin(years, [1990, 1995, 2005, 2010])[
        :, None, None], np.full((1, 1), 25.0), np.zeros((1, 1)), np.zeros((1, 1)), years, None, (1, 1), -1)
    cases = [  # LT-GEE changeParams -> the segment getChangeMap keeps (yod, mag)
        (dict(mag_min=100, mag_op="<"), (2006, 50)),  # mag < 100
        (dict(dur_max=6, dur_op=">"), None),  # no segment longer than 6 years
        (dict(preval_min=750, preval_op="<"), (2006, 50)),  # preval < 750
        (dict(dsnr_min=10), (1991, 500)),  # dsnr 20 and 2: mag filter with dsnr true
        (dict(dsnr_min=30), None),
    ]
    for kw, expected in cases:
        p = ChangeMapParams(delta="loss", **kw).as_dict()
        server = ev.run(gee.change_map_image(ee.Image("lt"), 1990, 2010, **p))
        here = change_map(local, **p)
        for got in ((server.values("yod")[0, 0], server.values("mag")[0, 0]),
                    (here["yod"][0, 0], here["mag"][0, 0])):
            if expected is None:
                assert np.isnan(got).all(), kw
            else:
                assert got == pytest.approx(expected), kw
    with pytest.raises(ValueError, match="mag_op"):
        ChangeMapParams(mag_op=">=")
    with pytest.raises(ValueError, match="mmu_mode"):
        ChangeMapParams(mmu_mode="year")


# --- the live check (scripts/ee_parity_check.py) ---------------------------------------------
def test_reference_pixels_are_found_in_the_reference_stack():
    from ltlib.gee import parity

    truth = parity.load_truth()
    pos = parity.reference_positions(truth)
    assert pos["center"] == (25, 25) and pos["n_up"] == (24, 25) and pos["n_down"] == (26, 25)
    grid, local = parity.reference_grid(pos)
    assert grid.crs.to_epsg() == 32610 and grid.transform.a == 30 and local["center"] == (1, 0)
    assert parity.lt_params(truth)["pval_threshold"] == 0.05 and parity.lt_params(truth)["max_segments"] == 6


def test_parity_compare_and_report():
    from ltlib.gee import parity

    px = parity.load_truth()["pixels"][0]
    fitted = np.asarray(px["fitted"])
    server = {"source": np.asarray(px["source"]) + 2.0, "fitted": fitted, "vertex_years": px["vertex_years"]}
    local = {"fitted": fitted + 0.5, "vertex_years": px["vertex_years"][:-1]}
    row = parity.compare(px, server, local)
    assert row["composite_vs_reference"] == pytest.approx(2.0) and row["fit_server_vs_local"] == pytest.approx(0.5)
    assert row["vertices_server_eq_local"] is False
    assert "agree on the vertices of 0 of 1 pixels" in parity.format_report([row])


@pytest.mark.ee
def test_live_parity_with_the_reference_pixels():
    from ltlib.gee import parity

    rows = parity.run()
    assert all(r["vertices_server_eq_local"] for r in rows)


def test_filter_bounds_drops_scenes_that_miss_the_area(ee_offline):
    shape = (1, 1)
    here, far = refl(red=0.05, nir=0.4), refl(red=0.2, nir=0.25)
    scenes = [scene(shape, (1990, 7, 1), here, footprint=(-113.0, 40.0, -111.0, 41.0)),
              scene(shape, (1990, 7, 17), far, footprint=(-100.0, 30.0, -99.0, 31.0))]
    ev = Evaluator(shape, collections=cols(LT05=scenes))
    assert composite(ev, 1990, method="median").values("NDVI")[0, 0] == pytest.approx(
        ltgee_nd(here["nir"], here["red"]))


def test_segment_stack_has_every_loss_segment_as_bands(ee_offline):
    years = np.arange(1990, 2011, dtype=float)
    path = np.interp(years, [1990, 1993, 1998, 2004, 2010], [800, 500, 700, 200, 600])  # two losses
    arr = np.empty((1, 1), object)
    arr[0, 0] = np.stack([years, -path, -path, np.isin(years, [1990, 1993, 1998, 2004, 2010]).astype(float)])
    ev = Evaluator((1, 1), images={"lt": make_image((1, 1), LandTrendr=arr, rmse=np.full((1, 1), 50.0))})
    out = ev.run(gee.segment_stack(ee.Image("lt"), "loss", max_segments=4))
    v = {n: out.values(n)[0, 0] for n in out.names}
    assert (v["start_year_1"], v["mag_1"], v["preval_1"], v["dsnr_1"]) == (1990, 300, 800, 6)
    assert (v["start_year_2"], v["mag_2"], v["postval_2"], v["dur_2"]) == (1998, 500, 200, 6)
    assert np.isnan(v["mag_3"]) and np.isnan(v["start_year_4"]) and v["segCount"] == 2
    assert check_export_types(ev.run(gee.segment_stack(ee.Image("lt")).toFloat())) == "float32"


def test_downloads_fill_outside_the_footprint_too(ee_offline):
    """An asset clipped to its granule (LandsatLinkr exports ``clip(geom)``) has no pixels
    outside it; the download's unmask(fill, sameFootprint=False) makes them nodata instead of
    computePixels' 0."""
    shape = (1, 3)
    asset = llr_landtrendr_asset(shape, {(0, k): _llr_pixels()[(0, 0)] for k in range(2)})  # (0, 2): outside
    asset.props["footprint_mask"] = np.array([[True, True, False]])
    ev = Evaluator(shape, images={ASSET: asset})
    stack = gee.llr_fitted_stack(ASSET, "TCB", 1972, 1983)
    prepared, fill = dl.prepare_bands(stack, ["yr1980"], "int16")
    assert ev.run(prepared).values("yr1980").tolist() == [[2000, 2000, fill]]
    same = ev.run(stack.unmask(fill))  # Earth Engine's default sameFootprint=True leaves it masked
    assert np.isnan(same.values("yr1980")[0, 2])
