"""Landsat and Sentinel-1 from open STAC catalogs, without an account.

Planetary Computer's STAC API (``landsat-c2-l2``, ``sentinel-1-rtc``; anonymous, URLs signed
with ``planetary-computer``) by default, any other STAC API, or a local static
``catalog.json``; read lazily with odc-stac into dask arrays on one UTM grid.

Modules
-------
search
    :func:`find_items` (paged API search or static catalog walk, retries with backoff),
    :func:`default_signer`, :func:`check_assets`, :class:`StacError`.
landsat
    :func:`landsat_composites` and :func:`collect_landsat_to_dir`: annual composites with
    the Earth Engine path's definitions (:mod:`ltlib.landsat_c2`).
sentinel1
    :func:`collect_s1_to_dir`: Sentinel-1 RTC gamma0 VV/VH daily mosaics on the Landsat grid.

Needs the ``stac`` extra (odc-stac, pystac-client, planetary-computer).
"""
from .landsat import Composites, collect_landsat_to_dir, landsat_composites
from .search import LANDSAT_COLLECTION, PC_STAC_URL, S1_COLLECTION, StacError, default_signer, find_items

__all__ = ["Composites", "collect_landsat_to_dir", "landsat_composites", "LANDSAT_COLLECTION", "PC_STAC_URL",
           "S1_COLLECTION", "StacError", "default_signer", "find_items"]
