"""ltlib.mapping: the seed's comparison, the mapping models on scenes of any years, the class map,
the reference sample; and the generator on short records."""
from __future__ import annotations

import re

import numpy as np
import pytest

from ltlib import classify, config, io, mapping, scene, trainingset
from ltlib.classify import NODATA, TrainedModel

from . import scenes
from .test_trainingset import PATTERNS, zigzag


def _crop(sc: scene.Scene, rows: int, cols: int, years=None, keep_truth=True) -> scene.Scene:
    """The top-left ``rows`` x ``cols`` pixels of ``sc`` (years ``years`` only), as a new Scene."""
    g = sc.grid
    grid = io.Grid(g.crs, g.transform, rows, cols)
    stacks = {}
    for name, s in sc.stacks.items():
        sel = np.ones(len(s.years), bool) if years is None else (s.years >= years[0]) & (s.years <= years[1])
        stacks[name] = io.Stack(s.data[sel, :rows, :cols].copy(), s.years[sel], grid, name=s.name, scale=s.scale,
                                path=s.path)
    truth = None
    if keep_truth and sc.truth is not None:
        truth = {k: (v[:rows, :cols] if k != "grid" else grid) for k, v in sc.truth.items()}
    return scene.Scene(stacks, truth, None, sc.source, sc.folder, "cropped test scene")


@pytest.fixture(scope="module")
def sample_scene(data_dir):
    return scene.load(data_dir, quiet=True)


@pytest.fixture(scope="module")
def labelled():
    return mapping.load_labelled()


@pytest.fixture(scope="module")
def small_labelled(labelled):
    """300 of the seed's series (every class), with the seed's split of those: fast TSF fits."""
    pick = np.sort(np.random.default_rng(0).choice(len(labelled.X), 300, replace=False))
    X, y = labelled.X[pick], labelled.y[pick]
    tr, va = trainingset.seed_split(y)
    return mapping.LabelledSet(X, y, labelled.path, labelled.first_year, tr, va)


@pytest.fixture(scope="module")
def tsf_comparison(small_labelled):
    return mapping.compare_on_seed(small_labelled, ["TSF"], seed=0, progress=False)


# --------------------------------------------------------------------------- the generator on short records
@pytest.mark.parametrize("n_years", [12, 16, 25, 37])
def test_generate_holds_the_class_rules_on_short_records(n_years):
    X, y, C = trainingset.generate(40, n_years=n_years, seed=7, gradual_fraction=0.5, gap_fraction=0.05,
                                   return_clean=True)
    assert X.shape == (240, n_years) and np.bincount(y).tolist() == [40] * 6
    for c in range(6):
        bad = [zigzag(s, 0.149) for s in C[y == c] if not re.fullmatch(PATTERNS[c], zigzag(s, 0.149))]
        assert not bad, (n_years, c, bad[:5])
    assert np.isfinite(trainingset.fill_series(X)).all()


def test_generate_refuses_records_too_short_for_the_rules():
    with pytest.raises(ValueError, match=r"n_years must be >= 12 \(room for two losses"):
        trainingset.generate(5, n_years=trainingset.MIN_YEARS - 1)


def test_timing_of_long_records_is_the_rules_as_written():
    # 30 years and more: the constants of the 51-year rules, so long records draw what they always drew
    assert trainingset._timing(30) == trainingset._timing(51) == trainingset._Timing()
    short = trainingset._timing(12)
    assert short.md_sep < trainingset._Timing().md_sep and short.dr_dur[1] < 40


# --------------------------------------------------------------------------- what a scene needs
def test_missing_input_names_ndvi_years_and_parameters(tmp_path, sample_scene, labelled):
    forest = scene.load(scenes.forest_scene(tmp_path / "forest"), quiet=True)
    why = mapping.missing_input(forest, labelled, n_synthetic_per_class=300)
    assert "defined on NDVI" in why and "has only NBR" in why and "landsat" in why
    assert mapping.missing_input(sample_scene, labelled, n_synthetic_per_class=300) is None
    assert mapping.missing_input(sample_scene, labelled, n_synthetic_per_class=0) is None  # the seed's years
    other = _crop(sample_scene, 10, 10, years=(1984, 2020))
    assert mapping.missing_input(other, labelled, n_synthetic_per_class=40) is None
    assert "n_synthetic_per_class > 0" in mapping.missing_input(other, labelled, n_synthetic_per_class=0)
    short = _crop(sample_scene, 10, 10, years=(1984, 1991))
    why = mapping.missing_input(short, labelled, n_synthetic_per_class=40)
    assert "at least 12 years" in why and "1984-1991 (8 years)" in why


