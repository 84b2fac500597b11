"""k-Shape and trajectory classification of a generated scene, in memory or block by block.

One measurement (run as a child process by ``bench_scale.py``, which samples the peak RSS):

- ``kshape``: k chosen... here fixed (k = 6, one elbow point) and the centroids fitted on a
  random sample of ``SAMPLE`` pixels of NDVI, then every pixel assigned to its nearest centroid
  (``cluster.cluster_trajectories``; blocks: ``clusters_univariate.tif`` written block by block);
- ``tsf``: a TimeSeriesForest (pyts, 500 trees) trained on the seed's labelled split, then every
  pixel classified (``mapping.map_scene``; blocks: ``class_map.tif`` written block by block;
  memory: ``MappingRun.write``); ``tsf100``: the same with ``TSF100`` (100 trees), notebook
  04's model for scenes opened in chunks.

    python benchmarks/scale_classify.py kshape blocks /tmp/ltlib_scale/scene1000 /tmp/out 512
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Pixels the k-Shape centroids are fitted on.
SAMPLE = 20000


def measure(step: str, mode: str, folder, out, chunks: int = 512) -> dict:
    """Run ``step`` ("kshape" or "tsf") on the scene in ``folder`` in ``mode`` ("memory" or
    "blocks", chunks of ``chunks`` px), writing into ``out``. Returns a JSON-able dict: pixels,
    seconds (the whole step: read, fit/train, every pixel, write), pixels_per_s, and the
    step's own timings."""
    from ltlib import blocks, cluster, mapping, scene

    if step not in ("kshape", "tsf", "tsf100") or mode not in ("memory", "blocks"):
        raise ValueError(f"step must be 'kshape', 'tsf' or 'tsf100' and mode 'memory' or 'blocks', got {step!r}, {mode!r}")
    blocks.connect()
    out = Path(out)
    t0 = time.perf_counter()
    sc = scene.load(folder, indices=["NDVI"], chunks=None if mode == "memory" else int(chunks), quiet=True)
    n = sc.grid.height * sc.grid.width
    res = dict(step=step, mode=mode, pixels=n, lazy=sc.is_lazy)
    if step == "kshape":
        settings = cluster.ClusterSettings(n_clusters=6, k_range=[6], elbow_max_series=2000, silhouette_sample=1000,
                                           elbow_n_init=1, n_init=1, max_iter=50, euclidean_elbow=False,
                                           sample_size=SAMPLE)
        run = cluster.cluster_trajectories(cluster.load_trajectories(sc), ["NDVI"], settings, progress=False,
                                           output_dir=out)
        cluster.write_clusters(out, [run])
        res.update(k=run.k, sizes=run.summary()["cluster_sizes"], fit_s=run.seconds["fit"],
                   assign_s=run.seconds.get("assign"))
    else:
        t = time.perf_counter()
        name = step.upper()
        comparison = mapping.compare_on_seed(mapping.load_labelled(), [name], progress=False)
        res["train_s"] = time.perf_counter() - t
        series = mapping.scene_series(sc)
        run = mapping.map_scene(series, comparison, n_synthetic_per_class=0, progress=False, output_dir=out)
        run.write(out)
        res.update(classify_s=run.map_seconds[name], class_pixels=run.class_pixels())
    res["seconds"] = time.perf_counter() - t0
    res["pixels_per_s"] = n / res["seconds"]
    return res


if __name__ == "__main__":
    import json

    print(json.dumps(measure(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])), default=float))
