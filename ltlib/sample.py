"""The bundled sample: a SIMULATED scene of the Bingham Canyon study area, and loaders.

Everything in ``data/sample/landsat``, ``data/sample/sentinel1`` and ``data/sample/truth`` is
made by :func:`generate` from a fixed seed (``python -m ltlib.sample data/sample``); the real
reference data under ``data/sample/reference`` is copied from published sources (see the
README there).

Landsat (1972-2022, 200 x 200 px of 30 m on the real UTM 12N grid around the pit)
------------------------------------------------------------------------------------
Each pixel has a noise-free vegetation-cover trajectory ``f(t)`` in 0..1 and a substrate
(natural soil, mine rock or urban surface) that can change with time. Surface reflectance
in six bands (blue, green, red, NIR, SWIR1, SWIR2) is a linear mix of endmember spectra,
then sensor noise is added, and NDVI, NBR and Tasseled Cap (Crist 1985) are computed from
the noisy reflectance, so the five indices are physically consistent. The landscape:

- an open pit that expands every year (class 0 downward: abrupt loss, no recovery);
- waste dumps placed in a given year that later revegetate (1 down-then-up);
- old disturbed land revegetating through the record (2 upward);
- land that greens and is then built over in the valley (3 up-then-down);
- hills of stable shrub and forest (4 stable);
- fire-prone slopes burnt twice, each followed by partial recovery (5 multi-disturbance).

Noise like real composites: MSS years (1972-1983) noisier, three MSS years missing and
patchy gaps, cloud gaps every year, single-year spikes (cloud/smoke residue), SLC-off
stripes of Landsat 7 in 2003-2012 (wide in 2012 when ETM+ was the only sensor).

Sentinel-1 (49 dates from 2019-04-02 every 12 days, 128 x 128 px of the same grid)
-----------------------------------------------------------------------------------
VV and VH linear backscatter = a spatially varying mean x Gamma(ENL 4.4) speckle, with
change events in patches: brightening (dumped rock), darkening (excavated, smoothed
surfaces), indefinite (VV up and VH down), and pixels that change twice; a strip of zeros
on the left edge imitates border noise. Truth cmap/smap/fmap/bmap as in the omnibus spec.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from . import config
from .io import Grid, Stack, read_raster, read_stack, write_raster, write_stack

SEED = 20240601
SHAPE = (200, 200)
S1_SHAPE = (128, 128)
#: Row/col offset of the Sentinel-1 window inside the Landsat grid (same 30 m grid).
S1_OFFSET = (36, 36)

# Endmember surface reflectance: blue, green, red, NIR, SWIR1, SWIR2.
_VEG = np.array([0.030, 0.060, 0.040, 0.400, 0.200, 0.090])
_SOIL = np.array([0.080, 0.120, 0.160, 0.240, 0.320, 0.260])
_ROCK = np.array([0.130, 0.160, 0.190, 0.220, 0.300, 0.290])
_URBAN = np.array([0.100, 0.110, 0.120, 0.160, 0.190, 0.170])

TRUTH_BANDS = ("class", "dist_year", "dist_mag", "gain_year", "gain_mag")
S1_TRUTH_BANDS = ("cmap", "smap", "fmap", "valid")


# ----------------------------------------------------------------------------- grid
def make_grid(shape=SHAPE) -> Grid:
    """The sample's 30 m grid in EPSG:32612, centred on the pit, snapped to 30 m."""
    from rasterio.transform import from_origin
    from rasterio.warp import transform as warp

    xs, ys = warp("EPSG:4326", config.CRS, [config.PIT_CENTER[0]], [config.PIT_CENTER[1]])
    px = config.PIXEL_SIZE
    h, w = shape
    left = np.floor((xs[0] - w / 2 * px) / px) * px
    top = np.floor((ys[0] + h / 2 * px) / px) * px
    return Grid(config.CRS, from_origin(left, top, px, px), h, w)


