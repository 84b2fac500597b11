"""Benchmark ltlib.cluster.KShape against tslearn's KShape and the kshape package.

What is measured (all in this run, same data, same k / n_init / max_iter):

1. speed: ltlib vs tslearn on n series of length 51 (default 10k; ``--full`` 50k, the size
   of the spec's 131 s tslearn figure), and vs the ``kshape`` package on a smaller n
   (it parallelises per pair with a process pool). Before timing, both implementations
   start from the SAME initial centroids once and their labels are compared (ARI).
2. scene (``--scene``): the whole seed scene, 620 x 628 = 389k pixels, simulated with
   ``ltlib.sample.simulate_landsat``, NDVI (univariate) and NDVI/TCG/TCW (3 variables),
   gaps filled with ``prepare``; time, iterations and peak memory (RSS).
3. quality: Rand index on UCR Trace (offline in tslearn) for ltlib (k-shape++ and random
   init) and tslearn, several seeds; the published k-Shape figure is 0.71-0.83.
4. silhouette: subsampled (5000) vs exact SBD silhouette on ``--sil-n`` series.
5. elbow (``--elbow``): k = 2..10 on the whole scene (NDVI) with a 5000-series silhouette.

Run:  .venv/bin/python benchmarks/bench_kshape.py                 (10k speed, quality, silhouette)
      .venv/bin/python benchmarks/bench_kshape.py --full --scene --elbow   (everything, ~10 min)
      .venv/bin/python benchmarks/bench_kshape.py --quick         (smoke run)
"""
from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc

import numpy as np
from sklearn.metrics import adjusted_rand_score, rand_score

from ltlib import cluster


