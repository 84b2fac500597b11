"""ltlib.cluster.run (the scene step of notebook 03), the Euclidean elbow and the cluster figures and map."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from sklearn.metrics import adjusted_rand_score

from ltlib import cluster as C
from ltlib import io, maps, plots, scene

from .test_cluster import planted

pytestmark = pytest.mark.filterwarnings("ignore:h5py not installed")

YEARS = np.arange(1972, 2023)  # 51 years, like planted()
GRID = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), 8, 8)


def _stack(X, name="NDVI"):
    """60 planted series on an 8 x 8 grid; (7, 6) flat, (7, 4), (7, 5), (7, 7) without data, a gap at (0, 0)."""
    data = np.full((51, 8, 8), np.nan, np.float32)
    rows, cols = np.unravel_index(np.arange(60), (8, 8))
    data[:, rows, cols] = 1000 * X.T
    data[:, 7, 6] = 300.0
    data[5:9, 0, 0] = np.nan
    return io.Stack(data, YEARS, GRID, name=name, scale=0.001), (rows, cols)


@pytest.fixture(scope="module")
def planted_scene():
    X, y = planted(n_per=20, seed=10)
    ndvi, (rows, cols) = _stack(X, "NDVI")
    tcg, _ = _stack(2 * X + 1, "TCG")
    truth = np.full((8, 8), 5, np.int16)
    truth[rows, cols] = y
    return C.Trajectories({"NDVI": ndvi, "TCG": tcg}, "composites", Path("/scene")), y, (rows, cols), truth


FAST = C.ClusterSettings(k_range=[2, 3, 4, 5], elbow_max_series=100, silhouette_sample=60, elbow_n_init=2, n_init=2)


# ----------------------------------------------------------------------------- the step
def test_cluster_trajectories_labels_image_and_summary(planted_scene, tmp_path):
    traj, y, (rows, cols), truth = planted_scene
    run = C.cluster_trajectories(traj, ["NDVI"], FAST, truth=truth, progress=False)
    assert run.name == "univariate" and run.k_choice == "knee" and run.k == 3
    img = run.label_image()
    assert img.shape == (8, 8) and img.dtype == np.int16
    assert img[7, 7] == -1 and img[7, 6] == run.k  # no data; flat pixel set aside
    assert adjusted_rand_score(y, img[rows, cols]) > 0.9
    s = run.summary()
    assert s["indices"] == ["NDVI"] and s["k"] == 3 and s["n_pixels_clustered"] == 60 and s["n_flat"] == 1
    assert s["n_gap_values_filled"] == 4 and sum(s["cluster_sizes"]) == 60
    assert s["elbow"]["k"] == [2, 3, 4, 5] and s["elbow"]["knee"] == 3 and s["elbow"]["n_series"] == 60
    assert len(s["elbow"]["euclidean"]["distortion"]) == 4
    assert s["ari_vs_truth"] == pytest.approx(run.ari_vs_truth(), abs=1e-4) and s["ari_vs_truth"] > 0.9
    tab = run.contingency()
    assert int(tab.values.sum()) == 61 and set(tab.columns) == {0, 1, 2, 3}
    assert "-> k=3 (knee)" in str(run).splitlines()[0]
    json.dumps(s)  # summary.json material

    forced = C.ClusterSettings(n_clusters=3, k_range=[2, 3], elbow_max_series=100, silhouette_sample=60,
                               euclidean_elbow=False)
    multi = C.cluster_trajectories(traj, ["NDVI", "TCG"], forced, progress=False)
    assert multi.name == "multivariate" and multi.k_choice == "parameter" and multi.centers.shape == (3, 51, 2)
    assert "ari_vs_truth" not in multi.summary() and multi.ari_vs_truth() is None
    assert "euclidean" not in multi.summary()["elbow"]
    with pytest.raises(ValueError, match="no truth"):
        multi.contingency()

    written = C.write_clusters(tmp_path, [run, multi])
    assert set(written) == {"labels", "centroids_univariate", "centroids_multivariate"}
    labels, grid, names = io.read_raster(written["labels"])
    assert grid.same_as(GRID) and names == ["kshape_ndvi_k3", "kshape_ndvi_tcg_k3"]
    np.testing.assert_array_equal(np.nan_to_num(labels[0], nan=-1), img)  # -1 is the nodata value
    import pandas as pd

    uni = pd.read_csv(written["centroids_univariate"], index_col=0)
    assert uni.shape == (3, 51) and uni.columns[0] == "1972"
    np.testing.assert_allclose(uni.values, run.centers[:, :, 0], atol=1e-9)
    mv = pd.read_csv(written["centroids_multivariate"], index_col=[0, 1])
    assert mv.shape == (6, 51) and list(mv.index[:2]) == [(0, "NDVI"), (0, "TCG")]
    assert not list(tmp_path.glob(".*part"))


def test_settings_and_too_few_pixels_are_clear_errors(planted_scene):
    traj, *_ = planted_scene
    for bad, match in ((dict(k_range=[1, 2]), "k_range"), (dict(k_range="2-5"), "k_range"),
                       (dict(n_clusters=1), "n_clusters"), (dict(n_init=0), "n_init"), (dict(k_range=[]), "empty"),
                       (dict(init="kmeans"), "kshape_init")):
        with pytest.raises(ValueError, match=match):
            C.ClusterSettings(**bad)
    assert C.ClusterSettings(k_range=[4, 2, 3, 3]).k_range == (2, 3, 4)
    with pytest.raises(ValueError, match="lower k_range"):
        C.cluster_trajectories(traj, ["NDVI"], C.ClusterSettings(k_range=[2, 60, 61]), progress=False)
    with pytest.raises(scene.MissingInputError, match="has no NBR"):
        C.cluster_trajectories(traj, ["NBR"], FAST, progress=False)


def test_trajectory_indices(planted_scene):
    traj, *_ = planted_scene
    assert traj.pick_index() == "NDVI" and traj.pick_index("tcg") == "TCG"
    assert traj.multivariate_indices() == (["NDVI", "TCG"], None)
    one = C.Trajectories({"NBR": traj.stacks["NDVI"]}, "landtrendr", Path("/out/02_fit_landtrendr"))
    assert one.describe() == "LandTrendr fitted stacks from /out/02_fit_landtrendr"
    assert traj.describe() == "raw composites of /scene"
    chosen, why = one.multivariate_indices()
    assert chosen == ["NBR"] and why == "multivariate clustering needs two indices; /out/02_fit_landtrendr has only NBR"
    assert "two indices" in traj.multivariate_indices(["NDVI"])[1]
    with pytest.raises(scene.MissingInputError, match="no tcw_fit"):
        one.multivariate_indices(["NBR", "TCW"])
    full = {i: traj.stacks["NDVI"] for i in ("NDVI", "NBR", "TCB", "TCG", "TCW")}
    assert C.Trajectories(full, "composites", Path("x")).multivariate_indices()[0] == ["NDVI", "TCG", "TCW"]
    some = {i: traj.stacks["NDVI"] for i in ("TCB", "NBR", "NDMI", "TCG")}
    assert C.Trajectories(some, "composites", Path("x")).multivariate_indices()[0] == ["NBR", "NDMI", "TCG"]


def _scene_folder(root, grid=GRID, indices=("NDVI", "NBR")):
    X, _ = planted(n_per=20, seed=10)
    for name in indices:
        s, _ = _stack(X, name)
        io.write_stack(root / "landsat" / f"{name.lower()}.tif", np.nan_to_num(s.data, nan=0.0) + 100, YEARS, grid,
                       dtype="int16", scale=0.001)
    return root


def test_load_trajectories_reads_notebook_02_outputs_and_refuses_another_grid(tmp_path, capsys):
    sc = scene.load(_scene_folder(tmp_path / "scene"), quiet=True)
    assert C.load_trajectories(sc).kind == "composites"
    out = tmp_path / "02_fit_landtrendr"
    path = io.write_stack(out / "ndvi_fit.tif", sc.stack("NDVI").data, YEARS, GRID, dtype="int16", scale=0.001)
    io.write_json(out / "summary.json", {"status": "complete", "files": {"ndvi_fit": path.name, "loss_map": "x.tif"}})
    traj = C.load_trajectories(sc, out)
    assert traj.kind == "landtrendr" and traj.indices == ["NDVI"] and f"using {path}" in capsys.readouterr().out
    other = io.Grid("EPSG:32611", GRID.transform, 8, 8)
    io.write_stack(out / "ndvi_fit.tif", sc.stack("NDVI").data, YEARS, other, dtype="int16", scale=0.001)
    with pytest.raises(ValueError, match="is on another grid"):
        C.load_trajectories(sc, out)
    io.write_json(out / "summary.json", {"status": "complete", "files": {"loss_map": "x.tif"}})
    with pytest.raises(scene.MissingInputError, match="lists no fitted stack"):
        C.load_trajectories(sc, out)


def test_compare_engines(planted_scene):
    traj, y, _, truth = planted_scene
    run = C.cluster_trajectories(traj, ["NDVI"], C.ClusterSettings(n_clusters=3, k_range=[2, 3], n_init=1,
                                                                   euclidean_elbow=False), truth=truth, progress=False)
    cmp = C.compare_engines(run, n_series=50, max_iter=5)
    s = cmp.summary()
    assert set(s) == {"ltlib", "tslearn", "kshape"}
    for e, r in s.items():
        assert r["seconds"] > 0 and -1 <= r["silhouette"] <= 1 and r["n_series"] == 50 and r["k"] == 3
        assert -1 <= r["ari_vs_truth"] <= 1
    assert s["ltlib"]["ari_vs_ltlib"] == 1.0 and s["ltlib"]["speedup_of_ltlib"] == 1.0
    assert list(cmp.table().index) == ["ltlib", "tslearn", "kshape"]


# ----------------------------------------------------------------------------- the Euclidean elbow
def test_euclidean_elbow_is_kmeans_distortion_on_znormalised_series():
    from sklearn.cluster import KMeans

    X, _ = planted(n_per=40, seed=9)
    table = C.euclidean_elbow(X, [2, 3, 4, 5, 6], n_init=2, random_state=0)
    assert list(table.columns) == ["k", "distortion", "fit_time_s", "knee"]
    assert list(table["k"]) == [2, 3, 4, 5, 6] and table.attrs["knee"] in (3, 4)
    assert table["distortion"].is_monotonic_decreasing
    Z = C.znormalize(X).reshape(len(X), -1)
    km = KMeans(3, n_init=2, random_state=0).fit(Z)
    # yellowbrick's distortion: squared distances to each cluster's mean = k-means inertia
    assert table.loc[table["k"] == 3, "distortion"].item() == pytest.approx(km.inertia_, rel=1e-6)
    X3 = np.stack([X, 2 * X], axis=-1)
    assert len(C.euclidean_elbow(X3, [2, 3], random_state=0)) == 2  # multivariate: flattened; no knee from 2 k
    assert C.euclidean_elbow(X3, [2, 3]).attrs["knee"] is None
    with pytest.raises(ValueError, match="NaN"):
        C.euclidean_elbow(np.where(np.eye(120, 51) > 0, np.nan, X), [2, 3])
    with pytest.raises(ValueError, match="more than"):
        C.euclidean_elbow(X[:4], [2, 3, 4])


def test_elbow_views_and_cluster_figures(planted_scene):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, _ = planted(n_per=15, seed=11)
    sbd_t = C.elbow(X, [2, 3, 4], random_state=0, progress=False)
    eu_t = C.euclidean_elbow(X, [2, 3, 4], random_state=0)
    before = plt.get_fignums()
    fig = plots.plot_elbow_views(sbd_t, eu_t, title="NDVI")
    assert plt.get_fignums() == before + [fig.number]  # the elbow made no stray figure
    ax_sbd, ax_eu, ax_sil, ax_time = fig.axes  # twin axes come after both panels
    np.testing.assert_allclose(ax_sbd.lines[0].get_ydata(), sbd_t["inertia"])
    np.testing.assert_allclose(ax_eu.lines[0].get_ydata(), eu_t["distortion"])
    np.testing.assert_allclose(ax_time.lines[0].get_ydata(), eu_t["fit_time_s"])
    assert "SBD" in ax_sbd.get_title() and "Euclidean" in ax_eu.get_title() and fig._suptitle.get_text() == "NDVI"
    assert len(plots.plot_elbow_views(sbd_t).axes) == 2  # SBD only: inertia + silhouette axes

    traj, y, _, truth = planted_scene
    run = C.cluster_trajectories(traj, ["NDVI"], C.ClusterSettings(n_clusters=3, k_range=[2, 3], n_init=1,
                                                                   euclidean_elbow=False), progress=False)
    fig = plots.plot_cluster_centroids(run)
    assert "k=3" in fig._suptitle.get_text() and sum(a.get_visible() for a in fig.axes) == 3
    fig = plots.cluster_maps_figure([run, None], truth={"class": truth, "grid": GRID})
    assert [a.get_title() for a in fig.axes] == ["Truth trajectory class", "k-Shape NDVI, k=3"]
    m = maps.cluster_map([run], truth={"class": truth, "grid": GRID}, trajectories=traj, basemaps=False)
    names = [layer.name for layer in m.layers]
    assert names.index("Truth trajectory class") < names.index("k-Shape NDVI")
    assert not next(layer for layer in m.layers if layer.name == "Truth trajectory class").visible
    # a click says the pixel's cluster and truth class and plots its NDVI
    from ltlib import inspector

    r, c = 2, 3
    lon, lat = inspector.lonlat(GRID, r, c)
    assert m.inspector.handle(type="click", coordinates=[lat, lon]) == (r, c)
    label = int(run.label_image()[r, c])
    assert f"cluster (NDVI): {label} " in m.inspector.out.outputs[0]["text"]
    assert f"truth class: {truth[r, c]} " in m.inspector.out.outputs[0]["text"]
    np.testing.assert_array_equal(m.inspector.figure(r, c).axes[0].lines[0].get_ydata(),
                                  traj.stacks["NDVI"].data[:, r, c])
    plt.close("all")


def test_yellowbrick_leaves_the_matplotlib_style_alone():
    """yellowbrick restyles matplotlib when imported; ltlib imports it without that side effect."""
    import os
    import subprocess
    import sys

    code = ("import matplotlib as mpl, numpy as np\n"
            "before = {k: repr(v) for k, v in mpl.rcParams.items()}\n"
            "from ltlib import cluster, plots\n"
            "X = np.random.default_rng(0).normal(size=(40, 12))\n"
            "t = cluster.euclidean_elbow(X, [2, 3, 4])\n"
            "cluster.knee([2, 3, 4, 5], [10, 4, 3, 2.5])\n"
            "after = {k: repr(v) for k, v in mpl.rcParams.items()}\n"
            "assert before == after, sorted(k for k in before if before[k] != after[k])[:5]\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, MPLBACKEND="Agg"))
    assert res.returncode == 0, res.stderr[-2000:]
