"""Tests for ltlib.cluster: SBD, k-Shape, prepare, silhouette, elbow, engines, notebook 03."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score, rand_score, silhouette_score

from ltlib import cluster as C
from ltlib import plots

pytestmark = pytest.mark.filterwarnings("ignore:h5py not installed")


# ----------------------------------------------------------------------------- references
def ncc_ref(x, y):
    """Brute-force cross-correlations (lags -(T-1)..T-1) of (T, d) series, summed over d."""
    T = x.shape[0]
    out = []
    for s in range(-(T - 1), T):
        if s >= 0:
            out.append(float(np.sum(x[s:] * y[: T - s])))
        else:
            out.append(float(np.sum(x[: T + s] * y[-s:])))
    return np.array(out) / (np.linalg.norm(x) * np.linalg.norm(y))


def sbd_ref(x, y):
    return 1.0 - ncc_ref(x, y).max()


def zn(X):
    X = np.asarray(X, float)
    X = X[:, :, None] if X.ndim == 2 else X
    return (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)


def kshape_ref(X, k, init_labels, max_iter=100, tol=1e-6):
    """Straightforward k-Shape from the paper (loops, brute-force NCC), same stopping rule."""
    Z = zn(X)
    n, T, d = Z.shape
    labels = np.asarray(init_labels).copy()
    centers = None
    prev, best = np.inf, None
    for _ in range(max_iter):
        new_centers = np.zeros((k, T, d))
        for j in range(k):
            for v in range(d):
                members = []
                for i in np.flatnonzero(labels == j):
                    x = Z[i, :, v]
                    if centers is not None:  # align x to the current centroid (all variables' NCC)
                        s = int(np.argmax(ncc_ref(Z[i], centers[j]))) - (T - 1)
                        x = np.array([Z[i, t + s, v] if 0 <= t + s < T else 0.0 for t in range(T)])
                    members.append(x)
                A = np.array(members)
                S = A.T @ A
                Q = np.eye(T) - np.ones((T, T)) / T
                _, vec = np.linalg.eigh(Q.T @ S @ Q)
                c = vec[:, -1]
                if np.linalg.norm(A + c, axis=1).sum() < np.linalg.norm(A - c, axis=1).sum():
                    c = -c
                new_centers[j, :, v] = (c - c.mean()) / c.std()
        centers = new_centers
        D = np.array([[sbd_ref(Z[i], centers[j]) for j in range(k)] for i in range(n)])
        new = D.argmin(1)
        inertia = D[np.arange(n), new].sum()
        changed = (new != labels).any()
        labels = new
        if best is None or inertia < best[2]:
            best = (centers.copy(), labels.copy(), inertia)
        if not changed or (np.isfinite(prev) and prev - inertia <= tol * prev):
            break
        prev = inertia
    return best


def planted(n_per=40, T=51, d=1, seed=0, noise=0.15):
    """Three trajectory shapes (drop, rise, V) with random timing shifts and noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)
    X, y = [], []
    for c in range(3):
        for _ in range(n_per):
            t0 = 0.5 + rng.uniform(-0.08, 0.08)
            if c == 0:
                base = -np.tanh((t - t0) * 30)
            elif c == 1:
                base = np.clip((t - t0) * 3, 0, None)
            else:
                base = np.abs(t - t0) * 2
            series = np.stack([base * (1 + 0.3 * v) + 0.2 * v for v in range(d)], axis=-1)
            X.append(series + noise * rng.normal(size=(T, d)))
            y.append(c)
    X = np.array(X)
    return (X[:, :, 0] if d == 1 else X), np.array(y)


# ----------------------------------------------------------------------------- SBD
@pytest.mark.parametrize("method", ["gemm", "fft"])
@pytest.mark.parametrize("d", [1, 3])
def test_sbd_matches_brute_force(method, d):
    rng = np.random.default_rng(d)
    X = rng.normal(size=(12, 23, d)).cumsum(1)
    Y = rng.normal(size=(7, 23, d)).cumsum(1)
    ref = np.array([[sbd_ref(x, y) for y in Y] for x in X])
    D = C.sbd(X, Y, dtype="float64", method=method)
    np.testing.assert_allclose(D, ref, atol=1e-12)
    np.testing.assert_allclose(C.sbd(X, Y, method=method), ref, atol=1e-5)  # float32
    refxx = np.array([[sbd_ref(a, b) for b in X] for a in X])
    Dxx = C.sbd(X, dtype="float64", method=method)
    np.testing.assert_allclose(Dxx, refxx, atol=1e-12)
    assert np.all(np.diag(Dxx) == 0) and np.allclose(Dxx, Dxx.T)


