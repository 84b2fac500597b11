"""Sentinel-1 change detection on a scene: the period, the stack, the omnibus test and its scores.

What notebook 05 calls, in order:

1. :func:`choose_period`: the histogram of disturbance years (notebook 02's ``loss_map``
   band ``yod``, else the scene's truth ``dist_year``, else none) and the Sentinel-1 window
   picked from it (:func:`ltlib.sar.pick_s1_period`), or the window given by the user.
2. :func:`sentinel1_stack`: the scene's ``sentinel1/`` stack, or with ``use_gee`` a download
   from Earth Engine for that window; None when there is neither
   (:func:`no_sentinel1_reason` says what to add).
3. :func:`detect_changes`: the sequential omnibus test (:func:`ltlib.sar.omnibus`), returned
   as a :class:`SarRun` with counts, the busiest interval, and, when the Sentinel-1 stack has
   truth, :meth:`SarRun.score` and :meth:`SarRun.sensitivity_table`; :meth:`SarRun.write`
   leaves ``cmap``, ``smap``, ``fmap`` and ``bmap`` GeoTIFFs on the Sentinel-1 grid.

A Sentinel-1 stack opened in chunks (too large for memory, ``scene.load(..., chunks=...)``)
is tested block by block: :func:`detect_changes` then needs ``output_dir``, writes the four
maps there as they are computed (counts and proportions streamed in the same pass) and
keeps them lazily, read from those files.

The algorithm itself is :mod:`ltlib.sar`; this module only wires it to a
:class:`~ltlib.scene.Scene`.
"""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import blocks, config, sar
from .io import copy_file, write_raster
from .scene import S1_DIR, Scene, Sentinel1, load_sentinel1

#: Scores kept per row of the sensitivity table.
SENSITIVITY_SCORES = ("recall", "recall_within_1_interval", "precision", "direction_accuracy", "false_alarm_rate")


# ----------------------------------------------------------------------------- the period
@dataclass
class S1Period:
    """The disturbance-year histogram and the Sentinel-1 window chosen from it.

    Attributes
    ----------
    years, counts : int (n,)
        Disturbance years that occur and their pixel counts (empty without a source).
    window : dict
        ``most_frequent_year``, ``year``, ``start``, ``end`` (ISO dates) and ``reason``.
    source : str
        Where the disturbance years came from (the file, the truth, or none).
    """

    years: np.ndarray
    counts: np.ndarray
    window: dict
    source: str

    @property
    def start(self) -> str:
        return self.window["start"]

    @property
    def end(self) -> str:
        return self.window["end"]

    def summary(self) -> dict:
        return {"disturbance_years_source": self.source, "period": dict(self.window)}

    def __str__(self) -> str:
        return f"{self.window['reason']}\nSentinel-1 period: {self.start} .. {self.end}"


def _check_date(value, name: str) -> str:
    try:
        return _dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"{name} must be a date 'YYYY-MM-DD', got {value!r}") from None


def choose_period(scene: Scene, landtrendr_dir=None, *, start=None, end=None) -> S1Period:
    """Pick the Sentinel-1 window from the scene's disturbance years (seed step 5).

    Parameters
    ----------
    scene : ltlib.scene.Scene
    landtrendr_dir : path or None
        Notebook 02's output folder: its ``loss_map`` (band ``yod``) gives the years; the map
        must be on the scene's grid (:meth:`~ltlib.scene.Scene.read_output` refuses another).
        None: the scene's truth ``dist_year`` when it has truth, else no years (the window
        then falls back as :func:`ltlib.sar.pick_s1_period` says).
    start, end : str or None
        ``YYYY-MM-DD``: both given, they replace the chosen window.

    Returns
    -------
    S1Period
    """
    if landtrendr_dir is not None:
        data, names = scene.read_output(landtrendr_dir, "loss_map")
        if "yod" not in names:
            raise ValueError(f"the loss_map of {landtrendr_dir} has bands {names}, no 'yod'")
        yod, source = data[names.index("yod")], f"LandTrendr loss_map of {landtrendr_dir}"
    elif scene.has_truth:
        yod, source = scene.truth["dist_year"], f"truth dist_year of {scene.folder} (no notebook 02 outputs)"
    else:
        yod, source = None, f"none: no notebook 02 outputs and no truth in {scene.folder}"
    if yod is None:
        years, counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        years, counts = sar.disturbance_year_counts(yod)
    window = sar.pick_s1_period(years, counts)
    if start is not None or end is not None:
        if start is None or end is None:
            raise ValueError(f"give both s1_start and s1_end, or neither (got s1_start={start!r}, s1_end={end!r})")
        start, end = _check_date(start, "s1_start"), _check_date(end, "s1_end")
        if end <= start:
            raise ValueError(f"s1_end {end} must be after s1_start {start}")
        window.update(start=start, end=end, reason="set by the s1_start / s1_end parameters")
    return S1Period(years, counts, window, source)


