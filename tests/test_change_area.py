"""ltlib.change_area: Olofsson et al. (2014)'s numerical example through the loss/gain questions,
the sample design, reference files (and their faults), block-wise = in memory."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from rasterio.transform import from_origin

from ltlib import change_area as ca
from ltlib.io import Grid

from .test_accuracy import OLOFSSON2014_COUNTS, OLOFSSON2014_PIXELS, PUB_AREA_HA, PUB_AREA_HA_CI, PUB_PRODUCERS, \
    PUB_USERS, Z975, _labels_from_matrix

YEARS = np.arange(2000, 2011)


def test_strata_codes():
    loss = np.array([[np.nan, 2003, 2005], [np.nan, np.nan, 2003]])
    gain = np.array([[2001, 2008, np.nan], [np.nan, 2002, np.nan]])
    np.testing.assert_array_equal(ca.strata_map(loss, gain), [[2, 1, 1], [0, 2, 1]])
    np.testing.assert_array_equal(ca.strata_map(loss, gain, by_year=True), [[2, 2003, 2005], [0, 2, 2003]])
    assert ca.stratum_counts(ca.strata_map(loss, gain)) == {0: 1, 1: 3, 2: 2}


def test_olofsson2014_example_as_loss_and_gain():
    """The paper's example: deforestation (its class 0) is our loss stratum and label, forest
    gain (1) our gain; stable forest and non-forest are two no-change strata (codes 0 and 3)."""
    m, r = _labels_from_matrix(OLOFSSON2014_COUNTS)
    code = np.array([ca.LOSS, ca.GAIN, ca.NONE, 3])
    strata = code[m]
    loss, gain = r == 0, r == 1
    year = np.where(loss, 2000 + np.arange(r.size) % 3, 0)  # three loss years
    counts = dict(zip(code.tolist(), OLOFSSON2014_PIXELS.tolist()))
    est, by_year, notes = ca.estimate_areas(strata, loss, year, gain, counts, pixel_area=900.0, z=Z975)
    assert est["loss"]["area_ha"] == pytest.approx(PUB_AREA_HA[0], abs=0.1)
    assert est["loss"]["ci_ha"] == pytest.approx(PUB_AREA_HA_CI[0], abs=0.1)
    assert est["gain"]["area_ha"] == pytest.approx(PUB_AREA_HA[1], abs=0.1)
    assert est["gain"]["ci_ha"] == pytest.approx(PUB_AREA_HA_CI[1], abs=0.1)
    assert est["loss"]["users"] == pytest.approx(PUB_USERS[0]) and est["loss"]["producers"] == pytest.approx(
        PUB_PRODUCERS[0])
    assert est["gain"]["users"] == pytest.approx(PUB_USERS[1]) and est["gain"]["producers"] == pytest.approx(
        PUB_PRODUCERS[1])
    # the per-year estimates split the total: same estimator, same sample
    assert sorted(by_year) == [2000, 2001, 2002]
    assert sum(v["area_ha"] for v in by_year.values()) == pytest.approx(PUB_AREA_HA[0], abs=0.1)
    assert all(0 < v["ci_ha"] < PUB_AREA_HA_CI[0] * 2 for v in by_year.values())
    assert notes == []


def test_estimate_notes_a_stratum_without_points():
    strata = np.array([0, 0, 1, 1, 1])
    loss = np.array([False, False, True, True, False])
    est, _, notes = ca.estimate_areas(strata, loss, np.where(loss, 2001, 0), loss & False, {0: 90, 1: 10, 2: 5},
                                      pixel_area=900.0)
    assert est["loss"]["area_ha"] is None and any("no sample unit" in n for n in notes)


def _grid(h, w):
    return Grid("EPSG:32612", from_origin(400_000, 4_490_000, 30, 30), h, w)


def _maps(h=60, w=50, seed=0):
    rng = np.random.default_rng(seed)
    loss = np.where(rng.random((h, w)) < 0.15, rng.integers(2001, 2011, (h, w)), np.nan).astype(np.float32)
    gain = np.where(rng.random((h, w)) < 0.1, rng.integers(2001, 2011, (h, w)), np.nan).astype(np.float32)
    return loss, gain


def test_design_sample_size_and_allocations():
    loss, gain = _maps()
    strata = ca.strata_map(loss, gain)
    counts = ca.stratum_counts(strata)
    w = np.array([counts[c] for c in sorted(counts)]) / loss.size
    ua = np.array([ca.DEFAULT_UA[c] for c in sorted(counts)])
    n_eq13 = int(np.ceil((np.sum(w * np.sqrt(ua * (1 - ua))) / 0.02) ** 2))  # Olofsson et al. 2014, eq. 13
    d = ca.design_sample(strata, _grid(*loss.shape), target_se=0.02, n_min=60)
    assert d.n_required == n_eq13
    assert sum(d.n_per_stratum.values()) == n_eq13 and min(d.n_per_stratum.values()) >= 60
    assert len(d.points) == n_eq13
    np.testing.assert_array_equal(d.points["stratum"], strata[d.points["row"], d.points["col"]])
    prop = ca.design_sample(strata, _grid(*loss.shape), target_se=0.02, allocation="proportional")
    expect = n_eq13 * np.array([counts[c] for c in sorted(counts)]) / loss.size
    assert np.all(np.abs(np.array([prop.n_per_stratum[c] for c in sorted(counts)]) - expect) <= 1)
    eq = ca.design_sample(strata, _grid(*loss.shape), n_total=90, allocation="equal")
    assert eq.n_per_stratum == {0: 30, 1: 30, 2: 30}
    with pytest.raises(ValueError, match="allocation"):
        ca.design_sample(strata, _grid(*loss.shape), allocation="neyman")


def _fake(loss, gain, lazy=False, truth=None):
    import dask.array as da

    h, w = loss.shape
    fitted = np.linspace(800, 200, len(YEARS), dtype=np.float32)[:, None, None] * np.ones((1, h, w), np.float32)
    if lazy:
        loss, gain, fitted = (da.from_array(a, chunks=(16, 16) if a.ndim == 2 else (len(YEARS), 16, 16))
                              for a in (loss, gain, fitted))
    grid = _grid(h, w)
    run = SimpleNamespace(index="NBR", fitted={"NBR": fitted}, loss={"yod": loss}, gain={"yod": gain}, years=YEARS,
                          grid=grid, loss_params=SimpleNamespace(mag_min=150), gain_params=SimpleNamespace(mag_min=300),
                          area_by_year=lambda d: {})
    scene = SimpleNamespace(has_truth=truth is not None, truth=truth, stack=lambda i: SimpleNamespace(data=fitted))
    return run, scene


def _truth(loss, seed=1):
    """A truth that agrees with the loss map on most pixels."""
    rng = np.random.default_rng(seed)
    dist = np.where(np.isfinite(loss) ^ (rng.random(loss.shape) < 0.05), np.nan_to_num(loss, nan=2004), 0)
    return {"dist_year": dist.astype(np.int16), "dist_mag": np.full(loss.shape, 400, np.int16),
            "gain_year": np.zeros(loss.shape, np.int16), "gain_mag": np.zeros(loss.shape, np.int16)}


def test_block_wise_equals_in_memory(tmp_path):
    loss, gain = _maps()
    truth = _truth(loss)
    mem = ca.change_areas(*_fake(loss, gain, truth=truth), n_min=20, target_se=0.02, output_dir=tmp_path / "m")
    lazy = ca.change_areas(*_fake(loss, gain, lazy=True, truth=truth), n_min=20, target_se=0.02,
                           output_dir=tmp_path / "l")
    assert mem.summary() == lazy.summary()
    assert mem.source == "truth" and mem.estimates["loss"]["area_ha"] > 0
    # the truth's census loss area lies within the 95% interval (fixed seed)
    census = (truth["dist_year"] > 0).sum() * 0.09
    e = mem.estimates["loss"]
    assert abs(e["area_ha"] - census) <= e["ci_ha"]
    assert (tmp_path / "m" / "reference_sample" / "points.csv").read_text() == \
        (tmp_path / "l" / "reference_sample" / "points.csv").read_text()
    assert not (tmp_path / "m" / "reference_sample" / "plots").exists()  # labels known: no plots


def test_labelling_kit_and_reading_it_back(tmp_path):
    loss, gain = _maps()
    run, scene = _fake(loss, gain)
    res = ca.change_areas(run, scene, n_total=30, allocation="equal", output_dir=tmp_path)
    assert res.estimates is None and "label reference_sample/points.csv" in res.notes[0]
    folder = tmp_path / "reference_sample"
    pts = pd.read_csv(folder / "points.csv")
    assert len(pts) == 30 and len(list((folder / "plots").glob("point_*.png"))) == 30
    capped = ca.change_areas(run, scene, n_total=30, allocation="equal", output_dir=tmp_path / "capped", max_plots=7)
    plotted = sorted(int(p.stem[6:]) for p in (tmp_path / "capped" / "reference_sample" / "plots").glob("*.png"))
    assert len(plotted) == 7 and plotted[0] == 0 and plotted[-1] == 29  # spread over the strata
    assert any("7 of 30 points" in n for n in capped.notes)
    gj = json.loads((folder / "points.geojson").read_text())
    assert len(gj["features"]) == 30 and gj["features"][0]["geometry"]["type"] == "Point"
    # a person labels the points as the map says (a perfect map): the estimate is the mapped area
    s = pts["stratum"].to_numpy()
    pts["reference"] = np.where(s == ca.LOSS, "loss", np.where(s == ca.GAIN, "gain", "none"))
    pts["year"] = np.where(s == ca.LOSS, loss[pts["row"], pts["col"]], np.nan)
    pts.to_csv(tmp_path / "labelled.csv", index=False)
    res = ca.change_areas(run, scene, reference=tmp_path / "labelled.csv")
    assert res.n_points == 30
    assert res.estimates["loss"]["area_ha"] == pytest.approx(np.isfinite(loss).sum() * 0.09)
    assert res.estimates["loss"]["ci_ha"] == pytest.approx(0)
    # the GeoJSON (lon/lat) with the same labels reads the same pixels
    for f, lab, yr in zip(gj["features"], pts["reference"], pts["year"]):
        f["properties"].update(reference=lab, year=None if np.isnan(yr) else int(yr))
    (tmp_path / "labelled.geojson").write_text(json.dumps(gj))
    a = ca.read_reference(tmp_path / "labelled.csv", run.grid, YEARS)
    b = ca.read_reference(tmp_path / "labelled.geojson", run.grid, YEARS)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _write(tmp_path, rows, name="ref.csv"):
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


@pytest.mark.parametrize("rows, match", [
    ([{"x": 400_015, "y": 4_489_985, "reference": "burnt", "year": 2003}], r"unknown reference label\(s\) \['burnt'\] at rows \[2\]"),
    ([{"x": 400_015, "y": 4_489_985, "reference": None, "year": None}], "no reference label"),
    ([{"x": 300_000, "y": 4_489_985, "reference": "none", "year": None}], "off the 60 x 50 px grid"),
    ([{"x": 400_015, "y": 4_489_985, "reference": "none", "year": None},
      {"x": 400_020, "y": 4_489_980, "reference": "loss", "year": 2003}], r"rows \[2, 3\]\); a pixel is one sample unit"),
    ([{"x": 400_015, "y": 4_489_985, "reference": "loss", "year": None}], "a loss needs its year"),
    ([{"x": 400_015, "y": 4_489_985, "reference": "loss", "year": 1990}], "between 2000 and 2010"),
    ([{"lon": 1.0, "reference": "none"}], "needs coordinates"),
    ([{"x": 400_015, "y": 4_489_985, "label": "none"}], "no 'reference' column"),
])
def test_reference_file_faults(tmp_path, rows, match):
    p = _write(tmp_path, rows)
    with pytest.raises(ValueError, match=match) as e:
        ca.read_reference(p, _grid(60, 50), YEARS)
    assert str(p) in str(e.value)


def test_reference_file_type_and_existence(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        ca.read_reference(tmp_path / "none.csv", _grid(4, 4))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match=r"\.csv or \.geojson"):
        ca.read_reference(tmp_path / "a.txt", _grid(4, 4))


def test_labels_from_truth_thresholds():
    truth = {"dist_year": np.array([[0, 2003, 2004]]), "dist_mag": np.array([[0, 100, 400]]),
             "gain_year": np.array([[2005, 0, 2008]]), "gain_mag": np.array([[500, 0, 200]])}
    loss, year, gain = ca.labels_from_truth(truth, [0, 0, 0], [0, 1, 2], loss_mag_min=150, gain_mag_min=300)
    assert loss.tolist() == [False, False, True] and year.tolist() == [0, 0, 2004]
    assert gain.tolist() == [True, False, False]