def test_sbd_blocks_bound_memory_and_agree(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(157, 30, 2)).cumsum(1)
    full = C.sbd(X, dtype="float64")
    monkeypatch.setattr(C, "BLOCK_BYTES", 30_000)  # forces many small tiles (incl. mirroring)
    np.testing.assert_allclose(C.sbd(X, dtype="float64"), full, atol=1e-12)
    np.testing.assert_allclose(C.sbd(X, X[:41], dtype="float64"), full[:, :41], atol=1e-12)


def test_sbd_agrees_with_tslearn_and_invariances():
    from tslearn.metrics import cdist_normalized_cc

    rng = np.random.default_rng(2)
    X = zn(rng.normal(size=(15, 40)).cumsum(1))
    ts = 1 - cdist_normalized_cc(X, X, norms1=-np.ones(15), norms2=-np.ones(15), self_similarity=False)
    np.testing.assert_allclose(C.sbd(X, dtype="float64"), np.where(np.eye(15, dtype=bool), 0, ts), atol=1e-12)
    x = rng.normal(size=40).cumsum()
    # scale invariant, and a shifted copy (zero padded) is closer than an unrelated series
    assert C.sbd(x[None], 3.5 * x[None], dtype="float64")[0, 0] == pytest.approx(0, abs=1e-12)
    shifted = np.r_[np.zeros(3), x[:-3]]
    assert C.sbd(x[None], shifted[None])[0, 0] < 0.1 < C.sbd(x[None], X[:1])[0, 0]
    assert C.sbd(x[None], -x[None], dtype="float64")[0, 0] > 0.5


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 9), st.integers(3, 30), st.integers(1, 3), st.integers(0, 10**6),
       st.floats(0.01, 100.0))
def test_sbd_properties(n, T, d, seed, scale):
    X = np.random.default_rng(seed).normal(size=(n, T, d))
    D = C.sbd(X, dtype="float64")
    assert D.shape == (n, n) and np.all(np.diag(D) == 0)
    np.testing.assert_allclose(D, D.T, atol=1e-12)
    assert np.all((D >= 0) & (D <= 2))
    np.testing.assert_allclose(C.sbd(scale * X, X, dtype="float64"), np.where(np.eye(n) > 0, 0, D), atol=1e-9)


def test_sbd_bad_input():
    X = np.random.default_rng(0).normal(size=(4, 10))
    with pytest.raises(ValueError, match="NaN"):
        C.sbd(np.where(np.eye(4, 10) > 0, np.nan, X))
    with pytest.raises(ValueError, match="differ|are"):
        C.sbd(X, X[:, :8])
    with pytest.raises(ValueError, match="all-zero"):
        C.sbd(np.vstack([X, np.zeros(10)]))
    with pytest.raises(ValueError, match=r"\(n, T\)"):
        C.sbd(np.zeros((2, 3, 4, 5)))


# ----------------------------------------------------------------------------- k-Shape
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kshape_equals_reference_from_same_initial_labels(d, dtype):
    X, _ = planted(n_per=12, T=25, d=d, seed=3, noise=0.5)
    init = np.random.default_rng(7).integers(0, 3, len(X))
    ref_centers, ref_labels, ref_inertia = kshape_ref(X, 3, init)
    m = C.KShape(3, init=init, dtype=dtype).fit(X)
    np.testing.assert_array_equal(m.labels_, ref_labels)
    np.testing.assert_allclose(m.cluster_centers_, ref_centers, atol=1e-4 if dtype == "float32" else 1e-8)
    assert m.inertia_ == pytest.approx(ref_inertia, rel=1e-5)
    assert m.cluster_centers_.shape == (3, 25, d)
    assert m.n_iter_ >= 1


def test_kshape_recovers_planted_shapes_and_predict_is_consistent():
    X, y = planted(n_per=40, seed=1)
    m = C.KShape(3, n_init=3, random_state=0).fit(X)
    assert adjusted_rand_score(y, m.labels_) > 0.95
    np.testing.assert_array_equal(m.predict(X), m.labels_)
    # z-normalisation is applied the same way in predict: offsets and scales do not matter
    np.testing.assert_array_equal(m.predict(5 * X + 300), m.labels_)
    D = C.sbd(X, m.cluster_centers_, znorm=True, dtype="float64")
    assert m.inertia_ == pytest.approx(D[np.arange(len(X)), m.labels_].sum(), rel=1e-5)
    np.testing.assert_allclose(m.transform(X), D, atol=1e-5)
    np.testing.assert_array_equal(C.KShape(3, n_init=3, random_state=0).fit_predict(X), m.labels_)
    # the centroids are z-normalised shapes
    np.testing.assert_allclose(m.cluster_centers_.mean(1), 0, atol=1e-9)
    np.testing.assert_allclose(m.cluster_centers_.std(1), 1, atol=1e-9)