# ----------------------------------------------------------------------------- the stack
def no_sentinel1_reason(scene: Scene) -> str:
    """The one sentence a notebook stops with when there is no Sentinel-1 stack."""
    return (f"no Sentinel-1 stack: {scene.folder / S1_DIR} has no s1_vv.tif / s1_vh.tif; add them (linear "
            "intensity, one band per date) or set use_gee=True")


def sentinel1_stack(scene: Scene, period: S1Period, *, use_gee: bool = False, ee_project=None, download_dir=None,
                    orbit_pass: str = config.S1_ORBIT_PASS, relative_orbit=None, source=None, stac_url=None,
                    enl: float | None = None) -> Sentinel1 | None:
    """The Sentinel-1 VV/VH stack to test: downloaded (``use_gee``) or the scene's.

    With ``use_gee`` and Earth Engine available, ``COPERNICUS/S1_GRD_FLOAT`` for the scene's
    AOI and ``period`` is downloaded into ``<download_dir>/sentinel1`` (10 m UTM grid, one
    relative orbit) and read back; otherwise the scene's ``sentinel1/`` stack is used. The
    Sentinel-1 grid may differ from the Landsat grid (it must overlap it). Returns None
    when there is no stack (see :func:`no_sentinel1_reason`).

    With ``source="stac"``, Sentinel-1 RTC gamma0 from ``stac_url`` (default Planetary
    Computer's ``sentinel-1-rtc``) as daily mosaics on the Landsat grid, in
    ``<download_dir>/sentinel1`` (:func:`ltlib.stac.sentinel1.collect_s1_to_dir`; its ENL
    estimate is recorded with the stack and checked against ``enl`` when given).
    """
    s1 = scene.s1
    if source not in (None, "stac"):
        raise ValueError(f"source must be None (the scene's stack, or Earth Engine with use_gee) or 'stac', got "
                         f"{source!r}")
    if source == "stac":
        from .stac.search import PC_STAC_URL
        from .stac.sentinel1 import collect_s1_to_dir

        if download_dir is None:
            raise ValueError("source='stac' needs download_dir (the notebook's output_dir) for the Sentinel-1 mosaics")
        folder = Path(download_dir) / S1_DIR
        collect_s1_to_dir(folder, scene.grid, aoi=scene.aoi, start=period.start, end=period.end,
                          stac_url=stac_url or PC_STAC_URL, orbit_pass=orbit_pass, relative_orbit=relative_orbit,
                          enl=enl)
        s1 = load_sentinel1(folder, landsat_grid=scene.grid, chunks="auto")
    elif use_gee:
        from . import gee

        if download_dir is None:
            raise ValueError("use_gee=True needs download_dir (the notebook's output_dir) for the Sentinel-1 download")
        if gee.initialize(ee_project):
            folder = Path(download_dir) / S1_DIR
            gee.collect_s1_to_dir(folder, aoi=scene.aoi, start=period.start, end=period.end, orbit_pass=orbit_pass,
                                  relative_orbit=relative_orbit)
            s1 = load_sentinel1(folder, landsat_grid=scene.grid, chunks="auto")
        else:
            print("Earth Engine not available: using the scene's Sentinel-1 stack, if it has one")
    if s1 is not None:
        g = s1.grid
        print(f"Sentinel-1 from {s1.folder}: {s1.n_images} images {s1.dates[0]} .. {s1.dates[-1]}, {g.height} x "
              f"{g.width} px of {g.pixel_text()}, {g.crs.to_string()}"
              + (", with truth" if s1.truth is not None else ", no truth"))
    return s1


