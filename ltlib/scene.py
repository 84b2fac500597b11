"""One loader for every notebook: the bundled sample, a folder of your own stacks, or Earth Engine.

A *scene folder* is the layout every notebook reads and notebook 01 writes::

    <data_dir>/
      landsat/<index>.tif         one band per year (names yr1990 / yr_1990, or a 'years' tag);
                                  any CRS, pixel size and size; any subset of the indices;
                                  int16 index x 1000 or float physical values
      truth/landsat_truth.tif     optional: bands class, dist_year, dist_mag, gain_year, gain_mag
      sentinel1/s1_vv.tif, s1_vh.tif   optional: linear intensity, one band per date (YYYY-MM-DD)
      truth/s1_truth.tif, truth/s1_bmap_truth.tif   optional Sentinel-1 truth
      scene.json                  optional: provenance written by :meth:`Scene.write`

:func:`load` returns a :class:`Scene`: the stacks by index on one grid (stored units, index
x 1000, NaN gaps), the years, optional truth and Sentinel-1, and a one-line provenance.
Later notebooks read an earlier notebook's outputs through :meth:`Scene.read_output`, which
finds the file in that notebook's ``summary.json`` and refuses another grid or other years.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import blocks, config
from .blocks import is_lazy
from .io import (STACK_FILE, Grid, Stack, copy_file, inside, open_geotiff, read_json, read_raster, read_stack,
                 scale_tag, untagged_fill_warning, write_json, write_stack)

LANDSAT_DIR = "landsat"
S1_DIR = "sentinel1"
TRUTH_FILE = Path("truth") / "landsat_truth.tif"
S1_TRUTH_FILE = Path("truth") / "s1_truth.tif"
S1_BMAP_FILE = Path("truth") / "s1_bmap_truth.tif"
MANIFEST = "scene.json"
SCENE_JSON = "a scene's provenance (written by Scene.write)"
#: LandTrendr needs at least this many years (its ``min_observations_needed`` default).
MIN_YEARS = 6
#: Which index a step uses when the scene has several and none is asked for.
INDEX_PREFERENCE = ("NDVI", "NBR", "NDMI", "TCW", "TCG", "TCB")


class MissingInputError(ValueError):
    """A step needs data the scene does not have (the message says what and where)."""


@dataclass
class Sentinel1:
    """A Sentinel-1 VV/VH series: ``vv``, ``vh`` float32 (K, h, w) linear intensity, NaN gaps
    (numpy, or dask arrays when opened in chunks: :attr:`is_lazy`)."""

    vv: np.ndarray
    vh: np.ndarray
    dates: list[str]
    grid: Grid
    folder: Path
    truth: dict | None = None
    #: Equivalent number of looks recorded with the stack (tag ``enl_estimate`` of s1_vv.tif,
    #: e.g. STAC mosaics averaged to 30 m); None: not recorded (GRD IW 10 m: 4.4).
    enl: float | None = None

    @property
    def n_images(self) -> int:
        return self.vv.shape[0]

    @property
    def is_lazy(self) -> bool:
        """True when ``vv`` / ``vh`` are dask arrays (the omnibus test then runs block by block)."""
        return is_lazy(self.vv)


@dataclass
class Scene:
    """Annual stacks of one area on one grid, with what else the folder holds.

    Attributes
    ----------
    stacks : {index: Stack}
        Float32 (T, H, W) in stored units (index x 1000), NaN where there is no value.
    truth : dict or None
        ``class``, ``dist_year``, ``dist_mag``, ``gain_year``, ``gain_mag`` (H, W) int16 and
        ``grid``, when the folder has ``truth/landsat_truth.tif``.
    s1 : Sentinel1 or None
    source : {"sample", "folder", "earth_engine", "stac"}
    folder : Path
        Where the stacks were read from.
    provenance : str
        One line: what the scene is and where it came from.
    notes : list of str
        Conversions made while reading (each also issued as a warning).
    aoi : (west, south, east, north) degrees
    """

    stacks: dict[str, Stack]
    truth: dict | None
    s1: Sentinel1 | None
    source: str
    folder: Path
    provenance: str
    notes: list[str] = field(default_factory=list)
    aoi: tuple | None = None

    # -- what is there
    @property
    def grid(self) -> Grid:
        return next(iter(self.stacks.values())).grid

    @property
    def years(self) -> np.ndarray:
        return next(iter(self.stacks.values())).years

    @property
    def indices(self) -> list[str]:
        return list(self.stacks)

    @property
    def has_truth(self) -> bool:
        return self.truth is not None

    @property
    def is_lazy(self) -> bool:
        """True when the stacks are dask arrays (opened in chunks; steps run block by block)."""
        return any(is_lazy(s.data) for s in self.stacks.values())

    def has(self, *indices) -> bool:
        return all(i.upper() in self.stacks for i in indices)

    def stack(self, index: str) -> Stack:
        """The stack of ``index``; a clear error when the scene does not have it."""
        key = str(index).upper()
        if key not in self.stacks:
            raise MissingInputError(f"{self.folder / LANDSAT_DIR} has no {key} stack ({key.lower()}.tif); "
                                    f"this scene has {', '.join(self.stacks)}")
        return self.stacks[key]

    def pick_index(self, index=None, *, purpose="this step") -> str:
        """``index`` if given (checked), else the first of :data:`INDEX_PREFERENCE` present."""
        if index is not None:
            return _check_in(self, index)
        for name in INDEX_PREFERENCE:
            if name in self.stacks:
                return name
        return self.indices[0]

    def others(self, index: str, wanted=None) -> list[str]:
        """The scene's indices other than ``index`` (those of ``wanted`` only, when given; each checked)."""
        if wanted is None:
            return [i for i in self.indices if i != index.upper()]
        return [_check_in(self, i) for i in wanted if str(i).upper() != index.upper()]

    def require(self, *indices, why: str) -> None:
        """Raise :class:`MissingInputError` naming the missing indices and ``why`` they are needed."""
        missing = [i.upper() for i in indices if i.upper() not in self.stacks]
        if missing:
            raise MissingInputError(f"{why} needs {', '.join(missing)}: {self.folder / LANDSAT_DIR} has only "
                                    f"{', '.join(self.stacks)}")

    def summary(self) -> dict:
        g = self.grid
        return {
            "source": self.source,
            "provenance": self.provenance,
            "folder": str(self.folder),
            "indices": self.indices,
            "years": [int(self.years[0]), int(self.years[-1])],
            "n_years": int(len(self.years)),
            "height": g.height,
            "width": g.width,
            "pixel_size_m": round(float(g.pixel_size_m[0]), 3),
            "pixel_area_m2": round(float(g.pixel_areas_m2().mean()), 3),
            "crs": g.crs.to_string(),
            "bounds_lonlat": [round(v, 6) for v in g.bounds_lonlat()],
            "has_truth": self.has_truth,
            "has_sentinel1": self.s1 is not None,
            "notes": list(self.notes),
        }

    # -- checks against the scene
    def check_grid(self, grid: Grid, path, what: str = "raster") -> None:
        """Refuse a raster of another grid, naming the file and both grids."""
        g = self.grid
        if not grid.same_as(g):
            raise ValueError(
                f"{path} ({what}) is on another grid than the scene in {self.folder}: {grid.describe()}; the "
                f"scene is {g.describe()}. It was made from another scene: rerun the notebook that wrote it on "
                "this data_dir")

    def read_output(self, step_dir, key: str, *, stack: bool = False, chunks="auto"):
        """Read the output ``key`` that an earlier notebook listed in ``<step_dir>/summary.json``.

        Returns a :class:`Stack` (``stack=True``, years checked) or ``(data (B, H, W), names)``.
        The grid must be the scene's: another grid or other years raise ValueError naming the
        file. Prints one line naming the file used.

        ``chunks``: ``"auto"`` opens the output lazily (dask, :mod:`ltlib.blocks`) in the
        scene's chunks when the scene is lazy (:attr:`is_lazy`), else reads it into memory;
        None reads it into memory; an int opens it lazily in chunks of that side (px).
        """
        chunks = self._output_chunks(chunks)
        step_dir = Path(step_dir)
        manifest = step_dir / "summary.json"
        if not manifest.exists():
            raise FileNotFoundError(f"{step_dir} has no summary.json: run the notebook that writes it first")
        files = read_json(manifest, "the summary of a notebook run").get("files", {})
        if not isinstance(files, dict):
            raise ValueError(f"{manifest}: its 'files' entry is a JSON {type(files).__name__}, expected an object "
                             "{name: file in that folder}")
        if key not in files:
            raise MissingInputError(f"{manifest} lists no output {key!r} (it lists {', '.join(files) or 'none'})")
        path = inside(step_dir, files[key], f"{manifest}: output {key!r}")
        if stack:
            s = read_stack(path, chunks=chunks)
            self.check_grid(s.grid, path, key)
            if len(s.years) != len(self.years) or np.any(s.years != self.years):
                raise ValueError(f"{path} ({key}) has years {s.years[0]}-{s.years[-1]} ({len(s.years)}), the scene "
                                 f"in {self.folder} has {self.years[0]}-{self.years[-1]} ({len(self.years)})")
            print(f"using {path}")
            return s
        data, grid, names = read_raster(path) if chunks is None else blocks.open_raster(path, chunks=chunks)
        self.check_grid(grid, path, key)
        print(f"using {path}")
        return data, names

    def _output_chunks(self, chunks):
        """The chunk side (px) to read an earlier notebook's output with, or None (memory)."""
        if chunks is None:
            return None
        if isinstance(chunks, str):
            if chunks != "auto":
                raise ValueError(f"chunks must be 'auto', None (in memory) or a chunk side in px, got {chunks!r}")
            lazy = [s.data for s in self.stacks.values() if is_lazy(s.data)]
            return int(lazy[0].chunksize[-1]) if lazy else None
        return blocks.check_chunks(chunks)

    # -- writing a complete scene folder
    def write(self, out_dir) -> dict[str, Path]:
        """Leave a complete scene folder in ``out_dir`` (stacks, truth, Sentinel-1, scene.json).

        Files read unchanged are copied byte for byte; converted stacks are written in
        stored units (int16 x 1000). Every file is written atomically. Returns {key: path}.
        """
        out = Path(out_dir)
        written: dict[str, Path] = {}
        for name, s in self.stacks.items():
            target = out / LANDSAT_DIR / f"{name.lower()}.tif"
            if s.meta.get("_converted") or s.path is None:
                write = blocks.write_stack if is_lazy(s.data) else write_stack  # lazy: block by block
                written[f"landsat_{name.lower()}"] = write(target, s.data, s.years, s.grid, dtype="int16", name=name,
                                                           scale=s.scale)
            else:
                written[f"landsat_{name.lower()}"] = copy_file(s.path, target)
        for rel in (TRUTH_FILE, S1_TRUTH_FILE, S1_BMAP_FILE):
            src = self.folder / rel
            if src.exists():
                written[rel.stem] = copy_file(src, out / rel)
        if self.s1 is not None:
            for pol in ("vv", "vh"):
                written[f"s1_{pol}"] = copy_file(self.s1.folder / f"s1_{pol}.tif", out / S1_DIR / f"s1_{pol}.tif")
        origin = self.folder
        if (self.folder / MANIFEST).exists():
            origin = read_json(self.folder / MANIFEST, SCENE_JSON).get("origin", str(self.folder))
        info = {"source": self.source, "origin": str(origin), "provenance": self.provenance, "aoi": self.aoi,
                "indices": self.indices, "years": [int(y) for y in self.years],
                "files": {k: str(p.relative_to(out)) for k, p in written.items()}}
        written["scene"] = write_json(out / MANIFEST, info)
        return written


