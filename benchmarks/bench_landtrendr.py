"""LandTrendr speed: series per second, scaling over cores and series counts.

    python benchmarks/bench_landtrendr.py            # 10k, 100k, 400k series; 1 and all cores
    python benchmarks/bench_landtrendr.py --quick    # 10k only
    python benchmarks/bench_landtrendr.py --memory   # peak memory on a 51 x 1500 x 1500 stack

Series are the sample's 51-year NDVI pixels (with its gaps, spikes and MSS noise), repeated
to reach the requested count, fitted with the seed's parameters.

``--cdts-python PY``: the fastest compiled port on PyPI, cdts (GPL C++/OpenMP), timed in the
same run on the same series, in a separate environment whose interpreter is PY (ltlib never
imports it; see ``cdts_oracle.py``), on the sample's 51-year NDVI and the real Earth Engine
33-year NBR forest composites (1984-2016), 1 thread and all cores, runs interleaved so both
see the same machine load; prints series/s, the ratio, and how often both find the same
vertex years. Set it up once with

    python3.11 -m venv /tmp/cdtsenv && /tmp/cdtsenv/bin/pip install --no-deps cdts numpy

    python benchmarks/bench_landtrendr.py --cdts-python /tmp/cdtsenv/bin/python --quick
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ltlib import config, landtrendr, sample  # noqa: E402

REFERENCE_SERIES_PER_S_PER_CORE = 59_000
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"


def series(n: int, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    s = sample.load_landsat(data_dir, "NDVI")
    return _repeated(s.data.reshape(len(s.years), -1).T.astype(np.float64), n), s.years


def _repeated(x: np.ndarray, n: int) -> np.ndarray:
    """``n`` series: the rows of ``x`` repeated, in a fixed random order, C-contiguous."""
    x = np.concatenate([x] * int(np.ceil(n / x.shape[0])))[:n]
    return np.ascontiguousarray(x[np.random.default_rng(0).permutation(n)])


def forest_series(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The real Earth Engine NBR composites of the Oregon forest reference (33 years), repeated."""
    a = _forest_source()
    return _repeated(a.reshape(a.shape[0], -1).T, n), np.arange(1984, 1984 + a.shape[0])


def _forest_source() -> np.ndarray:
    """The forest reference's (33, 54, 53) NBR x 1000, float64; Earth Engine's export fill
    (-32768, 124 values, the file has no nodata tag) is NaN, as in tests/test_landtrendr.py."""
    import rasterio

    from ltlib import resources

    with rasterio.open(resources.gee_reference("forest_or_source.tif")) as src:
        a = src.read().astype(np.float64)
    a[a == config.NODATA_INT16] = np.nan
    return a


def _vertex_years_ltlib(result) -> list[tuple]:
    return [tuple(int(y) for y in result.years[row]) for row in result.is_vertex]


