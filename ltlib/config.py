"""Study area, years, index definitions, dataset IDs and the seed's default parameters.

Everything a notebook would otherwise hard-code lives here, once. Values marked "seed"
come from the original workflow (`change_map.js` and its README, MIT, by zplzmzmpl; the
LandTrendr parameter script by J. Braaten, Z. Yang and R. Kennedy, LT-GEE).
"""
from __future__ import annotations

import os
from dataclasses import dataclass


def _env_int(name: str, default: int, minimum: int) -> int:
    """An integer setting from the environment variable ``name`` (papermill and batch runs
    start kernels that inherit it), else ``default``."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or n < minimum:
        raise ValueError(f"environment variable {name} must be a whole number >= {minimum}, got {value!r}")
    return n


# --- Where the package lives ----------------------------------------------------------------
#: The repository the notebooks' Colab cell clones (with the sample data). The cell runs before
#: ltlib is installed, so it spells this address out; tests/test_colab.py checks that every
#: notebook's Colab cell is the same and uses exactly this value. Change it here and in the cells.
REPOSITORY_URL = "https://github.com/ltlib/ltlib"

# --- Study area -------------------------------------------------------------------------
#: Bingham Canyon copper mine near Salt Lake City (seed change_map.js polygon), degrees.
AOI_BBOX = (-112.22631597174929, 40.482462430709305, -112.05946111335085, 40.61081684118072)
#: Centre of the open pit, degrees (lon, lat).
PIT_CENTER = (-112.1494, 40.5228)
#: UTM zone 12N (WGS 84): the projected grid for all local rasters.
CRS = "EPSG:32612"
#: Landsat pixel size, metres.
PIXEL_SIZE = 30.0

# --- Years --------------------------------------------------------------------------------
START_YEAR = 1972
END_YEAR = 2022
YEARS = tuple(range(START_YEAR, END_YEAR + 1))  # 51 annual composites
#: Landsat 1-5 MSS years before TM (harmonised by LandsatLinkr in the seed).
MSS_YEARS = tuple(range(1972, 1984))
#: Landsat 7 scan-line corrector failure (ETM+ gaps from this year on).
SLC_OFF_YEAR = 2003
#: Annual compositing window (month-day), seed.
SEASON = ("06-20", "09-20")


@dataclass(frozen=True)
class IndexInfo:
    """A spectral index: how it is stored and which way disturbance moves it."""

    name: str
    scale: float  # stored integer * scale = physical value
    distdir: int  # -1: the index drops on vegetation loss (LT-GEE distDir)
    valid_range: tuple[float, float]  # physical units, for input checks
    description: str


INDICES = {
    "NDVI": IndexInfo("NDVI", 0.001, -1, (-1.0, 1.0), "Normalised difference vegetation index (NIR-Red)/(NIR+Red)"),
    "NBR": IndexInfo("NBR", 0.001, -1, (-1.0, 1.0), "Normalised burn ratio (NIR-SWIR2)/(NIR+SWIR2)"),
    "NDMI": IndexInfo("NDMI", 0.001, -1, (-1.0, 1.0), "Normalised difference moisture index (NIR-SWIR1)/(NIR+SWIR1)"),
    "TCB": IndexInfo("TCB", 0.001, 1, (-0.5, 2.0), "Tasseled Cap brightness (Crist 1985 reflectance coefficients)"),
    "TCG": IndexInfo("TCG", 0.001, -1, (-0.5, 1.0), "Tasseled Cap greenness"),
    "TCW": IndexInfo("TCW", 0.001, -1, (-1.0, 0.5), "Tasseled Cap wetness"),
}
#: Indices written to the sample scene, in this order.
SAMPLE_INDICES = ("NDVI", "NBR", "TCB", "TCG", "TCW")
#: Integer nodata for int16 stacks (matches LT-GEE/geemap exports).
NODATA_INT16 = -32768
#: Scenes whose stacks take more than this as float32 are opened lazily and processed block by
#: block (ltlib.blocks); 1 GiB is ~2,300 x 2,300 px x 51 years of one index, whose in-memory
#: LandTrendr run peaks near 3 GB. Environment variable ``LTLIB_IN_MEMORY_MAX_BYTES`` to
#: change it (0: every scene in chunks), e.g. on a machine with less memory.
IN_MEMORY_MAX_BYTES = _env_int("LTLIB_IN_MEMORY_MAX_BYTES", 2**30, 0)
#: Side (px) of the square chunks of lazily opened scenes (``LTLIB_CHUNK_PX`` to change it): a
#: multiple of the GeoTIFF tile (256 px), so every block writes whole tiles; 512 x 512 px x 51
#: years of float32 is 53 MB per index, small beside the memory and large beside dask's
#: per-task overhead (~1 ms).
CHUNK_PX = _env_int("LTLIB_CHUNK_PX", 512, 16)
#: GDAL's block cache in MB, set through ``GDAL_CACHEMAX`` when ltlib is imported unless that
#: variable is already set (reads stream every tile once; a larger cache only holds memory).
GDAL_CACHE_MB = 256
#: Largest side (px) of a raster rendered whole onto a map or figure: larger or lazy (dask)
#: rasters are shown as an overview (ltlib.overview) of at most this side, and at full
#: resolution only where the view covers fewer pixels (ltlib.map_detail). A 2048 px PNG
#: overlay is a few MB in the notebook; a 7,000 px one would be ~100 MB.
MAX_OVERLAY_PX = 2048
#: A year slider over a lazy stack computes the overview of every year in one pass and keeps
#: it (each chunk holds all years, so reading one year costs as much as reading all); the
#: overview's side is reduced until the kept float32 (T, h, w) fits in this many bytes.
SLIDER_MAX_BYTES = 256 * 2**20
#: Largest side (px) of the frames of a timelapse of a large or lazy stack.
TIMELAPSE_MAX_PX = 1024

#: Tasseled Cap coefficients for surface reflectance, bands (blue, green, red, nir, swir1,
#: swir2); Crist 1985 (RSE 17:301), as used by LT-GEE.
TC_COEFFS = {
    "TCB": (0.2043, 0.4158, 0.5524, 0.5741, 0.3124, 0.2303),
    "TCG": (-0.1603, -0.2819, -0.4934, 0.7940, -0.0002, -0.1446),
    "TCW": (0.0315, 0.2021, 0.3102, 0.1594, -0.6806, -0.6109),
}

# --- Earth Engine ---------------------------------------------------------------------------
EE_LANDSAT_C2_L2 = {
    "LT04": "LANDSAT/LT04/C02/T1_L2",
    "LT05": "LANDSAT/LT05/C02/T1_L2",
    "LE07": "LANDSAT/LE07/C02/T1_L2",
    "LC08": "LANDSAT/LC08/C02/T1_L2",
    "LC09": "LANDSAT/LC09/C02/T1_L2",
}
#: Collection 2 Level-2 surface reflectance scaling: reflectance = DN * scale + offset.
C2_SR_SCALE = 0.0000275
C2_SR_OFFSET = -0.2
EE_S1 = "COPERNICUS/S1_GRD_FLOAT"

#: matplotlib's "tab10" colours as hex (cluster maps): written out so science modules need no matplotlib.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf")

# --- Trajectory classifiers (seed step 4; ltlib.classify trains them) ------------------------
DEEP_MODELS = ("InceptionTime", "TST", "FCN", "ResNet")
IMAGE_MODELS = ("GADF", "GASF", "MTF", "RP")
#: TimeSeriesForest variants: trees of each.
TSF_TREES = {"TSF": 500, "TSF100": 100}
#: Every model name the parameter ``models`` accepts.
MODELS = DEEP_MODELS + ("MiniRocket", *TSF_TREES, "BOSSVS") + IMAGE_MODELS

# --- Trajectory classes (seed step 4; Yang et al. 2018 types merged into six) ---------------
CLASS_NAMES = {
    0: "downward",
    1: "down-then-up",
    2: "upward",
    3: "up-then-down",
    4: "stable",
    5: "multi-disturbance",
}
CLASS_COLORS = {
    0: "#d7191c",
    1: "#fdae61",
    2: "#1a9641",
    3: "#7b3294",
    4: "#bababa",
    5: "#2c7bb6",
}

# --- LandTrendr and change map (seed change_map.js) ------------------------------------------
#: LT-GEE runParams of the seed (GEE defaults except maxSegments, preventOneYearRecovery,
#: pvalThreshold).
LANDTRENDR_PARAMS = dict(
    max_segments=6,
    spike_threshold=0.9,
    vertex_count_overshoot=3,
    prevent_one_year_recovery=True,
    recovery_threshold=0.25,
    pval_threshold=0.05,
    best_model_proportion=0.75,
    min_observations_needed=6,
)
#: changeParams of the seed: greatest NDVI gain with magnitude > 300 (NDVI x 1000).
CHANGE_MAP_PARAMS = dict(delta="gain", sort="greatest", year_range=(START_YEAR, END_YEAR), mag_min=300)

# --- Sentinel-1 (seed step 5) -----------------------------------------------------------------
S1_START = "2019-04-02"
S1_END = "2020-10-19"
S1_REPEAT_DAYS = 12
S1_N_IMAGES = 49
S1_ORBIT_PASS = "ASCENDING"
#: Equivalent number of looks of S1 GRD IW 10 m (Canty et al. 2020).
S1_ENL = 4.4
S1_ALPHA = 0.01
#: Start years whose S1 window has both Sentinel-1A and 1B (1B failed in Dec 2021).
S1_AB_YEARS = (2017, 2020)


def year_band_names(years) -> list[str]:
    """Band descriptions for annual stacks: 1972 -> 'yr1972' (LandsatLinkr/LT-GEE style)."""
    return [f"yr{int(y)}" for y in years]