# ----------------------------------------------------------------------------- the test
@dataclass
class SarRun:
    """The omnibus test on one Sentinel-1 stack, and what the notebook reports about it.

    Attributes
    ----------
    s1 : ltlib.scene.Sentinel1
        The stack tested (``vv``, ``vh`` (K, h, w) linear, ``dates``, ``grid``, ``truth``).
    result : ltlib.sar.OmnibusResult
        cmap, smap, fmap (h, w), bmap (K-1, h, w) uint8, valid (h, w).
    period : S1Period
    orbit_pass : str
    seconds : {step: seconds}
    accuracy : dict or None
        :func:`ltlib.sar.detection_accuracy` against the stack's truth (:meth:`score`).
    sensitivity : list of dict or None
        Rows of :meth:`sensitivity_table`.
    files : {key: Path} or None
        Block by block: the maps written while the test ran (``result`` reads them lazily).
    """

    s1: Sentinel1
    result: sar.OmnibusResult
    period: S1Period
    orbit_pass: str = config.S1_ORBIT_PASS
    seconds: dict = field(default_factory=dict)
    accuracy: dict | None = None
    sensitivity: list | None = None
    files: dict | None = None

    # -- what was tested
    @property
    def grid(self):
        return self.s1.grid

    @property
    def dates(self) -> list[str]:
        return list(self.s1.dates)

    @property
    def k(self) -> int:
        return self.result.k

    @property
    def has_truth(self) -> bool:
        return self.s1.truth is not None

    @property
    def params(self) -> dict:
        r = self.result
        return {"enl": r.enl, "alpha": r.alpha, "median_filter": r.median_filter, "orbit_pass": self.orbit_pass}

    # -- what it found
    def counts(self) -> dict:
        return self.result.counts()

    def proportions(self) -> np.ndarray:
        """(K-1, 3) share of valid pixels flagged per interval: brighter, darker, indefinite."""
        if self.result.stats is not None:  # block by block: streamed while the maps were written
            return self.result.stats["proportions"].copy()
        return sar.change_proportions(self.result.bmap, self.result.valid)

    def busiest_interval(self) -> dict:
        """The interval (1-based) with the largest share of changed pixels, its dates and percent."""
        prop = self.proportions().sum(1)
        i = int(np.argmax(prop))
        return {"interval": i + 1, "dates": [self.dates[i], self.dates[i + 1]],
                "percent_changed": round(100 * float(prop[i]), 3)}

    def interval_image(self, name: str) -> np.ndarray:
        """``cmap`` or ``smap`` as float (h, w), NaN where nothing changed or no data (transparent on maps)."""
        r = self.result
        a = getattr(r, name)
        return np.where(r.valid & (a > 0), a, np.nan).astype(float)

    # -- against truth
    def _truth_bmap(self) -> np.ndarray:
        """The true bmap (k-1, h, w): a dask array for a stack opened in chunks (scores are then
        counted block by block, :func:`ltlib.sar.detection_accuracy`)."""
        if not self.has_truth:
            raise ValueError(f"the Sentinel-1 stack in {self.s1.folder} has no truth (truth/s1_bmap_truth.tif)")
        return self.s1.truth["bmap"]

    def score(self) -> dict:
        """Detections against the stack's true changes (:func:`ltlib.sar.detection_accuracy`); kept in ``accuracy``."""
        self.accuracy = sar.detection_accuracy(self.result.bmap, self._truth_bmap(), self.result.valid)
        return self.accuracy

    def sensitivity_table(self, alphas=(0.01, 0.001), median_filters=(False, True)):
        """Scores for each significance level and median-filter setting (the run's own setting is reused).

        A stack opened in chunks is tested again block by block for each other setting, its
        scores counted in the same pass (nothing of the scene is kept in memory).

        Returns a pandas DataFrame (columns alpha, median_filter, seconds and
        :data:`SENSITIVITY_SCORES`); its rows are kept in ``sensitivity``.
        """
        import pandas as pd

        truth = self._truth_bmap()
        rows = []
        for a in alphas:
            for mf in median_filters:
                t0 = time.perf_counter()
                if float(a) == self.result.alpha and bool(mf) == self.result.median_filter:
                    r, secs = self.result, self.seconds.get("omnibus", 0.0)
                else:
                    r = sar.omnibus(self.s1.vv, self.s1.vh, enl=self.result.enl, alpha=a, median_filter=mf)
                    secs = time.perf_counter() - t0
                acc = sar.detection_accuracy(r.bmap, truth, r.valid)  # block by block for a lazy stack
                if r.is_lazy and r is not self.result:  # the test ran while its scores were counted
                    secs = time.perf_counter() - t0
                rows.append({"alpha": float(a), "median_filter": bool(mf), "seconds": round(secs, 3),
                             **{key: round(acc[key], 4) for key in SENSITIVITY_SCORES}})
        self.sensitivity = rows
        return pd.DataFrame(rows)

    # -- the record
    def summary(self) -> dict:
        g = self.grid
        return {
            "s1_folder": str(self.s1.folder),
            "n_images": int(self.k),
            "dates": [self.dates[0], self.dates[-1]],
            "s1_grid": {"height": g.height, "width": g.width, "pixel_size_m": round(float(g.pixel_size_m[0]), 3),
                        "crs": g.crs.to_string()},
            **self.period.summary(),
            "params": self.params,
            "counts": self.counts(),
            "busiest_interval": self.busiest_interval(),
            "accuracy": self.accuracy,
            "sensitivity": self.sensitivity,
            "omnibus_seconds": round(self.seconds.get("omnibus", 0.0), 3),
            **({"block_wise": True} if self.result.is_lazy else {}),
        }

    def __str__(self) -> str:
        c = self.counts()
        return (f"omnibus test on {self.k} images x {c['n_valid']} valid pixels: {self.seconds.get('omnibus', 0):.2f} s\n"
                f"{c['n_changed']} pixels changed ({100 * c['n_changed'] / max(c['n_valid'], 1):.1f}%), "
                f"{c['n_changes']} changes: {c['n_brighter']} brighter, {c['n_darker']} darker, "
                f"{c['n_indefinite']} indefinite; {c['n_pixels'] - c['n_valid']} no-data pixels")

    def write(self, output_dir) -> dict[str, Path]:
        """``cmap.tif``, ``smap.tif``, ``fmap.tif`` (one band each) and ``bmap.tif`` (one band per
        interval, named by its dates) on the Sentinel-1 grid, uint8 with 255 = no data.

        Returns {key: path}; when the stack was downloaded into ``output_dir`` its
        ``s1_vv``/``s1_vh`` files are listed too. A block-by-block run wrote its maps while it
        ran; they are copied when ``output_dir`` is another folder.
        """
        out = Path(output_dir)
        if self.files:
            written = {k: copy_file(p, out / p.name) for k, p in self.files.items()}
        else:
            written = self._write_memory(out)
        if Path(self.s1.folder).resolve().is_relative_to(out.resolve()):
            written.update({f"s1_{pol}": Path(self.s1.folder) / f"s1_{pol}.tif" for pol in ("vv", "vh")})
        return written

    def _write_memory(self, out: Path) -> dict[str, Path]:
        r = self.result
        written = {name: write_raster(out / f"{name}.tif", r.nan_masked(name), self.grid, band_names=[name],
                                      nodata=sar.NODATA, dtype="uint8") for name in ("cmap", "smap", "fmap")}
        written["bmap"] = write_raster(out / "bmap.tif", r.nan_masked("bmap"), self.grid,
                                       band_names=sar.interval_labels(self.dates), nodata=sar.NODATA, dtype="uint8")
        return written


