"""LandsatLinkr assets: the MSS-era (1972-1983) fitted values of a LandsatLinkr LandTrendr run.

What an asset holds, from gee-community/ee-LandsatLinkr ``landsatlinkr.py`` (Apache-2.0,
J. Braaten et al.; ``runLt`` and ``exportLt``) and its Colab template:

- LandTrendr segments NDVI x -1 (``addSegBand``: ``ndvi.multiply(-1)``), whatever FTV bands
  are asked for, over 1972-2022 (MSS to 1983, TM/ETM+/OLI from 1984);
- the exported image is ``lt.int16()``: ``LandTrendr`` (4 x years, padded with zeros for
  years a pixel has no observation), ``rmse`` (truncated to an integer) and
  ``<band>_fit`` for each of ``ltParams['ftvBands']`` (template default tcb, tcg, tcw);
- bands it can fit: ndvi (x 1000), tcb, tcg, tcw (Tasseled Cap on reflectance x 10000),
  tca (degrees x 100) and the reflectance bands; NBR, NDMI and the other LT-GEE indices
  are not computed for MSS;
- the template's CRS is EPSG:3857 at 30 m (Web Mercator metres, ~23 m on the ground at 40 N).
"""
from __future__ import annotations

import ee

from .. import config
from .composites import _check_years, _indices
from .landtrendr import _fit_band_pattern

#: Indices LandsatLinkr can fit (its MSS and TM images carry these bands).
LLR_INDICES = ("NDVI", "TCB", "TCG", "TCW", "TCA")
#: LandsatLinkr's template ``ftvBands`` (what an asset holds unless the user chose others).
LLR_DEFAULT_FTV = ("TCB", "TCG", "TCW")
#: The index LandsatLinkr segments, and its orientation in the ``LandTrendr`` band.
LLR_SEGMENT_INDEX = "NDVI"
LLR_DISTDIR = -1
#: Years of a LandsatLinkr run (``runLt``: MSS 1972-1983, TM ``ee.List.sequence(1984, 2022)``).
LLR_YEARS = (1972, 2022)
#: LandsatLinkr template's export CRS.
LLR_CRS = "EPSG:3857"


def check_llr_indices(indices, llr_ftv=LLR_DEFAULT_FTV, what="indices") -> tuple[str, ...]:
    """The requested indices, or a ValueError naming those the asset cannot hold."""
    indices = _indices(indices)
    ftv = _indices(llr_ftv)
    bad_ftv = [n for n in ftv if n not in LLR_INDICES]
    if bad_ftv:
        raise ValueError(f"llr_ftv {bad_ftv}: LandsatLinkr computes only {LLR_INDICES}")
    missing = [n for n in indices if n not in ftv]
    if missing:
        raise ValueError(f"{what} {missing}: the LandsatLinkr asset holds <band>_fit only for its ftvBands "
                         f"(llr_ftv={ftv}; LandsatLinkr computes {LLR_INDICES}); drop them, or pass llr_ftv if "
                         "your asset was run with other ftvBands")
    return indices


def llr_fitted_stack(asset, index: str, start_year: int, end_year: int, *, asset_start_year: int = LLR_YEARS[0],
                     asset_end_year: int = LLR_YEARS[1], llr_ftv=LLR_DEFAULT_FTV) -> ee.Image:
    """A LandsatLinkr ``landtrendr`` asset's ``<index>_fit`` array flattened to bands yrYYYY
    (the seed's ``select('ndvi_fit').arrayFlatten([years])``), then the requested years.

    ``asset_start_year``/``asset_end_year`` are the years the asset was run for (the array
    length); ``llr_ftv`` the FTV bands it was run with (a ValueError names an index it does
    not hold). Values are in LandsatLinkr's units, the same as :func:`annual_composites`'
    (NDVI x 1000, Tasseled Cap in reflectance x 10000), stored as int16.
    """
    (index,) = check_llr_indices([index], llr_ftv, what="index")
    _check_years(start_year, end_year)
    if not asset_start_year <= start_year <= end_year <= asset_end_year:
        raise ValueError(f"years {start_year}-{end_year} are outside the asset's "
                         f"{asset_start_year}-{asset_end_year}")
    img = ee.Image(asset)
    all_names = config.year_band_names(range(asset_start_year, asset_end_year + 1))
    flat = img.select([_fit_band_pattern(index)]).arrayFlatten([all_names])
    return flat.select(config.year_band_names(range(start_year, end_year + 1)))