def test_kshape_multivariate_and_inits():
    X, y = planted(n_per=30, d=3, seed=2)
    for init in ("random", "random-labels", "k-shape++"):
        m = C.KShape(3, n_init=2, random_state=1, init=init).fit(X)
        assert adjusted_rand_score(y, m.labels_) > 0.9, init
        assert m.cluster_centers_.shape == (3, 51, 3)


def test_kshape_reseeds_empty_clusters():
    X, y = planted(n_per=20, seed=4)
    Z = zn(X)
    # two identical initial centroids: one of them attracts nobody at the first assignment
    init = np.stack([Z[0], Z[0], Z[25]])
    m = C.KShape(3, init=init, max_iter=20).fit(X)
    assert np.bincount(m.labels_, minlength=3).min() >= 1
    # initial labels leaving a cluster empty are repaired too
    m2 = C.KShape(4, init=np.zeros(len(X), int), random_state=0).fit(X)
    assert len(np.unique(m2.labels_)) == 4


def test_kshape_bad_input():
    X, _ = planted(n_per=5, seed=0)
    Xn = X.copy()
    Xn[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN.*prepare"):
        C.KShape(2).fit(Xn)
    Xf = X.copy()
    Xf[2] = 4.0
    with pytest.raises(ValueError, match="flat"):
        C.KShape(2).fit(Xf)
    with pytest.raises(ValueError, match="larger than the number"):
        C.KShape(20).fit(X)
    with pytest.raises(ValueError, match="not fitted"):
        C.KShape(2).predict(X)
    m = C.KShape(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="fitted on"):
        m.predict(X[:, :40])
    with pytest.raises(ValueError, match="engine"):
        C.KShape(2, engine="gpu").fit(X)
    with pytest.raises(ValueError, match="initial labels"):
        C.KShape(2, init=np.full(len(X), 5)).fit(X)


def test_kshape_is_a_sklearn_estimator():
    m = C.KShape(4, max_iter=7, random_state=3)
    c = clone(m)
    assert c.get_params()["n_clusters"] == 4 and c.get_params()["max_iter"] == 7
    X, _ = planted(n_per=10, seed=5)
    a = C.KShape(3, random_state=11).fit(X).labels_
    b = C.KShape(3, random_state=11).fit(X).labels_
    np.testing.assert_array_equal(a, b)  # reproducible with a seed


def test_same_labels_as_tslearn_from_same_initial_centroids():
    from tslearn.clustering import KShape as TsKShape

    X, _ = planted(n_per=25, T=40, seed=12, noise=0.6)
    Z = zn(X)
    init = Z[[3, 30, 60]]
    # one update: tslearn cannot stop early or revert there (its first inertia is compared to inf)
    ts = TsKShape(3, init=init, max_iter=1).fit(Z)
    ours = C.KShape(3, init=init, max_iter=1, dtype="float64").fit(X)
    np.testing.assert_array_equal(ours.labels_, ts.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ts.cluster_centers_, atol=1e-8)


@pytest.mark.parametrize("engine", ["tslearn", "kshape"])
def test_other_engines_same_interface(engine):
    X, y = planted(n_per=10, T=30, seed=6, noise=0.1)
    init = "random" if engine == "tslearn" else "random-labels"
    m = C.KShape(3, engine=engine, random_state=0, max_iter=20, init=init).fit(X)
    assert m.labels_.shape == (30,) and m.cluster_centers_.shape == (3, 30, 1)
    np.testing.assert_array_equal(m.predict(X), m.labels_)
    D = C.sbd(X, m.cluster_centers_, znorm=True, dtype="float64")
    assert m.inertia_ == pytest.approx(D[np.arange(30), m.labels_].sum(), rel=1e-5)
    assert adjusted_rand_score(y, m.labels_) > 0.5
    assert m.fit_time_ > 0


def test_quality_on_trace_not_worse_than_tslearn():
    """UCR Trace (shipped with tslearn, offline): Rand index of both implementations, 4 seeds."""
    from tslearn.datasets import CachedDatasets

    X, y, Xt, yt = CachedDatasets().load_dataset("Trace")
    ours, theirs = [], []
    for seed in range(4):
        ours.append(rand_score(yt, C.KShape(4, random_state=seed).fit(Xt).labels_))
        theirs.append(rand_score(yt, C.KShape(4, random_state=seed, engine="tslearn").fit(Xt).labels_))
    # published k-Shape on Trace: RI 0.71-0.83 depending on the seed
    assert np.mean(ours) >= 0.70
    assert np.mean(ours) >= np.mean(theirs) - 0.03


# ----------------------------------------------------------------------------- prepare
def test_prepare_fills_gaps_and_sets_flat_series_aside():
    X = np.array([
        [1.0, np.nan, 3.0, np.nan, np.nan, 9.0],  # interior gaps: linear
        [np.nan, 2.0, 5.0, 1.0, np.nan, np.nan],  # ends: nearest value
        [4.0, 4.0, np.nan, 4.0, 4.0, 4.0],  # flat after filling
        [np.nan] * 6,  # no observation
        [np.nan, np.nan, 7.0, np.nan, np.nan, np.nan],  # a single observation
        [0.0, 1.0, 0.0, 1.0, 0.0, 2.0],
    ])
    p = C.prepare(X)
    np.testing.assert_array_equal(p.keep, [True, True, False, False, False, True])
    np.testing.assert_array_equal(p.flat, ~p.keep)
    np.testing.assert_allclose(p.X[0], [1, 2, 3, 5, 7, 9])
    np.testing.assert_allclose(p.X[1], [2, 2, 5, 1, 1, 1])
    np.testing.assert_allclose(p.X[2], X[5])
    assert p.n_filled == 6
    full = p.expand(np.array([0, 1, 0]))
    np.testing.assert_array_equal(full, [0, 1, 2, 2, 2, 0])  # flat rows get their own label
    np.testing.assert_array_equal(p.expand(np.array([0, 1, 0]), flat_label=-1), [0, 1, -1, -1, -1, 0])
    with pytest.raises(ValueError, match="one per kept"):
        p.expand(np.zeros(5, int))
    m = C.KShape(2, random_state=0).fit(p.X)  # clean now
    assert m.labels_.shape == (3,)


def test_prepare_multivariate_flat_variable():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 8, 3))
    X[1, :, 2] = 7.0  # one flat variable makes the series unusable (z-normalisation per variable)
    X[3, 2:5, 0] = np.nan
    p = C.prepare(X)
    np.testing.assert_array_equal(p.keep, [True, False, True, True, True])
    assert p.X.shape == (4, 8, 3) and np.isfinite(p.X).all()


