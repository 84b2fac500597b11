"""Benchmark ltlib.classify: the seed's model comparison, mapping speed, and map accuracy.

A. The seed's table: every model on the seed's labelled set with its split
   (train_test_split(test_size=0.2, random_state=42)), CPU, ``--epochs`` (30, as the seed's
   exported models), over ``--seeds`` training seeds (image models: the first seed only).
B. Mapping speed on the seed's scene size, 389,360 pixels x 51 years (generated series; speed
   does not depend on the values), 2 cores. Baseline measured in the same run: what the seed
   did, tsai's default InceptionTime (nf=32) predicted with tsai's ``learn.get_X_preds``.
C. ``--map``: map accuracy on the sample scene against its truth for every model trained on the
   seed's training split plus generated Landsat-like series (as notebook 04 does).

Run:  .venv/bin/python benchmarks/bench_classify.py            (A with 3 seeds, B)
      .venv/bin/python benchmarks/bench_classify.py --quick    (smoke run: few epochs, 20k px)
      add --map for C.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch

from ltlib import accuracy, classify, resources, sample, trainingset

warnings.filterwarnings("ignore")
SEED_TABLE = {  # the seed README's validation accuracies (image accuracy by eye in brackets)
    "InceptionTime": "0.939 (82%); exported 30-epoch model 0.989",
    "TST": "0.954 (80%); exported 30-epoch model 0.986",
    "MiniRocket": "0.939 (72%)", "FCN": "CNN 0.921 (63%)", "ResNet": "CNN 0.921 (63%)",
    "TSF": "0.939 (60%)", "BOSSVS": "0.793 (53%)", "GADF": "0.95 (100 epochs)",
}
SCENE_PIXELS = 389_360
DATA = "data/sample"


def seed_comparison(X, y, epochs, seeds, models):
    tr, va = trainingset.seed_split(y)
    rows, fitted = [], {}
    for name in models:
        for s in (seeds[:1] if name in classify.IMAGE_MODELS else seeds):
            m = classify.fit(name, X[tr], y[tr], X[va], y[va], epochs=epochs, seed=s, progress=False)
            rows.append(dict(model=name, seed=s, **m.scores, fit_seconds=m.fit_seconds))
            fitted.setdefault(name, m)
            print(f"  {name:14s} seed {s}: valid {m.scores['valid_accuracy']:.4f}  fit {m.fit_seconds:6.1f} s", flush=True)
    df = pd.DataFrame(rows)
    agg = df.groupby("model", sort=False).agg(
        runs=("seed", "size"), valid_mean=("valid_accuracy", "mean"), valid_min=("valid_accuracy", "min"),
        valid_max=("valid_accuracy", "max"), train_acc=("train_accuracy", "mean"), valid_loss=("valid_loss", "mean"),
        fit_s=("fit_seconds", "mean"))
    agg["seed README"] = [SEED_TABLE.get(n, "") for n in agg.index]
    return agg, fitted


def mapping_speed(fitted, X_scene, full_models, baseline_n, X, y):
    rows = []
    n = len(X_scene)
    for name, m in fitted.items():
        k = n if name in full_models else min(20_000, n)
        t = time.perf_counter()
        m.predict_proba(X_scene[:k])
        dt = (time.perf_counter() - t) * n / k
        rows.append(dict(model=name, measured_on=k, scene_seconds=dt, px_per_s=n / dt))
        print(f"  {name:14s} {dt:7.1f} s for {n:,} px{'' if k == n else f' (from {k:,} px)'}", flush=True)
    # Baseline: the seed's way, tsai's default InceptionTime (nf=32) and learn.get_X_preds.
    import tsai.inference  # noqa: F401  (adds Learner.get_X_preds)
    from tsai.data.core import TSClassification, get_ts_dls
    from tsai.learner import ts_learner

    tr, va = trainingset.seed_split(y)
    base = classify.fit("InceptionTime", X[tr], y[tr], X[va], y[va], epochs=30, seed=0, progress=False,
                        arch_kwargs=dict(nf=32))
    Xn = classify.normalize(X)[:, None, :]
    dls = get_ts_dls(Xn, y, splits=(list(tr), list(va)), tfms=[None, TSClassification()], bs=64)
    learn = ts_learner(dls, base.net)
    k = min(baseline_n, n)
    Xk = classify.normalize(X_scene[:k])[:, None, :]
    t = time.perf_counter()
    with learn.no_bar():
        learn.get_X_preds(Xk, bs=8192)
    dt = (time.perf_counter() - t) * n / k
    print(f"  baseline tsai InceptionTime nf=32 get_X_preds: {dt:7.1f} s (from {k:,} px), "
          f"valid accuracy {base.scores['valid_accuracy']:.4f}", flush=True)
    rows.append(dict(model="baseline: tsai InceptionTime(nf=32).get_X_preds", measured_on=k, scene_seconds=dt, px_per_s=n / dt))
    df = pd.DataFrame(rows).set_index("model")
    df["speedup_vs_baseline"] = dt / df["scene_seconds"]
    return df, base.scores["valid_accuracy"]


def map_accuracy(X, y, models, epochs, n_synth, seed=0):
    tr, va = trainingset.seed_split(y)
    Xm, ym = trainingset.with_synthetic(X[tr], y[tr], n_synth, seed=seed)
    Xv, yv = trainingset.with_synthetic(X[va], y[va], n_synth // 5, seed=seed + 1000)
    filled, ok = classify.fill_stack(sample.load_landsat(DATA, "NDVI").physical())
    truth = sample.load_truth(DATA)["class"]
    rows = []
    for name in models:
        m = classify.fit(name, Xm, ym, Xv, yv, epochs=epochs, seed=seed, progress=False)
        cmap = classify.classify_image(m, filled, progress=False)
        acc = accuracy.census_accuracy(cmap, truth, range(6), valid=ok)
        rows.append(dict(model=name, map_accuracy=acc["overall"], min_producers=float(np.min(acc["producers"])),
                         min_users=float(np.min(acc["users"])), valid_accuracy=m.scores["valid_accuracy"]))
        print(f"  {name:14s} map accuracy {acc['overall']:.4f}", flush=True)
    return pd.DataFrame(rows).set_index("model")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=list(classify.MODELS))
    ap.add_argument("--quick", action="store_true", help="3 epochs, 1 seed, 20k px, no image models")
    ap.add_argument("--map", action="store_true", help="also map the sample scene with every model (C)")
    ap.add_argument("--synthetic", type=int, default=300, help="generated series per class for C")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    if a.quick:
        a.epochs, a.seeds = 3, a.seeds[:1]
        a.models = [m for m in a.models if m not in classify.IMAGE_MODELS or m == "GADF"]
    X, y = trainingset.load_seed_csv(resources.seed_training_csv())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'GPU' if torch.cuda.is_available() else 'CPU'}; seed set {X.shape}, split 1103/276")

    print(f"\nA. Seed set and split, {a.epochs} epochs, seeds {a.seeds}")
    agg, fitted = seed_comparison(X, y, a.epochs, a.seeds, a.models)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(agg.round(4).to_string())
    best = agg["valid_mean"].idxmax()
    print(f"best mean validation accuracy: {best} {agg.loc[best, 'valid_mean']:.4f} (seed's best 0.989); "
          f"best single run {agg['valid_max'].max():.4f}")

    n = 20_000 if a.quick else SCENE_PIXELS
    print(f"\nB. Mapping {n:,} px x 51 years (the seed's scene is {SCENE_PIXELS:,} px)")
    Xs, _ = trainingset.generate(int(np.ceil(n / 6)), seed=5)
    speed, base_acc = mapping_speed(fitted, Xs[:n], {"InceptionTime", "FCN", "ResNet", "TSF"} if not a.quick else set(),
                                    baseline_n=20_000 if a.quick else 60_000, X=X, y=y)
    print(speed.round(2).to_string())

    if a.map:
        print(f"\nC. Sample scene map accuracy, seed split + {a.synthetic} generated series per class")
        # GASF/MTF/RP only for the seed table: each image model costs ~5 min to train here
        map_models = [m for m in a.models if m not in ("GASF", "MTF", "RP")]
        print(map_accuracy(X, y, map_models, a.epochs, a.synthetic).round(4).to_string())


if __name__ == "__main__":
    main()