def _check_in(scene: Scene, index) -> str:
    scene.stack(index)
    return str(index).upper()


# --------------------------------------------------------------------------- reading stacks
def _index_of(path: Path) -> str:
    return path.stem.upper()


def _stack_stats(data, fill) -> dict:
    """What :func:`read_index_stack` decides on, in one pass over ``data`` (T, H, W), numpy or
    dask: ``n_fill`` values equal to ``fill`` (None: not counted), then of the other values
    ``max_abs``, ``min``, ``max`` (NaN when none is finite) and ``finite_per_band`` (T,)."""
    lazy = is_lazy(data)
    if lazy:
        import dask.array as xp
    else:
        return _stack_stats_numpy(data, fill)
    hit = data == np.float32(fill) if fill is not None else None
    values = data if hit is None else xp.where(hit, np.nan, data)
    finite = xp.isfinite(values)
    stats = {"n_fill": hit.sum() if hit is not None else 0,
             "max": xp.where(finite, values, -np.inf).max(), "min": xp.where(finite, values, np.inf).min(),
             "finite_per_band": finite.sum(axis=(1, 2))}
    if lazy:
        stats = dict(zip(stats, blocks.compute(*stats.values(), progress=False)))
    stats = {k: np.asarray(v) for k, v in stats.items()}
    if not stats["finite_per_band"].any():
        stats["min"] = stats["max"] = np.nan
    stats["max_abs"] = max(abs(stats["min"]), abs(stats["max"])) if np.isfinite(stats["max"]) else 0.0
    return stats


