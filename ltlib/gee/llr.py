"""LandsatLinkr assets: the MSS-era (1972-1983) fitted values of a LandsatLinkr LandTrendr run."""
from __future__ import annotations

import ee

from .. import config
from .composites import _check_years, _indices


def llr_fitted_stack(asset, index: str, start_year: int, end_year: int, *, asset_start_year: int = 1972,
                     asset_end_year: int = 2022) -> ee.Image:
    """A LandsatLinkr ``landtrendr`` asset's ``<index>_fit`` array flattened to bands yrYYYY
    (the seed's ``select('ndvi_fit').arrayFlatten([years])``), then the requested years.

    ``asset_start_year``/``asset_end_year`` are the years the asset was run for (the array
    length); the asset stores index x 1000 like LT-GEE.
    """
    index = _indices(index)[0]
    _check_years(start_year, end_year)
    if not asset_start_year <= start_year <= end_year <= asset_end_year:
        raise ValueError(f"years {start_year}-{end_year} are outside the asset's "
                         f"{asset_start_year}-{asset_end_year}")
    img = ee.Image(asset)
    all_names = config.year_band_names(range(asset_start_year, asset_end_year + 1))
    flat = img.select(f"{index.lower()}_fit").arrayFlatten([all_names])
    return flat.select(config.year_band_names(range(start_year, end_year + 1)))
