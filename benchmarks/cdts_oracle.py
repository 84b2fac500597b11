"""Time the cdts LandTrendr (a GPL C++/OpenMP port) on series saved by bench_landtrendr.py.

Run only by ``bench_landtrendr.py --cdts-python PY`` in a SEPARATE environment that has cdts
installed (cdts is GPL: ltlib never imports it, and nothing here reads its code; this script
calls its documented Python API as a benchmark oracle). cdts's package ``__init__`` imports a
large stack (rasterio, torch, transformers, ...) that its LandTrendr extension does not need, so
a minimal environment (``pip install --no-deps cdts numpy``) is enough: the compiled ``_core``
extension is loaded from the package folder without running that ``__init__``.

    python cdts_oracle.py SERIES.npy YEARS.npy N_JOBS REPEATS OUT.npz
SERIES: float64 (n, T), NaN = no observation, disturbance-negative (NDVI, NBR: modifier -1).
Prints one JSON line: {"seconds": [...], "cpu_seconds": [...], "n": n}; OUT gets the vertex years per series.
"""
import glob
import importlib.util
import json
import os
import sys
import time

import numpy as np


def load_core():
    spec = importlib.util.find_spec("cdts")  # locates the package without importing it
    if spec is None:
        sys.exit("cdts is not installed in this environment")
    (folder,) = spec.submodule_search_locations
    (so,) = glob.glob(os.path.join(folder, "_core*.so"))
    core_spec = importlib.util.spec_from_file_location("_core", so)
    core = importlib.util.module_from_spec(core_spec)
    core_spec.loader.exec_module(core)
    return core


def main():
    series_path, years_path, n_jobs, repeats, out_path = sys.argv[1:6]
    lt = load_core().landtrendr
    x = np.load(series_path)
    years = np.load(years_path).astype(np.int32)
    p = lt.LandTrendrParams()  # its defaults are the seed's runParams (6 segments, p 0.05, ...)
    p.modifier = -1.0           # NDVI / NBR drop on disturbance (LT-GEE distDir -1)
    # C order: the extension reads the buffer as [Y, X, Time] without looking at strides
    values = np.ascontiguousarray(np.where(np.isnan(x), -9999.0, x)).reshape(1, x.shape[0], x.shape[1])
    secs, cpu = [], []
    for _ in range(int(repeats)):
        t, c = time.perf_counter(), time.process_time()
        out = lt.fit_trajectory_batch(values, years, p, -9999.0, int(n_jobs))
        secs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    verts = np.asarray(out[0])
    tmp = out_path + ".part.npz"
    np.savez(tmp, vertices=verts)
    os.replace(tmp, out_path)
    print(json.dumps(dict(seconds=secs, cpu_seconds=cpu, n=int(x.shape[0]))))


if __name__ == "__main__":
    main()
