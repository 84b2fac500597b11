"""Benchmark the STAC path (ltlib.stac): annual composites from a local catalog of COGs.

Builds a static STAC catalog of Landsat Collection 2 Level-2 items (7 COGs each: blue, green,
red, nir08, swir16, swir22, qa_pixel; uint16, DEFLATE, 512 px tiles, raster:bands scale
2.75e-05 / offset -0.2, clouds in QA_PIXEL) covering a square area for many years, then in
fresh processes, in the same run:

1. ``ltlib.stac.landsat_composites`` (odc-stac lazy loads, QA masks, medoid, NDVI and NBR)
   for every year: seconds and the peak resident memory of the whole process;
2. rasterio alone reading the same COGs (every band of every item, whole, one after the
   other): seconds and peak memory.

Rate = observation-pixels per second (items x bands x pixels); the goal: the STAC path at no
less than half the rate of plain reading, with the process under 3 GB.

Run:  python benchmarks/bench_stac.py                    (10 x 10 km, 40 years, 3 scenes a year)
      python benchmarks/bench_stac.py --km 50            (the goal's 50 x 50 km)
      python benchmarks/bench_stac.py --km 4 --years 8   (smoke run)
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ("blue", "green", "red", "nir08", "swir16", "swir22")
PLATFORMS = (("landsat-5", 1984, 2011), ("landsat-7", 1999, 2023), ("landsat-8", 2013, 2030))
#: Mean reflectance of the bands (vegetated) and their year-to-year change.
REFL = np.array([0.04, 0.07, 0.05, 0.35, 0.20, 0.10])
CRS = "EPSG:32612"
ORIGIN = (400000.0, 4500000.0)  # UTM 12N, upper-left corner


def _write_cog(path, data, transform, nodata):
    import rasterio

    with rasterio.open(path, "w", driver="COG", width=data.shape[1], height=data.shape[0], count=1, dtype="uint16",
                       crs=CRS, transform=transform, nodata=nodata, blocksize=512, compress="DEFLATE",
                       predictor=2) as dst:
        dst.write(data, 1)


def build(root: Path, km: float, years, per_year: int, seed: int = 0, aligned: bool = False) -> tuple[Path, tuple]:
    """Write the COGs and catalog.json; returns (catalog path, lon/lat bbox of the area).

    The COGs are on the Landsat grid (pixel edges 15 m off multiples of 30 m), so reading them
    onto ltlib's grid (edges on multiples of 30 m, the Earth Engine path's) resamples by
    nearest neighbour; ``aligned`` puts them on ltlib's grid instead (plain windowed reads)."""
    import pystac
    from affine import Affine
    from rasterio.warp import transform_bounds

    rng = np.random.default_rng(seed)
    n = int(round(km * 1000 / 30))
    off = 0.0 if aligned else 15.0  # Landsat grid: edges 15 m off multiples of 30 m
    transform = Affine(30.0, 0.0, ORIGIN[0] - off, 0.0, -30.0, ORIGIN[1] + off)
    left, top = ORIGIN[0] - off, ORIGIN[1] + off
    w, s, e, nn = transform_bounds(CRS, "EPSG:4326", left, top - 30 * n, left + 30 * n, top, densify_pts=21)
    footprint = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, nn], [w, nn], [w, s]]]}
    cat = pystac.Catalog("bench", "benchmark catalog")
    col = pystac.Collection("landsat-c2-l2", "bench", pystac.Extent(pystac.SpatialExtent([[w, s, e, nn]]),
                                                                     pystac.TemporalExtent([[None, None]])))
    cat.add_child(col)
    yy, xx = np.mgrid[0:n, 0:n] / max(n, 1)
    field = 0.5 + 0.3 * np.sin(7 * xx) * np.cos(5 * yy)  # vegetation fraction, smooth in space
    (root / "assets").mkdir(parents=True, exist_ok=True)
    for year in years:
        active = [p for p, a, b in PLATFORMS if a <= year <= b] or ["landsat-5"]
        for k in range(per_year):
            platform = active[k % len(active)]
            date = _dt.datetime(year, 6, 25, 17, 50) + _dt.timedelta(days=16 * k + 8 * (k % 2))
            sid = f"L{platform[-1]}_{year}_{k}"
            veg = np.clip(field + 0.03 * rng.standard_normal((n, n)).astype(np.float32), 0, 1)
            item = pystac.Item(sid, footprint, [w, s, e, nn], date.replace(tzinfo=_dt.timezone.utc), {
                "platform": platform, "landsat:collection_category": "T1", "eo:cloud_cover": 10.0,
                "proj:epsg": 32612, "proj:code": "EPSG:32612"}, collection=col)
            for b, key in enumerate(ASSETS):
                refl = REFL[b] * (0.6 + 0.8 * veg)
                dn = np.clip(np.round((refl + 0.2) / 2.75e-05), 1, 65535).astype(np.uint16)
                path = root / "assets" / f"{sid}_{key}.tif"
                _write_cog(path, dn, transform, 0)
                item.add_asset(key, pystac.Asset(str(path), media_type=pystac.MediaType.COG, extra_fields={
                    "raster:bands": [{"scale": 2.75e-05, "offset": -0.2, "nodata": 0, "data_type": "uint16"}]}))
            # clouds: a few disks flagged in QA_PIXEL bit 3
            qa = np.full((n, n), 21824, np.uint16)
            for _ in range(3):
                cy, cx, r = rng.integers(0, n), rng.integers(0, n), max(2, n // 15)
                qa[max(0, cy - r):cy + r, max(0, cx - r):cx + r] = 21824 | 8 | 2
            path = root / "assets" / f"{sid}_qa_pixel.tif"
            _write_cog(path, qa, transform, 1)
            item.add_asset("qa_pixel", pystac.Asset(str(path), media_type=pystac.MediaType.COG, extra_fields={
                "raster:bands": [{"nodata": 1, "data_type": "uint16"}]}))
            col.add_item(item)
    cat.normalize_hrefs(str(root / "stac"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    # the area: the inner part of the scenes, so every pixel is covered
    inset = 0.02 * (e - w)
    return root / "stac" / "catalog.json", (w + inset, s + inset, e - inset, nn - inset)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stac(catalog, bbox, y0, y1):
    import odc.stac  # noqa: F401 - imported before the clock starts, as rasterio is for the baseline

    from ltlib.stac import landsat_composites

    t = time.perf_counter()
    c = landsat_composites(tuple(bbox), y0, y1, stac_url=catalog, indices=("NDVI", "NBR"), progress=False,
                           season=("06-01", "10-01"))
    sec = time.perf_counter() - t
    n_obs = sum(c.info["n_observations"].values())
    return {"seconds": sec, "peak_mb": _peak_mb(), "grid": list(c.grid.shape), "n_observations": n_obs,
            "finite": float(np.isfinite(c.float_stack("NDVI")).mean())}


def run_rasterio(catalog):
    import pystac
    import rasterio

    import ltlib  # noqa: F401 - the same process start-up (GDAL settings) as the STAC run

    t = time.perf_counter()
    n = 0
    for item in pystac.Catalog.from_file(str(catalog)).get_items(recursive=True):
        for a in (*ASSETS, "qa_pixel"):
            with rasterio.open(item.assets[a].get_absolute_href()) as src:
                n += src.read(1).size
    return {"seconds": time.perf_counter() - t, "peak_mb": _peak_mb(), "pixels": n}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--km", type=float, default=10.0, help="side of the square area, km")
    ap.add_argument("--years", type=int, default=40)
    ap.add_argument("--per-year", type=int, default=3, help="scenes (items) per year")
    ap.add_argument("--aligned", action="store_true", help="COGs on ltlib's 30 m grid (no resampling)")
    ap.add_argument("--dir", default=None, help="where to build the catalog (default a temporary folder)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, catalog, bbox, y0, y1 = json.loads(args.child)
        out = run_stac(catalog, bbox, y0, y1) if kind == "stac" else run_rasterio(catalog)
        print(json.dumps(out))
        return
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench_stac_"))
    years = list(range(1984, 1984 + args.years))
    t = time.perf_counter()
    catalog, bbox = build(root, args.km, years, args.per_year, aligned=args.aligned)
    print(f"built {len(years) * args.per_year} items x 7 COGs of {args.km:g} x {args.km:g} km in "
          f"{time.perf_counter() - t:.0f} s under {root}")
    res = {}
    for kind in ("rasterio", "stac"):  # each in a fresh process: its own peak memory
        cmd = [sys.executable, __file__, "--child", json.dumps([kind, str(catalog), bbox, years[0], years[-1]])]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode:
            sys.exit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
        res[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    obs_px = res["rasterio"]["pixels"]
    rate_r = obs_px / res["rasterio"]["seconds"]
    rate_s = obs_px / res["stac"]["seconds"]
    h, w = res["stac"]["grid"]
    print(f"\narea {args.km:g} x {args.km:g} km ({h} x {w} px of 30 m), {len(years)} years, {args.per_year} items a "
          f"year, 7 COGs an item ({obs_px / 1e9:.2f} G pixel reads), COGs "
          + ("on ltlib's grid" if args.aligned else "on the Landsat grid (15 m off: nearest resampling)"))
    print("| path | seconds | M px/s | peak memory (MB) |")
    print("|---|---:|---:|---:|")
    print(f"| rasterio alone, read every COG | {res['rasterio']['seconds']:.1f} | {rate_r / 1e6:.1f} | "
          f"{res['rasterio']['peak_mb']:.0f} |")
    print(f"| ltlib.stac composites (NDVI, NBR) | {res['stac']['seconds']:.1f} | {rate_s / 1e6:.1f} | "
          f"{res['stac']['peak_mb']:.0f} |")
    print(f"rate ratio STAC / rasterio: {rate_s / rate_r:.2f} (goal >= 0.5); peak memory "
          f"{res['stac']['peak_mb'] / 1024:.2f} GB (goal < 3); NDVI finite {100 * res['stac']['finite']:.1f} %")


if __name__ == "__main__":
    main()