def _stack_stats_numpy(data, fill) -> dict:
    """:func:`_stack_stats` of an in-memory stack, band by band: the same numbers without
    the whole-stack temporaries (a float32 copy and three boolean masks)."""
    n_fill, lo, hi = 0, np.inf, -np.inf
    finite_per_band = np.zeros(len(data), np.int64)
    for t, band in enumerate(data):
        finite = np.isfinite(band)
        if fill is not None:
            hit = band == np.float32(fill)
            n_fill += int(np.count_nonzero(hit))
            finite &= ~hit
        finite_per_band[t] = np.count_nonzero(finite)
        if finite_per_band[t]:
            lo = min(lo, float(np.min(band, where=finite, initial=np.inf)))
            hi = max(hi, float(np.max(band, where=finite, initial=-np.inf)))
    stats = {"n_fill": np.asarray(n_fill), "max": np.asarray(np.float32(hi)), "min": np.asarray(np.float32(lo)),
             "finite_per_band": finite_per_band}
    if not finite_per_band.any():
        stats["min"] = stats["max"] = np.nan
    stats["max_abs"] = max(abs(stats["min"]), abs(stats["max"])) if np.isfinite(stats["max"]) else 0.0
    return stats


def _set_nan(data, where):
    """``data`` with NaN where ``where`` (in place for numpy: no copy of a large stack)."""
    if is_lazy(data):
        import dask.array as dsa

        return dsa.where(where, np.nan, data)
    data[where] = np.nan
    return data


