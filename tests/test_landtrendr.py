"""LandTrendr port: agreement with Earth Engine, properties, presets, FTV and change maps."""
import json
import re

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltlib import landtrendr as lt
from ltlib import resources

SEED_PARAMS = dict(max_segments=6, spike_threshold=0.9, vertex_count_overshoot=3, prevent_one_year_recovery=True,
                   recovery_threshold=0.25, pval_threshold=0.05, best_model_proportion=0.75,
                   min_observations_needed=6)


@pytest.fixture(scope="module")
def gee_truth(data_dir):
    return json.loads((resources.gee_reference("gee_truth.json")).read_text())


def test_earth_engine_pixels_vertices_and_fit(gee_truth):
    p = gee_truth["params"]
    assert p["maxSegments"] == 6 and p["pvalThreshold"] == 0.05 and p["preventOneYearRecovery"] is True
    for px in gee_truth["pixels"]:
        years = np.array(px["years"])
        r = lt.segment(np.array(px["source"]), years, **SEED_PARAMS)
        assert years[r.is_vertex[0]].tolist() == px["vertex_years"], px["name"]
        np.testing.assert_allclose(r.fitted[0], px["fitted"], atol=1.0, err_msg=px["name"])
        vy, vv = r.vertices()[0]
        assert vy.tolist() == px["vertex_years"]
        assert r.p_value[0] <= 0.05 and r.f_stat[0] > 0 and r.rmse[0] > 0


#: The LT-GEE guide's example pixel (eMapR/LT-GEE ``docs/imgs/lt_data.csv``: NBR x 1000,
#: 1985-2017, the guide's runParams = SEED_PARAMS) and Earth Engine's fitted values for it.
GUIDE_SOURCE = [811, 809, 821, 813, 836, 834, 833, 818, 826, 820, 765, 827, 775, 67, 367, 366, 494, 601, 544, 490,
                638, 681, 714, 749, 783, 790, 815, 782, 812, 814, 807, 798, 804]
GUIDE_EE_FTV = [827, 825, 823, 821, 819, 817, 814, 812, 810, 808, 806, 804, 802, 67, 211, 355, 499, 642, 656, 669,
                683, 697, 710, 724, 737, 751, 764, 778, 792, 805, 819, 832, 846]


def test_guide_pixel_fitted_like_earth_engine_after_a_removed_recovery():
    """A recovery faster than recoveryThreshold is taken out of the ladder (1998-2002 here). Earth
    Engine keeps fitting the despiked series; the IDL overwrote 2002's value, which pulled the
    2002 vertex to 622 (Earth Engine 642)."""
    years = np.arange(1985, 2018)
    r = lt.segment(np.array(GUIDE_SOURCE, float), years, distdir=-1, **SEED_PARAMS)
    assert years[r.is_vertex[0]].tolist() == [1985, 1997, 1998, 2002, 2017]
    np.testing.assert_allclose(r.fitted[0], GUIDE_EE_FTV, atol=0.6)  # Earth Engine's values are rounded
    idl = lt.segment(np.array(GUIDE_SOURCE, float), years, distdir=-1, preset="idl", **SEED_PARAMS)
    assert abs(idl.fitted[0][years == 2002][0] - 642) > 10  # the IDL's way, kept in its preset


def _largest_step_loss(fitted, years):
    loss = -(fitted[1:] - fitted[:-1])
    mx = loss.max(0)
    return loss, mx


