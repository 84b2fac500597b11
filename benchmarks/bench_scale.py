"""Whole scenes block by block: time, peak memory of the process tree and throughput by size.

    python benchmarks/bench_scale.py                        # every step (about 1.5 h on 2 cores)
    python benchmarks/bench_scale.py --steps landtrendr     # LandTrendr at 1k, 2k, 4k, 7k px
    python benchmarks/bench_scale.py --sizes 1000 2000 --sar-sizes 1000 --notebook-size 2500  # quick

Scenes are generated to disk first (``scale_scene.py``: sample tiles with their own noise,
fixed seed, NDVI and NBR, 51 years; kept in ``--work`` between runs). Every measured run is a
child process; its whole process tree's resident memory is sampled every 0.2 s and the peak
reported (interpreter, dask threads, GDAL cache, papermill's kernel: everything).

``landtrendr``: LandTrendr on NDVI, FTV of NBR, loss and gain maps (MMU 11), read from the
int16 stacks and written as tiled GeoTIFFs, i.e. ``scene.load`` + ``fit_scene`` (+ ``write``
in memory). The in-memory reference is the same on the 1k scene read whole (numba on every
core); throughput is compared per core (series/s / cores), in the same run, and against the
bare ``segment`` kernel on the 1k scene's NDVI in memory (``vs bare segment``), with the
in-memory run's per-step seconds (load, segment, ftv, change_maps, write).
``kshape``: every pixel's NDVI+NBR trajectory assigned to k-Shape centroids fitted on a sample;
``tsf``: every pixel classified by a TimeSeriesForest trained on the labelled set
(``scale_classify.py``); ``tsf100``: the same with 100 trees (notebook 04's large-scene model). ``sar``: the omnibus on dual-pol scenes of 49 dates
(``scale_sar.py``). ``notebook``: notebook 02 run by papermill on a folder holding one NDVI
stack of 4,000 x 4,000 px x 51 years (the kernel and everything it starts are in the tree).
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
# LTLIB_CODE=/path/to/another/checkout measures that checkout's ltlib with these scripts
# (before/after comparisons in one run); children inherit it
if os.environ.get("LTLIB_CODE"):
    sys.path.insert(0, os.environ["LTLIB_CODE"])

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
    steps = {"load": time.perf_counter() - t}
    kw = dict(index="NDVI", loss=params.ChangeMapParams.loss(150, mmu=11), gain=params.ChangeMapParams.gain(300, mmu=11))
    if sc.is_lazy:
        run = landtrendr.fit_scene(sc, output_dir=out, **kw)
    else:
        run = landtrendr.fit_scene(sc, **kw)
        t_write = time.perf_counter()
        run.write(out)
        steps["write"] = time.perf_counter() - t_write
    s = time.perf_counter() - t
    steps.update(run.seconds)
    n = sc.grid.height * sc.grid.width
    return dict(pixels=n, seconds=s, series_per_s=n / s, lazy=sc.is_lazy, steps=steps,
                loss_fraction=run.summary()["loss_fraction"])


def _segment(folder: str) -> dict:
    """The bare kernel: ``segment`` on the scene's NDVI held in memory (read first, not timed),
    on every core, as the pipeline's reference rate."""
    from ltlib import config, landtrendr, scene

    sc = scene.load(folder, indices=["NDVI"], chunks=None, quiet=True)
    st = sc.stack("NDVI")
    t = time.perf_counter()
    landtrendr.segment(st.data, st.years, distdir=config.INDICES["NDVI"].distdir)
    s = time.perf_counter() - t
    n = sc.grid.height * sc.grid.width
    return dict(pixels=n, seconds=s, series_per_s=n / s)


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


def _sar(mode: str, folder: str, out: str, chunks: str) -> dict:
    from scale_sar import measure

    return measure(mode, folder, out, int(chunks))


CHILDREN = {"landtrendr": _landtrendr, "segment": _segment, "warm": _warm, "classify": _classify, "sar": _sar}


