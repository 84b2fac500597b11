"""Live parity check: LandTrendr on Earth Engine vs the local port vs the shipped reference.

The reference ``gee_truth.json`` (``ltlib.resources.gee_reference``) holds five Oregon pixels:
Earth Engine annual NBR x 1000 composites 1984-2016 and native Earth Engine LandTrendr output
(vertices, fitted values). Its pixels carry no coordinates; :func:`reference_positions` finds
each one in ``forest_or_source.tif`` (the same composites as a 54 x 53 px EPSG:32610 stack) by
matching its source series, so nothing is typed in by hand.

:func:`run` (needs Earth Engine credentials) builds ltlib's composites for those pixels on the
server (LT-GEE's defaults), runs :func:`ltlib.gee.landtrendr` there with the reference's
runParams, downloads the composites and the LandTrendr arrays, runs the local port
(:func:`ltlib.landtrendr.segment`) on the downloaded composites, and reports per pixel how
the three agree. One command: ``python scripts/ee_parity_check.py`` (docs/earth_engine.md).
:func:`compare` and :func:`format_report` work on arrays and are tested offline.
"""
from __future__ import annotations

import json

import numpy as np

from .. import resources

#: How close a source series must be to a stack pixel to be that pixel (NBR x 1000).
MATCH_TOLERANCE = 0.1
#: runParams keys of gee_truth.json -> ltlib's LandTrendr keywords.
_PARAMS = dict(maxSegments="max_segments", spikeThreshold="spike_threshold",
               vertexCountOvershoot="vertex_count_overshoot", preventOneYearRecovery="prevent_one_year_recovery",
               recoveryThreshold="recovery_threshold", pvalThreshold="pval_threshold",
               bestModelProportion="best_model_proportion", minObservationsNeeded="min_observations_needed")


def load_truth() -> dict:
    """``gee_truth.json`` as a dict (start, end, params, pixels)."""
    return json.loads(resources.gee_reference("gee_truth.json").read_text())


def lt_params(truth: dict) -> dict:
    """The reference's runParams as :func:`ltlib.gee.landtrendr` keywords."""
    return {_PARAMS[k]: v for k, v in truth["params"].items()}


#: what the reference stack must be (errors name it)
_REFERENCE_STACK = "the Oregon forest reference stack (33 annual NBR bands, 1984-2016)"


def reference_positions(truth: dict | None = None, stack_path=None) -> dict[str, tuple[int, int]]:
    """{pixel name: (row, col)} in ``forest_or_source.tif`` whose 33-year series equals the
    pixel's ``source`` within ``MATCH_TOLERANCE`` (the closest one; ValueError if none)."""
    from ..io import open_geotiff

    truth = truth or load_truth()
    with open_geotiff(stack_path or resources.gee_reference("forest_or_source.tif"), _REFERENCE_STACK) as src:
        stack = src.read().astype(float)
    out = {}
    for px in truth["pixels"]:
        diff = np.abs(stack - np.asarray(px["source"], float)[:, None, None]).max(axis=0)
        r, c = np.unravel_index(np.argmin(diff), diff.shape)
        if diff[r, c] > MATCH_TOLERANCE:
            raise ValueError(f"reference pixel {px['name']!r}: no pixel of the stack within {MATCH_TOLERANCE} "
                             f"(closest {diff[r, c]:.2f} at {r, c})")
        out[px["name"]] = (int(r), int(c))
    return out


def reference_grid(positions: dict, stack_path=None):
    """The smallest window of the reference stack's grid (EPSG:32610, 30 m) holding the
    pixels, as an :class:`ltlib.io.Grid`, and the pixels' (row, col) in it."""
    from ..io import Grid, open_geotiff

    with open_geotiff(stack_path or resources.gee_reference("forest_or_source.tif"), _REFERENCE_STACK) as src:
        t, crs = src.transform, src.crs
    rows = [p[0] for p in positions.values()]
    cols = [p[1] for p in positions.values()]
    r0, c0 = min(rows), min(cols)
    grid = Grid(crs, t * t.translation(c0, r0), max(rows) - r0 + 1, max(cols) - c0 + 1)
    return grid, {k: (r - r0, c - c0) for k, (r, c) in positions.items()}


