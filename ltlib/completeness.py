"""How complete annual composites are: missing values per year, per pixel and by sensor era.

Gaps come from clouds, from the MSS era (1972-1983: fewer scenes, whole years missing) and
from the Landsat 7 scan-line corrector failure (stripes from 2003; widest in 2003-2012 when
ETM+ flew beside TM, and in 2012 when it flew alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import config
from .io import Grid, write_raster


def sensor_era(years) -> np.ndarray:
    """"MSS" before 1984, "TM/ETM+ SLC-off" 2003-2012, else "TM/ETM+/OLI": str (T,)."""
    years = np.asarray(years)
    return np.where(years < 1984, "MSS",
                    np.where((years >= config.SLC_OFF_YEAR) & (years <= 2012), "TM/ETM+ SLC-off", "TM/ETM+/OLI"))


@dataclass
class Completeness:
    """Missing values of one stack.

    Attributes
    ----------
    index : str
    years : int (T,)
    missing_by_year : float (T,)
        Share of pixels without a value in each year, 0..1.
    missing_per_pixel : float32 (H, W)
        Share of years without a value at each pixel, 0..1.
    grid : Grid
    """

    index: str
    years: np.ndarray
    missing_by_year: np.ndarray
    missing_per_pixel: np.ndarray
    grid: Grid

    @property
    def eras(self) -> np.ndarray:
        return sensor_era(self.years)

    def summary(self) -> dict:
        mss = self.years < 1984
        return {
            "index": self.index,
            "missing_fraction": round(float(self.missing_by_year.mean()), 4),
            "missing_fraction_mss": round(float(self.missing_by_year[mss].mean()), 4) if mss.any() else None,
            "missing_fraction_tm_oli": round(float(self.missing_by_year[~mss].mean()), 4) if (~mss).any() else None,
            "years_without_data": [int(y) for y in self.years[self.missing_by_year == 1]],
        }

    def figure(self):
        from .plots import plot_missing_by_year

        return plot_missing_by_year(self.years, self.missing_by_year, self.eras,
                                    title=f"Missing {self.index} values per year")

    def write(self, output_dir) -> dict[str, Path]:
        """``missing_fraction.tif`` (float32, one band) on the stack's grid."""
        path = write_raster(Path(output_dir) / "missing_fraction.tif", self.missing_per_pixel, self.grid,
                            band_names=["missing_fraction"], dtype="float32")
        return {"missing_fraction": path}

    def __str__(self):
        s = self.summary()
        parts = [f"{self.index}: missing overall {100 * s['missing_fraction']:.1f}%"]
        if s["missing_fraction_mss"] is not None:
            parts.append(f"MSS years {100 * s['missing_fraction_mss']:.1f}%")
        if s["missing_fraction_tm_oli"] is not None:
            parts.append(f"from 1984 {100 * s['missing_fraction_tm_oli']:.1f}%")
        return ", ".join(parts) + f"; whole years missing: {s['years_without_data'] or 'none'}"


def completeness(stack) -> Completeness:
    """Missing values of a :class:`~ltlib.io.Stack` (float32 (T, H, W), NaN = no value)."""
    missing = np.isnan(stack.data)
    return Completeness(stack.name, np.asarray(stack.years), missing.mean(axis=(1, 2)),
                        missing.mean(axis=0).astype(np.float32), stack.grid)
