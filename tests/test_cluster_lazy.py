"""k-Shape on scenes too large for memory: a seeded sample of pixels (ltlib.pixel_sample), the fit on
it, every pixel assigned block by block (ltlib.cluster.assign): lazy (odd chunks smaller than the
image) equals in memory exactly."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ltlib import blocks, io, pixel_sample, scene
from ltlib import cluster as C
from ltlib.cluster.assign import assign_labels
from ltlib.cluster.run import adjusted_rand_from_table

pytestmark = pytest.mark.filterwarnings("ignore:h5py not installed")

FAST = dict(k_range=[2, 3, 4], elbow_max_series=150, silhouette_sample=100, elbow_n_init=1, n_init=1, max_iter=20,
            euclidean_elbow=False, sample_size=300)


@pytest.fixture(scope="module", autouse=True)
def local_threads():
    blocks.connect()


@pytest.fixture(scope="module")
def scenes(data_dir):
    kw = dict(indices=["NDVI", "TCW"], years=(1984, 2020), quiet=True)
    mem = scene.load(data_dir, chunks=None, **kw)
    lazy = scene.load(data_dir, chunks=37, **kw)
    # gaps, and pixels without any data, so the valid mask is not trivial
    for sc in (mem, lazy):
        for name in sc.indices:
            s = sc.stack(name)
            hole = np.zeros(s.data.shape, bool)
            hole[:, 10:25, 40:47] = True
            hole[3:9, 100:130, 60:90] = True
            s.data = np.where(hole, np.nan, s.data) if not sc.is_lazy else __import__("dask.array").array.where(
                hole, np.nan, s.data)
    return mem, lazy


def test_the_sample_is_the_same_lazily_and_in_memory(scenes):
    mem, lazy = scenes
    a = pixel_sample.sample_pixels(mem.stack("NDVI").data, 500, seed=3)
    b = pixel_sample.sample_pixels(lazy.stack("NDVI").data, 500, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    series, rows, cols = a
    assert series.shape == (500, len(mem.years)) and len(np.unique(rows * 1000 + cols)) == 500
    assert np.all(np.diff(rows * 1000 + cols) > 0)  # row-major order
    np.testing.assert_array_equal(series, mem.stack("NDVI").data[:, rows, cols].T)
    assert not ((rows >= 10) & (rows < 25) & (cols >= 40) & (cols < 47)).any()  # no pixel without data
    c = pixel_sample.sample_pixels(mem.stack("NDVI").data, 500, seed=4)
    assert not np.array_equal(c[1] * 1000 + c[2], rows * 1000 + cols)
    # multivariate: (n, T, d), and a request above the valid pixels gives every valid pixel
    multi = pixel_sample.sample_pixels([lazy.stack("NDVI"), lazy.stack("TCW")], 10, seed=0)[0]
    assert multi.shape == (10, len(mem.years), 2)
    every = pixel_sample.draw_pixels(np.eye(5, dtype=bool), 50)
    np.testing.assert_array_equal(every[0], np.arange(5))
    with pytest.raises(ValueError, match="sample size"):
        pixel_sample.draw_pixels(np.eye(5, dtype=bool), 0)


def test_assignment_block_by_block_equals_in_memory(scenes):
    mem, lazy = scenes
    X, _, _ = pixel_sample.sample_pixels(mem.stack("NDVI").data, 400, seed=0)
    model = C.KShape(4, n_init=1, max_iter=20, random_state=0).fit(C.prepare(X).X)
    ref = assign_labels([mem.stack("NDVI").data], model)
    out = assign_labels([lazy.stack("NDVI").data], model)
    assert blocks.is_lazy(out) and out.chunks[0][0] == 37
    np.testing.assert_array_equal(out.compute(), ref)
    assert ref.dtype == np.int16 and (ref[10:25, 40:47] == -1).all()
    assert set(np.unique(ref)) <= {-1, 0, 1, 2, 3, 4} and len(np.unique(ref[ref >= 0])) >= 4
    # the in-memory assignment is the model's prediction of each pixel's prepared series
    series, mask = io.stack_to_series(mem.stack("NDVI"))
    prep = C.prepare(series)
    np.testing.assert_array_equal(ref[mask][prep.keep], model.predict(prep.X))


def _untimed(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if k not in ("seconds", "fit_seconds")}
    out["elbow"] = {k: v for k, v in summary["elbow"].items() if k != "fit_time_s"}
    return out


@pytest.mark.parametrize("indices", [["NDVI"], ["NDVI", "TCW"]])
def test_cluster_run_lazy_equals_in_memory(scenes, tmp_path, indices):
    mem, lazy = scenes
    settings = C.ClusterSettings(n_clusters=None, **FAST)
    ref = C.cluster_trajectories(C.load_trajectories(mem), indices, settings, progress=False, truth=mem.truth)
    run = C.cluster_trajectories(C.load_trajectories(lazy), indices, settings, progress=False,
                                 output_dir=tmp_path, truth=lazy.truth)
    assert ref.sample is not None and len(ref.sample[0]) == 300  # more pixels than sample_size: sampled
    np.testing.assert_array_equal(run.model.cluster_centers_, ref.model.cluster_centers_)
    assert run.is_lazy and not ref.is_lazy and run.k == ref.k
    np.testing.assert_array_equal(run.label_image().compute(), ref.label_image())
    assert _untimed(run.summary()) == _untimed(ref.summary())
    assert sum(ref.summary()["cluster_sizes"]) + ref.summary()["n_flat"] == int(ref.mask.sum())
    # against the truth: counted block by block for the lazy run, exactly the in-memory values
    assert run.ari_vs_truth() == ref.ari_vs_truth() and 0 < ref.ari_vs_truth() < 1
    pd.testing.assert_frame_equal(run.contingency(), ref.contingency())
    assert run.majority_class() == ref.majority_class() and len(ref.majority_class()) >= ref.k
    # clusters.tif written block by block equals the in-memory file
    a = io.read_raster(C.write_clusters(tmp_path / "lazy", [run])["labels"])
    b = io.read_raster(C.write_clusters(tmp_path / "mem", [ref])["labels"])
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]


def test_small_scene_in_memory_fits_every_pixel(scenes):
    mem, _ = scenes
    sub = C.Trajectories({"NDVI": io.Stack(mem.stack("NDVI").data[:, :15, :15], mem.years,
                                            io.Grid(mem.grid.crs, mem.grid.transform, 15, 15), name="NDVI")},
                         "composites", mem.folder)
    run = C.cluster_trajectories(sub, ["NDVI"], C.ClusterSettings(**{**FAST, "k_range": [2, 3]}), progress=False)
    assert run.sample is None and run.assigned is None and run.summary()["n_fit_sample"] is None


def test_lazy_run_needs_output_dir(scenes):
    _, lazy = scenes
    with pytest.raises(ValueError, match="output_dir"):
        C.cluster_trajectories(C.load_trajectories(lazy), ["NDVI"], C.ClusterSettings(**FAST), progress=False)


def test_load_trajectories_reads_notebook_02_lazily(scenes, tmp_path):
    mem, lazy = scenes
    io.write_stack(tmp_path / "ndvi_fit.tif", np.nan_to_num(mem.stack("NDVI").data, nan=0), mem.years, mem.grid,
                   dtype="int16", name="NDVI_fit", scale=0.001)
    (tmp_path / "summary.json").write_text(json.dumps({"files": {"ndvi_fit": "ndvi_fit.tif"}}))
    t_lazy = C.load_trajectories(lazy, tmp_path)
    t_mem = C.load_trajectories(mem, tmp_path)
    assert blocks.is_lazy(t_lazy.stack("NDVI").data) and t_lazy.stack("NDVI").data.chunksize[1:] == (37, 37)
    assert not blocks.is_lazy(t_mem.stack("NDVI").data)
    np.testing.assert_array_equal(t_lazy.stack("NDVI").data.compute(), t_mem.stack("NDVI").data)
    assert not blocks.is_lazy(lazy.read_output(tmp_path, "ndvi_fit", stack=True, chunks=None).data)
    with pytest.raises(ValueError, match="chunks"):
        lazy.read_output(tmp_path, "ndvi_fit", stack=True, chunks="big")


def test_adjusted_rand_from_the_contingency_table_is_sklearns():
    from sklearn.metrics import adjusted_rand_score
    from sklearn.metrics.cluster import contingency_matrix

    rng = np.random.default_rng(0)
    for n, a, b in [(500, 6, 9), (37, 2, 3), (1000, 1, 4), (200, 5, 5)]:
        t, p = rng.integers(0, a, n), rng.integers(0, b, n)
        p[: n // 2] = t[: n // 2]  # partly agreeing
        table = contingency_matrix(t, p)
        assert adjusted_rand_from_table(table) == adjusted_rand_score(t, p)
    assert adjusted_rand_from_table(np.diag([3, 4])) == adjusted_rand_score([0] * 3 + [1] * 4, [5] * 3 + [2] * 4)


def test_engines_on_a_sample_compare_with_the_sampled_pixels_truth(scenes, tmp_path):
    mem, lazy = scenes
    settings = C.ClusterSettings(n_clusters=3, **FAST)
    run = C.cluster_trajectories(C.load_trajectories(lazy), ["NDVI"], settings, progress=False,
                                 output_dir=tmp_path, truth=lazy.truth)
    eng = C.compare_engines(run, n_series=100, max_iter=3, rng=np.random.default_rng(1),
                            engines=(("ltlib", "random"),))
    from sklearn.metrics import adjusted_rand_score

    rows, cols = run.sample
    sub = np.random.default_rng(1).choice(len(run.prepared.X), 100, replace=False)
    truth = mem.truth["class"][rows, cols][run.prepared.keep][sub]
    assert eng.results["ltlib"]["ari_vs_truth"] == round(adjusted_rand_score(truth, eng.labels["ltlib"]), 4)
