"""Earth Engine data path: annual Landsat composites, LandsatLinkr assets, LandTrendr on Earth
Engine, Sentinel-1, and direct download to GeoTIFF stacks readable by :mod:`ltlib.io`.

Importing this package imports ``earthengine-api`` (the ``gee`` extra); nothing else in
ltlib imports it, so the package is only loaded when a notebook asks for Earth Engine.

Modules
-------
auth
    :func:`initialize` (the only place that authenticates / initialises Earth Engine),
    :func:`has_credentials`, Colab detection.
aoi
    AOI parsing, :func:`aoi_geometry`, :func:`aoi_bounds`, :func:`utm_crs`,
    :func:`grid_for_aoi`.
composites
    Collection 2 Level-2 preparation, QA masks, medoid, :func:`index_image`,
    :func:`annual_composites`, :func:`collection_to_stack`; ``BANDS``, ``SR_BANDS``...
llr
    :func:`llr_fitted_stack` (LandsatLinkr assets for the MSS years).
landtrendr
    :func:`landtrendr`, :func:`landtrendr_input`, :func:`fitted_stack`,
    :func:`change_map_image` (the server-side change map), :func:`segment_data`,
    :func:`segment_count` and :func:`segment_stack` (every segment, LT-GEE
    ``getSegmentData``), ``LT_DEFAULTS``.
sentinel1
    :func:`s1_collection`, :func:`s1_daily_mosaics`, :func:`most_frequent_orbit`,
    :func:`read_s1_dir`.
download
    Tiled ``computePixels`` download with retries and resume: :func:`download_image`,
    :func:`computepixels_fetch`, :func:`download_to_geotiff`, :func:`plan_tiles`...
export
    :func:`export_to_drive` and :func:`wait_for_task` for areas too large to download;
    :func:`export_tiled` (one batch task per tile to Drive, Cloud Storage or assets, with a
    resumable JSON state file; :class:`TiledExport`) and :func:`mosaic_export_tiles`.
parity
    The live parity check of ``scripts/ee_parity_check.py`` (Earth Engine LandTrendr vs the
    local port vs the shipped reference pixels); not imported here.
workflows
    What notebooks call: :func:`collect_landsat_to_dir`, :func:`fit_landtrendr_to_dir`,
    :func:`collect_s1_to_dir`.

The graph builders make no server call and are tested offline. Showing an annual
``ee.ImageCollection`` on a map with a year slider is :func:`ltlib.maps.add_ee_time_slider`.

Units: LT-GEE's (``EE_INDICES``): normalised differences x 1000, Tasseled Cap in
reflectance x 10000 units, TCA degrees x 100, raw bands reflectance x 10000; downloads carry
the ``scale`` tag and :func:`ltlib.scene.load` converts Tasseled Cap to ltlib's x 1000.
Sentinel-1 is linear intensity (not dB). Where ltlib still differs from LT-GEE and
LandsatLinkr: docs/earth_engine.md.

Notes
-----
``ltlib.gee.landtrendr`` is the function :func:`landtrendr` (re-exported here), not the
module of that name; import from the module with ``from ltlib.gee.landtrendr import ...``.
Tests that replace the download patch ``ltlib.gee.download.download_image`` or
``ltlib.gee.download.computepixels_fetch``: the workflows look them up there.
"""
from .aoi import aoi_bounds, aoi_geometry, grid_for_aoi, utm_crs
from .auth import has_credentials, initialize
from .composites import (
    BANDS,
    COMPOSITE_DATE,
    DEFAULT_MASK,
    EE_INDICES,
    FIRST_TM_YEAR,
    LLR_LAST_MSS_YEAR,
    MASK_PRESETS,
    METHODS,
    OLI_TO_ETM_INTERCEPT,
    OLI_TO_ETM_SLOPE,
    OTHER_MASKS,
    QA_BITS,
    SENSORS,
    SR_BANDS,
    SR_TYPES,
    annual_composites,
    collection_to_stack,
    index_image,
    landsat_sr_collection,
    medoid,
    prepare_c2_image,
)
from .download import (
    EE_MAX_BANDS,
    EE_MAX_REQUEST_BYTES,
    EE_MAX_SIDE,
    FLOAT_FILL,
    INT16_FILL,
    DownloadError,
    Tile,
    computepixels_fetch,
    download_image,
    download_to_geotiff,
    estimate_bytes,
    fetch_tiles,
    format_bytes,
    plan_tiles,
    prepare_bands,
)
from .export import (
    ExportStateError,
    TiledExport,
    TiledExportError,
    export_tiled,
    export_to_drive,
    mosaic_export_tiles,
    plan_export_tiles,
    wait_for_task,
)
from .landtrendr import (
    LT_DEFAULTS,
    SEGMENT_ROWS,
    change_map_image,
    fitted_stack,
    landtrendr,
    landtrendr_input,
    observed_years,
    segment_count,
    segment_data,
    segment_stack,
)
from .llr import LLR_DEFAULT_FTV, LLR_INDICES, LLR_YEARS, llr_fitted_stack
from .sentinel1 import most_frequent_orbit, read_s1_dir, s1_collection, s1_daily_mosaics
from .workflows import collect_landsat_to_dir, collect_s1_to_dir, fit_landtrendr_to_dir

__all__ = [
    "BANDS",
    "COMPOSITE_DATE",
    "DEFAULT_MASK",
    "EE_INDICES",
    "LLR_DEFAULT_FTV",
    "LLR_INDICES",
    "LLR_LAST_MSS_YEAR",
    "LLR_YEARS",
    "MASK_PRESETS",
    "OTHER_MASKS",
    "SEGMENT_ROWS",
    "SR_TYPES",
    "EE_MAX_BANDS",
    "EE_MAX_REQUEST_BYTES",
    "EE_MAX_SIDE",
    "FIRST_TM_YEAR",
    "FLOAT_FILL",
    "INT16_FILL",
    "LT_DEFAULTS",
    "METHODS",
    "OLI_TO_ETM_INTERCEPT",
    "OLI_TO_ETM_SLOPE",
    "QA_BITS",
    "SENSORS",
    "SR_BANDS",
    "DownloadError",
    "ExportStateError",
    "TiledExport",
    "TiledExportError",
    "Tile",
    "annual_composites",
    "aoi_bounds",
    "aoi_geometry",
    "change_map_image",
    "collect_landsat_to_dir",
    "collect_s1_to_dir",
    "collection_to_stack",
    "computepixels_fetch",
    "download_image",
    "download_to_geotiff",
    "estimate_bytes",
    "export_tiled",
    "export_to_drive",
    "fetch_tiles",
    "fit_landtrendr_to_dir",
    "fitted_stack",
    "format_bytes",
    "grid_for_aoi",
    "has_credentials",
    "index_image",
    "initialize",
    "landsat_sr_collection",
    "landtrendr",
    "landtrendr_input",
    "llr_fitted_stack",
    "medoid",
    "mosaic_export_tiles",
    "most_frequent_orbit",
    "observed_years",
    "plan_export_tiles",
    "plan_tiles",
    "prepare_bands",
    "prepare_c2_image",
    "read_s1_dir",
    "s1_collection",
    "s1_daily_mosaics",
    "segment_count",
    "segment_data",
    "segment_stack",
    "utm_crs",
    "wait_for_task",
]