def _times(data, factor):
    """``data * factor`` (in place for numpy)."""
    if is_lazy(data):
        return data * np.float32(factor)
    data *= np.float32(factor)
    return data


def read_index_stack(path, *, chunks=None) -> tuple[Stack, list[str]]:
    """Read one index stack in any of the accepted forms; returns (stack in index x 1000, notes).

    - int16 (or other integer) with a ``scale`` tag: as written by ltlib, LT-GEE or geemap;
      without a tag, integers are index x 1000 (LT-GEE's convention) and a note says so;
      stacks without a nodata tag that hold -32768 (integers: the type's minimum) have those
      values treated as nodata, with a warning.
    - float values beyond +-2 without a ``scale`` tag are index x 1000 too (a note says so).
    - float with physical values (|value| <= 2, e.g. NDVI -1..1) and no ``scale`` tag:
      multiplied by 1000, with a warning that says so.

    ``chunks`` (px): open lazily (``data`` a dask array, :mod:`ltlib.blocks`); the decisions
    above then take one streamed pass over the file, and the conversions are applied block by
    block.
    """
    path = Path(path)
    name = _index_of(path)
    info = config.INDICES.get(name)
    notes: list[str] = []
    with open_geotiff(path, STACK_FILE) as src:
        dtype = np.dtype(src.dtypes[0])
        tags = src.tags()
        nodata_tag = src.nodata
    s = read_stack(path, chunks=chunks, untagged_fill=False)  # the fill is handled (and counted) here
    # the usual fill values of int16 exports (and of float copies of them)
    fill = None
    if nodata_tag is None:
        fill = np.iinfo(dtype).min if dtype.kind in "iu" else config.NODATA_INT16
    st = _stack_stats(s.data, fill)
    if st["n_fill"]:
        s.data = _set_nan(s.data, s.data == np.float32(fill))
        notes.append(untagged_fill_warning(path, int(st["n_fill"]), fill))
    if "scale" in tags:
        scale = scale_tag(path, tags)
    elif dtype.kind == "f" and st["max_abs"] <= 2.0:
        s.data = _times(s.data, 1000)
        scale = 0.001
        s.meta["_converted"] = True
        notes.append(f"{path}: float values in physical units ({st['min']:.3f} .. {st['max']:.3f}) were "
                     "multiplied by 1000 (index x 1000, ltlib's stored units)")
    else:
        scale = info.scale if info else 1.0
        notes.append(f"{path}: no 'scale' tag; {dtype.name} values read as {name} x {1 / scale:g}")
    if info is not None and not np.isclose(scale, info.scale):
        # e.g. x 10000 reflectance-based values: bring them to ltlib's x 1000
        factor = np.float32(scale / info.scale)
        s.data = _times(s.data, factor)
        notes.append(f"{path}: scale tag {scale:g}; values multiplied by {factor:g} to {name} x {1 / info.scale:g}")
        s.meta["_converted"] = True
        scale = info.scale
    s.scale = scale
    s.name = name
    s.meta["_finite_per_band"] = st["finite_per_band"]
    if not st["finite_per_band"].any():
        raise ValueError(f"{path}: every value is nodata ({s.data.shape[0]} bands of {s.grid.height} x "
                         f"{s.grid.width} px)")
    return s, notes


