"""First use: seconds from a fresh ``python`` to the first fitted LandTrendr pixel.

    python benchmarks/bench_first_use.py            # empty numba cache, then 2 starts with it
    python benchmarks/bench_first_use.py --starts 3

Every start is a new interpreter (as a new notebook kernel or Colab runtime is) that imports
ltlib, runs ``segment`` on one 51-year series, and reports when the first fitted value is
there. The numba cache folder is a fresh temporary folder (``NUMBA_CACHE_DIR``), so the first
start compiles every kernel it calls (what a fresh install pays) and the next starts load
them from the cache (what every later kernel start pays). Then ``fit_scene`` on the bundled
200 x 200 px sample (FTV and change-map kernels too: the rest of notebook 02's first call). The same series is fitted in each
start and the fitted values are compared: a kernel loaded from the cache must give the
identical result. A last start has no writable cache folder at all, as on a read-only install with a
read-only home: it must still fit (``ltlib.jit`` compiles without a cache and warns).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, time
from pathlib import Path
ROOT = Path({root!r})
t0 = time.perf_counter()
import numpy as np
import ltlib
from ltlib.landtrendr import segment
t_import = time.perf_counter() - t0
years = np.arange(1972, 2023)
rng = np.random.default_rng(0)
y = 800 - 300 * (years >= 1995) + 200 * np.clip((years - 1995) / 10, 0, 1) + rng.normal(0, 20, years.size)
t1 = time.perf_counter()
r = segment(y, years, index="NDVI")
t_fit = time.perf_counter() - t1
t2 = time.perf_counter()
r = segment(y, years, index="NDVI")
t_again = time.perf_counter() - t2
total = time.perf_counter() - t0 - t_again
t3 = time.perf_counter()
from ltlib import landtrendr, scene
sc = scene.load(ROOT / "data" / "sample", quiet=True, chunks=None)
landtrendr.fit_scene(sc)
t_scene = time.perf_counter() - t3
print(json.dumps(dict(import_s=t_import, first_fit_s=t_fit, total_s=total, again_s=t_again, scene_s=t_scene, fitted=[float(v) for v in np.ravel(r.fitted)],
                      vertices=[int(v) for v in np.ravel(r.vertices())])))
"""


def start(cache_dir: Path, **env_extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NUMBA_CACHE_DIR=str(cache_dir), **env_extra)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT))], env=env, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t
    return res


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=2, help="starts with the filled cache (default 2)")
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        cache = Path(d) / "numba"
        runs = [("first start, empty cache (compile)", cache)]
        runs += [(f"start {i + 2}, cache filled (load)", cache) for i in range(a.starts)]
        for label, c in runs:
            r = start(c)
            r["label"] = label
            rows.append(r)
        n_files = sum(1 for _ in cache.rglob("*.nbc"))
        # no writable folder anywhere (a path under a file is not writable, even for root); numba's
        # in-tree locator is left out, as this checkout's folder is writable
        blocker = Path(d) / "a_file"
        blocker.write_text("")
        r = start(blocker / "numba", NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator,UserWideCacheLocator",
                  XDG_CACHE_HOME=str(blocker / "cache"), HOME=str(blocker))
        r["label"] = "no writable cache (compile)"
        rows.append(r)
    ref = rows[0]["fitted"]
    print(f"numba cache files written by the first start: {n_files}")
    print(f"{'start':40s} {'import s':>9s} {'first fit s':>12s} {'to first pixel s':>17s} {'process s':>10s} "
          f"{'sample scene s':>15s} {'same fit':>9s}")
    for r in rows:
        print(f"{r['label']:40s} {r['import_s']:9.2f} {r['first_fit_s']:12.2f} {r['total_s']:17.2f} "
              f"{r['process_s']:10.2f} {r['scene_s']:15.2f} {str(r['fitted'] == ref):>9s}")
    print(f"compile / load (first fit): {rows[0]['first_fit_s'] / rows[1]['first_fit_s']:.0f}x")
    if any(r["fitted"] != ref for r in rows):
        raise SystemExit("a start gave a different fit")
    return rows


if __name__ == "__main__":
    main()
