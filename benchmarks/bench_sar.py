"""Benchmark ltlib.sar.omnibus against a straightforward numpy implementation.

The baseline below is written from the formulas (ltlib/sar.py docstring, Conradsen et al.
2016, Canty et al. 2020) the way one would write it first: one loop over the start image
ell, one over j, numpy over all pixels, p-values from scipy.stats.chi2 for every pixel
and test. Both must give identical maps before anything is timed.

Run:  .venv/bin/python benchmarks/bench_sar.py            (300 x 300 baseline + 600 x 600 seed case)
      .venv/bin/python benchmarks/bench_sar.py --quick    (smaller, for a smoke run)
      add --median to also compare/time the 3x3 median-filter variant.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from ltlib import sample, sar

# the reference implementation is a test oracle, kept in tests/ rather than in the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.sar_reference import omnibus_reference  # noqa: E402


def baseline_omnibus(vv, vh, enl=4.4, alpha=0.01, median_filter=False):
    """Straightforward sequential omnibus test (tests/sar_reference.py): cmap, smap, fmap, bmap."""
    return omnibus_reference((vv, vh), enl=enl, alpha=alpha, median_filter=median_filter)[:4]


def timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def compare(size, median_filter, seed=7):
    vv, vh, _ = sample.simulate_s1(seed, shape=(size, size))
    (c, s, f, b), t_base = timed(baseline_omnibus, vv, vh, median_filter=median_filter)
    res, t_fast = timed(sar.omnibus, vv, vh, median_filter=median_filter)
    same = {n: bool(np.array_equal(getattr(res, n), ref)) for n, ref in
            (("cmap", c), ("smap", s), ("fmap", f), ("bmap", b))}
    if not all(same.values()):
        diff = {n: int((getattr(res, n) != ref).sum())
                for n, ref in (("cmap", c), ("smap", s), ("fmap", f), ("bmap", b))}
        raise SystemExit(f"maps differ from the baseline ({diff} differing values): not timing a wrong result")
    print(f"49 x {size} x {size} dual-pol, median_filter={median_filter}: maps identical "
          f"({int(f.astype(bool).sum())} changed pixels, {int(f.sum())} changes)")
    print(f"  baseline (loops over ell, j; scipy chi2 per pixel): {t_base:8.2f} s")
    print(f"  ltlib.sar.omnibus:                                  {t_fast:8.2f} s   -> {t_base / t_fast:.1f}x faster")
    return t_base, t_fast


def seed_case(size):
    vv, vh, _ = sample.simulate_s1(11, shape=(size, size))
    res, t = timed(sar.omnibus, vv, vh)
    tracemalloc.start()
    sar.omnibus(vv, vh)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    inp = (vv.nbytes + vh.nbytes) / 2**20
    print(f"seed case 49 x {size} x {size} dual-pol: {t:.2f} s (goal < 30 s on 2 cores); "
          f"{res.counts()['n_changed']} changed pixels; peak extra memory {peak / 2**20:.0f} MiB "
          f"(inputs {inp:.0f} MiB, bmap output {res.bmap.nbytes / 2**20:.0f} MiB)")
    return t


def worst_case(size):
    """Every pixel changes at every interval (x20 / /20 alternation): the most rows per pixel."""
    rng = np.random.default_rng(3)
    level = np.where(np.arange(49) % 2 == 0, 1.0, 20.0)[:, None, None].astype(np.float32)
    vv = level * rng.gamma(4.4, 1 / 4.4, (49, size, size)).astype(np.float32)
    vh = level * rng.gamma(4.4, 1 / 4.4, (49, size, size)).astype(np.float32)
    for mf in (False, True):
        res, t = timed(sar.omnibus, vv, vh, median_filter=mf)
        print(f"worst case 49 x {size} x {size}, a change at every interval, median_filter={mf}: {t:.2f} s "
              f"(mean fmap {res.fmap.mean():.1f} of 48)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--median", action="store_true", help="also compare the median-filter variant")
    args = ap.parse_args()
    print(f"cores available: {len(os.sched_getaffinity(0))}, numpy {np.__version__}")
    size = 100 if args.quick else 300
    compare(size, False)
    if args.median:
        compare(size, True)
    seed_case(200 if args.quick else 600)
    worst_case(200 if args.quick else 600)


if __name__ == "__main__":
    main()
