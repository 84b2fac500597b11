"""LandTrendr speed: series per second, scaling over cores and series counts.

    python benchmarks/bench_landtrendr.py            # 10k, 100k, 400k series; 1 and all cores
    python benchmarks/bench_landtrendr.py --quick    # 10k only

Series are the sample's 51-year NDVI pixels (with its gaps, spikes and MSS noise), repeated
to reach the requested count, fitted with the seed's parameters. The reference figure for
the fastest compiled port on PyPI (a GPL C++ port, measured at about 59,000 series/s on one
core of this machine class) is printed for comparison; that port is GPL, so ltlib neither
imports nor reads it, and it is not installed here.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ltlib import config, landtrendr, sample  # noqa: E402

REFERENCE_SERIES_PER_S_PER_CORE = 59_000


def series(n: int, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    s = sample.load_landsat(data_dir, "NDVI")
    x = s.data.reshape(len(s.years), -1).T.astype(np.float64)
    reps = int(np.ceil(n / x.shape[0]))
    x = np.concatenate([x] * reps)[:n]
    return np.ascontiguousarray(x[np.random.default_rng(0).permutation(n)]), s.years


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1] / "data" / "sample"))
    a = ap.parse_args(argv)
    sizes = [10_000] if a.quick else [10_000, 100_000, 400_000]
    cores = sorted({1, numba.config.NUMBA_NUM_THREADS})
    x, years = series(max(sizes), Path(a.data_dir))
    landtrendr.segment(x[:200], years, **config.LANDTRENDR_PARAMS)  # compile
    print(f"machine: {os.cpu_count()} cores, numba threads available {numba.config.NUMBA_NUM_THREADS}")
    print(f"{'series':>8} {'cores':>5} {'seconds':>8} {'series/s':>10} {'per core':>10} {'vs 59k/s/core':>13}")
    rows = {}
    for n in sizes:
        for c in cores:
            numba.set_num_threads(c)
            t = time.perf_counter()
            landtrendr.segment(x[:n], years, **config.LANDTRENDR_PARAMS)
            el = time.perf_counter() - t
            rows[(n, c)] = n / el
            print(f"{n:8d} {c:5d} {el:8.2f} {n / el:10.0f} {n / el / c:10.0f} {n / el / c / REFERENCE_SERIES_PER_S_PER_CORE:12.2f}x")
    if len(cores) > 1:
        for n in sizes:
            print(f"scaling {n} series: {rows[(n, cores[-1])] / rows[(n, 1)]:.2f}x on {cores[-1]} cores")
    numba.set_num_threads(cores[-1])
    if not a.quick:
        scene = 620 * 628
        t = time.perf_counter()
        landtrendr.segment(np.concatenate([x, x[: scene - len(x)]]) if scene > len(x) else x[:scene], years,
                           **config.LANDTRENDR_PARAMS)
        print(f"seed scene 620 x 628 x 51 years, one index: {time.perf_counter() - t:.1f} s on {cores[-1]} cores")


if __name__ == "__main__":
    main()