def test_seed_set_assessable_needs_truth_and_the_seed_years(sample_scene, labelled):
    assert mapping.seed_set_assessable(sample_scene, labelled) == (True, "")
    ok, why = mapping.seed_set_assessable(_crop(sample_scene, 5, 5, years=(1984, 2020)), labelled)
    assert not ok and "1972-2022 (51 years)" in why and "1984-2020 (37 years)" in why
    ok, why = mapping.seed_set_assessable(_crop(sample_scene, 5, 5, keep_truth=False), labelled)
    assert not ok and "no truth" in why


def test_model_names_checked():
    assert mapping.model_names(["TSF"], use_gadf=True) == ["TSF", "GADF"]
    with pytest.raises(ValueError, match="unknown models"):
        mapping.model_names(["TSF", "LSTM9"])
    with pytest.raises(ValueError, match="empty"):
        mapping.model_names([])


def test_scene_series_fills_gaps_and_refuses_another_grid(sample_scene, tmp_path):
    sc = _crop(sample_scene, 12, 14)
    series = mapping.scene_series(sc)
    assert series.data.shape == (51, 12, 14) and series.valid.all() and np.isfinite(series.data).all()
    assert np.abs(series.data).max() <= 1  # physical NDVI
    assert "NDVI composites" in series.source and "12 x 14 px" in str(series)
    other = sample_scene.stack("NDVI")  # 200 x 200: not the cropped grid
    with pytest.raises(ValueError, match="is on another grid"):
        mapping.scene_series(sc, fitted=other)
    with pytest.raises(ValueError, match="min_observations"):
        mapping.scene_series(sc, min_observations=60)


# --------------------------------------------------------------------------- training sets
def test_training_set_on_the_seed_years_and_on_others(small_labelled):
    lab = small_labelled
    same = mapping.training_set(lab, lab.years, 10, seed=0)
    assert same["uses_labelled_set"] and len(same["X"]) == len(lab.train) + 60
    assert len(same["X_valid"]) == len(lab.valid) + 12
    np.testing.assert_array_equal(same["X"][:len(lab.train)], lab.X[lab.train])
    other = mapping.training_set(lab, np.arange(1984, 1996), 10, seed=0)
    assert not other["uses_labelled_set"] and other["X"].shape == (60, 12) and np.isfinite(other["X"]).all()
    assert "cannot be cut to other years" in other["note"] and "1984-1995 (12 years)" in other["note"]
    with pytest.raises(ValueError, match="n_synthetic_per_class > 0"):
        mapping.training_set(lab, np.arange(1984, 1996), 0)
    with pytest.raises(ValueError, match="too short"):
        mapping.training_set(lab, np.arange(1984, 1992), 10)


# --------------------------------------------------------------------------- mapping a scene
def test_map_scene_with_truth_on_the_seed_years(sample_scene, tsf_comparison, tmp_path):
    sc = _crop(sample_scene, 30, 30)
    series = mapping.scene_series(sc)
    truth = sc.truth["class"]
    seed_only = tsf_comparison.map_accuracy(series, truth)
    run = mapping.map_scene(series, tsf_comparison, n_synthetic_per_class=50, seed=0, truth=truth,
                            seed_set_only=seed_only, probabilities=True, progress=False)
    s = run.summary()
    assert s["n_years"] == 51 and s["map_model"] == "TSF" and s["mapping_training"]["uses_labelled_set"]
    assert sum(s["class_pixels"].values()) + s["unclassified_pixels"] == 900
    r = s["models"]["TSF"]
    assert r["map_accuracy"] == s["map_accuracy"] == pytest.approx((run.class_map == truth).mean(), abs=1e-4)
    assert r["map_accuracy_seed_set_only"] == pytest.approx(seed_only["TSF"], abs=1e-4)
    assert r["valid_accuracy"] == round(tsf_comparison.models["TSF"].scores["valid_accuracy"], 4)
    assert len(s["map_producers"]) == 6 and run.census["n_pixels"] == 900
    files = run.write(tmp_path)
    assert set(files) == {"class_map", "class_probabilities", "model_TSF_map"}
    assert not list(tmp_path.rglob("*.part"))  # atomic writes leave no temporary files
    cmap, grid, _ = io.read_raster(files["class_map"])
    assert grid.same_as(sc.grid) and (cmap[0] == run.class_map).all()
    proba, _, names = io.read_raster(files["class_probabilities"])
    assert names == list(config.CLASS_NAMES.values()) and (proba.argmax(0) == run.class_map).all()
    back = TrainedModel.load(files["model_TSF_map"])
    np.testing.assert_array_equal(classify.classify_image(back, series.data, progress=False), run.class_map)

    ref = mapping.reference_sample(run.class_map, run.grid, 5, seed=0, truth=truth)
    assert (ref.points["reference"] == truth[ref.points["row"], ref.points["col"]]).all()
    counts = [int((ref.points["map_class"] == c).sum()) for c in range(6)]
    assert ref.olofsson["sample_counts"] == counts and max(counts) == 5
    table = ref.table(run.census, truth)
    assert {"census_users", "census_producers", "true_area_ha"} <= set(table.columns)
    assert table["true_area_ha"].sum() == pytest.approx(900 * 900 / 1e4)