def detect_changes(s1: Sentinel1, period: S1Period, *, enl: float | None = None, alpha: float = config.S1_ALPHA,
                   median_filter: bool = False, orbit_pass: str = config.S1_ORBIT_PASS, output_dir=None) -> SarRun:
    """Run the sequential omnibus test on ``s1`` (VV and VH, linear intensity; dB is refused).

    ``enl``: equivalent number of looks; None: the stack's own (:attr:`Sentinel1.enl`, the
    ENL estimated for STAC mosaics), else ``config.S1_ENL`` (GRD IW 10 m);
    ``alpha``: significance level of every test;
    ``median_filter``: 3x3 median over the p-value images. ``output_dir``: where a stack
    opened in chunks has its maps written block by block while the test runs (required
    then; an in-memory stack is written by :meth:`SarRun.write`). Returns a :class:`SarRun`.
    """
    if s1 is None:
        raise ValueError("detect_changes needs a Sentinel-1 stack (see sentinel1_stack)")
    lazy = blocks.is_lazy(s1.vv) or blocks.is_lazy(s1.vh)
    if lazy and output_dir is None:
        raise ValueError(f"the Sentinel-1 stack in {s1.folder} is opened in chunks (too large for memory): "
                         "detect_changes needs output_dir, where cmap, smap, fmap and bmap are written block by block")
    if enl is None:
        enl = s1.enl if s1.enl is not None else config.S1_ENL
        print(f"equivalent number of looks: {enl:g} ("
              + ("recorded with the stack" if s1.enl is not None else "Sentinel-1 GRD IW 10 m") + ")")
    t0 = time.perf_counter()
    result = sar.omnibus(s1.vv, s1.vh, enl=enl, alpha=alpha, median_filter=median_filter)
    files = None
    if lazy:
        result, files = _write_blocks(result, s1, Path(output_dir))
    return SarRun(s1, result, period, orbit_pass, {"omnibus": time.perf_counter() - t0}, files=files)


