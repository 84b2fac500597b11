"""spectral-recovery's metrics on series from an .npz (run in spectral-recovery's own environment).

Called by benchmarks/recovery_oracle.py: ``python recovery_oracle_sr.py in.npz out.npz``.
Input: ``values`` (T, n), ``years`` (T,), ``start`` (n,) the disturbance's start year (the
greatest-loss segment's start vertex), ``t`` (n,) the restoration start (its end vertex),
``ref0``, ``ref1`` (n,) the reference years of the historic median target. Pixels are grouped
by (start, t, ref0, ref1), as spectral-recovery takes one restoration year per site; the target
is spectral-recovery's ``targets.historic.median(..., scale="pixel")`` on a polygon covering
the group. Output: rri, r80p, yryr, y2r (n,) with spectral-recovery's -9999 (not recovered)
turned into NaN, and its deltair.
"""
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from shapely.geometry import box
from spectral_recovery import metrics
from spectral_recovery.targets import historic


def main(src, dst):
    d = np.load(src)
    values, years = d["values"], d["years"]
    keys = np.stack([d["start"], d["t"], d["ref0"], d["ref1"]], 1).astype(int)
    out = {k: np.full(values.shape[1], np.nan) for k in ("rri", "r80p", "yryr", "y2r", "deltair")}
    time = pd.to_datetime([f"{y}-01-01" for y in years])
    for key in np.unique(keys, axis=0):
        sel = np.flatnonzero((keys == key).all(1))
        start, t, ref0, ref1 = (int(k) for k in key)
        n = sel.size
        # two identical rows: rioxarray needs two coordinates per axis for the pixel size
        v = np.repeat(values[:, sel][:, None, None, :], 2, axis=2)
        da = xr.DataArray(v, dims=("time", "band", "y", "x"),
                          coords={"time": time, "band": ["NBR"], "y": [1.5, 0.5], "x": np.arange(n) + 0.5})
        da = da.rio.write_crs("EPSG:32612")
        site = gpd.GeoDataFrame(geometry=[box(0, 0, n, 2)], crs="EPSG:32612")
        target = historic.median(site, da, {0: (ref0, ref1)}, scale="pixel")[0]
        got = {"rri": metrics.rri(start, t, da), "r80p": metrics.r80p(t, da, target), "yryr": metrics.yryr(t, da),
               "y2r": metrics.y2r(t, da, target), "deltair": metrics.deltair(t, da)}
        for k, v in got.items():
            v = np.asarray(v, dtype=float).reshape(-1, n)[0]  # the first of the two rows
            out[k][sel] = np.where(v == -9999, np.nan, v)
    np.savez(dst, **out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