def _read_landsat(folder: Path, indices, years, chunks="auto") -> tuple[dict[str, Stack], list[str], list[str]]:
    ldir = folder / LANDSAT_DIR
    if not ldir.is_dir():
        raise FileNotFoundError(f"{ldir} does not exist: a scene folder holds landsat/<index>.tif stacks "
                                "(see ltlib.scene); data_dir was " + str(folder))
    found = {p.stem.upper(): p for p in sorted(ldir.glob("*.tif")) if not p.name.startswith(".")}
    if not found:
        raise FileNotFoundError(f"{ldir} has no .tif stacks (expected e.g. ndvi.tif, nbr.tif)")
    # known indices in ltlib's order; other files are named, not silently skipped
    files = {i: found[i] for i in config.INDICES if i in found}
    others = [found[k].name for k in found if k not in files]
    if indices is None:
        wanted = list(files)
        if others:
            print(f"ignored in {ldir}: {', '.join(others)} (not an index ltlib knows: {', '.join(config.INDICES)})")
        if not wanted:
            raise FileNotFoundError(f"{ldir} has no stack of a known index (found {', '.join(others)}; expected "
                                    f"e.g. ndvi.tif, nbr.tif)")
    else:
        wanted = [str(i).upper() for i in indices]
        unknown = [i for i in wanted if i not in config.INDICES]
        if unknown:
            raise ValueError(f"unknown index {', '.join(unknown)}: ltlib knows {', '.join(config.INDICES)}")
    present = [i for i in wanted if i in files]
    missing = [i for i in wanted if i not in files]
    if not present:
        raise FileNotFoundError(f"{ldir} has none of {', '.join(wanted)} (it has {', '.join(found)})")
    stacks, notes = {}, []
    chunks = _chunks_for([files[name] for name in present], chunks)
    for name in present:
        s, n = read_index_stack(files[name], chunks=chunks)
        notes += n
        stacks[name] = s
    first_name, first = next(iter(stacks.items()))
    for name, s in stacks.items():
        if not s.grid.same_as(first.grid):
            raise ValueError(f"{s.path} and {first.path} are on different grids ({s.grid.describe()} vs "
                             f"{first.grid.describe()}): every stack of a scene must share one grid")
        if len(s.years) != len(first.years) or np.any(s.years != first.years):
            raise ValueError(f"{s.path} has years {s.years[0]}-{s.years[-1]} ({len(s.years)} bands), {first.path} "
                             f"{first.years[0]}-{first.years[-1]} ({len(first.years)}): stacks of a scene need the "
                             "same years")
    if years is not None:
        y0 = int(first.years[0] if years[0] is None else years[0])
        y1 = int(first.years[-1] if years[-1] is None else years[-1])
        sel = (first.years >= y0) & (first.years <= y1)
        if not sel.any():
            raise ValueError(f"years {y0}-{y1} are not in {ldir} (its stacks have {first.years[0]}-{first.years[-1]})")
        for s in stacks.values():
            s.data, s.years = s.data[sel], s.years[sel]
            s.meta["_finite_per_band"] = s.meta["_finite_per_band"][sel]
            if not s.meta["_finite_per_band"].any():
                raise ValueError(f"{s.path}: every value of the years {y0}-{y1} is nodata; choose other years "
                                 f"(start_year, end_year)")
    n_years = len(first.years)
    if n_years < MIN_YEARS:
        raise ValueError(f"{first.path}: {n_years} years ({first.years.tolist()}); LandTrendr and the trajectory "
                         f"steps need at least {MIN_YEARS}")
    return stacks, missing, notes


def _chunks_for(paths, chunks):
    """The chunk side (px) to open ``paths`` with, or None to read them into memory.

    ``chunks='auto'``: lazily in :data:`ltlib.blocks.CHUNK_PX` chunks when the stacks would
    take more than :data:`ltlib.config.IN_MEMORY_MAX_BYTES` as float32, else in memory (the
    sample: 8 MB per index)."""
    if chunks is None:
        return None
    if isinstance(chunks, str):
        if chunks != "auto":
            raise ValueError(f"chunks must be 'auto', None (in memory) or a chunk side in px, got {chunks!r}")
        total = 0
        for p in paths:
            with open_geotiff(p, STACK_FILE) as src:
                total += src.count * src.height * src.width * 4
        if total <= config.IN_MEMORY_MAX_BYTES:
            return None
        print(f"{len(paths)} stack(s) of {total / 2**30:.1f} GB as float32 (> {config.IN_MEMORY_MAX_BYTES / 2**30:g} GB): "
              f"opened lazily in {blocks.CHUNK_PX} x {blocks.CHUNK_PX} px chunks, processed block by block")
        return blocks.CHUNK_PX
    return blocks.check_chunks(chunks)


def _read_truth(folder: Path, grid: Grid) -> dict | None:
    path = folder / TRUTH_FILE
    if not path.exists():
        return None
    data, tgrid, names = read_raster(path)
    if not tgrid.same_as(grid):
        raise ValueError(f"{path} is not on the grid of the stacks in {folder / LANDSAT_DIR} "
                         f"({tgrid.describe()} vs {grid.describe()})")
    out = {n: np.nan_to_num(data[i]).astype(np.int16) for i, n in enumerate(names)}
    out["grid"] = tgrid
    return out