def _write_blocks(result: sar.OmnibusResult, s1: Sentinel1, out: Path):
    """Write a lazy result's maps in one pass (counts streamed alongside); returns the result
    reading them back lazily (with its ``stats``) and {key: path}."""
    import dataclasses

    import dask.array as da

    labels = {"cmap": ["cmap"], "smap": ["smap"], "fmap": ["fmap"], "bmap": sar.interval_labels(s1.dates)}
    specs = [dict(path=out / f"{name}.tif", data=result.nan_masked(name), grid=s1.grid, band_names=names,
                  nodata=sar.NODATA, dtype="uint8") for name, names in labels.items()]
    graph = sar.count_graph(result)
    paths, values = blocks.write_rasters(specs, also=[*graph["counts"].values(), graph["class_counts"]])
    counts = dict(zip(graph["counts"], values[:-1]))
    stats = sar.stats_from_counts(counts, values[-1], s1.grid.height * s1.grid.width)
    files = dict(zip(labels, paths))
    chunks = s1.vv.chunksize[-1] if blocks.is_lazy(s1.vv) else s1.vh.chunksize[-1]
    maps = {name: blocks.open_raster(p, chunks=chunks)[0] for name, p in files.items()}
    valid = da.isfinite(maps["cmap"][0])  # 255 (no data) reads as NaN
    as_u8 = lambda a: da.where(valid, a, 0).astype(np.uint8)  # noqa: E731
    result = dataclasses.replace(result, cmap=as_u8(maps["cmap"][0]), smap=as_u8(maps["smap"][0]),
                                 fmap=as_u8(maps["fmap"][0]), bmap=as_u8(maps["bmap"]), valid=valid, stats=stats)
    return result, files