def test_forest_map_agrees_with_earth_engine(data_dir):
    with rasterio.open(resources.gee_reference("forest_or_source.tif")) as s:
        src = s.read().astype(float)
    src[src == -32768] = np.nan
    with rasterio.open(resources.gee_reference("forest_or_distyear.tif")) as s:
        gee_year, gee_loss = s.read()
    years = np.arange(1984, 1984 + src.shape[0])
    r = lt.segment(src, years, **SEED_PARAMS)
    loss, mx = _largest_step_loss(r.fitted, years)
    ours, gee = mx >= 150, gee_loss >= 150
    both = ours & gee
    iou = both.sum() / (ours | gee).sum()
    assert iou >= 0.985, iou  # other ports: 0.98 on this site
    # the year after the largest one-step loss; where two steps of one straight segment
    # are equally large (to 1e-3 NBR x 1000: fitted values are float32) either year is that
    # step, so GEE's year must be one of them
    k = np.clip(gee_year.astype(int) - years[0] - 1, 0, len(years) - 2)
    gee_step_loss = np.take_along_axis(loss, k[None], 0)[0]
    same = (gee_step_loss >= mx - 1e-3)[both].mean()
    assert same >= 0.99, same
    first_max_year = years[np.argmax(loss, axis=0) + 1]
    assert (first_max_year == gee_year)[both].mean() > 0.9


# ----------------------------------------------------------------------------- properties
@st.composite
def piecewise(draw):
    """Stable, an abrupt loss over 1-3 years, then stable or a recovery to the end (NDVI x
    1000): breakpoints at least 6 years from the ends of the record."""
    years = np.arange(1984, 2023)
    t, length = draw(st.integers(1990, 2010)), draw(st.integers(1, 3))
    v0, drop = draw(st.integers(600, 900)), draw(st.integers(250, 450))
    after = draw(st.one_of(st.integers(-20, 20), st.integers(100, 200)))
    vyears = [1984, t, t + length, 2022]
    vals = [v0, v0 + draw(st.integers(-20, 20)), v0 - drop, v0 - drop + after]
    return years, np.array(vyears), np.interp(years, vyears, vals).astype(float)


