"""Large Sentinel-1 scenes on disk, generated block by block, and the omnibus test timed on them.

``write_s1_scene(folder, size)`` writes ``folder/sentinel1/s1_vv.tif`` and ``s1_vh.tif``
(float32 linear intensity, one band per date named YYYY-MM-DD, 12-day repeat from
2019-04-02, the sample's grid origin and 10 m pixels), the layout ``scene.load`` and
``scene.load_sentinel1`` read. Each pixel has its own mean backscatter, gamma speckle of 4.4
looks (independent in VV and VH), and rectangular patches change by a factor 0.25-4 at a
random date (some patches twice); the first 3 columns are zero (border noise, no data). Every
generation block has its own seed, so the scene is the same whatever the machine.

``measure(mode, folder, out, chunks)`` runs ``sar_run.detect_changes`` on it, in memory
(``mode="memory"``: read whole, tested, written by ``SarRun.write``) or block by block
(``mode="blocks"``: opened in ``chunks`` px chunks, maps written while they are computed),
and returns pixels, seconds and pixels per second. ``bench_scale.py --steps sar`` runs it in
child processes and adds their peak memory; so does this script::

    python benchmarks/scale_sar.py /tmp/s1_1k --size 1000
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from ltlib import blocks, io, sar, sar_run, scene  # noqa: E402

SAMPLE_S1 = ROOT / "data" / "sample" / "sentinel1" / "s1_vv.tif"
PIXEL_M = 10.0
ENL = 4.4
GEN_PX = blocks.CHUNK_PX  # generation block side: fixed, so the scene does not depend on read chunks


def s1_grid(size: int) -> io.Grid:
    """The sample Sentinel-1 grid's corner and CRS, ``size`` x ``size`` px of 10 m."""
    from rasterio import Affine

    with io.open_geotiff(SAMPLE_S1) as src:
        t, crs = src.transform, src.crs
    return io.Grid(crs, Affine(PIXEL_M, 0, t.c, 0, -PIXEL_M, t.f), size, size)


def s1_dates(n_dates: int) -> list[str]:
    d0 = dt.date(2019, 4, 2)
    return [(d0 + dt.timedelta(days=12 * i)).isoformat() for i in range(n_dates)]


def _s1_block(block_info=None, *, seed, n_dates):
    """(2 T, h, w) float32: VV dates then VH dates of one generation block."""
    info = block_info[None]
    (y0, y1), (x0, x1) = info["array-location"][1:]
    h, w = y1 - y0, x1 - x0
    rng = np.random.default_rng([seed, y0, x0])
    mean = rng.uniform(0.03, 0.3, (h, w)).astype(np.float32)
    fac = np.ones((n_dates, h, w), np.float32)
    for _ in range(max(1, h * w // 2000)):  # about 30% of the pixels change at least once
        ph, pw = rng.integers(4, 40, 2)
        r, c = rng.integers(0, max(h - ph, 1)), rng.integers(0, max(w - pw, 1))
        j = rng.integers(1, n_dates)
        fac[j:, r:r + ph, c:c + pw] *= rng.choice([0.25, 0.4, 2.5, 4.0])
    out = np.empty((2 * n_dates, h, w), np.float32)
    out[:n_dates] = mean * fac * rng.standard_gamma(ENL, (n_dates, h, w), dtype=np.float32) / ENL
    out[n_dates:] = 0.3 * mean * fac * rng.standard_gamma(ENL, (n_dates, h, w), dtype=np.float32) / ENL
    if x0 == 0:
        out[:, :, :3] = 0.0  # border noise: no data
    return out


def write_s1_scene(folder, size: int, n_dates: int = 49, seed: int = 0, *, progress: bool = False) -> Path:
    """Write ``folder/sentinel1/s1_vv.tif`` and ``s1_vh.tif`` (``size`` x ``size`` px,
    ``n_dates`` dates) block by block; returns ``folder``. Existing files of the same size,
    dates and seed are kept."""
    import dask.array as da

    folder = Path(folder)
    paths = {pol: folder / scene.S1_DIR / f"s1_{pol}.tif" for pol in ("vv", "vh")}
    tag = f"{size}/{n_dates}/{seed}"
    if all(p.exists() for p in paths.values()):
        with io.open_geotiff(paths["vh"]) as src:
            if src.tags().get("bench_s1") == tag:
                return folder
    data = da.map_blocks(_s1_block, dtype=np.float32, seed=seed, n_dates=n_dates,
                         chunks=da.core.normalize_chunks((2 * n_dates, GEN_PX, GEN_PX), (2 * n_dates, size, size)))
    grid, dates = s1_grid(size), s1_dates(n_dates)
    specs = [dict(path=paths[pol], data=data[i * n_dates:(i + 1) * n_dates], grid=grid, band_names=dates,
                  dtype="float32", nodata=None, tags={"units": "linear intensity", "enl": ENL, "bench_s1": tag},
                  overviews=False, compress=None)  # random floats: deflate costs minutes, saves ~10%
             for i, pol in enumerate(("vv", "vh"))]
    blocks.write_rasters(specs, progress=progress)
    return folder


def measure(mode: str, folder, out, chunks=blocks.CHUNK_PX) -> dict:
    """Time ``detect_changes`` (and the writing of its maps) on ``folder``'s Sentinel-1 stack.

    ``mode``: "memory" (read whole, ``SarRun.write``) or "blocks" (opened in ``chunks`` px
    chunks, maps written block by block into ``out``). Returns a JSON-able dict."""
    if mode not in ("memory", "blocks"):
        raise ValueError(f"mode must be 'memory' or 'blocks', got {mode!r}")
    blocks.connect()
    period = sar_run.S1Period(np.zeros(0, np.int64), np.zeros(0, np.int64), sar.pick_s1_period([], []), "none")
    t = time.perf_counter()
    s1 = scene.load_sentinel1(Path(folder) / scene.S1_DIR, chunks=None if mode == "memory" else int(chunks))
    if mode == "memory":
        run = sar_run.detect_changes(s1, period)
        run.write(out)
    else:
        run = sar_run.detect_changes(s1, period, output_dir=out)
    s = time.perf_counter() - t
    n = s1.grid.height * s1.grid.width
    c = run.counts()
    return dict(mode=mode, chunks=None if mode == "memory" else int(chunks), pixels=n, n_images=s1.n_images,
                seconds=s, pixels_per_s=n / s, n_valid=c["n_valid"], n_changed=c["n_changed"],
                n_changes=c["n_changes"])


def main(argv=None):
    from bench_scale import child, run_child

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--dates", type=int, default=49)
    ap.add_argument("--chunks", type=int, default=blocks.CHUNK_PX)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    write_s1_scene(a.folder, a.size, a.dates, progress=True)
    print(f"{a.folder}: {a.size} x {a.size} px x {a.dates} dates in {time.perf_counter() - t:.0f} s", flush=True)
    rows = []
    for mode in ("memory", "blocks"):
        r = run_child(child("sar", mode, a.folder, str(Path(a.folder) / f"out_{mode}"), str(a.chunks)))
        rows.append(r)
        print(f"{mode}: {r['seconds']:.1f} s, {r['pixels_per_s']:,.0f} px/s, peak {r['peak_gb']:.2f} GB, "
              f"{r['n_changed']} changed px", flush=True)
    same = all(rows[0][k] == rows[1][k] for k in ("n_valid", "n_changed", "n_changes"))
    print(f"same counts in memory and block by block: {same}")


if __name__ == "__main__":
    main()