def compare_cdts(python: str, n: int, repeats: int = 3) -> list[dict]:
    """ltlib vs cdts, same series, same run, interleaved repeats; best time of each."""
    out = []
    cores = sorted({1, numba.config.NUMBA_NUM_THREADS})
    params = dict(config.LANDTRENDR_PARAMS)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (x, years) in (("sample NDVI, 51 years", series(n, Path(DATA_DIR))),
                                 ("forest NBR (Earth Engine), 33 years", forest_series(n))):
            np.save(f"{tmp}/x.npy", x)
            np.save(f"{tmp}/years.npy", years)
            landtrendr.segment(x[:200], years, **params)  # compile
            for c in cores:
                numba.set_num_threads(c)
                # on one core the CPU time of each (unaffected by other load on the machine); on
                # all cores the wall time, which other processes on the machine inflate
                clock = time.process_time if c == 1 else time.perf_counter
                key = "cpu_seconds" if c == 1 else "seconds"
                t_lt, t_cd = [], []
                for _ in range(repeats):
                    t = clock()
                    res = landtrendr.segment(x, years, **params)
                    t_lt.append(clock() - t)
                    run = subprocess.run([python, str(Path(__file__).with_name("cdts_oracle.py")), f"{tmp}/x.npy",
                                          f"{tmp}/years.npy", str(c), "1", f"{tmp}/v.npz"],
                                         capture_output=True, text=True, check=True)
                    t_cd.append(json.loads(run.stdout.strip().splitlines()[-1])[key][0])
                vc = np.load(f"{tmp}/v.npz")["vertices"][:, :, 0]
                same = np.mean([tuple(int(v) for v in row[row > 0]) == ly
                                for row, ly in zip(vc, _vertex_years_ltlib(res))])
                row = dict(data=name, series=n, cores=c, clock=key, ltlib=n / min(t_lt), cdts=n / min(t_cd),
                           ratio=min(t_cd) / min(t_lt), same_vertex_years=float(same))
                out.append(row)
                print(f"{name:38s} {c:2d} core(s), {key:11s}: ltlib {row['ltlib']:9.0f} series/s, cdts {row['cdts']:9.0f} "
                      f"series/s -> ltlib/cdts {row['ratio']:.2f}x; same vertex years {100 * same:.1f}%",
                      flush=True)
    numba.set_num_threads(cores[-1])
    out.append(earth_engine_agreement(python))
    return out


def earth_engine_agreement(python: str) -> dict:
    """Greatest-loss map of ltlib and of cdts against Earth Engine's on the forest reference:
    IoU of the loss >= 150 (NBR x 1000) masks and the share of both-loss pixels whose year
    is Earth Engine's (ties of equal one-year steps count), as tests/test_landtrendr.py does."""
    import rasterio

    from ltlib import resources

    src = _forest_source()
    with rasterio.open(resources.gee_reference("forest_or_distyear.tif")) as s:
        gee_year, gee_loss = s.read()
    years = np.arange(1984, 1984 + src.shape[0])
    x = np.ascontiguousarray(src.reshape(len(years), -1).T)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        np.save(f"{tmp}/years.npy", years)
        subprocess.run([python, str(Path(__file__).with_name("cdts_oracle.py")), f"{tmp}/x.npy", f"{tmp}/years.npy",
                        "1", "1", f"{tmp}/v.npz"], capture_output=True, text=True, check=True)
        verts = np.load(f"{tmp}/v.npz")["vertices"]
    cdts_fit = np.array([np.interp(years, v[v[:, 0] > 0, 0], v[v[:, 0] > 0, 1]) for v in verts]).T.reshape(src.shape)
    fits = dict(ltlib=landtrendr.segment(src, years, **config.LANDTRENDR_PARAMS).fitted.astype(float), cdts=cdts_fit)
    res = {}
    for name, fitted in fits.items():
        loss = -(fitted[1:] - fitted[:-1])
        mx = loss.max(0)
        ours, gee = mx >= 150, gee_loss >= 150
        both = ours & gee
        k = np.clip(gee_year.astype(int) - years[0] - 1, 0, len(years) - 2)
        same = (np.take_along_axis(loss, k[None], 0)[0] >= mx - 1e-3)[both].mean()
        res[name] = dict(iou=float(both.sum() / (ours | gee).sum()), same_year=float(same))
        print(f"Earth Engine forest loss map ({src.shape[1]} x {src.shape[2]} px), {name:5s}: IoU "
              f"{res[name]['iou']:.4f}, same year {100 * res[name]['same_year']:.2f}%")
    return res


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
    ap.add_argument("--cdts-python", help="interpreter of a separate environment with cdts: time it in this run")
    ap.add_argument("--cdts-n", type=int, default=100_000, help="series for the cdts comparison")
    a = ap.parse_args(argv)
    if a.cdts_python:
        compare_cdts(a.cdts_python, a.cdts_n)
        if a.quick:
            return
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