# ------------------------------------------------------------------------------------ the table
def _scenes(sizes, work: Path, indices=("NDVI", "NBR")) -> None:
    from scale_scene import write_scene

    for size in sizes:
        t = time.perf_counter()
        write_scene(work / f"scene{size}", size, indices=indices)
        print(f"  scene {size} x {size} px ({', '.join(indices)}): {time.perf_counter() - t:.0f} s", flush=True)


def _rate(r: dict) -> float:
    return r.get("series_per_s", r.get("pixels_per_s", 0.0))


def _clean(r: dict) -> dict:
    return {k: v for k, v in r.items() if k not in ("step", "mode", "size")}


def _compare(step: str, sizes, chunks: int, args, between=None) -> list[dict]:
    """The in-memory run at the smallest size, then block runs at every size, in one run;
    ``args(mode, size)`` is a child's command line; ``between()`` runs after each block run."""
    cores = os.cpu_count()
    ref_size = min(sizes)
    ref = run_child(args("memory", ref_size))
    ref_rate = _rate(ref) / cores
    rows = [dict(_clean(ref), step=step, mode="in memory", size=ref_size)]
    print(f"{step}, in memory, {ref_size} x {ref_size} px: {ref['seconds']:.1f} s, {_rate(ref):.0f} px/s "
          f"({ref_rate:.0f} per core), peak {ref['peak_gb']:.2f} GB", flush=True)
    for size in sizes:
        r = run_child(args("blocks", size))
        if between is not None:
            between()
        r["per_core_vs_in_memory"] = _rate(r) / cores / ref_rate
        rows.append(dict(_clean(r), step=step, mode=f"blocks {chunks} px", size=size))
        print(f"{step}, blocks, {size} x {size} px: {r['seconds']:.1f} s, {_rate(r):.0f} px/s "
              f"({r['per_core_vs_in_memory']:.2f}x the in-memory rate per core), peak {r['peak_gb']:.2f} GB",
              flush=True)
    return rows


def bench_landtrendr(sizes, work: Path, chunks: int) -> list[dict]:
    """The pipeline in memory and in blocks, each against the bare ``segment`` kernel on the
    same data in the same run (``vs_segment``: the pipeline's rate over the kernel's, both on
    every core; 1 would be a pipeline that costs only its kernel). In memory the kernel's time
    is ``fit_scene``'s own ``segment`` step, in the same process; for a block run it is the
    mean of a ``segment`` run on the 1k scene's NDVI just before and just after it (the
    machine's load moves between minutes, and the ratio should not)."""
    _scenes(sizes, work)
    run_child(child("warm"))
    ref_size = min(sizes)
    seg_args = child("segment", str(work / f"scene{ref_size}"))

    def seg():
        r = run_child(seg_args)
        print(f"  segment alone (NDVI in memory, every core), {ref_size} x {ref_size} px: {r['seconds']:.1f} s, "
              f"{r['series_per_s']:.0f} series/s", flush=True)
        return r

    segs = [seg()]
    rows = _compare("landtrendr", sizes, chunks, lambda mode, size: child(
        "landtrendr", str(work / f"scene{size}"), str(work / f"lt_{mode}{size}"),
        "none" if mode == "memory" else str(chunks)), between=lambda: segs.append(seg()))
    for i, r in enumerate(rows):
        if r["mode"] == "in memory":
            r["segment_s"] = r["steps"]["segment"]
            r["vs_segment"] = r["steps"]["segment"] / r["seconds"]
        else:
            rate = 2 / (1 / segs[i - 1]["series_per_s"] + 1 / segs[i]["series_per_s"])
            r["segment_s"] = r["pixels"] / rate
            r["vs_segment"] = r["series_per_s"] / rate
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in r.get("steps", {}).items())
        print(f"landtrendr, {r['mode']}, {r['size']} px: {r['vs_segment']:.2f}x the bare segment rate "
              f"(segment {r['segment_s']:.1f} s; {steps})", flush=True)
    return [dict(_clean(s_), step="segment alone", mode="in memory", size=ref_size) for s_ in segs[:1]] + rows