def test_map_scene_reuses_the_seed_models_without_generated_series(sample_scene, tsf_comparison, tmp_path):
    series = mapping.scene_series(_crop(sample_scene, 8, 8))
    run = mapping.map_scene(series, tsf_comparison, n_synthetic_per_class=0, progress=False)
    assert run.models["TSF"] is tsf_comparison.models["TSF"]
    assert set(run.write(tmp_path)) == {"class_map"}  # no second copy of the seed's model
    assert run.summary()["mapping_training"]["n_generated"] == 0


@pytest.mark.parametrize("years, shape", [((1984, 1995), (15, 16)), ((1984, 2020), (20, 24))])
def test_map_scene_on_other_years_trains_on_generated_series(sample_scene, tsf_comparison, tmp_path, years, shape,
                                                              capsys):
    """A 12-year (served Earth Engine) or 37-year (warped sample) scene without truth."""
    sc = _crop(sample_scene, *shape, years=years, keep_truth=False)
    series = mapping.scene_series(sc)
    run = mapping.map_scene(series, tsf_comparison, n_synthetic_per_class=30, seed=0, progress=False)
    assert "cannot be cut to other years" in capsys.readouterr().out
    s = run.summary()
    n_years = years[1] - years[0] + 1
    assert s["n_years"] == n_years and run.models["TSF"].n_steps == n_years
    assert s["mapping_training"] == {"n_series": 180, "n_generated": 180, "n_valid": 36, "uses_labelled_set": False,
                                     "note": s["mapping_training"]["note"]}
    assert sum(s["class_pixels"].values()) + s["unclassified_pixels"] == shape[0] * shape[1]
    assert s["map_accuracy"] is None and s["models"]["TSF"]["map_accuracy"] is None
    assert s["models"]["TSF"]["map_accuracy_seed_set_only"] is None
    ref = mapping.reference_sample(run.class_map, run.grid, 5, seed=0)
    assert ref.olofsson is None and ref.points["reference"].isna().all() and "label the 'reference'" in str(ref)
    assert ref.summary()["labelled"] is False


# --------------------------------------------------------------------------- figures and maps of notebook 04
def test_class_map_on_a_map_and_a_figure(sample_scene):
    from ipyleaflet import ImageOverlay

    from ltlib import maps, plots

    sc = _crop(sample_scene, 20, 20)
    cmap = sc.truth["class"].astype(np.uint8)
    cmap[:2] = NODATA  # unclassified pixels are transparent, not an error
    m = maps.trajectory_class_map(cmap, sc.grid, name="classes", truth=sc.truth["class"])
    overlays = [layer for layer in m.layers if isinstance(layer, ImageOverlay)]
    assert [o.name for o in overlays] == ["Truth trajectory class", "classes"]  # truth below, hidden
    assert not overlays[0].visible and overlays[1].visible
    fig = plots.class_map_figure(cmap, sc.grid, title="map", truth=sc.truth["class"])
    assert [ax.get_title() for ax in fig.axes] == ["map", "Truth"]
    assert len(plots.class_map_figure(cmap, sc.grid, title="map").axes) == 1


def test_class_figures_of_the_labelled_set(small_labelled, tsf_comparison):
    from ltlib import plots

    lab = small_labelled
    fig = plots.plot_class_examples(lab.X, lab.y, years=lab.years, source="seed")
    assert len(fig.axes) == 12 and fig.axes[0].get_title() == "0 downward"
    fig = plots.plot_series_images(lab.X, lab.y, years=lab.years)
    assert len(fig.axes) == 4 * 6 + 4  # 24 images and a colour bar per method
    proba, y = tsf_comparison.valid_predictions()
    assert proba.shape == (len(lab.valid), 6) and (y == lab.y[lab.valid]).all()
    assert plots.confusion_figure(np.eye(6) * 3, title="c").axes[0].get_title() == "c"


def test_large_scenes_use_the_large_scene_models(sample_scene, data_dir):
    names, note = mapping.models_for_scene(sample_scene, ["InceptionTime", "TSF"], ["TSF100"])
    assert names == ["InceptionTime", "TSF"] and "held in memory" in note
    lazy = scene.load(data_dir, quiet=True, chunks=64)
    names, note = mapping.models_for_scene(lazy, ["InceptionTime", "TSF"], ["TSF100"])
    assert names == ["TSF100"] and "opened in chunks" in note and "models_large" in note
    assert mapping.models_for_scene(lazy, ["InceptionTime"], None)[0] == ["InceptionTime"]
    assert mapping.LARGE_SCENE_MODELS == ("TSF100",) and "TSF100" in classify.MODELS