# ----------------------------------------------------------------------------- silhouette, elbow
def test_silhouette_equals_sklearn_on_sbd():
    X, y = planted(n_per=15, seed=7)
    labels = C.KShape(3, random_state=0).fit(X).labels_
    D = C.sbd(X, znorm=True, dtype="float64")
    expected = silhouette_score(D, labels, metric="precomputed")
    assert C.silhouette(X, labels) == pytest.approx(expected, abs=1e-5)
    assert expected > 0.5  # well separated planted shapes
    # singleton clusters score 0, as in sklearn
    lab2 = labels.copy()
    lab2[0] = 7
    assert C.silhouette_from_distances(D, lab2) == pytest.approx(silhouette_score(D, lab2, metric="precomputed"))
    with pytest.raises(ValueError, match="clusters"):
        C.silhouette(X, np.zeros(len(X), int))


def test_silhouette_subsample_close_to_exact():
    X, y = planted(n_per=200, seed=8, noise=0.4)
    exact = C.silhouette(X, y)
    subs = [C.silhouette(X, y, sample_size=250, random_state=s) for s in range(3)]
    assert all(abs(s - exact) < 0.03 for s in subs)
    assert len(set(np.round(subs, 8))) > 1  # really subsampled


def test_knee():
    assert C.knee([2, 3, 4, 5, 6, 7, 8], [100, 50, 10, 8, 6, 4, 2]) == 4
    assert C.knee([1, 2, 3, 4], [4, 3, 2, 1]) is None  # straight line: no knee
    with pytest.raises(ValueError):
        C.knee([1, 2], [1, 2])


def test_elbow_finds_planted_k():
    X, y = planted(n_per=40, seed=9)
    table = C.elbow(X, range(2, 7), n_init=2, random_state=0, progress=False)
    assert list(table.columns) == ["k", "inertia", "silhouette", "n_iter", "fit_time_s", "knee"]
    assert list(table["k"]) == [2, 3, 4, 5, 6]
    assert table.attrs["knee"] == 3
    assert int(table.loc[table["silhouette"].idxmax(), "k"]) == 3
    assert table["inertia"].iloc[0] > table["inertia"].iloc[1] > table["inertia"].iloc[-1]
    with pytest.raises(ValueError, match="NaN"):
        C.elbow(np.where(np.eye(120, 51) > 0, np.nan, X), [2, 3], progress=False)