def _breakpoints(result):
    """Vertex years where the fitted slope changes (collinear vertices are not breaks; fitted
    values are float32, so slopes agree to about 1e-4 x 1000 units per year)."""
    vy, vv = result.vertices()[0]
    slopes = np.diff(vv.astype(np.float64)) / np.diff(vy)
    inner = [vy[i] for i in range(1, len(vy) - 1) if abs(slopes[i] - slopes[i - 1]) > 1e-3]
    return [vy[0], *inner, vy[-1]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(piecewise())
def test_noiseless_piecewise_linear_is_recovered(case):
    years, vyears, y = case
    r = lt.segment(y, years, max_segments=6)
    assert r.fitted.shape == (1, len(years)) and r.is_vertex.shape == (1, len(years))
    assert _breakpoints(r) == vyears.tolist()
    np.testing.assert_allclose(r.fitted[0], y, atol=1e-3)  # float32 output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(piecewise(), st.randoms(use_true_random=False))
def test_missing_years_do_not_move_vertices(case, rnd):
    years, vyears, y = case
    full = lt.segment(y, years)
    # years that are neither breakpoints nor next to one, and not the first/last year
    free = [i for i, yr in enumerate(years) if min(abs(yr - vyears)) > 1]
    holes = y.copy()
    holes[rnd.sample(free, 4)] = np.nan
    gap = lt.segment(holes, years)
    assert _breakpoints(gap) == _breakpoints(full) == vyears.tolist()
    np.testing.assert_allclose(gap.fitted, full.fitted, atol=1e-6)  # gaps filled on the line


def test_pixel_order_and_image_shape_do_not_matter(data_dir):
    from ltlib import sample

    s = sample.load_landsat(data_dir, "NDVI")
    cube = s.data[:, :20, :30]
    img = lt.segment(cube, s.years)
    flat = cube.reshape(len(s.years), -1).T
    perm = np.random.default_rng(0).permutation(flat.shape[0])
    ser = lt.segment(flat[perm], s.years)
    back = np.empty_like(ser.fitted)
    back[perm] = ser.fitted
    np.testing.assert_array_equal(back.T.reshape(cube.shape), img.fitted)
    # 600 px = two whole chunks of 256 and a part: each layout's copy in and out of a chunk
    isv = np.empty_like(ser.is_vertex)
    isv[perm] = ser.is_vertex
    np.testing.assert_array_equal(isv.T.reshape(cube.shape), img.is_vertex)
    rmse = np.empty_like(ser.rmse)
    rmse[perm] = ser.rmse
    np.testing.assert_array_equal(rmse.reshape(cube.shape[1:]), img.rmse)
    assert img.fitted.shape == cube.shape and img.rmse.shape == cube.shape[1:]
    assert img.n_vertices().shape == cube.shape[1:]


def test_too_few_observations_and_all_nan():
    years = np.arange(2000, 2010)
    y = np.full((2, 10), np.nan)
    y[1, :4] = [1, 2, 3, 4]
    r = lt.segment(y, years)
    assert np.isnan(r.fitted[0]).all() and not r.is_vertex[0].any()
    np.testing.assert_allclose(r.fitted[1], 2.5)  # fewer than 6 observations: flat at the mean
    assert not r.is_vertex[1].any() and r.p_value[1] == 1


def test_bad_input_errors():
    years = np.arange(2000, 2010)
    with pytest.raises(ValueError, match="strictly increasing"):
        lt.segment(np.zeros((3, 10)), years[::-1])
    with pytest.raises(ValueError, match=r"\(n_pixels, 10\)"):
        lt.segment(np.zeros((3, 9)), years)
    with pytest.raises(ValueError, match="T = len\\(years\\) = 10"):
        lt.segment(np.zeros((9, 4, 4)), years)
    with pytest.raises(ValueError, match="preset"):
        lt.segment(np.zeros((3, 10)), years, preset="rust")
    with pytest.raises(ValueError, match="distdir"):
        lt.segment(np.zeros((3, 10)), years, distdir=0)
    with pytest.raises(ValueError, match="infinities"):
        lt.segment(np.full((1, 10), np.inf), years)
    # counted in the kernel's one pass over the values, across chunks of 256 pixels
    x = np.random.default_rng(1).normal(500, 20, (700, 10))
    x[3, 2] = np.inf
    x[600, 0] = x[600, 9] = -np.inf
    with pytest.raises(ValueError, match="values contain 3 infinities"):
        lt.segment(x, years)


@pytest.mark.parametrize("kw, expected", [
    (dict(pval_threshold=-0.1), "pval_threshold must be a number in (0, 1], got -0.1"),
    (dict(recovery_threshold=-1), "recovery_threshold must be a number in (0, 1]"),
    (dict(vertex_count_overshoot=-1), "vertex_count_overshoot must be an integer >= 0"),
    (dict(max_segments=None), "max_segments must be an integer >= 1, got None"),
    (dict(max_segments=2.5), "max_segments must be an integer >= 1"),
    (dict(spike_threshold="high"), "spike_threshold must be a number in (0, 1], got 'high'"),
    (dict(best_model_proportion=0), "best_model_proportion must be a number in (0, 1]"),
    (dict(min_observations_needed=0), "min_observations_needed must be an integer >= 1"),
    (dict(prevent_one_year_recovery="yes"), "prevent_one_year_recovery must be True or False"),
    (dict(distdir=0), "distdir must be -1 (the index drops on disturbance) or 1 (it rises), got 0"),
    (dict(index="NDXI"), "index must be one of NDVI, NBR"),
    (dict(preset="rust"), "preset must be one of ('gee', 'idl')"),
])
def test_segment_names_a_bad_parameter_and_its_range(kw, expected):
    from ltlib.params import ParameterError

    with pytest.raises(ParameterError, match=f"LandTrendr parameter {re.escape(expected)}"):
        lt.segment(np.zeros((3, 10)), np.arange(2000, 2010), **kw)


def test_segment_takes_numpy_scalars():
    y = np.r_[np.full(8, 800.0), np.full(8, 300.0)] + np.arange(16)
    a = lt.segment(y, np.arange(2000, 2016), max_segments=np.int64(3), pval_threshold=np.float32(0.05),
                   prevent_one_year_recovery=np.bool_(True))
    b = lt.segment(y, np.arange(2000, 2016), max_segments=3, pval_threshold=0.05, prevent_one_year_recovery=True)
    np.testing.assert_array_equal(a.fitted, b.fitted)


def test_distdir_from_the_index_and_a_warning_when_it_contradicts_it():
    years = np.arange(2000, 2016)
    # brightness (TCB) rises on disturbance: a jump up in 2008
    y = np.r_[np.full(8, 1000.0), np.full(8, 2500.0)] + 5 * np.arange(16)
    tcb = lt.segment(y, years, index="tcb")
    assert tcb.distdir == 1
    np.testing.assert_array_equal(tcb.fitted, lt.segment(y, years, distdir=1).fitted)
    assert lt.segment(y, years, index="NBR").distdir == -1 and lt.segment(y, years).distdir == -1
    with pytest.warns(UserWarning, match="distdir=-1 contradicts index 'TCB', which rises on disturbance"):
        lt.segment(y, years, index="TCB", distdir=-1)


# ----------------------------------------------------------------------------- presets
def test_idl_preset_applies_one_more_despike_correction():
    # a single spike: GEE stops when the spike proportion is <= 0.9; the IDL applies one
    # more (sub-threshold) correction, so its fitted value at the spike is pulled further
    years = np.arange(1990, 2012)
    y = np.full(22, 500.0) + 3 * np.arange(22)
    y[10] += 200
    gee = lt.segment(y, years, spike_threshold=0.9, preset="gee")
    idl = lt.segment(y, years, spike_threshold=0.9, preset="idl")
    assert not np.allclose(gee.fitted, idl.fitted)
    assert np.all(np.abs(idl.fitted - idl.fitted.round()) < 1e-9)  # IDL: integer vertex values


def test_idl_preset_truncates_to_integers_gee_keeps_floats(gee_truth):
    px = gee_truth["pixels"][0]
    years = np.array(px["years"])
    gee = lt.segment(np.array(px["source"]), years, **SEED_PARAMS)
    idl = lt.segment(np.array(px["source"]), years, **SEED_PARAMS, preset="idl")
    vg = gee.fitted[0][gee.is_vertex[0]]
    vi = idl.fitted[0][idl.is_vertex[0]]
    assert np.any(np.abs(vg - vg.round()) > 1e-3)
    np.testing.assert_array_equal(vi, np.trunc(vi))


def test_prevent_one_year_recovery_only_in_gee():
    # a one-year dip that recovers at once (with the recovery-rate test switched off):
    # GEE with preventOneYearRecovery refuses models with that one-year recovery, the IDL
    # (which has no such option) keeps it
    years = np.arange(1984, 2023)
    rng = np.random.default_rng(3)
    y = np.interp(years, [1984, 2003, 2004, 2005, 2022], [800, 800, 300, 780, 560]) + rng.normal(0, 4, len(years))
    kw = dict(spike_threshold=1.0, recovery_threshold=1.0)
    keep = lt.segment(y, years, prevent_one_year_recovery=False, **kw)
    prevent = lt.segment(y, years, prevent_one_year_recovery=True, **kw)
    idl = lt.segment(y, years, prevent_one_year_recovery=True, preset="idl", **kw)

    def has_one_year_recovery(r):
        vy = r.vertices()[0][0].tolist()
        return 2004 in vy and 2005 in vy

    assert has_one_year_recovery(keep) and has_one_year_recovery(idl)
    assert not has_one_year_recovery(prevent)


# ----------------------------------------------------------------------------- FTV, change map
def test_fit_to_vertices_breaks_in_the_same_years():
    years = np.arange(1984, 2023)
    rng = np.random.default_rng(1)
    ndvi = np.interp(years, [1984, 2000, 2002, 2022], [700, 690, 200, 600]) + rng.normal(0, 8, len(years))
    r = lt.segment(ndvi, years, **{**SEED_PARAMS, "spike_threshold": 1.0})
    other = 0.5 * ndvi + 100  # an index that is a linear transform of the first
    ftv = lt.fit_to_vertices(other, years, r.is_vertex[0])
    np.testing.assert_allclose(ftv, 0.5 * r.fitted[0] + 100, atol=1e-3)  # float32 outputs
    gaps = other.copy()
    gaps[[3, 30]] = np.nan
    assert np.isfinite(lt.fit_to_vertices(gaps, years, r.is_vertex[0])).all()
    with pytest.raises(ValueError, match="is_vertex has shape"):
        lt.fit_to_vertices(np.zeros((2, 39)), years, r.is_vertex)


def _toy_result():
    years = np.arange(2000, 2021)
    # NDVI x 1000: loss 2004->2006 of 400, gain 2006->2016 of 300, loss 2016->2017 of 100
    y = np.interp(years, [2000, 2004, 2006, 2016, 2017, 2020], [700, 700, 300, 600, 500, 500])
    return lt.segment(np.stack([y, y + 5 * np.sin(years)]), years, spike_threshold=1.0, recovery_threshold=1.0), years


def test_change_map_values_and_options():
    r, years = _toy_result()
    cm = lt.change_map(r, years, delta="loss", sort="greatest")
    assert set(cm) == set(lt.CHANGE_BANDS)
    assert cm["yod"][0] == 2005 and cm["mag"][0] == pytest.approx(400) and cm["dur"][0] == 2
    assert cm["preval"][0] == pytest.approx(700) and cm["rate"][0] == pytest.approx(200)
    assert r.rmse[0] < 1e-9 and np.isnan(cm["dsnr"][0])  # a perfect fit has no noise to compare with
    assert cm["dsnr"][1] == pytest.approx(cm["mag"][1] / r.rmse[1], rel=1e-5)
    assert lt.change_map(r, years, delta="loss", sort="newest")["yod"][0] == 2017
    assert lt.change_map(r, years, delta="loss", sort="least")["mag"][0] == pytest.approx(100)
    assert lt.change_map(r, years, delta="loss", sort="fastest")["dur"][0] == 1
    assert lt.change_map(r, years, delta="loss", sort="slowest")["dur"][0] == 2
    gain = lt.change_map(r, years, delta="gain", sort="greatest", mag_min=250)
    assert gain["yod"][0] == 2007 and gain["mag"][0] == pytest.approx(300) and gain["dur"][0] == 10
    assert np.isnan(lt.change_map(r, years, delta="gain", mag_min=300)["yod"][0])  # mag > 300 strictly
    assert np.isnan(lt.change_map(r, years, delta="loss", dur_max=1)["yod"][0])
    assert lt.change_map(r, years, delta="loss", year_range=(2010, 2020))["yod"][0] == 2017
    assert np.isnan(lt.change_map(r, years, delta="loss", preval_min=700)["yod"][0])
    with pytest.raises(ValueError, match="sort must be"):
        lt.change_map(r, years, sort="biggest")
    with pytest.raises(ValueError, match="mmu needs an image"):
        lt.change_map(r, years, mmu=4)


def test_change_map_mmu_on_8_connected_patches():
    years = np.arange(2000, 2021)
    base = np.interp(years, [2000, 2010, 2011, 2020], [700, 700, 200, 200])
    cube = np.tile(np.full(21, 700.0)[:, None, None], (1, 6, 6))
    for r_, c_ in [(0, 0), (1, 1), (2, 2), (5, 5)]:  # a diagonal patch of 3 and a lone pixel
        cube[:, r_, c_] = base
    res = lt.segment(cube, years, spike_threshold=1.0)
    cm = lt.change_map(res, delta="loss", mmu=3)
    assert np.isfinite(cm["yod"]).sum() == 3 and cm["yod"][1, 1] == 2011
    assert np.isnan(cm["yod"][5, 5])


def test_median_filter_stack():
    cube = np.zeros((2, 5, 5))
    cube[:, 2, 2] = 100  # an isolated pixel is removed by a 3x3 median
    cube[0, 0, 0] = np.nan
    f = lt.median_filter_stack(cube)
    assert f[0, 2, 2] == 0 and np.isnan(f[0, 0, 0]) and f[1, 0, 0] == 0