def load_sentinel1(folder, *, landsat_grid: Grid | None = None, chunks=None) -> Sentinel1 | None:
    """``<folder>/s1_vv.tif`` and ``s1_vh.tif`` (and truth beside, when ``folder`` is a scene's
    ``sentinel1/``); None when absent. The two must share grid and dates; with ``landsat_grid``
    the Sentinel-1 area must overlap the Landsat scene.

    ``chunks``: None reads into memory; an int opens the stacks (and truth) lazily in chunks of
    that side (px), every date in each chunk (:func:`ltlib.blocks.open_raster`); "auto" does
    so when both stacks exceed :data:`ltlib.config.IN_MEMORY_MAX_BYTES` as float32 (as
    :func:`load` does for Landsat stacks)."""
    folder = Path(folder)
    vv_path, vh_path = folder / "s1_vv.tif", folder / "s1_vh.tif"
    if not vv_path.exists() and not vh_path.exists():
        return None
    for p in (vv_path, vh_path):
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing: a Sentinel-1 stack needs both s1_vv.tif and s1_vh.tif")
    chunks = _chunks_for([vv_path, vh_path], chunks)
    if chunks is None:
        read = read_raster
    else:
        def read(path):  # lazily, NaN for nodata like read_raster
            return blocks.open_raster(path, chunks=chunks)
    vv, grid, dates = read(vv_path)
    vh, grid_vh, dates_vh = read(vh_path)
    if not grid.same_as(grid_vh):
        raise ValueError(f"{vv_path} and {vh_path} are on different grids ({grid.describe()} vs "
                         f"{grid_vh.describe()})")
    if dates != dates_vh:
        raise ValueError(f"{vv_path} and {vh_path} have different dates ({len(dates)}: {dates[0]}..{dates[-1]} vs "
                         f"{len(dates_vh)}: {dates_vh[0]}..{dates_vh[-1]}); both need the same images")
    if landsat_grid is not None:
        w, s, e, n = grid.bounds_lonlat()
        lw, ls, le, ln = landsat_grid.bounds_lonlat()
        if w >= le or e <= lw or s >= ln or n <= ls:
            raise ValueError(f"{vv_path} covers lon {w:.4f}..{e:.4f}, lat {s:.4f}..{n:.4f}, outside the Landsat "
                             f"scene (lon {lw:.4f}..{le:.4f}, lat {ls:.4f}..{ln:.4f})")
    truth = None
    root = folder.parent
    if (root / S1_TRUTH_FILE).exists() and (root / S1_BMAP_FILE).exists():
        tdata, tgrid, tnames = read(root / S1_TRUTH_FILE)
        bmap, bgrid, _ = read(root / S1_BMAP_FILE)
        if not (tgrid.same_as(grid) and bgrid.same_as(grid)):
            raise ValueError(f"{root / S1_TRUTH_FILE} is not on the grid of {vv_path}")
        truth = {n: tdata[i].astype(np.uint8) for i, n in enumerate(tnames)}
        truth["bmap"] = bmap.astype(np.uint8)
        truth["grid"] = tgrid
    with open_geotiff(vv_path, "a Sentinel-1 stack") as src:
        enl = src.tags().get("enl_estimate")
    return Sentinel1(vv, vh, list(dates), grid, folder, truth, float(enl) if enl not in (None, "nan") else None)


def _describe(source: str, folder: Path, stacks: dict, truth, s1, manifest: dict | None) -> str:
    first = next(iter(stacks.values()))
    g = first.grid
    what = {"sample": "SIMULATED sample scene", "folder": "own stacks",
            "earth_engine": "Earth Engine composites", "stac": "STAC composites"}[source]
    where = f"in {folder}"
    if manifest and manifest.get("origin") and Path(manifest["origin"]).resolve() != folder.resolve():
        where = f"from {manifest['origin']}, copied to {folder}"
    extras = [x for x, ok in (("truth", truth is not None), ("Sentinel-1", s1 is not None)) if ok]
    return (f"{what} {where}: {', '.join(stacks)}, {first.years[0]}-{first.years[-1]} ({len(first.years)} years), "
            f"{g.height} x {g.width} px of {g.pixel_text()}, {g.crs.to_string()}"
            + (f", with {' and '.join(extras)}" if extras else ", no truth, no Sentinel-1"))


SOURCES = ("sample", "folder", "earth_engine", "stac")


def _non_finite(obj) -> bool:
    """True when a JSON value holds NaN or +-Infinity anywhere (Python's json reads both)."""
    if isinstance(obj, float):
        return not np.isfinite(obj)
    if isinstance(obj, dict):
        return any(_non_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_non_finite(v) for v in obj)
    return False


def read_manifest(folder) -> dict | None:
    """``<folder>/scene.json`` checked (None when absent): an object without NaN or infinite
    values, ``source`` one of :data:`SOURCES`, ``aoi`` a (west, south, east, north) box in
    degrees or a GeoJSON geometry, ``years`` whole years. Anything else raises ValueError naming
    the file and the entry (never quoting it). ``source: earth_engine`` or ``stac`` is kept only when the
    file lists the folder's stacks as a download writes them (:meth:`Scene.write`); a hand-written
    label on a folder of one's own stacks is read as ``folder``, with a warning."""
    from .params import _BAD, Param

    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    info = read_json(path, SCENE_JSON)
    if _non_finite(info):
        raise ValueError(f"{path} holds NaN or infinite numbers; expected {SCENE_JSON}")
    if "source" in info and info["source"] not in SOURCES:
        raise ValueError(f"{path}: its 'source' is not one of {', '.join(SOURCES)}")
    if info.get("aoi") is not None and Param("aoi")._checked(info["aoi"]) is _BAD:
        raise ValueError(f"{path}: its 'aoi' is not a (west, south, east, north) box in degrees (west < east, "
                         "south < north) or a GeoJSON geometry")
    years = info.get("years")
    if years is not None and (not isinstance(years, list) or not years or not all(
            isinstance(y, int) and not isinstance(y, bool) and 1900 <= y <= 2100 for y in years)):
        raise ValueError(f"{path}: its 'years' is not a list of years; expected {SCENE_JSON}")
    if info.get("source") in ("earth_engine", "stac"):
        files = info.get("files") if isinstance(info.get("files"), dict) else {}
        stacks = [f for k, f in files.items() if str(k).startswith("landsat_") and isinstance(f, str)]
        ok = bool(stacks) and info.get("aoi") is not None and years is not None
        try:
            ok = ok and all(inside(folder, f, str(path)).is_file() for f in stacks)
        except ValueError:
            ok = False
        if not ok:
            warnings.warn(f"{path} says source '{info['source']}' but is not the record of a download here (it lists "
                          "no stacks of this folder, or no area and years): the folder is read as your own stacks "
                          "(source 'folder')", UserWarning, stacklevel=3)
            info = {**info, "source": "folder"}
    return info