def compare(truth_px: dict, server: dict, local: dict) -> dict:
    """Agreement of one pixel. ``server``/``local``: dicts with ``source`` (the composites
    LandTrendr got), ``fitted`` and ``vertex_years`` (server: Earth Engine's LandTrendr on
    ltlib's composites; local: the port on the same composites).

    Returns max absolute differences (NBR x 1000) and vertex-year sets: composites vs the
    reference's, Earth Engine's fit vs the port's on the same composites, and the vertices.
    """
    ref_src = np.asarray(truth_px["source"], float)
    out = {
        "name": truth_px["name"],
        "composite_vs_reference": float(np.nanmax(np.abs(np.asarray(server["source"], float) - ref_src))),
        "fit_server_vs_local": float(np.nanmax(np.abs(np.asarray(server["fitted"], float)
                                                      - np.asarray(local["fitted"], float)))),
        "vertices_reference": sorted(int(v) for v in truth_px["vertex_years"]),
        "vertices_server": sorted(int(v) for v in server["vertex_years"]),
        "vertices_local": sorted(int(v) for v in local["vertex_years"]),
    }
    out["vertices_server_eq_local"] = out["vertices_server"] == out["vertices_local"]
    return out


def format_report(rows: list[dict]) -> str:
    """A plain-text table of :func:`compare` rows and a verdict line."""
    lines = [f"{'pixel':<9} {'comp-ref':>9} {'fit EE-local':>12}  vertices EE | local | reference"]
    for r in rows:
        lines.append(f"{r['name']:<9} {r['composite_vs_reference']:9.1f} {r['fit_server_vs_local']:12.2f}  "
                     f"{r['vertices_server']} | {r['vertices_local']} | {r['vertices_reference']}")
    agree = sum(r["vertices_server_eq_local"] for r in rows)
    lines.append(f"Earth Engine LandTrendr and the local port agree on the vertices of {agree} of {len(rows)} "
                 "pixels (same composites); 'comp-ref' is how far ltlib's composites are from the reference's "
                 "(built with other options, so a difference there is not a LandTrendr difference)")
    return "\n".join(lines)


def _lt_arrays(lt, n_years):
    """The LandTrendr array padded to 4 x n_years and flattened (band ``r<row>_<col>``)."""
    import ee

    names = [[f"r{i}" for i in range(4)], [str(j) for j in range(n_years)]]
    return ee.Image(lt).select("LandTrendr").arrayPad([4, n_years], 0).arrayFlatten(names)


def _fetch(image, grid, band_names):
    from . import download

    prepared, fill = download.prepare_bands(image, band_names, "float32")
    tile = download.Tile(0, 0, 0, grid.height, grid.width)
    arr = np.asarray(download.computepixels_fetch(prepared, grid, band_names)(tile), float)
    return np.where(arr == fill, np.nan, arr)


def run(project=None, *, truth: dict | None = None) -> list[dict]:
    """Run the live check (Earth Engine credentials needed); prints and returns the rows."""
    from .. import config
    from ..landtrendr import segment
    from . import auth, composites
    from .landtrendr import landtrendr as ee_landtrendr

    if not auth.initialize(project):
        raise RuntimeError("Earth Engine is not available (no credentials or project): see docs/earth_engine.md")
    from rasterio.warp import transform_bounds

    truth = truth or load_truth()
    y0, y1 = int(truth["start"]), int(truth["end"])
    years = np.arange(y0, y1 + 1)
    positions = reference_positions(truth)
    grid, local_pos = reference_grid(positions)
    west, north = grid.transform * (0, 0)
    east, south = grid.transform * (grid.width, grid.height)
    cols = composites.annual_composites(transform_bounds(grid.crs, "EPSG:4326", west, south, east, north), y0, y1,
                                        index="NBR")
    lt = ee_landtrendr(cols, distdir=-1, **lt_params(truth))
    names = config.year_band_names(years)
    src = _fetch(composites.collection_to_stack(cols, y0, y1, "NBR"), grid, names)  # (T, h, w)
    lt_names = [f"r{i}_{j}" for i in range(4) for j in range(len(years))]
    lt_arr = _fetch(_lt_arrays(lt, len(years)), grid, lt_names).reshape(4, len(years), grid.height, grid.width)
    res = segment(src, years, distdir=-1, **lt_params(truth))
    rows = []
    for px in truth["pixels"]:
        r, c = local_pos[px["name"]]
        a = lt_arr[:, :, r, c]
        seen = a[0] > 0
        server = {"source": src[:, r, c], "fitted": np.interp(years, a[0][seen], -a[2][seen]),
                  "vertex_years": a[0][seen][a[3][seen] == 1]}
        local = {"fitted": res.fitted[:, r, c], "vertex_years": years[res.is_vertex[:, r, c]]}
        rows.append(compare(px, server, local))
    print(format_report(rows))
    return rows