def _smooth_field(rng, shape, sigma, lo=0.0, hi=1.0):
    """Spatially smooth random field scaled to lo..hi."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    f = (f - f.min()) / (f.max() - f.min())
    return lo + (hi - lo) * f


# ----------------------------------------------------------------------------- Landsat
def _landscape(rng, shape, years):
    """Per-pixel truth and noise-free vegetation cover f (T, H, W) and substrate weights."""
    h, w = shape
    T = len(years)
    yy, xx = np.mgrid[0:h, 0:w]
    # km from the pit centre (slightly off the scene centre), y up
    dx = (xx - w * 0.48) * 0.03
    dy = (h * 0.52 - yy) * 0.03
    dist = np.hypot(dx, dy)
    ang = np.arctan2(dy, dx)

    base = _smooth_field(rng, shape, 12, 0.35, 0.75)  # stable cover of the hills
    cls = np.full(shape, 4, np.int16)
    dist_year = np.zeros(shape, np.int16)
    gain_year = np.zeros(shape, np.int16)
    f = np.repeat(base[None], T, axis=0).astype(np.float64)
    rock = np.zeros((T,) + shape)  # substrate weight of mine rock (rest natural soil)
    urban = np.zeros((T,) + shape)
    yrs = np.asarray(years)[:, None, None]

    # Upward: old disturbed ground to the south-west, revegetating from an onset year.
    up = (_smooth_field(rng, shape, 8) > 0.62) & (dx < -0.6) & (dy < -0.4)
    onset = (1972 + 14 * _smooth_field(rng, shape, 10)).astype(int)
    f_lo = 0.08
    span = 22
    ramp = np.clip((yrs - onset[None]) / span, 0, 1)
    f_up = f_lo + (base[None] - f_lo) * ramp
    f = np.where(up[None], f_up, f)
    cls[up] = 2
    gain_year[up] = onset[up] + 1

    # Up-then-down: valley land to the east that greens, then is built over.
    urb = (dx + 1.2 * _smooth_field(rng, shape, 6)) > 2.3
    green_start = (1975 + 10 * _smooth_field(rng, shape, 9)).astype(int)
    build = (1996 + 20 * _smooth_field(rng, shape, 5)).astype(int)
    rise = np.clip((yrs - green_start[None]) / 12, 0, 1)
    f_u = 0.2 + (base[None] + 0.1 - 0.2) * rise
    built = yrs >= build[None]
    f_u = np.where(built, 0.06, f_u)
    f = np.where(urb[None], f_u, f)
    urban = np.where(urb[None] & built, 1.0, urban)
    cls[urb] = 3
    dist_year[urb] = build[urb]
    gain_year[urb] = green_start[urb] + 1

    # Multi-disturbance: slopes to the north-west burnt twice.
    fire = (dx < -1.0) & (dy > 0.6) & (_smooth_field(rng, shape, 5) > 0.45)
    y1 = (1980 + 10 * _smooth_field(rng, shape, 20)).astype(int)
    y2 = y1 + 14 + (8 * _smooth_field(rng, shape, 20)).astype(int)
    f_fire = base[None].repeat(T, 0).copy()
    for ys in (y1, y2):
        after = yrs - ys[None]
        drop = np.where(after >= 0, 0.85 * np.exp(-np.clip(after, 0, None) / 8.0), 0.0)
        f_fire = f_fire * (1 - drop)
    fire &= ~urb & ~up
    f = np.where(fire[None], f_fire, f)
    cls[fire] = 5
    dist_year[fire] = y1[fire]

    # The pit's ragged edge (used below); dumps lie outside its 2022 extent.
    wobble = 1 + 0.12 * np.sin(3 * ang + 0.5) + 0.07 * np.cos(5 * ang - 1.0)
    r72, r22 = 0.55, 1.25

    # Waste dumps: sectors around the pit, dumped then revegetating.
    dump = (dist > r22 * wobble + 0.09) & (dist < 2.1) & (np.cos(3 * ang + 1.0) > 0.2) & (dx > -1.8)
    urban[:, dump] = 0.0
    dump_year = (1978 + 22 * _smooth_field(rng, shape, 9)).astype(int)
    lag = 3 + (5 * _smooth_field(rng, shape, 7)).astype(int)
    rec = np.clip((yrs - dump_year[None] - lag[None]) / 18, 0, 1)
    f_d = np.where(yrs < dump_year[None], base[None], 0.03 + (0.8 * base[None] - 0.03) * rec)
    f = np.where(dump[None], f_d, f)
    rock = np.where(dump[None] & (yrs >= dump_year[None]), 1.0 - 0.7 * rec, rock)
    cls[dump] = 1
    dist_year[dump] = dump_year[dump]
    gain_year[dump] = (dump_year + lag + 1)[dump]

    # Open pit: a ragged edge that moves out each year; inside it, bare rock.
    radius = (r72 + (r22 - r72) * ((yrs - 1972) / 50.0) ** 0.8) * wobble[None]
    in_pit = dist[None] <= radius
    f = np.where(in_pit, 0.02, f)
    rock = np.where(in_pit, 1.0, rock)
    urban = np.where(in_pit, 0.0, urban)
    pit_now = in_pit[-1]
    first = np.argmax(in_pit, axis=0)
    pit_expand = pit_now & ~in_pit[0]
    cls[pit_now] = 4  # bare since before 1972: stable (low, flat)
    cls[pit_expand] = 0
    dist_year[pit_now] = 0
    gain_year[pit_now] = 0
    dist_year[pit_expand] = np.asarray(years)[first[pit_expand]]
    return f, rock, urban, cls, dist_year, gain_year


def _reflectance(f, rock, urban):
    """Linear mixture (T, H, W, 6): cover f of vegetation over the substrate."""
    soil = (1 - rock - urban)[..., None] * _SOIL + rock[..., None] * _ROCK + urban[..., None] * _URBAN
    return f[..., None] * _VEG + (1 - f[..., None]) * soil


def _indices(refl):
    """NDVI, NBR, TCB, TCG, TCW (T, H, W) float, physical units, from reflectance (..., 6)."""
    b, g, r, n, s1, s2 = np.moveaxis(refl, -1, 0)
    out = {
        "NDVI": (n - r) / (n + r),
        "NBR": (n - s2) / (n + s2),
    }
    for k, c in config.TC_COEFFS.items():
        out[k] = np.tensordot(refl, np.asarray(c), axes=([-1], [0]))
    return out


def _ndvi_clean(f, rock, urban):
    return _indices(_reflectance(f, rock, urban))["NDVI"]


def simulate_landsat(seed: int = SEED, shape=SHAPE, years=config.YEARS):
    """Simulate the Landsat part of the sample.

    Returns ``(stacks, truth)``: ``stacks`` maps index name -> float32 (T, H, W) physical
    units with NaN gaps; ``truth`` maps the bands of ``TRUTH_BANDS`` -> (H, W) int16.
    """
    rng = np.random.default_rng(seed)
    years = np.asarray(years)
    T = len(years)
    h, w = shape
    f, rock, urban, cls, dist_year, gain_year = _landscape(rng, shape, years)

    # Truth magnitudes from the noise-free NDVI, NDVI x 1000.
    clean = _ndvi_clean(f, rock, urban)
    dist_mag = np.zeros(shape, np.int16)
    gain_mag = np.zeros(shape, np.int16)
    yi = np.arange(T)[:, None, None]
    for target, mag, sign in ((dist_year, dist_mag, -1), (gain_year, gain_mag, 1)):
        has = target > 0
        idx = np.clip(np.searchsorted(years, target) , 1, T - 1)
        before = np.take_along_axis(clean, (idx - 1)[None], 0)[0]
        # magnitude = change from the year before the event to the extreme that follows it
        # within the segment (the end of the fall or rise)
        after_mask = yi >= idx[None]
        ext = np.where(after_mask, clean, np.nan)
        ext = np.nanmin(ext, 0) if sign < 0 else np.nanmax(ext, 0)
        m = np.rint(1000 * np.abs(ext - before))
        mag[has] = m[has].astype(np.int16)

    # Interannual climate: a scene-wide and a smooth local anomaly in cover.
    clim = 1 + 0.05 * rng.standard_normal(T)[:, None, None]
    local = np.stack([_smooth_field(rng, shape, 15, -0.04, 0.04) for _ in range(T)])
    f_obs = np.clip(f * (clim + local), 0, 1)
    refl = _reflectance(f_obs, rock, urban)

    mss = years < 1984
    sd = np.where(mss, 0.018, 0.008)[:, None, None, None]
    refl = refl + sd * rng.standard_normal(refl.shape)
    # Spikes: single pixel-years of cloud/smoke residue (bright in the visible).
    spikes = rng.random((T, h, w)) < 0.004
    refl[spikes] += np.array([0.15, 0.15, 0.15, 0.05, 0.05, 0.03])
    refl = np.clip(refl, 0.005, 1.0)
    idx = _indices(refl)

    gaps = np.zeros((T, h, w), bool)
    missing_mss = rng.choice(np.flatnonzero(mss), size=3, replace=False)
    gaps[missing_mss] = True
    for t in range(T):
        cover = 0.10 if mss[t] else 0.03
        cloud = _smooth_field(rng, shape, 4)
        gaps[t] |= cloud > np.quantile(cloud, 1 - cover)
        if mss[t]:
            gaps[t] |= rng.random(shape) < 0.03
        y = years[t]
        if config.SLC_OFF_YEAR <= y <= 2012:
            period = 14 if y == 2012 else 35
            width = 4 if y == 2012 else 1
            phase = rng.integers(period)
            rr, cc = np.mgrid[0:h, 0:w]
            stripe = ((rr + cc // 8 + phase) % period) < width
            gaps[t] |= stripe
    stacks = {}
    for k in config.SAMPLE_INDICES:
        arr = idx[k].astype(np.float32)
        arr[gaps] = np.nan
        stacks[k] = arr
    truth = {
        "class": cls,
        "dist_year": dist_year.astype(np.int16),
        "dist_mag": dist_mag,
        "gain_year": gain_year.astype(np.int16),
        "gain_mag": gain_mag,
    }
    return stacks, truth


def noise_free_index(index: str = "NDVI", seed: int = SEED, shape=SHAPE, years=config.YEARS) -> np.ndarray:
    """The sample's noise-free series of one index, float32 (T, H, W), index x 1000.

    The same landscape as :func:`simulate_landsat` (same seed, same draws) before the climate
    anomaly, sensor noise, spikes and gaps: the known trajectory behind each pixel, e.g. its true
    recovery after the truth's ``dist_year``. (The truth's ``dist_mag`` is measured on the NDVI
    of this series.)
    """
    if index not in ("NDVI", "NBR", *config.TC_COEFFS):
        raise ValueError(f"the sample has no index {index!r}; it has NDVI, NBR, {', '.join(config.TC_COEFFS)}")
    rng = np.random.default_rng(seed)
    f, rock, urban, *_ = _landscape(rng, shape, np.asarray(years))
    return (1000 * _indices(_reflectance(f, rock, urban))[index]).astype(np.float32)


# ----------------------------------------------------------------------------- Sentinel-1
def s1_dates(n=config.S1_N_IMAGES, start=config.S1_START, step=config.S1_REPEAT_DAYS) -> list[str]:
    d0 = _dt.date.fromisoformat(start)
    return [(d0 + _dt.timedelta(days=step * i)).isoformat() for i in range(n)]


def simulate_s1(seed: int = SEED + 1, shape=S1_SHAPE, n_images=config.S1_N_IMAGES, enl=config.S1_ENL):
    """Simulate dual-pol Sentinel-1 (linear intensity) with change events.

    Returns ``(vv (k, h, w), vh (k, h, w), truth)`` where truth has ``cmap``, ``smap``,
    ``fmap``, ``valid`` (h, w) uint8 and ``bmap`` (k-1, h, w) uint8. Interval j (1-based)
    lies between image j and j+1; a change at interval j means image j+1 differs.
    """
    rng = np.random.default_rng(seed)
    k = n_images
    h, w = shape
    mean_vv = _smooth_field(rng, shape, 6, 0.04, 0.20)
    mean_vh = mean_vv * _smooth_field(rng, shape, 8, 0.15, 0.30)
    # per-image multiplicative factor (k, h, w) for each band, piecewise constant in time
    fac_vv = np.ones((k, h, w))
    fac_vh = np.ones((k, h, w))
    bmap = np.zeros((k - 1, h, w), np.uint8)

    labels, n_patches = ndimage.label(_smooth_field(rng, shape, 5) > 0.55)
    kinds = rng.choice(["bright", "dark", "indefinite", "twice"], size=n_patches, p=[0.3, 0.3, 0.15, 0.25])
    for p in range(1, n_patches + 1):
        m = labels == p
        kind = kinds[p - 1]
        j1 = int(rng.integers(4, k - 10))  # interval of the first change
        factor = float(rng.uniform(3.0, 6.0))
        if kind == "bright":
            events = [(j1, factor, factor, 1)]
        elif kind == "dark":
            events = [(j1, 1 / factor, 1 / factor, 2)]
        elif kind == "indefinite":
            events = [(j1, factor, 1 / factor, 3)]
        else:
            j2 = int(rng.integers(j1 + 5, k - 2))
            events = [(j1, factor, factor, 1), (j2, 1 / factor, 1 / factor, 2)]
        for j, a_vv, a_vh, b in events:
            fac_vv[j:, m] *= a_vv  # images j+1.. (0-based index j) carry the change
            fac_vh[j:, m] *= a_vh
            bmap[j - 1, m] = b
    speckle = lambda: rng.gamma(enl, 1.0 / enl, size=(k, h, w))  # noqa: E731
    vv = (mean_vv[None] * fac_vv * speckle()).astype(np.float32)
    vh = (mean_vh[None] * fac_vh * speckle()).astype(np.float32)
    valid = np.ones(shape, np.uint8)
    valid[:, :4] = 0  # border noise strip: zeros in every image
    vv[:, valid == 0] = 0
    vh[:, valid == 0] = 0
    bmap[:, valid == 0] = 0
    changed = bmap > 0
    fmap = changed.sum(0).astype(np.uint8)
    j_idx = np.arange(1, k)[:, None, None]
    smap = np.where(changed, j_idx, k).min(0)
    smap = np.where(fmap > 0, smap, 0).astype(np.uint8)
    cmap = np.where(changed, j_idx, 0).max(0).astype(np.uint8)
    truth = {"cmap": cmap, "smap": smap, "fmap": fmap, "valid": valid, "bmap": bmap}
    return vv, vh, truth


# ----------------------------------------------------------------------------- files
def _paths(data_dir):
    d = Path(data_dir)
    return {
        "landsat": d / "landsat",
        "truth": d / "truth" / "landsat_truth.tif",
        "s1": d / "sentinel1",
        "s1_truth": d / "truth" / "s1_truth.tif",
        "s1_bmap": d / "truth" / "s1_bmap_truth.tif",
    }


def generate(data_dir, seed: int = SEED) -> dict:
    """Write the simulated sample under ``data_dir``; returns a dict of written paths."""
    p = _paths(data_dir)
    grid = make_grid()
    stacks, truth = simulate_landsat(seed)
    written = {}
    for name in config.SAMPLE_INDICES:
        info = config.INDICES[name]
        stored = stacks[name] / info.scale
        written[name] = write_stack(p["landsat"] / f"{name.lower()}.tif", stored, config.YEARS, grid,
                                    dtype="int16", name=name, scale=info.scale)
    written["truth"] = write_raster(p["truth"], np.stack([truth[b] for b in TRUTH_BANDS]), grid,
                                    band_names=list(TRUTH_BANDS), dtype="int16")
    vv, vh, s1t = simulate_s1(seed + 1)
    s1_grid = s1_grid_of(grid)
    dates = s1_dates()
    for band, arr in (("vv", vv), ("vh", vh)):
        written[f"s1_{band}"] = write_raster(p["s1"] / f"s1_{band}.tif", arr, s1_grid, band_names=dates,
                                             dtype="float32", tags={"units": "linear intensity", "enl": config.S1_ENL})
    written["s1_truth"] = write_raster(p["s1_truth"], np.stack([s1t[b] for b in S1_TRUTH_BANDS]), s1_grid,
                                       band_names=list(S1_TRUTH_BANDS), dtype="uint8")
    written["s1_bmap"] = write_raster(p["s1_bmap"], s1t["bmap"], s1_grid,
                                      band_names=[f"interval{j}" for j in range(1, len(dates))], dtype="uint8")
    (Path(data_dir) / "sample_manifest.json").write_text(json.dumps(
        {"seed": seed, "generator": "ltlib.sample.generate", "simulated": True,
         "files": {k: str(Path(v).relative_to(data_dir)) for k, v in written.items()}}, indent=1))
    return written


def s1_grid_of(grid: Grid) -> Grid:
    """The Sentinel-1 window of the sample grid."""
    r0, c0 = S1_OFFSET
    t = grid.transform
    from affine import Affine

    return Grid(grid.crs, t @ Affine.translation(c0, r0), *S1_SHAPE)


def load_landsat(data_dir, index: str = "NDVI") -> Stack:
    """The simulated annual stack of one index: float32 (51, 200, 200), index x 1000, NaN gaps."""
    index = index.upper()
    if index not in config.SAMPLE_INDICES:
        raise ValueError(f"the sample has indices {config.SAMPLE_INDICES}, not {index!r}")
    return read_stack(_paths(data_dir)["landsat"] / f"{index.lower()}.tif", expected_years=config.YEARS)


def load_truth(data_dir) -> dict:
    """Per-pixel Landsat truth: ``class``, ``dist_year``, ``dist_mag``, ``gain_year``, ``gain_mag``
    (H, W) int16 (years 0 where there is no event; magnitudes NDVI x 1000), and ``grid``."""
    data, grid, names = read_raster(_paths(data_dir)["truth"])
    out = {n: data[i].astype(np.int16) for i, n in enumerate(names)}
    out["grid"] = grid
    return out


def load_s1(data_dir):
    """Simulated Sentinel-1: ``(vv, vh, dates, grid)``, vv/vh float32 (49, 128, 128) linear."""
    p = _paths(data_dir)["s1"]
    vv, grid, dates = read_raster(p / "s1_vv.tif")
    vh, grid_vh, _ = read_raster(p / "s1_vh.tif")
    if not grid.same_as(grid_vh):
        raise ValueError(f"{p}: s1_vv.tif and s1_vh.tif are on different grids")
    return vv, vh, dates, grid


def load_s1_truth(data_dir) -> dict:
    """``cmap``, ``smap``, ``fmap``, ``valid`` (h, w) and ``bmap`` (48, h, w) uint8, and ``grid``."""
    p = _paths(data_dir)
    data, grid, names = read_raster(p["s1_truth"])
    out = {n: data[i].astype(np.uint8) for i, n in enumerate(names)}
    bmap, _, _ = read_raster(p["s1_bmap"])
    out["bmap"] = bmap.astype(np.uint8)
    out["grid"] = grid
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Regenerate the simulated ltlib sample scene.")
    ap.add_argument("data_dir", nargs="?", default="data/sample")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--figure", help="also draw an overview PNG of the scene to this path")
    a = ap.parse_args(argv)
    for k, v in generate(a.data_dir, a.seed).items():
        print(f"{k:10s} {v}")
    if a.figure:
        print("figure    ", overview_figure(a.data_dir, a.figure))


def overview_figure(data_dir, path):
    """Truth classes, NDVI in 1984 and 2022, and the S1 change count: one PNG for the README."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import maps

    ndvi = load_landsat(data_dir, "NDVI")
    truth = load_truth(data_dir)
    s1 = load_s1_truth(data_dir)
    fig, ax = plt.subplots(1, 4, figsize=(22, 5))
    maps.plot_categorical(ax[0], truth["class"], truth["grid"], names=config.CLASS_NAMES,
                          colors=config.CLASS_COLORS, title="Truth trajectory class (simulated)")
    for a, y in zip(ax[1:3], (1984, 2022)):
        maps.plot_continuous(a, ndvi.band(y), ndvi.grid, cmap="YlGn", vmin=0, vmax=800,
                             label="NDVI x 1000", title=f"Simulated NDVI {y}")
    maps.plot_categorical(ax[3], s1["fmap"], s1["grid"], names={0: "no change", 1: "one change", 2: "two changes"},
                          colors={0: "#f0f0f0", 1: "#fc8d59", 2: "#b30000"}, title="Sentinel-1 changes 2019-2020 (truth)")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    return path


if __name__ == "__main__":
    main()
