"""LandTrendr on a whole scene: segment one index, fit the others to its vertices, map loss and gain.

:func:`fit_scene` is what notebook 02 calls. It runs the local port, or Earth Engine's
LandTrendr when the scene was downloaded from Earth Engine and ``use_gee`` is set, and
returns a :class:`LandTrendrRun` with the same content either way: fitted stacks by index,
the greatest-loss map and the greatest-gain map (bands ``yod``, ``mag``, ``dur``,
``preval``, ``rate``, ``dsnr``; NaN where no segment passes), written as
``<index>_fit.tif``, ``loss_map.tif`` and ``gain_map.tif``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import config
from ..io import Grid, copy_file, read_raster, write_raster, write_stack
from ..params import ChangeMapParams, LandTrendrParams
from .change import CHANGE_BANDS, change_map
from .segment import LandTrendrResult, fit_to_vertices, median_filter_stack, segment

MAP_FILES = {"loss": "loss_map.tif", "gain": "gain_map.tif"}


@dataclass
class LandTrendrRun:
    """LandTrendr outputs of one scene.

    Attributes
    ----------
    index : str
        The segmented index.
    years : int (T,)
    grid : Grid
    params : LandTrendrParams
    loss_params, gain_params : ChangeMapParams
    fitted : {index: float32 (T, H, W)}
        Fitted values (index x 1000): the segmented index and every fit-to-vertex index.
    loss, gain : {band: float32 (H, W)}
        Change maps, bands :data:`CHANGE_BANDS`, NaN where no segment passes. For a scene
        opened in chunks, these and ``fitted`` are dask arrays read from the written files.
    result : LandTrendrResult or None
        The local segmentation (None on Earth Engine).
    engine : {"local", "earth_engine"}
    seconds : {step: seconds}
    """

    index: str
    years: np.ndarray
    grid: Grid
    params: LandTrendrParams
    loss_params: ChangeMapParams
    gain_params: ChangeMapParams
    fitted: dict
    loss: dict
    gain: dict
    result: LandTrendrResult | None = None
    engine: str = "local"
    median_filter: bool = False
    seconds: dict = field(default_factory=dict)
    #: {key: path} of the outputs already written (block by block, for a scene opened in chunks)
    files: dict = field(default_factory=dict)
    #: {number of vertices: pixels}, when there is no in-memory ``result``
    vertex_counts: dict | None = None

    @property
    def n_pixels(self) -> int:
        return self.grid.height * self.grid.width

    def disturbance_years(self) -> tuple[np.ndarray, np.ndarray]:
        """Years of detection of the greatest loss and their pixel counts: (years, counts)."""
        yod = np.asarray(self.loss["yod"])  # one band (a chunked run's maps are read lazily)
        return np.unique(yod[np.isfinite(yod)].astype(int), return_counts=True)

    def most_frequent_disturbance_year(self) -> int | None:
        years, counts = self.disturbance_years()
        return int(years[np.argmax(counts)]) if len(counts) else None

    def area_by_year(self, delta: str = "loss") -> dict[int, float]:
        """Mapped area per year of detection in hectares: {year: ha} for ``delta`` "loss" or "gain"."""
        bands = self.loss if delta == "loss" else self.gain
        yod = np.asarray(bands["yod"])
        years = np.unique(yod[np.isfinite(yod)]).astype(int)
        return {int(y): round(self.grid.area_ha(yod == y), 2) for y in years}

    def example_pixel(self) -> tuple[int, int]:
        """(row, col) of the greatest loss magnitude (the scene's centre when nothing was lost)."""
        mag = np.asarray(self.loss["mag"])
        if not np.isfinite(mag).any():
            return self.grid.height // 2, self.grid.width // 2
        r, c = np.unravel_index(np.nanargmax(mag), mag.shape)
        return int(r), int(c)

    def summary(self) -> dict:
        def share(m):
            return round(float(np.isfinite(np.asarray(m["yod"])).mean()), 4)

        out = {
            "engine": self.engine,
            "index": self.index,
            "ftv_indices": [k for k in self.fitted if k != self.index],
            "years": [int(self.years[0]), int(self.years[-1])],
            "params": self.params.as_dict(),
            "loss_params": self.loss_params.as_dict(),
            "gain_params": self.gain_params.as_dict(),
            "n_pixels": self.n_pixels,
            "loss_fraction": share(self.loss),
            "gain_fraction": share(self.gain),
            "loss_median_magnitude": _nanmedian(self.loss["mag"]),
            "gain_median_magnitude": _nanmedian(self.gain["mag"]),
            "most_frequent_disturbance_year": self.most_frequent_disturbance_year(),
            "loss_area_ha_by_year": self.area_by_year("loss"),
            "gain_area_ha_by_year": self.area_by_year("gain"),
            "median_filter": self.median_filter,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }
        if self.result is not None:
            counts = np.bincount(self.result.n_vertices().ravel())
            out["vertex_count_distribution"] = {int(k): int(v) for k, v in enumerate(counts) if v}
            out["series_per_second"] = round(self.n_pixels / self.seconds["segment"]) if self.seconds.get("segment") else None
        elif self.vertex_counts is not None:  # block by block: segment, FTV, maps and writing in one pass
            out["vertex_count_distribution"] = dict(self.vertex_counts)
            out["series_per_second"] = round(self.n_pixels / self.seconds["blocks"]) if self.seconds.get("blocks") else None
            out["block_wise"] = True
        return out

    def write(self, output_dir) -> dict[str, Path]:
        """``<index>_fit.tif`` (int16 x 1000, bands yrYYYY), ``loss_map.tif``, ``gain_map.tif``
        (float32, bands yod..dsnr, NaN = none; tag ``delta``). Returns {key: path}.

        A run on a scene opened in chunks wrote its outputs while it ran; they are copied when
        ``output_dir`` is another folder."""
        out = Path(output_dir)
        if self.files:
            return {k: copy_file(p, out / p.name) for k, p in self.files.items()}
        written = {}
        for name, arr in self.fitted.items():
            written[f"{name.lower()}_fit"] = write_stack(out / f"{name.lower()}_fit.tif", arr, self.years, self.grid,
                                                         dtype="int16", name=f"{name}_fit",
                                                         scale=config.INDICES[name].scale)
        for delta, maps_, p in (("loss", self.loss, self.loss_params), ("gain", self.gain, self.gain_params)):
            written[f"{delta}_map"] = write_raster(
                out / MAP_FILES[delta], np.stack([maps_[b] for b in CHANGE_BANDS]), self.grid,
                band_names=list(CHANGE_BANDS), dtype="float32", nodata=np.nan,
                tags={"delta": delta, "index": self.index, "engine": self.engine, "params": p.as_dict()})
        return written


def _nanmedian(a) -> float | None:
    a = np.asarray(a)
    return round(float(np.nanmedian(a)), 1) if np.isfinite(a).any() else None


def fit_scene(scene, *, index=None, ftv=None, params: LandTrendrParams | None = None,
              loss: ChangeMapParams | None = None, gain: ChangeMapParams | None = None,
              median_filter: bool = False, use_gee: bool = False, download_dir=None, output_dir=None) -> LandTrendrRun:
    """Fit LandTrendr to every pixel of a :class:`~ltlib.scene.Scene` and map loss and gain.

    Parameters
    ----------
    scene : ltlib.scene.Scene
    index : str or None
        The index to segment; None: NDVI if present, else the first of
        :data:`ltlib.scene.INDEX_PREFERENCE` the scene has.
    ftv : list of str or None
        Indices fitted to the vertices of ``index``; None: every other index of the scene.
    params : LandTrendrParams
        Default: the seed's runParams.
    loss, gain : ChangeMapParams
        Default: ``ChangeMapParams.loss()`` and ``ChangeMapParams.gain()``.
    median_filter : bool
        3 x 3 median filter of the fitted stacks before the change maps (the seed's advice).
    use_gee : bool
        Run Earth Engine's LandTrendr instead of the local port. Needs a scene downloaded from
        Earth Engine (so the outputs share its grid) and ``download_dir``.
    output_dir : path or None
        Where a scene opened in chunks (``scene.is_lazy``) has its outputs written, block by
        block, while LandTrendr runs (required then); the run then reads them from there.

    Returns
    -------
    LandTrendrRun
    """
    params = params or LandTrendrParams()
    loss = loss or ChangeMapParams.loss()
    gain = gain or ChangeMapParams.gain()
    if loss.delta != "loss" or gain.delta != "gain":
        raise ValueError(f"loss and gain need delta 'loss' and 'gain', got {loss.delta!r} and {gain.delta!r}")
    index = scene.pick_index(index)
    ftv = scene.others(index, ftv)
    if use_gee and scene.source == "earth_engine":
        return _fit_on_earth_engine(scene, index, ftv, params, loss, gain, median_filter, download_dir)
    if use_gee:
        print(f"LandTrendr runs locally: the scene ({scene.source}) was not downloaded from Earth Engine, so "
              "Earth Engine's outputs would not share its grid")
    stack = scene.stack(index)
    distdir = config.INDICES[index].distdir
    if scene.is_lazy:
        return _fit_blocks(scene, index, ftv, params, loss, gain, median_filter, output_dir)
    seconds = {}
    t = time.perf_counter()
    result = segment(stack.data, stack.years, distdir=distdir, **params.as_dict())
    seconds["segment"] = time.perf_counter() - t
    fitted = {index: result.fitted}
    t = time.perf_counter()
    for name in ftv:
        fitted[name] = fit_to_vertices(scene.stack(name).data, stack.years, result.is_vertex)
    seconds["ftv"] = time.perf_counter() - t
    if median_filter:
        fitted = {k: median_filter_stack(v) for k, v in fitted.items()}
        result = LandTrendrResult(fitted[index], result.is_vertex, result.rmse, result.p_value, result.f_stat,
                                  result.years, result.source, result.image_shape, result.distdir)
    t = time.perf_counter()
    maps_ = {p.delta: change_map(result, **p.as_dict()) for p in (loss, gain)}
    seconds["change_maps"] = time.perf_counter() - t
    return LandTrendrRun(index, stack.years, stack.grid, params, loss, gain, fitted, maps_["loss"], maps_["gain"],
                         result, "local", median_filter, seconds)


def _fit_blocks(scene, index, ftv, params, loss, gain, median_filter, output_dir) -> LandTrendrRun:
    """:func:`fit_scene` block by block (:mod:`.chunked`): every output written as it is computed."""
    import dask.array as da

    from .. import blocks
    from .chunked import fit_blocks

    if output_dir is None:
        raise ValueError(f"the scene in {scene.folder} is opened in chunks (too large for memory): fit_scene needs "
                         "output_dir, where the fitted stacks and change maps are written block by block")
    out = Path(output_dir)
    names = [index, *ftv]
    t = time.perf_counter()
    res = fit_blocks([scene.stack(n).data for n in names], scene.years, distdir=config.INDICES[index].distdir,
                     params=params.as_dict(), loss=loss.as_dict(), gain=gain.as_dict(), median_filter=median_filter)
    specs = [blocks.stack_spec(out / f"{n.lower()}_fit.tif", f, scene.years, scene.grid, dtype="int16",
                               name=f"{n}_fit", scale=config.INDICES[n].scale) for n, f in zip(names, res["fitted"])]
    for delta, p in (("loss", loss), ("gain", gain)):
        specs.append(dict(path=out / MAP_FILES[delta], data=res[delta], grid=scene.grid, band_names=list(CHANGE_BANDS),
                          dtype="float32", nodata=np.nan,
                          tags={"delta": delta, "index": index, "engine": "local", "params": p.as_dict()}))
    n_vert = res["n_vertices"].astype(np.int64).ravel()
    paths, (counts,) = blocks.write_rasters(specs, also=[da.bincount(n_vert, minlength=len(scene.years) + 1)])
    seconds = {"blocks": time.perf_counter() - t}
    files = {f"{n.lower()}_fit": p for n, p in zip(names, paths)}
    files.update(loss_map=paths[-2], gain_map=paths[-1])
    chunks = scene.stack(index).data.chunksize[-1]
    fitted = {n: blocks.open_raster(files[f"{n.lower()}_fit"], chunks=chunks)[0] for n in names}
    maps_ = {}
    for delta in ("loss", "gain"):  # lazily: a band is read when it is used
        data, _, bands = blocks.open_raster(files[f"{delta}_map"], chunks=chunks)
        maps_[delta] = {b: data[bands.index(b)] for b in CHANGE_BANDS}
    return LandTrendrRun(index, scene.years, scene.grid, params, loss, gain, fitted, maps_["loss"], maps_["gain"],
                         None, "local", median_filter, seconds, files,
                         {int(k): int(v) for k, v in enumerate(counts) if v})


def _fit_on_earth_engine(scene, index, ftv, params, loss, gain, median_filter, download_dir) -> LandTrendrRun:
    from .. import gee

    if download_dir is None:
        raise ValueError("LandTrendr on Earth Engine needs download_dir for the downloads")
    t = time.perf_counter()
    # Earth Engine works in LT-GEE's units (Tasseled Cap x 10000), the scene in ltlib's (x 1000):
    # thresholds go there multiplied, values come back divided
    info = config.INDICES.get(index)
    factor = info.scale / gee.EE_INDICES[index].scale if info is not None else 1.0
    ee_loss, ee_gain = (replace(p, mag_min=None if p.mag_min is None else p.mag_min * factor,
                                preval_min=None if p.preval_min is None else p.preval_min * factor)
                        for p in (loss, gain))
    paths = gee.fit_landtrendr_to_dir(Path(download_dir) / "earth_engine", aoi=scene.aoi,
                                      start_year=int(scene.years[0]), end_year=int(scene.years[-1]), index=index,
                                      ftv=tuple(ftv), params=params, loss=ee_loss, gain=ee_gain)
    fitted = {}
    for name in (index, *ftv):
        s = _read_fitted(scene, paths[f"{name}_fit"], name)
        fitted[name] = median_filter_stack(s) if median_filter else s
    maps_ = {}
    for delta in ("loss", "gain"):
        data, grid, names = read_raster(paths[f"{delta}_map"])
        scene.check_grid(grid, paths[f"{delta}_map"], f"Earth Engine {delta} map")
        maps_[delta] = {b: data[names.index(b)] / (np.float32(factor) if b in ("mag", "preval", "rate") else 1)
                        for b in CHANGE_BANDS}
    return LandTrendrRun(index, scene.years, scene.grid, params, loss, gain, fitted, maps_["loss"], maps_["gain"],
                         None, "earth_engine", median_filter, {"earth_engine": time.perf_counter() - t})


def _read_fitted(scene, path, name) -> np.ndarray:
    """A downloaded fitted stack in ltlib's units (its ``scale`` tag -> ``config.INDICES``)."""
    from ..io import read_stack

    s = read_stack(path)
    scene.check_grid(s.grid, path, "Earth Engine fitted stack")
    if len(s.years) != len(scene.years) or np.any(s.years != scene.years):
        raise ValueError(f"{path} has years {s.years[0]}-{s.years[-1]}, the scene {scene.years[0]}-{scene.years[-1]}")
    info = config.INDICES.get(name)
    if info is not None and not np.isclose(s.scale, info.scale):
        return s.data * np.float32(s.scale / info.scale)
    return s.data