class EarthEngineUnavailableError(RuntimeError):
    """An area was asked for on Earth Engine, which is not available (no package, no credentials,
    no connection); nothing else is used in its place."""


def _earth_engine_manifest(data_dir) -> dict | None:
    """scene.json of an Earth Engine download in ``data_dir`` (notebook 01's output), or None."""
    if data_dir is None:
        return None
    info = read_manifest(data_dir)
    return info if info and info.get("source") == "earth_engine" and info.get("aoi") else None


def _aoi_text(aoi) -> str:
    if isinstance(aoi, (list, tuple)) and len(aoi) == 4:
        return "(" + ", ".join(f"{float(v):g}" for v in aoi) + ")"
    return "given as GeoJSON"


def _same_request(info: dict, aoi, years, indices) -> bool:
    try:
        same_aoi = np.allclose(np.asarray(info["aoi"], float), np.asarray(aoi, float))
    except (TypeError, ValueError):  # a GeoJSON AOI: compare as given
        same_aoi = info["aoi"] == aoi
    return bool(same_aoi and info["years"][0] == years[0] and info["years"][-1] == years[1]
                and set(indices) <= set(info["indices"]))


def load(data_dir=None, *, indices=None, use_gee: bool = False, aoi=None, years=None, ee_project=None,
         llr_asset=None, download_dir=None, quiet: bool = False, chunks="auto", source=None, stac_url=None,
         composite=None) -> Scene:
    """Load the scene every notebook works on.

    Parameters
    ----------
    data_dir : path
        A scene folder (the sample ``data/sample``, your own folder, or notebook 01's output).
        With ``use_gee`` it is the fallback when Earth Engine is not available.
    indices : list of str or None
        Indices wanted (e.g. ``["NDVI", "NBR"]``); None: every stack in the folder. Wanted
        indices the folder does not have are reported in one line (steps say what they need).
    use_gee : bool
        Build annual composites for ``aoi`` and ``years`` on Earth Engine and download them
        into ``download_dir`` (a scene folder), then read that.
    aoi : (west, south, east, north) degrees, GeoJSON or None: the area of an Earth Engine
        scene in ``data_dir`` (notebook 01's output), else the seed's Bingham Canyon box.
    years : (first, last) or None
        Keep these years only, either may be None (Earth Engine: the years to build; default
        those of an Earth Engine scene in ``data_dir``, else 1972-2022).
    ee_project : str or None
        Google Cloud project for Earth Engine (else ``EE_PROJECT``).
    llr_asset : str or None
        LandsatLinkr asset for the MSS years on Earth Engine.
    download_dir : path
        Where Earth Engine downloads go (required with ``use_gee``).
    source : None or "stac"
        "stac": annual composites of Landsat Collection 2 Level-2 for ``aoi`` and ``years`` from
        ``stac_url`` (no account), built into ``download_dir`` (:mod:`ltlib.stac`); a folder
        (``data_dir`` or ``download_dir``) holding the same request is used as it is.
    stac_url : str or path
        A STAC API (default Planetary Computer's) or a local ``catalog.json``.
    composite : dict or None
        STAC composite options: ``season``, ``method``, ``mask``, ``sensors``, ``sr_type``,
        ``harmonize`` (those of :func:`ltlib.gee.composites.annual_composites`; default LT-GEE's).
    chunks : "auto", int or None
        "auto": scenes whose stacks exceed :data:`ltlib.config.IN_MEMORY_MAX_BYTES` as
        float32 (a whole Landsat scene) are opened lazily, chunked in space with every year
        in each chunk, and every step runs block by block (:mod:`ltlib.blocks`); smaller
        ones (the sample) are read into memory. An int: lazily in chunks of that side (px).
        None: always in memory. The Sentinel-1 stacks follow the same rule on their own
        size (:func:`load_sentinel1`).

    Returns
    -------
    Scene
    """
    folder = None  # source: None until the folder says, or 'stac'
    if isinstance(indices, str):  # papermill's -p indices NDVI gives a string, not a list
        raise ValueError(f"indices must be a list of index names such as ['NDVI', 'NBR'], got the string {indices!r} "
                         f"(papermill: -y \"indices: [{indices}]\")")
    if years is not None and (isinstance(years, (str, int)) or len(years) != 2):
        raise ValueError(f"years must be (first, last), either may be None, got {years!r}")
    if years is not None and all(y is None for y in years):
        years = None
    if source not in (None, "stac"):
        raise ValueError(f"source must be None (data_dir, or Earth Engine with use_gee) or 'stac', got {source!r}")
    if source == "stac":
        from .stac.scene_source import collect_scene

        if download_dir is None:
            raise ValueError("source='stac' needs download_dir (the notebook's output_dir) for the composites")
        aoi = config.AOI_BBOX if aoi is None else aoi
        folder = collect_scene(download_dir, aoi=aoi, years=years, indices=indices, stac_url=stac_url,
                               composite=composite, earlier=data_dir)
        years = None
    elif use_gee:
        from . import gee

        if download_dir is None:
            raise ValueError("use_gee=True needs download_dir (the notebook's output_dir) for the downloads")
        if gee.initialize(ee_project):
            earlier = _earth_engine_manifest(data_dir)
            if earlier is not None and aoi is None:
                aoi = earlier["aoi"]  # the area notebook 01 downloaded ...
            if earlier is not None and years is None:
                years = (earlier["years"][0], earlier["years"][-1])  # ... and its years
            y0, y1 = (config.START_YEAR, config.END_YEAR) if years is None else (years[0], years[-1])
            y0, y1 = int(config.START_YEAR if y0 is None else y0), int(config.END_YEAR if y1 is None else y1)
            aoi = config.AOI_BBOX if aoi is None else aoi
            # a LandsatLinkr asset holds only its FTV bands (default TCB, TCG, TCW)
            default = gee.LLR_DEFAULT_FTV if llr_asset is not None else config.SAMPLE_INDICES
            want = tuple(i.upper() for i in (indices or default))
            if earlier is not None and _same_request(earlier, aoi, (y0, y1), want):
                folder = Path(data_dir)
                print(f"using the Earth Engine composites already in {folder} (same area and years)")
            else:
                folder = Path(download_dir)
                gee.collect_landsat_to_dir(folder / LANDSAT_DIR, aoi=aoi, start_year=y0, end_year=y1, indices=want,
                                           llr_asset=llr_asset)
            source, years = "earth_engine", None
        elif aoi is not None:
            earlier = _earth_engine_manifest(data_dir)
            if earlier is None or not _same_request(earlier, aoi, (earlier["years"][0], earlier["years"][-1]),
                                                    earlier.get("indices") or ()):
                # never another area in its place (e.g. the sample): the user asked for this one
                raise EarthEngineUnavailableError(
                    f"use_gee=True for the area {_aoi_text(aoi)}, but Earth Engine is not available (see the line "
                    "above: the earthengine-api package, credentials from `earthengine authenticate` and a Cloud "
                    "project are needed, docs/earth_engine.md); data_dir "
                    f"{data_dir} is not a download of this area, so it is not used in its place")
            print(f"Earth Engine not available: using the composites of this area already in {data_dir}")
        else:
            print(f"Earth Engine not available: using {data_dir} instead")
    if folder is None:
        if data_dir is None:
            raise ValueError("give data_dir (a scene folder such as ../data/sample) or use_gee=True")
        folder = Path(data_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"data_dir {folder} is not a folder (absolute: {folder.resolve()})")
    manifest = read_manifest(folder)
    if source is None:
        if (folder / "sample_manifest.json").exists():
            source = "sample"
        elif manifest and manifest.get("source") in ("sample", "earth_engine", "folder", "stac"):
            source = manifest["source"]
        else:
            source = "folder"
    stacks, missing, notes = _read_landsat(folder, indices, years, chunks)
    for n in notes:
        warnings.warn(n, stacklevel=2)
    if source == "stac" and (folder / LANDSAT_DIR / "stac_summary.json").exists():  # gaps, zones, tiers: said
        notes += read_json(folder / LANDSAT_DIR / "stac_summary.json", "the STAC summary").get("notes", [])
    first = next(iter(stacks.values()))
    truth = _read_truth(folder, first.grid)
    s1 = load_sentinel1(folder / S1_DIR, landsat_grid=first.grid, chunks=chunks)
    if aoi is None:
        aoi = manifest["aoi"] if manifest and manifest.get("aoi") else None
    if aoi is None:
        aoi = tuple(round(v, 6) for v in first.grid.bounds_lonlat())
    scene = Scene(stacks, truth, s1, source, folder, _describe(source, folder, stacks, truth, s1, manifest),
                  notes, tuple(aoi) if not isinstance(aoi, (str, dict)) else aoi)
    if not quiet:
        print(scene.provenance)
        if missing:
            print(f"not in this scene: {', '.join(missing)} (steps that need them say so)")
    if source in ("earth_engine", "stac") and manifest is None:
        scene.write(folder)  # records provenance and AOI beside the downloads
    return scene
