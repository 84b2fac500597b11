"""Whole scenes block by block: time, peak memory of the process tree and throughput by size.

    python benchmarks/bench_scale.py                        # LandTrendr at 1k, 2k, 4k, 7k px
    python benchmarks/bench_scale.py --sizes 1000 2000      # smaller
    python benchmarks/bench_scale.py --steps landtrendr cluster classify sar notebook

Scenes are generated to disk first (``scale_scene.py``: sample tiles with their own noise,
fixed seed, NDVI and NBR, 51 years; kept in ``--work`` between runs). Every measured run is a
child process; its whole process tree's resident memory is sampled every 0.2 s and the peak
reported (interpreter, dask threads, GDAL cache, papermill's kernel: everything).

``landtrendr``: LandTrendr on NDVI, FTV of NBR, loss and gain maps (MMU 11), read from the
int16 stacks and written as tiled GeoTIFFs, i.e. ``scene.load`` + ``fit_scene`` (+ ``write``
in memory). The in-memory reference is the same on the 1k scene read whole (numba on every
core); throughput is compared per core (series/s / cores), in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

GB = 1e9


# ------------------------------------------------------------------------------------ measuring
def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_child(args: list[str], *, cwd=None, env=None) -> dict:
    """Run ``args`` as a child; return its last stdout line as JSON plus ``peak_gb`` and ``wall_s``."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def poll():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.2)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out, err = proc.communicate()
    th.join()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])} failed ({proc.returncode}):\n{err[-3000:]}")
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    res = json.loads(lines[-1]) if lines else {}
    res.update(peak_gb=peak[0] / GB, wall_s=wall)
    return res


def child(step: str, *a: str) -> list[str]:
    return [sys.executable, __file__, "--child", step, *a]


# ------------------------------------------------------------------------------------ the steps (children)
def _landtrendr(folder: str, out: str, chunks: str) -> dict:
    from ltlib import blocks, landtrendr, params, scene

    blocks.connect()
    t = time.perf_counter()
    sc = scene.load(folder, indices=["NDVI", "NBR"], chunks=None if chunks == "none" else int(chunks), quiet=True)
    kw = dict(index="NDVI", loss=params.ChangeMapParams.loss(150, mmu=11), gain=params.ChangeMapParams.gain(300, mmu=11))
    if sc.is_lazy:
        run = landtrendr.fit_scene(sc, output_dir=out, **kw)
    else:
        run = landtrendr.fit_scene(sc, **kw)
        run.write(out)
    s = time.perf_counter() - t
    n = sc.grid.height * sc.grid.width
    return dict(pixels=n, seconds=s, series_per_s=n / s, lazy=sc.is_lazy,
                loss_fraction=run.summary()["loss_fraction"])


def _warm() -> dict:
    """Compile (or load from numba's cache) every kernel once, outside the timed runs."""
    from ltlib import landtrendr, scene

    sc = scene.load(ROOT / "data" / "sample", quiet=True, chunks=None)
    landtrendr.fit_scene(sc)
    sc = scene.load(ROOT / "data" / "sample", quiet=True, chunks=64)
    with tempfile.TemporaryDirectory() as d:
        landtrendr.fit_scene(sc, output_dir=d)
    return {}


def _classify(step: str, mode: str, folder: str, out: str, chunks: str) -> dict:
    from scale_classify import measure

    return measure(step, mode, folder, out, int(chunks))


CHILDREN = {"landtrendr": _landtrendr, "warm": _warm, "classify": _classify}


# ------------------------------------------------------------------------------------ the table
def bench_landtrendr(sizes, work: Path, chunks: int) -> list[dict]:
    from scale_scene import write_scene

    cores = os.cpu_count()
    rows = []
    print("generating scenes ...", flush=True)
    for size in sizes:
        t = time.perf_counter()
        write_scene(work / f"scene{size}", size)
        print(f"  {size} x {size} px: {time.perf_counter() - t:.0f} s", flush=True)
    run_child(child("warm"))
    ref_size = min(sizes)
    ref = run_child(child("landtrendr", str(work / f"scene{ref_size}"), str(work / f"out_mem{ref_size}"), "none"))
    ref_rate = ref["series_per_s"] / cores
    print(f"in memory, {ref_size} x {ref_size} px: {ref['seconds']:.1f} s, {ref['series_per_s']:.0f} series/s "
          f"({ref_rate:.0f} per core), peak {ref['peak_gb']:.2f} GB", flush=True)
    rows.append(dict(step="landtrendr", mode="in memory", size=ref_size, **ref))
    for size in sizes:
        r = run_child(child("landtrendr", str(work / f"scene{size}"), str(work / f"out{size}"), str(chunks)))
        r["per_core_vs_in_memory"] = r["series_per_s"] / cores / ref_rate
        rows.append(dict(step="landtrendr", mode=f"blocks {chunks} px", size=size, **r))
        print(f"blocks, {size} x {size} px: {r['seconds']:.1f} s, {r['series_per_s']:.0f} series/s "
              f"({r['per_core_vs_in_memory']:.2f}x the in-memory rate per core), peak {r['peak_gb']:.2f} GB",
              flush=True)
    return rows


def bench_classify(steps, sizes, work: Path, chunks: int) -> list[dict]:
    """k-Shape (``kshape``) and TSF classification (``tsf``) in memory and block by block."""
    from scale_classify import measure  # noqa: F401  (fails early when missing)
    from scale_scene import write_scene

    rows = []
    for size in sizes:
        folder = write_scene(work / f"scene{size}", size)
        for step in steps:
            for mode in ("memory", "blocks"):
                r = run_child(child("classify", step, mode, str(folder), str(work / f"out_{step}_{mode}{size}"),
                                    str(chunks)))
                rows.append(dict(size=size, **{**r, "mode": mode if mode == "memory" else f"blocks {chunks} px"}))
                print(f"{step} {mode}, {size} x {size} px: {r['seconds']:.1f} s, {r['pixels_per_s']:.0f} px/s, "
                      f"peak {r['peak_gb']:.2f} GB", flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    print("\n| step | mode | size (px) | pixels | seconds | pixels/s | vs in memory per core | peak memory (GB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        vs = r.get("per_core_vs_in_memory")
        print(f"| {r['step']} | {r['mode']} | {r['size']} | {r['pixels']:,} | {r['seconds']:.1f} | "
              f"{r.get('series_per_s', r.get('pixels_per_s', 0)):,.0f} | {'' if vs is None else f'{vs:.2f}'} | "
              f"{r['peak_gb']:.2f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 7000])
    ap.add_argument("--steps", nargs="+", default=["landtrendr"])
    ap.add_argument("--chunks", type=int, default=512)
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ltlib_scale"))
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(CHILDREN[a.child[0]](*a.child[1:])))
        return
    work = Path(a.work)
    rows = []
    if "landtrendr" in a.steps:
        rows += bench_landtrendr(a.sizes, work, a.chunks)
    classify_steps = [s for s in a.steps if s in ("kshape", "tsf")]
    if classify_steps:
        rows += bench_classify(classify_steps, a.sizes, work, a.chunks)
    print_table(rows)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
