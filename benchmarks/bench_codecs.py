"""GeoTIFF compression of LandTrendr's outputs: write and read seconds and size by codec.

    python benchmarks/bench_codecs.py                  # the 1,000 px scene of bench_scale.py
    python benchmarks/bench_codecs.py --size 500 --repeat 1

The outputs of one LandTrendr run (``fit_scene`` in memory on the ``bench_scale.py`` scene of
``--size`` px: NDVI and NBR fitted stacks, int16 x 51 years; loss and gain maps, float32 x 6
bands) are written with every codec below, with GDAL's ``NUM_THREADS`` at 1 and at
``ALL_CPUS``, tiled 256 x 256 as ltlib writes them; each file is read back whole and compared
with the array written (every codec here is lossless: LERC with ``MAX_Z_ERROR=0``). Sizes are
of the four files together; seconds are the best of ``--repeat`` runs. The first row is
ltlib's default before issue 31 (deflate level 6, predictor 2 for integers, none for floats).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: (label, options for int16 stacks, options for float32 maps)
CODECS = [
    ("deflate 6, pred 2 / none (before)", dict(compress="deflate", predictor=2), dict(compress="deflate")),
    ("deflate 6, pred 2 / 3", dict(compress="deflate", predictor=2), dict(compress="deflate", predictor=3)),
    ("deflate 1, pred 2 / 3", dict(compress="deflate", zlevel=1, predictor=2),
     dict(compress="deflate", zlevel=1, predictor=3)),
    ("zstd 1, pred 2 / 3", dict(compress="zstd", zstd_level=1, predictor=2),
     dict(compress="zstd", zstd_level=1, predictor=3)),
    ("zstd 9, pred 2 / 3", dict(compress="zstd", zstd_level=9, predictor=2),
     dict(compress="zstd", zstd_level=9, predictor=3)),
    ("lerc (lossless)", dict(compress="lerc", max_z_error=0), dict(compress="lerc", max_z_error=0)),
    ("lerc_zstd (lossless)", dict(compress="lerc_zstd", max_z_error=0), dict(compress="lerc_zstd", max_z_error=0)),
    ("lerc_deflate (lossless)", dict(compress="lerc_deflate", max_z_error=0),
     dict(compress="lerc_deflate", max_z_error=0)),
]


def outputs(size: int, work: Path) -> dict:
    """{name: (array, nodata)} of one in-memory LandTrendr run on the scene (cached as .npz)."""
    cache = work / f"lt_outputs{size}.npz"
    if not cache.exists():
        from scale_scene import write_scene

        from ltlib import config, io, landtrendr, params, scene

        write_scene(work / f"scene{size}", size)
        sc = scene.load(work / f"scene{size}", indices=["NDVI", "NBR"], chunks=None, quiet=True)
        run = landtrendr.fit_scene(sc, index="NDVI", loss=params.ChangeMapParams.loss(150, mmu=11),
                                   gain=params.ChangeMapParams.gain(300, mmu=11))
        arrays = {f"{k.lower()}_fit": io._to_dtype(v, "int16", config.NODATA_INT16) for k, v in run.fitted.items()}
        for delta, m in (("loss", run.loss), ("gain", run.gain)):
            arrays[f"{delta}_map"] = np.stack([m[b] for b in landtrendr.CHANGE_BANDS]).astype(np.float32)
        np.savez(cache, **arrays)
    with np.load(cache) as z:
        return {k: (z[k], -32768 if z[k].dtype == np.int16 else np.nan) for k in z.files}


def measure(arrays: dict, opts_int: dict, opts_float: dict, threads: str, folder: Path, repeat: int) -> dict:
    import rasterio
    from rasterio.transform import from_origin

    best_w = best_r = np.inf
    size = 0
    for _ in range(repeat):
        tw = tr = 0.0
        size = 0
        for name, (a, nodata) in arrays.items():
            path = folder / f"{name}.tif"
            opts = opts_int if a.dtype.kind == "i" else opts_float
            profile = dict(driver="GTiff", count=a.shape[0], height=a.shape[1], width=a.shape[2], dtype=a.dtype.name,
                           crs="EPSG:32612", transform=from_origin(0, 0, 30, 30), nodata=nodata, tiled=True,
                           blockxsize=256, blockysize=256, num_threads=threads, **opts)
            t = time.perf_counter()
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(a)
            tw += time.perf_counter() - t
            size += path.stat().st_size
            t = time.perf_counter()
            with rasterio.Env(GDAL_NUM_THREADS=threads), rasterio.open(path) as src:
                back = src.read()
            tr += time.perf_counter() - t
            if not np.array_equal(back, a, equal_nan=a.dtype.kind == "f"):
                raise AssertionError(f"{name}: read back differs with {opts}")
            path.unlink()
        best_w, best_r = min(best_w, tw), min(best_r, tr)
    return dict(write_s=best_w, read_s=best_r, mb=size / 1e6)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ltlib_scale"))
    a = ap.parse_args(argv)
    import rasterio

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    arrays = outputs(a.size, work)
    raw = sum(v.nbytes for v, _ in arrays.values()) / 1e6
    print(f"GDAL {rasterio.__gdal_version__}, rasterio {rasterio.__version__}, {os.cpu_count()} cores; "
          f"{a.size} x {a.size} px: {', '.join(arrays)} ({raw:.0f} MB uncompressed)\n")
    print("| codec (int16 stacks / float32 maps) | GDAL threads | write s | read s | MB | vs before: write | size |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory(dir=work) as d:
        for label, oi, of in CODECS:
            for threads in ("1", "ALL_CPUS"):
                try:
                    r = measure(arrays, oi, of, threads, Path(d), a.repeat)
                except Exception as e:  # a codec this GDAL lacks
                    print(f"| {label} | {threads} | not available: {e} | | | | |")
                    continue
                r.update(codec=label, threads=threads)
                rows.append(r)
                ref = rows[0]
                print(f"| {label} | {threads} | {r['write_s']:.2f} | {r['read_s']:.2f} | {r['mb']:.1f} | "
                      f"{r['write_s'] / ref['write_s']:.2f}x | {r['mb'] / ref['mb']:.2f}x |", flush=True)
    return rows


if __name__ == "__main__":
    main()
