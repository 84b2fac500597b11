"""Whole-scene classifiers: map accuracy on the sample and per-pixel rate, CPU and GPU.

    python benchmarks/bench_classify_rate.py                       # InceptionTime, TSF, TSF100, MiniRocket
    python benchmarks/bench_classify_rate.py --models TSF100 --rate-pixels 400000
    python benchmarks/bench_classify_rate.py --device cuda         # the deep models on a GPU too

Every model is trained as notebook 04 trains its mapping models (the seed's training split
plus 300 generated Landsat-like series per class, ``--epochs`` 10, seed 0), then

- map accuracy: every one of the sample's 40,000 pixels classified and compared with its
  truth class (notebook 04's ``map_accuracy``);
- rate: ``classify.classify_image`` on a scene of ``--rate-pixels`` pixels (the sample tiled),
  in memory, on this machine's cores (and on each ``--device``), and the time a 7,000 x 7,000
  px scene (49 M px) would take at that rate, *extrapolated* (``bench_scale.py --steps
  tsf100`` measures the whole block-wise run with reading and writing).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENE_PX = 7000 * 7000


def trained_models(names, *, epochs: int = 10, seed: int = 0, device=None) -> dict:
    """{name: TrainedModel} trained as notebook 04's mapping models, and the sample's series."""
    from ltlib import classify, mapping, scene

    sc = scene.load(ROOT / "data" / "sample", quiet=True, chunks=None)
    series = mapping.scene_series(sc)
    ts = mapping.training_set(mapping.load_labelled(), series.years, 300, seed=seed)
    models = {n: classify.fit(n, ts["X"], ts["y"], ts["X_valid"], ts["y_valid"], epochs=epochs, seed=seed,
                              progress=False, device=device) for n in names}
    return models, series, sc.truth["class"]


def rate(model, data, device=None, repeat: int = 1) -> tuple[float, np.ndarray]:
    """Pixels per second of ``classify_image`` on ``data`` (T, H, W) (best of ``repeat``) and the map."""
    from ltlib import classify

    best, cmap = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        cmap = classify.classify_image(model, data, progress=False, device=device)
        best = min(best, time.perf_counter() - t)
    return data.shape[1] * data.shape[2] / best, cmap


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["InceptionTime", "TSF", "TSF100", "MiniRocket"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rate-pixels", type=int, default=200_000)
    ap.add_argument("--device", nargs="*", default=[], help="devices besides the CPU, e.g. cuda")
    a = ap.parse_args(argv)
    from ltlib import mapping

    models, series, truth = trained_models(a.models, epochs=a.epochs)
    data = np.asarray(series.data)
    reps = -(-a.rate_pixels // (data.shape[1] * data.shape[2]))
    big = np.concatenate([data] * reps, axis=2)[:, :, : max(1, a.rate_pixels // data.shape[1])]
    rows = []
    print(f"rate on {big.shape[1] * big.shape[2]:,} px x {big.shape[0]} years (the sample tiled), in memory")
    print("| model | device | map accuracy (40,000 px) | px/s | 49 M px (extrapolated) |")
    print("|---|---|---|---|---|")
    for name, m in models.items():
        for dev in ["cpu", *a.device]:
            if dev != "cpu" and m.kind != "torch":
                continue
            px_s, _ = rate(m, big, device=dev)
            _, cmap = rate(m, data, device=dev)
            acc = mapping._census(cmap, truth)["overall"]
            rows.append(dict(model=name, device=dev, accuracy=acc, px_per_s=px_s, scene_s=SCENE_PX / px_s))
            print(f"| {name} | {dev} | {acc:.4f} | {px_s:,.0f} | {SCENE_PX / px_s / 60:.1f} min |", flush=True)
    return rows


if __name__ == "__main__":
    main()