def trajectories(n, T=51, seed=0):
    """n z-normalisable NDVI-like trajectories: six disturbance/recovery shapes, random timing,
    magnitude and noise (classes as in ltlib.config.CLASS_NAMES)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None, :]
    cls = rng.integers(0, 6, n)
    y0 = rng.uniform(300, 700, (n, 1))
    t1 = rng.integers(5, T - 15, (n, 1))
    t2 = t1 + rng.integers(5, 12, (n, 1))
    mag = rng.uniform(150, 400, (n, 1))
    rate = rng.uniform(0.05, 0.3, (n, 1))
    drop = (t >= t1) * mag
    rec = np.clip((t - t2) * rate * mag / 5, 0, mag)
    shapes = {
        0: -drop,
        1: -drop + np.where(t >= t2, rec, 0),
        2: np.clip((t - t1) * mag / 30, 0, mag),
        3: np.clip((t - t1) * mag / 20, 0, mag) - (t >= t2 + 8) * 1.3 * mag,
        4: np.zeros((n, T)),
        5: -drop + np.where(t >= t2, rec, 0) - (t >= t2 + 10) * 0.8 * mag,
    }
    X = np.zeros((n, T))
    for c, s in shapes.items():
        X[cls == c] = s[cls == c]
    X += y0 + rng.normal(0, 25, (n, T))
    return X, cls


def rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def speed(n, k, max_iter, n_kshape, seed=0):
    X, _ = trajectories(n, seed=seed)
    Z = cluster.znormalize(X)
    res = {"n": n, "T": 51, "k": k, "n_init": 1, "max_iter": max_iter}
    # same initial centroids -> same algorithm -> same labels (checked on a 2000-series subset)
    sub = Z[:2000]
    init = sub[np.random.default_rng(seed).choice(len(sub), k, replace=False)]
    a = cluster.KShape(k, init=init, max_iter=max_iter, dtype="float64").fit(sub)
    b = cluster.KShape(k, init=init, max_iter=max_iter, engine="tslearn").fit(sub)
    res["same_init_ari_ltlib_vs_tslearn"] = adjusted_rand_score(a.labels_, b.labels_)
    res["same_init_label_agreement"] = float(np.mean(a.labels_ == b.labels_))
    res["same_init_n_iter"] = [a.n_iter_, b.n_iter_]
    print(f"same initial centroids, 2000 series, max_iter={max_iter}: ARI(ltlib, tslearn) = "
          f"{res['same_init_ari_ltlib_vs_tslearn']:.4f}, identical labels {100 * res['same_init_label_agreement']:.2f}% "
          f"(iterations: ltlib {a.n_iter_}, tslearn {b.n_iter_})")
    if a.n_iter_ != b.n_iter_:
        # tslearn stops when its mean *squared* SBD stops falling and reverts its last update
        # (n_iter_ counts it); ltlib stops on the sum of SBD. Compare the updates both kept.
        m_it = max(1, min(a.n_iter_, b.n_iter_ - 1))
        a = cluster.KShape(k, init=init, max_iter=m_it, dtype="float64").fit(sub)
        b = cluster.KShape(k, init=init, max_iter=m_it, engine="tslearn").fit(sub)
        res["same_init_common_iters"] = m_it
        res["same_init_label_agreement_common_iters"] = float(np.mean(a.labels_ == b.labels_))
        print(f"   over the {m_it} updates both kept: identical labels "
              f"{100 * res['same_init_label_agreement_common_iters']:.2f}%")

    for engine in ("ltlib", "tslearn"):  # warm-up: numba compilation, BLAS threads
        cluster.KShape(k, max_iter=2, random_state=seed, init="random", engine=engine).fit(Z[:300])
    time.sleep(1.0)  # let spinning worker threads of the other library go idle
    runs = {}
    for engine in ("ltlib", "tslearn"):
        m = cluster.KShape(k, n_init=1, max_iter=max_iter, random_state=seed, init="random", engine=engine)
        m.fit(Z)
        runs[engine] = dict(seconds=m.fit_time_, n_iter=m.n_iter_, inertia=m.inertia_,
                            s_per_iter=m.fit_time_ / max(m.n_iter_, 1))
        print(f"{engine:8s} n={n} k={k}: {m.fit_time_:7.2f} s, {m.n_iter_} iterations "
              f"({runs[engine]['s_per_iter']:.3f} s/iter), SBD inertia {m.inertia_:.1f}")
    res["runs"] = runs
    res["speedup_vs_tslearn"] = runs["tslearn"]["seconds"] / runs["ltlib"]["seconds"]
    res["speedup_per_iter_vs_tslearn"] = runs["tslearn"]["s_per_iter"] / runs["ltlib"]["s_per_iter"]
    print(f"==> ltlib is {res['speedup_vs_tslearn']:.1f}x faster than tslearn "
          f"({res['speedup_per_iter_vs_tslearn']:.1f}x per iteration)")

    # the kshape package: a process pool per iteration and one task per (series, centroid)
    Zs = Z[:n_kshape]
    time.sleep(1.0)
    m2 = cluster.KShape(k, max_iter=max_iter, random_state=seed, init="random-labels").fit(Zs)
    m1 = cluster.KShape(k, max_iter=max_iter, random_state=seed, init="random-labels", engine="kshape").fit(Zs)
    res["kshape_package"] = dict(n=n_kshape, kshape_seconds=m1.fit_time_, ltlib_seconds=m2.fit_time_,
                                 kshape_inertia=m1.inertia_, ltlib_inertia=m2.inertia_,
                                 ltlib_n_iter=m2.n_iter_, speedup=m1.fit_time_ / m2.fit_time_)
    print(f"kshape package n={n_kshape}: {m1.fit_time_:.2f} s vs ltlib {m2.fit_time_:.3f} s "
          f"({res['kshape_package']['speedup']:.0f}x); inertia {m1.inertia_:.1f} vs {m2.inertia_:.1f}")
    return res


def scene(k, max_iter):
    from ltlib import sample
    from ltlib.io import stack_to_series, stacks_to_series

    (stacks, truth), t_sim = timed(lambda: sample.simulate_landsat(shape=(620, 628)))
    print(f"simulated 620 x 628 scene in {t_sim:.1f} s")
    out = {}
    for name, idx in (("univariate NDVI", ["NDVI"]), ("3 variables NDVI TCG TCW", ["NDVI", "TCG", "TCW"])):
        arrays = [stacks[i] for i in idx]
        series, mask = stack_to_series(arrays[0]) if len(arrays) == 1 else stacks_to_series(arrays)
        prep, t_prep = timed(lambda: cluster.prepare(series))
        del series
        tracemalloc.start()  # numpy reports its buffers to tracemalloc: peak of the fit alone
        m = cluster.KShape(k, max_iter=max_iter, random_state=0).fit(prep.X)
        fit_peak_gb = tracemalloc.get_traced_memory()[1] / 2**30
        tracemalloc.stop()
        full = prep.expand(m.labels_, flat_label=k)
        ari = adjusted_rand_score(truth["class"][mask], full)
        out[name] = dict(n=int(prep.keep.sum()), n_flat=int(prep.flat.sum()), prepare_s=t_prep,
                         fit_s=m.fit_time_, n_iter=m.n_iter_, s_per_iter=m.fit_time_ / m.n_iter_,
                         inertia=m.inertia_, ari_vs_truth=ari, data_gb=prep.X.nbytes / 2**30,
                         fit_peak_alloc_gb=fit_peak_gb, peak_rss_gb=rss_gb())
        print(f"scene {name}: {prep.X.shape} prepared in {t_prep:.1f} s, k={k}: {m.fit_time_:.1f} s, "
              f"{m.n_iter_} iterations ({m.fit_time_ / m.n_iter_:.2f} s/iter), ARI vs truth {ari:.3f}, "
              f"data {prep.X.nbytes / 2**30:.2f} GB, peak allocated during fit {fit_peak_gb:.2f} GB, "
              f"process peak RSS so far {rss_gb():.2f} GB (incl. the simulation)")
        del prep
    return out, stacks


def quality(seeds):
    from tslearn.datasets import CachedDatasets

    X, y, Xt, yt = CachedDatasets().load_dataset("Trace")
    out = {}
    for split, (A, lab) in {"test (100)": (Xt, yt), "train+test (200)": (np.concatenate([X, Xt]), np.concatenate([y, yt]))}.items():
        rows = {}
        for name, kw in {"ltlib k-shape++": dict(), "ltlib random": dict(init="random"),
                         "tslearn": dict(engine="tslearn")}.items():
            ri = [rand_score(lab, cluster.KShape(4, random_state=s, **kw).fit(A).labels_) for s in seeds]
            rows[name] = dict(mean=float(np.mean(ri)), std=float(np.std(ri)), min=float(np.min(ri)),
                              max=float(np.max(ri)))
        out[split] = rows
        print(f"Trace {split}, Rand index over {len(seeds)} seeds (published k-Shape 0.71-0.83):")
        for name, r in rows.items():
            print(f"   {name:16s} {r['mean']:.3f} +/- {r['std']:.3f} (min {r['min']:.3f}, max {r['max']:.3f})")
    return out


def silhouette_check(n, k):
    X, _ = trajectories(n, seed=3)
    m = cluster.KShape(k, random_state=0).fit(X)
    exact, t_exact = timed(lambda: cluster.silhouette(X, m.labels_, sample_size=n))
    subs, t_sub = timed(lambda: [cluster.silhouette(X, m.labels_, sample_size=5000, random_state=s) for s in range(5)])
    print(f"silhouette n={n}: exact {exact:.4f} ({t_exact:.1f} s); 5000-subsample {np.mean(subs):.4f} "
          f"+/- {np.std(subs):.4f} ({t_sub / 5:.1f} s each)")
    return dict(n=n, exact=exact, exact_s=t_exact, sub_mean=float(np.mean(subs)), sub_std=float(np.std(subs)),
                sub_s=t_sub / 5)


def elbow_scene(stacks, ks):
    from ltlib.io import stack_to_series

    series, _ = stack_to_series(stacks["NDVI"])
    prep = cluster.prepare(series)
    table, t = timed(lambda: cluster.elbow(prep.X, ks, sample_size=5000, progress=False))
    print(table.to_string(index=False))
    print(f"elbow over k={list(ks)} on {len(prep.X)} series: {t:.1f} s, knee k={table.attrs['knee']}")
    return dict(seconds=t, knee=table.attrs["knee"], table=table.to_dict(orient="list"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="series for the tslearn comparison")
    ap.add_argument("--full", action="store_true", help="50k series for the tslearn comparison")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--max-iter", type=int, default=10)
    ap.add_argument("--n-kshape", type=int, default=1000, help="series for the kshape-package comparison")
    ap.add_argument("--scene", action="store_true", help="cluster the whole 389k-pixel scene")
    ap.add_argument("--elbow", action="store_true", help="elbow k=2..10 on the whole scene (implies --scene)")
    ap.add_argument("--sil-n", type=int, default=8000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-compare", action="store_true", help="skip the library comparisons (1, 3, 4)")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)
    n = 50_000 if a.full else a.n
    if a.quick:
        n, a.n_kshape, a.sil_n, a.seeds = 2000, 300, 5500, 2
    results = {}
    if not a.skip_compare:
        results["speed"] = speed(n, a.k, a.max_iter, a.n_kshape)
        results["quality_trace"] = quality(range(a.seeds))
        results["silhouette"] = silhouette_check(a.sil_n, a.k)
    if a.scene or a.elbow:
        results["scene"], stacks = scene(a.k, max_iter=100)
        if a.elbow:
            results["elbow_scene"] = elbow_scene(stacks, range(2, 11))
    results["peak_rss_gb"] = rss_gb()
    print(f"peak RSS of the benchmark process: {results['peak_rss_gb']:.2f} GB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