# ----------------------------------------------------------------------------- notebook
def test_notebook_03_summary(executed_notebook):
    summary = executed_notebook("03_cluster_trajectories")
    from pathlib import Path

    out = Path(summary["_output_dir"])
    assert summary["status"] == "complete"
    assert summary["trajectories"].startswith("LandTrendr fitted stacks from ") and "02_fit_landtrendr" in summary[
        "trajectories"]
    assert summary["sections"] == {"multivariate": "ran", "agreement_with_truth": "ran"}
    assert summary["univariate"]["indices"] == ["NDVI"] and summary["multivariate"]["indices"] == ["NDVI", "TCG", "TCW"]
    for key in ("labels", "centroids_univariate", "centroids_multivariate", "elbow_univariate",
                "elbow_multivariate", "cluster_maps", "contingency_univariate", "contingency_multivariate"):
        assert (out / summary["files"][key]).exists(), key
    for key in ("univariate", "multivariate"):
        s = summary[key]
        assert s["k"] >= 2 and s["k_choice"] == "knee" and s["k"] == s["elbow"]["knee"]
        assert -1 <= s["silhouette"] <= 1 and s["inertia"] > 0
        assert s["n_pixels_clustered"] > 1000
        assert s["ari_vs_truth"] > 0.1  # clusters carry the trajectory classes of the sample
        eu = s["elbow"]["euclidean"]
        assert len(eu["distortion"]) == len(s["elbow"]["k"]) and eu["distortion"][0] > eu["distortion"][-1]
    # the sample's numbers (fitted stacks of notebook 02): knee k 5 and 8 (elbow fits seeded
    # with k-shape++), final fits initialised "random": ARI 0.475 and 0.572 (k-shape++ final
    # fits: 0.473 and 0.587)
    assert (summary["univariate"]["k"], summary["multivariate"]["k"]) == (5, 8)
    assert summary["univariate"]["ari_vs_truth"] == pytest.approx(0.475, abs=0.03)
    assert summary["multivariate"]["ari_vs_truth"] == pytest.approx(0.572, abs=0.03)
    from ltlib import io

    labels, grid, names = io.read_raster(out / summary["files"]["labels"])
    assert labels.shape == (2, 200, 200) and grid.crs.to_epsg() == 32612
    assert names == [f"kshape_ndvi_k{summary['univariate']['k']}",
                     f"kshape_ndvi_tcg_tcw_k{summary['multivariate']['k']}"]
    for band, key in zip(labels, ("univariate", "multivariate")):
        s = summary[key]
        values = band[np.isfinite(band)]
        assert values.min() >= 0 and values.max() <= s["k"]  # k = flat pixels set aside
        assert int(((values >= 0) & (values < s["k"])).sum()) == s["n_pixels_clustered"]
        assert int((values == s["k"]).sum()) == s["n_flat"]
        assert sum(s["cluster_sizes"]) == s["n_pixels_clustered"] and len(s["cluster_sizes"]) == s["k"]
        assert s["elbow"]["knee"] is None or s["elbow"]["knee"] in s["elbow"]["k"]
    assert set(summary["engines"]) == {"ltlib", "tslearn", "kshape"}
    for name, e in summary["engines"].items():
        assert e["seconds"] > 0 and -1 <= e["silhouette"] <= 1 and -1 <= e["ari_vs_truth"] <= 1
        assert e["k"] == summary["univariate"]["k"] and e["n_series"] == 2000


def test_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = planted(n_per=15, d=2, seed=11)
    table = C.elbow(X, [2, 3, 4], random_state=0, progress=False)
    fig = plots.plot_elbow(table)
    ax1, ax2 = fig.axes
    assert "SBD inertia" in ax1.get_ylabel() and "silhouette" in ax2.get_ylabel()
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), table["inertia"])
    m = C.KShape(3, random_state=0).fit(X)
    fig2 = plots.plot_centroids(X, m.labels_, m.cluster_centers_, years=np.arange(1972, 2023), var_names=["NDVI", "TCG"])
    visible = [a for a in fig2.axes if a.get_visible()]
    assert len(visible) == 3 * 2
    np.testing.assert_allclose(visible[0].lines[-1].get_ydata(), m.cluster_centers_[0, :, 0])
    plt.close("all")