def bench_classify(sizes, work: Path, chunks: int, steps) -> list[dict]:
    """k-Shape assignment and TSF classification of every pixel (benchmarks/scale_classify.py)."""
    _scenes(sizes, work)
    rows = []
    for step in steps:
        rows += _compare(step, sizes, chunks, lambda mode, size, step=step: child(
            "classify", step, mode, str(work / f"scene{size}"), str(work / f"{step}_{mode}{size}"), str(chunks)))
    return rows


def bench_sar(sizes, work: Path, chunks: int, n_dates: int) -> list[dict]:
    """The omnibus on dual-pol scenes of ``n_dates`` dates (benchmarks/scale_sar.py)."""
    from scale_sar import write_s1_scene

    for size in sizes:
        t = time.perf_counter()
        write_s1_scene(work / f"s1_{size}", size, n_dates=n_dates)
        print(f"  S1 scene {size} x {size} px x {n_dates} dates: {time.perf_counter() - t:.0f} s", flush=True)
    return _compare("sar", sizes, chunks, lambda mode, size: child(
        "sar", mode, str(work / f"s1_{size}"), str(work / f"sar_{mode}{size}"), str(chunks)))


def bench_notebook(size: int, work: Path) -> list[dict]:
    """Notebook 02 run by papermill on a folder holding one NDVI stack of ``size`` px."""
    folder = work / f"ndvi{size}"
    from scale_scene import write_scene

    t = time.perf_counter()
    write_scene(folder, size, indices=("NDVI",))
    print(f"  scene {size} x {size} px (NDVI): {time.perf_counter() - t:.0f} s", flush=True)
    out = work / f"nb02_{size}"
    out.mkdir(parents=True, exist_ok=True)
    r = run_child([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "02_fit_landtrendr.ipynb"),
                   str(out / "02_fit_landtrendr.ipynb"), "-p", "data_dir", str(folder), "-p", "output_dir", str(out),
                   "-p", "mmu", "11", "--cwd", str(ROOT / "notebooks"), "--no-progress-bar"])
    summary = json.loads((out / "summary.json").read_text())
    r.update(pixels=size * size, seconds=r["wall_s"], pixels_per_s=size * size / r["wall_s"],
             lazy=bool(summary.get("landtrendr", {}).get("block_wise")))
    print(f"notebook 02 (papermill), {size} x {size} px NDVI: {r['seconds']:.0f} s, peak {r['peak_gb']:.2f} GB",
          flush=True)
    return [dict(step="notebook 02", mode="papermill", size=size, **r)]


def print_table(rows: list[dict]) -> None:
    print("\n| step | mode | size (px) | pixels | seconds | pixels/s | vs in memory per core | vs bare segment | "
          "peak memory (GB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        vs, seg = r.get("per_core_vs_in_memory"), r.get("vs_segment")
        print(f"| {r['step']} | {r['mode']} | {r['size']} | {r['pixels']:,} | {r['seconds']:.1f} | "
              f"{r.get('series_per_s', r.get('pixels_per_s', 0)):,.0f} | {'' if vs is None else f'{vs:.2f}'} | "
              f"{'' if seg is None else f'{seg:.2f}'} | {r['peak_gb']:.2f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 7000])
    ap.add_argument("--steps", nargs="+", default=["landtrendr", "kshape", "tsf", "tsf100", "sar", "notebook"],
                    choices=["landtrendr", "kshape", "tsf", "tsf100", "sar", "notebook"])
    ap.add_argument("--sar-sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--sar-dates", type=int, default=49)
    ap.add_argument("--notebook-size", type=int, default=4000)
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
    if {"kshape", "tsf", "tsf100"} & set(a.steps):
        rows += bench_classify(a.sizes, work, a.chunks, [s for s in ("kshape", "tsf", "tsf100") if s in a.steps])
    if "sar" in a.steps:
        rows += bench_sar(a.sar_sizes, work, a.chunks, a.sar_dates)
    if "notebook" in a.steps:
        rows += bench_notebook(a.notebook_size, work)
    print_table(rows)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
