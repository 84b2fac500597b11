"""LandTrendr speed: series per second, scaling over cores and series counts.

    python benchmarks/bench_landtrendr.py            # 10k, 100k, 400k series; 1 and all cores
    python benchmarks/bench_landtrendr.py --quick    # 10k only
    python benchmarks/bench_landtrendr.py --memory   # peak memory on a 51 x 1500 x 1500 stack

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


def memory(size: int, data_dir: Path, ftv: bool = True) -> dict:
    """Peak resident memory of ``segment`` (and one FTV) on a (51, size, size) float32 stack,
    above the process's memory just before the call, as a multiple of the stack's size.

    Run in a fresh process (``--memory``): the stack is built band by band (no transient
    copies), numba compiles on a small piece first, then the peak (``ru_maxrss``) is read.
    """
    import resource

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    s = sample.load_landsat(data_dir, "NDVI")
    T, H, W = s.data.shape
    stack = np.empty((T, size, size), np.float32)
    reps = (int(np.ceil(size / H)), int(np.ceil(size / W)))
    for t in range(T):
        stack[t] = np.tile(s.data[t], reps)[:size, :size]
    landtrendr.segment(stack[:, :20, :20], s.years, **config.LANDTRENDR_PARAMS)  # compile
    landtrendr.fit_to_vertices(stack[:, :20, :20], s.years, np.zeros((T, 20, 20), bool))
    before = rss()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    r = landtrendr.segment(stack, s.years, **config.LANDTRENDR_PARAMS)
    ftv = landtrendr.fit_to_vertices(stack, s.years, r.is_vertex) if ftv else None
    el = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # ru_maxrss is the process's peak so far; the stack was built without transients, so the
    # peak before the call is about ``before`` and peak - before is the call's own peak
    above = peak - before
    if peak_before > before * 1.05:
        print(f"note: the process peaked at {peak_before / 1e9:.2f} GB before the call; the figure is an upper bound")
    out = dict(shape=[T, size, size], input_gb=stack.nbytes / 1e9, peak_above_gb=above / 1e9,
               ratio=above / stack.nbytes, outputs_gb=(r.fitted.nbytes + r.is_vertex.nbytes
                                                       + (ftv.nbytes if ftv is not None else 0)) / 1e9,
               seconds=el, series_per_s=size * size / el)
    print(f"memory: {T} x {size} x {size} float32 stack ({out['input_gb']:.2f} GB): segment"
          f"{' + one FTV' if ftv is not None else ''} peaks {out['peak_above_gb']:.2f} GB above the memory before "
          f"the call = {out['ratio']:.2f}x the input (its outputs alone: {out['outputs_gb']:.2f} GB); "
          f"{el:.1f} s, {out['series_per_s']:.0f} series/s")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1] / "data" / "sample"))
    ap.add_argument("--memory", type=int, nargs="?", const=1500, default=None,
                    help="peak memory of segment + one FTV on a (51, N, N) float32 stack (default N 1500) and exit")
    ap.add_argument("--no-ftv", action="store_true", help="with --memory: segment only")
    a = ap.parse_args(argv)
    if a.memory:
        memory(a.memory, Path(a.data_dir), ftv=not a.no_ftv)
        return
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
