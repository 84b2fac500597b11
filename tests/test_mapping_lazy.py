"""Trajectory classes of a scene too large for memory: block-wise inference (ltlib.classify.classify_blocks),
map_scene writing class_map.tif block by block, the census and reference sample streamed; all equal to the
in-memory run exactly (chunks of 61 px on a 200 x 200 px scene, partial blocks at the edges)."""
from __future__ import annotations

import numpy as np
import pytest

from ltlib import blocks, classify, io, mapping, scene

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module", autouse=True)
def local_threads():
    blocks.connect()


@pytest.fixture(scope="module")
def comparison():
    """The seed's set with two small TimeSeriesForests (pyts, the project's fastest classifier), trained on
    part of it; the first is the map model."""
    from pyts.classification import TimeSeriesForest

    lab = mapping.load_labelled()
    tr, va = lab.train[:400], lab.valid[:150]
    Xn = classify.normalize(lab.X[tr])
    models = {}
    for key, seed, bonus in (("TSF", 0, 1.0), ("TSF_b", 1, 0.0)):
        m = classify.TrainedModel("TSF", "sklearn", lab.X.shape[1], dict(method="minmax", min_range=0.2),
                                  estimator=TimeSeriesForest(n_estimators=20, random_state=seed, n_jobs=1).fit(
                                      Xn, lab.y[tr]))
        p = m.predict_proba(lab.X[va])
        m.scores = {"valid_accuracy": float((p.argmax(1) == lab.y[va]).mean()) + bonus,
                    "train_accuracy": 1.0, "valid_loss": 0.0}
        m.fit_seconds = 0.0
        models[key] = m
    return mapping.SeedComparison(lab, models, 0)


@pytest.fixture(scope="module")
def scenes(data_dir):
    mem = scene.load(data_dir, indices=["NDVI"], chunks=None, quiet=True)
    lazy = scene.load(data_dir, indices=["NDVI"], chunks=61, quiet=True)
    return mem, lazy


def test_series_block_by_block_equal_in_memory(scenes):
    mem, lazy = scenes
    a, b = mapping.scene_series(mem), mapping.scene_series(lazy)
    assert b.is_lazy and not a.is_lazy
    np.testing.assert_array_equal(b.data.compute(), a.data)
    np.testing.assert_array_equal(b.valid.compute(), a.valid)
    assert a.summary() == b.summary()


def test_map_scene_block_by_block_equals_in_memory(scenes, comparison, tmp_path):
    mem, lazy = scenes
    truth = mem.truth["class"]
    # 45 of 51 years: the pixels with MSS gaps are left unclassified (nodata 255)
    sm, sl = mapping.scene_series(mem, min_observations=45), mapping.scene_series(lazy, min_observations=45)
    ref = mapping.map_scene(sm, comparison, n_synthetic_per_class=0, truth=truth, probabilities=True,
                            progress=False)
    run = mapping.map_scene(sl, comparison, n_synthetic_per_class=0, truth=truth, probabilities=True,
                            progress=False, output_dir=tmp_path / "blocks")
    assert run.chosen == ref.chosen == "TSF"
    for name in ("TSF", "TSF_b"):
        assert blocks.is_lazy(run.class_maps[name])
        np.testing.assert_array_equal(run.class_maps[name].compute(), ref.class_maps[name])
    cmap = ref.class_map
    assert cmap.dtype == np.uint8 and (cmap == classify.NODATA).any() and set(np.unique(cmap)) - {255} <= set(range(6))
    assert len(np.unique(cmap)) >= 4  # a real map, not one class
    np.testing.assert_array_equal(run.probabilities["TSF"].compute(), ref.probabilities["TSF"])
    np.testing.assert_array_equal(run.census["confusion"], ref.census["confusion"])
    drop = {"models"}  # map_seconds differ
    s_ref, s_run = ref.summary(), run.summary()
    assert {k: v for k, v in s_run.items() if k not in drop} == {k: v for k, v in s_ref.items() if k not in drop}
    assert {n: r["map_accuracy"] for n, r in s_run["models"].items()} == \
        {n: r["map_accuracy"] for n, r in s_ref["models"].items()}
    # the files: class_map.tif written block by block while it ran, kept by write(); equal to in memory
    files_run = run.write(tmp_path / "blocks")
    files_ref = ref.write(tmp_path / "memory")
    assert files_run["class_map"] == tmp_path / "blocks" / "class_map.tif"
    assert (tmp_path / "blocks" / "class_map_TSF_b.tif").exists()
    for key in ("class_map", "class_probabilities"):
        a, _, na = io.read_raster(files_run[key])
        b, _, nb = io.read_raster(files_ref[key])
        np.testing.assert_array_equal(a, b)
        assert na == nb
    with io.open_geotiff(files_run["class_map"]) as src:
        assert src.nodata == classify.NODATA and src.dtypes[0] == "uint8" and src.colormap(1)
    # the reference sample of the lazy map: the same points, counts and estimates
    r_ref = mapping.reference_sample(ref.class_map, ref.grid, 20, seed=1, truth=truth)
    r_run = mapping.reference_sample(run.class_map, run.grid, 20, seed=1, truth=truth)
    assert r_ref.points.equals(r_run.points)
    assert r_ref.olofsson == r_run.olofsson
    assert r_ref.table(ref.census, truth).equals(r_run.table(run.census, truth))


def test_lazy_map_scene_needs_output_dir(scenes, comparison):
    _, lazy = scenes
    with pytest.raises(ValueError, match="output_dir"):
        mapping.map_scene(mapping.scene_series(lazy), comparison, n_synthetic_per_class=0, progress=False)
