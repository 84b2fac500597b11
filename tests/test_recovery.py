"""ltlib.landtrendr.recovery: closed-form cases, NaN cases counted, block-wise = in memory,
and the sample's noise-free series behind its truth."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import rasterio

from ltlib import sample
from ltlib.io import Grid
from ltlib.landtrendr import recovery as rc

YEARS = np.arange(2000, 2021)


def _series(t=2005, pre=800.0, low=100.0, step=100.0, cap=None):
    """pre before t, ``low`` at t, then + ``step`` a year (capped)."""
    v = np.full(len(YEARS), pre)
    after = YEARS >= t
    v[after] = low + step * (YEARS[after] - t)
    if cap is not None:
        v = np.minimum(v, cap)
    return v


def _one(v, yod, dur=1.0, **kw):
    m = rc.recovery_metrics(np.asarray(v, float)[:, None], YEARS, np.array([yod], float), np.array([dur], float), **kw)
    return {k: a[0] for k, a in m.items()}


def test_closed_form_case_of_the_issue():
    # pre 800, 100 at t, then +100 a year: dNBR 700, RRI 500/700, R80P 600/640, YrYr 100, Y2R 6
    m = _one(_series(cap=900), 2005)
    assert m["dindex"] == pytest.approx(700)
    assert m["rri"] == pytest.approx(500 / 700)
    assert m["r80p"] == pytest.approx(0.9375)
    assert m["yryr"] == pytest.approx(100)
    assert m["y2r"] == 6
    assert m["status"] == 1 and not m["window_incomplete"]


def test_t_is_the_end_vertex_of_a_multiyear_loss():
    # a loss over three years (yod 2003, dur 3: start vertex 2002, end vertex 2005)
    v = _series(cap=900)
    v[YEARS == 2003], v[YEARS == 2004] = 600, 350
    m = _one(v, 2003, dur=3)
    assert m["dindex"] == pytest.approx(700) and m["y2r"] == 6 and m["rri"] == pytest.approx(500 / 700)


def test_rri_and_r80p_take_the_larger_of_years_4_and_5():
    v = _series(cap=900)
    v[YEARS == 2010] = 300  # a dip in year 5: year 4 (500) counts
    m = _one(v, 2005)
    assert m["rri"] == pytest.approx(400 / 700) and m["r80p"] == pytest.approx(500 / 640)
    assert m["yryr"] == pytest.approx(40)  # YrYr reads year 5 itself


def test_flat_series_and_no_loss():
    flat = np.full(len(YEARS), 500.0)
    m = _one(flat, np.nan, np.nan)
    assert m["status"] == 0 and all(np.isnan(m[b]) for b in rc.METRICS)
    m = _one(flat, 2005)  # a loss claimed where the series did not drop: pre <= x_t
    assert m["status"] == 3 and all(np.isnan(m[b]) for b in rc.METRICS)


def test_never_recovers():
    m = _one(_series(step=0.0), 2005)
    assert m["status"] == 2 and np.isnan(m["y2r"])
    assert m["rri"] == 0 and m["yryr"] == 0 and m["r80p"] == pytest.approx(100 / 640)


def test_loss_in_the_last_year_and_incomplete_window():
    m = _one(_series(t=2020), 2020)
    assert m["dindex"] == pytest.approx(700) and m["window_incomplete"]
    assert all(np.isnan(m[b]) for b in ("rri", "r80p", "yryr", "y2r")) and m["status"] == 2
    # three years before the end with a fast recovery: the window is incomplete, Y2R is known
    m = _one(_series(t=2017, step=300.0), 2017)
    assert m["window_incomplete"] and np.isnan(m["rri"]) and m["y2r"] == 2 and m["status"] == 1


def test_non_positive_pre_and_rising_indices():
    m = _one(_series(pre=-100.0, low=-600.0), 2005)  # bare ground: a share of -100 means nothing
    assert np.isnan(m["r80p"]) and np.isnan(m["y2r"]) and m["status"] == 3
    assert m["rri"] == pytest.approx(500 / 500)
    # an index that rises with disturbance (TCB): the mirror image gives the same RRI and YrYr
    up = _one(-_series(cap=900), 2005, distdir=1)
    assert up["rri"] == pytest.approx(500 / 700) and up["yryr"] == pytest.approx(100)
    assert np.isnan(up["r80p"]) and np.isnan(up["y2r"]) and up["status"] == 3


def test_pre_disturbance_value_choices():
    v = _series(cap=900)
    v[YEARS == 2003] = 700  # the two years before yod 2005: 700, 800
    assert _one(v, 2005, pre="mean")["dindex"] == pytest.approx(650)
    assert _one(v, 2005, pre="median", pre_years=3)["dindex"] == pytest.approx(700)  # median(800, 700, 800)
    assert _one(v, 2005, pre="vertex")["dindex"] == pytest.approx(700)


def test_gaps_in_the_source_and_in_the_record():
    v = _series(cap=900)
    v[YEARS == 2005] = np.nan  # a cloud at t
    assert _one(v, 2005)["status"] == 3
    # year t + 5 missing from the record: RRI falls back on year 4, YrYr is NaN
    keep = YEARS != 2010
    m = rc.recovery_metrics(_series(cap=900)[keep][:, None], YEARS[keep], np.array([2005.0]), np.array([1.0]))
    assert m["rri"][0] == pytest.approx(400 / 700) and np.isnan(m["yryr"][0]) and m["y2r"][0] == 6


@pytest.mark.parametrize("kw, match", [({"pre": "max"}, "pre must be"), ({"window": 1}, "window"),
                                       ({"percent": 0}, "percent"), ({"pre_years": 0}, "pre_years"),
                                       ({"distdir": 0}, "distdir")])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        _one(_series(), 2005, **kw)


def _random_scene(h=40, w=37, seed=3):
    """Series with losses and recoveries of every kind, yod/dur maps with NaN."""
    rng = np.random.default_rng(seed)
    T = len(YEARS)
    t = rng.integers(2001, 2021, (h, w))
    pre = rng.uniform(-200, 900, (h, w))
    low = pre - rng.uniform(-100, 700, (h, w))
    step = rng.uniform(-20, 150, (h, w))
    yrs = YEARS[:, None, None]
    v = np.rint(np.where(yrs < t, pre, low + step * (yrs - t))).astype(np.float32)  # as stored (int16)
    v[rng.random(v.shape) < 0.05] = np.nan
    yod = np.where(rng.random((h, w)) < 0.2, np.nan, t).astype(np.float32)
    dur = np.ones((h, w), np.float32)
    return v, yod, dur


def test_block_wise_equals_in_memory():
    import dask.array as da

    v, yod, dur = _random_scene()
    mem = rc.recovery_metrics(v, YEARS, yod, dur, pre="median")
    lazy = rc.recovery_blocks(da.from_array(v, chunks=(len(YEARS), 7, 5)), da.from_array(yod, chunks=(7, 5)), dur,
                              YEARS, pre="median").compute()
    for k, b in enumerate(rc.RECOVERY_BANDS):
        np.testing.assert_array_equal(lazy[k], mem[b], err_msg=b)
    np.testing.assert_array_equal(lazy[-1].astype(bool), mem["window_incomplete"])
    assert set(np.unique(mem["status"])) == {0, 1, 2, 3}  # every case is in the test scene


def _fake_run(v, yod, dur, lazy=False):
    import dask.array as da
    from rasterio.transform import from_origin

    grid = Grid("EPSG:32612", from_origin(400_000, 4_490_000, 30, 30), *yod.shape)
    if lazy:
        v, yod, dur = (da.from_array(a, chunks=(16, 16) if a.ndim == 2 else (len(YEARS), 16, 16)) for a in (v, yod, dur))
    return SimpleNamespace(index="NBR", fitted={"NBR": v}, loss={"yod": yod, "dur": dur}, years=YEARS, grid=grid)


def test_scene_recovery_block_wise_file_equals_in_memory(tmp_path):
    v, yod, dur = _random_scene()
    mem = rc.scene_recovery(_fake_run(v, yod, dur))
    lazy = rc.scene_recovery(_fake_run(v, yod, dur, lazy=True), output_dir=tmp_path / "lazy")
    assert mem.counts == lazy.counts and mem.medians == lazy.medians
    assert sum(mem.counts[s] for s in rc.STATUS.values()) == yod.size
    assert mem.counts["window_incomplete"] > 0
    p_mem, p_lazy = mem.write(tmp_path / "mem")["recovery_map"], lazy.path
    with rasterio.open(p_mem) as a, rasterio.open(p_lazy) as b:
        assert a.descriptions == b.descriptions == rc.RECOVERY_BANDS
        np.testing.assert_array_equal(a.read(), b.read())
    with pytest.raises(ValueError, match="output_dir"):
        rc.scene_recovery(_fake_run(v, yod, dur, lazy=True))
    with pytest.raises(ValueError, match="was not fitted"):
        rc.scene_recovery(_fake_run(v, yod, dur), index="NDVI")


def test_noise_free_sample_series_is_the_truths():
    """The noise-free NDVI reproduces the truth's dist_mag (measured on it by ltlib.sample)."""
    truth = sample.load_truth(sample.Path(__file__).parents[1] / "data" / "sample")
    clean = sample.noise_free_index("NDVI") / 1000.0
    dy = truth["dist_year"].astype(int)
    r, c = np.nonzero((truth["class"] == 1) & (dy > 0))
    idx = np.searchsorted(np.asarray(sample.config.YEARS), dy[r, c])
    before = clean[idx - 1, r, c]
    after_min = np.array([clean[i:, y, x].min() for i, y, x in zip(idx, r, c)])
    np.testing.assert_array_equal(np.rint(1000 * (before - after_min)).astype(int), truth["dist_mag"][r, c])
    with pytest.raises(ValueError, match="no index"):
        sample.noise_free_index("EVI")
