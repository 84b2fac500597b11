"""GeoTIFF stacks with one band per year, and the reshapes between images and series.

Conventions
-----------
- An annual stack is a GeoTIFF with one band per year, band descriptions ``yr1972`` ...
  (the LandsatLinkr / LT-GEE ``arrayFlatten`` naming the seed exported).
- In memory a stack is ``float32 (T, H, W)`` in the *stored* units (the sample's indices are
  index x 1000, as LT-GEE works) with ``NaN`` where the file had nodata. ``Stack.scale``
  converts to physical units (``stored * scale``).
- Series arrays are ``(n_pixels, T)`` or ``(n_pixels, T, n_vars)`` over the valid pixels of an
  ``(H, W)`` mask, in row-major order; :func:`series_to_image` puts them back.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import GDAL_CACHE_MB, NODATA_INT16, year_band_names

# Block-wise reads touch every tile once, so GDAL's block cache (5% of the RAM by default,
# 1.2 GB here) only holds memory; cap it unless the user set GDAL_CACHEMAX. GDAL reads the
# variable when its cache is first used.
os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))

import rasterio  # noqa: E402
import rasterio.errors  # noqa: E402
from affine import Affine  # noqa: E402
from rasterio.crs import CRS  # noqa: E402

_YEAR_BAND = re.compile(r"^yr_?(\d{4})$")


def _metres_per_degree(lat):
    """(longitude, latitude) metres per degree on WGS84 at latitude ``lat`` (radians; scalar
    or array), from the ellipsoid's series expansions."""
    per_lon = 111412.84 * np.cos(lat) - 93.5 * np.cos(3 * lat)
    per_lat = 111132.954 - 559.822 * np.cos(2 * lat) + 1.175 * np.cos(4 * lat)
    return per_lon, per_lat


@dataclass(frozen=True)
class Grid:
    """Where a raster sits on Earth: CRS, affine transform and size in pixels."""

    crs: CRS
    transform: Affine
    height: int
    width: int

    def __post_init__(self):
        object.__setattr__(self, "crs", CRS.from_user_input(self.crs))
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"Grid size must be positive, got {self.height} x {self.width}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))

    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees (EPSG:4326)."""
        from rasterio.warp import transform_bounds

        return tuple(transform_bounds(self.crs, "EPSG:4326", *self.bounds, densify_pts=21))

    def metres_per_unit(self) -> tuple[float, float]:
        """(x, y) metres per CRS unit at the grid's centre latitude (geographic CRS: per degree;
        projected CRS: its linear unit)."""
        if self.crs.is_geographic:
            per_lon, per_lat = _metres_per_degree(math.radians((self.bounds[1] + self.bounds[3]) / 2))
            return float(per_lon), float(per_lat)
        factor = float(self.crs.linear_units_factor[1]) if self.crs.is_projected else 1.0
        return factor, factor

    @property
    def pixel_size_m(self) -> tuple[float, float]:
        """(x, y) pixel size in metres; for a geographic CRS at the grid's centre latitude."""
        mx, my = self.metres_per_unit()
        return abs(self.transform.a) * mx, abs(self.transform.e) * my

    def pixel_text(self) -> str:
        """The pixel size for messages: "30 m", or "0.0003 deg (about 25 x 33 m)"."""
        px, py = self.pixel_size_m
        if self.crs.is_geographic:
            return f"{abs(self.transform.a):g} deg (about {px:.0f} x {py:.0f} m)"
        return f"{px:g} m"

    def pixel_areas_m2(self) -> np.ndarray:
        """(height, 1) area of each row's pixels in m^2, to broadcast over (height, width).

        Constant on a projected grid; on a geographic grid (degrees) each row's pixels are
        measured at that row's latitude, so areas shrink towards the poles as they should.
        """
        if not self.crs.is_geographic:
            px, py = self.pixel_size_m
            return np.full((self.height, 1), px * py)
        rows = np.arange(self.height) + 0.5
        per_lon, per_lat = _metres_per_degree(np.radians(self.transform.f + rows * self.transform.e))
        return (abs(self.transform.a) * per_lon * abs(self.transform.e) * per_lat)[:, None]

    def area_ha(self, mask) -> float:
        """Area in hectares of the pixels where ``mask`` (height, width) is True."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.shape:
            raise ValueError(f"mask of shape {mask.shape} does not match the grid's {self.shape}")
        return float((mask * self.pixel_areas_m2()).sum() / 1e4)

    def describe(self) -> str:
        """The grid for messages: size, CRS, origin and pixel size (enough to tell two apart)."""
        t = self.transform
        return (f"{self.height} x {self.width} px, {self.crs.to_string()}, origin ({t.c:.6g}, {t.f:.6g}), "
                f"pixel {t.a:g} x {t.e:g}")

    def same_as(self, other: "Grid", tol: float = 1e-6) -> bool:
        return (
            self.shape == other.shape
            and self.crs == other.crs
            and all(abs(a - b) <= tol for a, b in zip(self.transform[:6], other.transform[:6]))
        )


@dataclass
class Stack:
    """An annual stack: ``data`` float32 (T, H, W), NaN = no observation, stored units."""

    data: np.ndarray
    years: np.ndarray
    grid: Grid
    name: str = ""
    scale: float = 1.0
    path: Path | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.years = np.asarray(self.years, dtype=int)
        if self.data.ndim != 3:
            raise ValueError(f"Stack data must be (T, H, W), got shape {self.data.shape}")
        if self.data.shape[0] != len(self.years):
            raise ValueError(f"Stack has {self.data.shape[0]} bands but {len(self.years)} years")
        if self.data.shape[1:] != self.grid.shape:
            raise ValueError(f"Stack data {self.data.shape[1:]} does not match grid {self.grid.shape}")

    @property
    def shape(self):
        return self.data.shape

    def physical(self) -> np.ndarray:
        """The stack in physical units (e.g. NDVI in -1..1)."""
        return self.data * np.float32(self.scale)

    def band(self, year: int) -> np.ndarray:
        """The (H, W) image of one year."""
        idx = np.flatnonzero(self.years == year)
        if idx.size == 0:
            raise KeyError(f"year {year} not in stack {self.name!r} ({self.years[0]}-{self.years[-1]})")
        return self.data[idx[0]]


def _years_from_tag(path, tag: str) -> np.ndarray:
    """A ``years`` tag: "1984,1985,..." or "1984-2016"."""
    try:
        if re.fullmatch(r"\s*\d{4}\s*-\s*\d{4}\s*", tag):
            a, b = (int(v) for v in tag.split("-"))
            return np.arange(a, b + 1)
        return np.asarray([int(v) for v in re.split(r"[,\s]+", tag.strip()) if v])
    except ValueError:
        raise ValueError(f"{path}: cannot read its 'years' tag {tag!r}; expected e.g. '1984-2016' or "
                         "'1984,1985,1986'") from None


def _years_from_descriptions(path, descriptions, years_tag=None) -> np.ndarray:
    """Years of an annual stack from band names ``yr1990`` / ``yr_1990`` (LT-GEE, LandsatLinkr),
    or from a ``years`` tag when the bands have no such names."""
    years, bad = [], None
    for i, d in enumerate(descriptions, start=1):
        m = _YEAR_BAND.match(d or "")
        if not m:
            bad = (i, d)
            break
        years.append(int(m.group(1)))
    if bad is not None:
        if years_tag is None:
            i, d = bad
            raise ValueError(
                f"{path}: band {i} is named {d!r}; annual stacks need band names yrYYYY or yr_YYYY "
                "(e.g. yr1972, as written by ltlib.io.write_stack, LT-GEE or LandsatLinkr) or a 'years' "
                "tag such as '1984-2016'"
            )
        years = _years_from_tag(path, years_tag)
        if len(years) != len(descriptions):
            raise ValueError(f"{path}: its 'years' tag {years_tag!r} gives {len(years)} years for "
                             f"{len(descriptions)} bands")
    years = np.asarray(years)
    if np.any(np.diff(years) <= 0):
        raise ValueError(f"{path}: band years are not strictly increasing: {years.tolist()}")
    return years


def _check_exists(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such raster: {path} (absolute: {path.resolve()})")
    return path


class RasterFileError(ValueError):
    """A file that should be a GeoTIFF cannot be read as one; the message names the file, what
    it is (empty, truncated, a PNG, text ...) and what was expected."""


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
_SIGNATURES = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
               (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
               (b"\x89HDF", "an HDF5 / NetCDF-4 file"), (b"CDF\x01", "a NetCDF file"))


def _what_file_is(path: Path) -> str:
    """What a file that GDAL cannot read as a GeoTIFF looks like, from its size and first bytes."""
    size = path.stat().st_size
    if size == 0:
        return "an empty file (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(256)
    if head[:4] in _TIFF_MAGIC:
        return f"a truncated or damaged TIFF ({size} bytes)"
    for sig, what in _SIGNATURES:
        if head.startswith(sig):
            return f"{what} ({size} bytes)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"not a TIFF ({size} bytes of an unknown format)"
    # the kind only, never the content: the file may be a credentials file linked here by mistake
    return f"a text file ({size} bytes)"


#: Environment variable that overrides :data:`MAX_RASTER_BYTES` (a number of bytes, e.g. 4e12).
MAX_RASTER_BYTES_ENV = "LTLIB_MAX_RASTER_BYTES"
#: Largest raster (declared bands x height x width as float32) opened without being asked: 1 TiB,
#: about 100 whole Landsat scenes of 51 years. A 17 kB file may declare 6 x 1e6 x 1e6 px; its
#: lazy graph alone (millions of chunks) would exhaust memory before any pixel is read.
MAX_RASTER_BYTES = 2**40


def max_raster_bytes(max_bytes=None) -> float:
    """The size limit in bytes: ``max_bytes`` if given, else ``$LTLIB_MAX_RASTER_BYTES``, else
    :data:`MAX_RASTER_BYTES`."""
    value = max_bytes if max_bytes is not None else os.environ.get(MAX_RASTER_BYTES_ENV, MAX_RASTER_BYTES)
    try:
        limit = float(value)
    except (TypeError, ValueError):
        limit = float("nan")
    if not limit > 0:
        where = "max_bytes" if max_bytes is not None else MAX_RASTER_BYTES_ENV
        raise ValueError(f"{where} must be a positive number of bytes, got {value!r}")
    return limit


def check_declared_size(path, count: int, height: int, width: int, max_bytes=None) -> None:
    """Refuse a raster whose declared size (``count x height x width`` as float32) exceeds the
    limit (:func:`max_raster_bytes`), before any pixel or chunk graph is made."""
    size = 4.0 * count * height * width
    limit = max_raster_bytes(max_bytes)
    if size > limit:
        raise RasterFileError(
            f"{path} declares {count} bands x {height} x {width} px = {_format_size(size)} as float32, over the "
            f"limit of {_format_size(limit)}; a damaged or hostile header? If the file is really that large, "
            f"raise the limit with max_bytes= or the environment variable {MAX_RASTER_BYTES_ENV}")


def _format_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000


@contextlib.contextmanager
def open_geotiff(path, expected: str = "a GeoTIFF", *, max_bytes=None):
    """Open ``path`` with rasterio for reading; any file that is not a georeferenced GeoTIFF
    (missing, a folder, empty, truncated, another format, no CRS, a declared size over
    :func:`max_raster_bytes`) raises one clear error naming the file, what it is and
    ``expected`` (FileNotFoundError or :class:`RasterFileError`); never the file's content."""
    path = _check_exists(path)
    if path.is_dir():
        raise RasterFileError(f"{path} is a folder, expected {expected}")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as e:
        raise RasterFileError(f"{path} is {_what_file_is(path)}, expected {expected} (GDAL: {e})") from None
    with src:
        if src.driver != "GTiff":
            raise RasterFileError(f"{path} is a {src.driver} file ({src.driver} driver), expected {expected}")
        if src.crs is None:
            raise RasterFileError(f"{path} has no coordinate reference system (a TIFF without georeferencing?), "
                                  f"expected {expected} with a CRS and transform")
        check_declared_size(path, src.count, src.height, src.width, max_bytes)
        yield src


def _read_pixels(src, path, expected: str, **read) -> np.ndarray:
    """All bands float32 (B, H, W) (or ``src.read(**read)``); a truncated file whose header
    still opens is named."""
    try:
        return src.read(out_dtype=np.float32, **read)
    except rasterio.errors.RasterioIOError as e:
        raise RasterFileError(f"{path}: reading its pixels failed, the file is truncated or damaged "
                              f"({Path(path).stat().st_size} bytes); expected {expected} (GDAL: {e})") from None


STACK_FILE = "an annual GeoTIFF stack (one band per year)"


def scale_tag(path, tags: dict) -> float:
    """The ``scale`` tag of a stack (1.0 when absent); a tag that is not a positive finite number
    raises ValueError naming the file."""
    text = tags.get("scale", 1.0)
    try:
        scale = float(text)
    except (TypeError, ValueError):
        scale = float("nan")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{path}: its 'scale' tag {str(text)[:20]!r} is not a positive number; expected e.g. "
                         "'0.001' (values stored as index x 1000) or no tag")
    return scale


_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8, 17: 8, 18: 8}


def _tiff_cut_short(path) -> bool:
    """True when a TIFF's first directory points past the end of the file: a value of one of
    its tags (GDAL keeps band names and tags in one at the end) or a strip/tile of pixels lies
    beyond the file's length (a download or copy cut short). Only the directory is read."""
    import struct

    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
        if head[:4] not in _TIFF_MAGIC:
            return False
        o = "<" if head[:2] == b"II" else ">"
        big = head[2:4] in (b"+\x00", b"\x00+")
        cnt_fmt, ent_size, val_fmt, inline = ("Q", 20, "Q", 8) if big else ("H", 12, "I", 4)
        ifd = struct.unpack(o + ("Q" if big else "I"), head[8:16] if big else head[4:8])[0]
        if ifd + 8 > size:
            return True
        f.seek(ifd)
        raw = f.read(8 if big else 2)
        n = struct.unpack(o + cnt_fmt, raw)[0]
        entries = f.read(n * ent_size)
        if len(entries) < n * ent_size:
            return True
        arrays = {}
        for i in range(n):
            e = entries[i * ent_size:(i + 1) * ent_size]
            tag, typ = struct.unpack(o + "HH", e[:4])
            count = struct.unpack(o + val_fmt, e[4:12] if big else e[4:8])[0]
            nbytes = _TIFF_TYPE_SIZES.get(typ, 1) * count
            value = e[12:20] if big else e[8:12]
            if nbytes > inline:
                off = struct.unpack(o + val_fmt, value)[0]
                if off + nbytes > size:
                    return True
            if tag in (273, 279, 324, 325) and typ in (3, 4, 16) and count < 10**7:  # offsets and byte counts
                fmt = {3: "H", 4: "I", 16: "Q"}[typ]
                if nbytes > inline:
                    f.seek(struct.unpack(o + val_fmt, value)[0])
                    arrays[tag] = struct.unpack(o + fmt * count, f.read(nbytes))
                else:
                    arrays[tag] = struct.unpack(o + fmt * count, value[:nbytes])
        for offs, counts in ((273, 279), (324, 325)):
            if offs in arrays and counts in arrays:
                if any(a + b > size for a, b in zip(arrays[offs], arrays[counts])):
                    return True
    return False


def _probe_truncated(path, expected: str) -> None:
    """A file cut short (its band names may be in the lost end) raises :class:`RasterFileError`
    saying so, not a misleading error about what the lost end held."""
    try:
        cut = _tiff_cut_short(path)
    except Exception:  # noqa: BLE001 - a directory too damaged to walk is damaged
        cut = True
    if cut:
        raise RasterFileError(f"{path} is a truncated or damaged TIFF ({Path(path).stat().st_size} bytes: its "
                              f"directory points past the end of the file), expected {expected}")


def untagged_fill_warning(path, n, fill) -> str:
    """The sentence said when ``n`` values ``fill`` of a stack without a nodata tag become nodata."""
    return f"{path}: no nodata tag; its {n} values {fill} were read as nodata"


def read_stack(path, *, expected_years=None, chunks=None, untagged_fill: bool = True, max_bytes=None) -> Stack:
    """Read an annual GeoTIFF stack.

    Parameters
    ----------
    path : file with one band per year named ``yrYYYY``.
    expected_years : optional sequence of years; a mismatch raises ValueError naming both.
    chunks : int or None
        None: read into memory. A chunk side in px: open lazily, ``data`` is then a dask array
        chunked in space with every year in each chunk (:func:`ltlib.blocks.open_raster`).
    untagged_fill : bool
        An integer stack without a nodata tag has its type's minimum (-32768 for int16, the
        usual fill of exports) read as nodata, with a warning giving the count (as
        :func:`ltlib.scene.load` does); False reads those values as they are.
    max_bytes : float or None
        Size limit of the declared raster (:func:`max_raster_bytes`), checked before any read.

    Returns a :class:`Stack` with ``data`` float32 (T, H, W), NaN where the file has nodata,
    in stored units; ``scale`` from the file's ``scale`` tag (1.0 when absent; a tag that is not
    a positive number raises ValueError).
    """
    import warnings

    path = Path(path)
    with open_geotiff(path, STACK_FILE, max_bytes=max_bytes) as src:
        try:
            years = _years_from_descriptions(path, src.descriptions, src.tags().get("years"))
        except ValueError:
            _probe_truncated(path, STACK_FILE)  # a truncated file is named as such
            raise
        tags = src.tags()
        scale = scale_tag(path, tags)
        nodata = src.nodata
        dtype = np.dtype(src.dtypes[0])
        fill = np.iinfo(dtype).min if untagged_fill and nodata is None and dtype.kind in "iu" else None
        if chunks is None:
            data = _read_pixels(src, path, STACK_FILE)
            if nodata is not None:
                data[data == np.float32(nodata)] = np.nan
            if fill is not None:
                gaps = data == np.float32(fill)
                if gaps.any():
                    data[gaps] = np.nan
                    warnings.warn(untagged_fill_warning(path, int(gaps.sum()), fill), UserWarning, stacklevel=2)
        grid = Grid(src.crs, src.transform, src.height, src.width)
    if chunks is not None:
        from .blocks import open_raster

        data = open_raster(path, chunks=chunks, max_bytes=max_bytes)[0]
        if fill is not None:  # lazily: counting would read the whole file now
            import dask.array as dsa

            data = dsa.where(data == np.float32(fill), np.float32(np.nan), data)
            warnings.warn(f"{path}: no nodata tag; its values {fill} (if any) are read as nodata", UserWarning,
                          stacklevel=2)
    if expected_years is not None:
        expected = np.asarray(list(expected_years), dtype=int)
        if len(expected) != len(years) or np.any(expected != years):
            raise ValueError(
                f"{path}: expected {len(expected)} bands for years {expected[0]}-{expected[-1]}, "
                f"found {len(years)} bands for years {years[0]}-{years[-1]}"
            )
    return Stack(
        data=data,
        years=years,
        grid=grid,
        name=tags.get("name", path.stem),
        scale=scale,
        path=path,
        meta=tags,
    )


#: Deflate level of every GeoTIFF ltlib writes. Measured on one LandTrendr run's outputs at
#: 1,000 px (``benchmarks/bench_codecs.py``; docs/scale.md has the table): level 1 writes in 0.36x
#: the time of GDAL's default level 6 on one thread for 1.13x the size (0.20x with
#: :data:`GDAL_WRITE_THREADS`); zstd 1 was as fast but less widely readable, lerc faster and
#: 1.4x larger. Deflate is read by every GDAL, QGIS, ArcGIS and rasterio build.
DEFLATE_LEVEL = 1
#: GDAL's compression threads per file written (its NUM_THREADS creation option).
GDAL_WRITE_THREADS = "ALL_CPUS"


def geotiff_profile(grid: Grid, count: int, dtype, nodata) -> dict:
    """The rasterio profile of every GeoTIFF ltlib writes: deflate (level :data:`DEFLATE_LEVEL`,
    compressed on :data:`GDAL_WRITE_THREADS`), predictor 2 for integers, 256 x 256 tiles from
    512 px on a side."""
    h, w = grid.shape
    profile = dict(driver="GTiff", height=h, width=w, count=count, dtype=np.dtype(dtype).name, crs=grid.crs,
                   transform=grid.transform, nodata=nodata, compress="deflate", zlevel=DEFLATE_LEVEL,
                   num_threads=GDAL_WRITE_THREADS)
    if np.dtype(dtype).kind in "iu":
        profile["predictor"] = 2  # horizontal differencing: int stacks compress ~2x better
    if h >= 512 and w >= 512:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


#: Rounding to an integer type is refused when the data's finite range is below this and the
#: values are not whole numbers: the rounding error (up to 0.5) would be over 2.5% of the range.
MIN_RANGE_FOR_ROUNDING = 20.0


#: Elements converted at a time by :func:`_to_dtype` (1 MB of float32): the passes over a chunk
#: stay in the processor's cache instead of making whole-array temporaries.
_CONVERT_CHUNK = 2**18


def _to_dtype(data: np.ndarray, dtype: str, nodata, path=None, *, check_rounding: bool = True):
    """``data`` (NaN = missing) as ``dtype``: rounded for integers, NaN to ``nodata``. Values that
    do not fit raise ValueError; ``check_rounding`` refuses to round values whose whole range
    is small (physical units by mistake): block-wise writes turn it off, as one block's range
    says nothing of the whole output's.

    One pass over ``data`` in chunks of :data:`_CONVERT_CHUNK` elements (float32 data in float32:
    rounding and the comparisons are exact in either type), so the output is the only array of
    the input's size that is made.
    """
    data = np.asarray(data)
    dtype = np.dtype(dtype)
    work = np.float32 if data.dtype == np.float32 else np.float64  # as np.asarray(data, float64), exactly
    flat = data.reshape(-1)
    res = np.empty(flat.shape, dtype)
    buf = np.empty(min(_CONVERT_CHUNK, flat.size), work)
    rounded = np.empty_like(buf)
    finite = np.empty(buf.shape, bool)
    is_int = dtype.kind in "iu"
    info = np.iinfo(dtype) if is_int else None
    n_missing = n_bad = 0
    lo, hi, whole = np.inf, -np.inf, True
    for start in range(0, flat.size, _CONVERT_CHUNK):
        x = flat[start:start + _CONVERT_CHUNK]
        b, r, f = buf[:x.size], rounded[:x.size], finite[:x.size]
        b[...] = x
        np.isfinite(b, out=f)
        n_chunk = x.size - int(np.count_nonzero(f))
        n_missing += n_chunk
        if not is_int:
            res[start:start + x.size] = b
            if nodata is not None and n_chunk:
                np.copyto(res[start:start + x.size], nodata, where=~f)
            continue
        if n_chunk:
            np.copyto(b, 0, where=~f)
        np.rint(b, out=r)
        if check_rounding and n_chunk < x.size:
            lo = min(lo, float(np.min(b, where=f, initial=np.inf)))
            hi = max(hi, float(np.max(b, where=f, initial=-np.inf)))
            whole = whole and bool(np.array_equal(r, b))  # missing values are 0 in both
        out_of_range = (r < info.min) | (r > info.max)
        if nodata is not None:
            out_of_range |= r == nodata
        out_of_range &= f
        n_bad += int(np.count_nonzero(out_of_range))
        if n_chunk:
            np.copyto(r, nodata if nodata is not None else 0, where=~f)
        res[start:start + x.size] = r
    res = res.reshape(data.shape)
    if not is_int:
        return res
    if n_missing and nodata is None:
        raise ValueError(f"{path or 'output'}: data has NaN but no nodata value was given for {dtype} output")
    if check_rounding and n_missing < flat.size and hi - lo < MIN_RANGE_FOR_ROUNDING and not whole:
        finite_values = np.asarray(data, dtype=np.float64)[np.isfinite(np.asarray(data, dtype=np.float64))]
        raise ValueError(
            f"{path or 'output'}: values {lo:.4g}..{hi:.4g} are not whole numbers and would be rounded to "
            f"{dtype} ({np.unique(np.rint(finite_values)).size} distinct values left). Physical index values? "
            f"Write them x 1000 with scale=0.001 (ltlib's stored units), or with dtype='float32'")
    if n_bad:
        out = np.asarray(data, dtype=np.float64)
        raise ValueError(
            f"{path or 'output'}: {n_bad} values do not fit {dtype} "
            f"(range {info.min}..{info.max}, nodata {nodata}); range of data {np.nanmin(out)}..{np.nanmax(out)}"
        )
    return res


def write_stack(path, data, years, grid: Grid, *, dtype="int16", nodata=None, name=None, scale=None) -> Path:
    """Write an annual stack (T, H, W) as GeoTIFF with bands ``yrYYYY``.

    ``data`` is in stored units with NaN for no observation. For integer ``dtype`` the values
    are rounded; nodata defaults to -32768 (int16) and NaN for float types. Values that do
    not fit the type raise ValueError rather than wrapping around. The directory is created.
    """
    data = np.asarray(data)
    years = np.asarray(years, dtype=int)
    if data.ndim != 3:
        raise ValueError(f"write_stack needs (T, H, W) data, got shape {data.shape}")
    if data.shape[0] != len(years):
        raise ValueError(f"write_stack: {data.shape[0]} bands but {len(years)} years")
    if data.shape[1:] != grid.shape:
        raise ValueError(f"write_stack: data {data.shape[1:]} does not match grid {grid.shape}")
    if np.any(np.diff(years) <= 0):
        raise ValueError(f"write_stack: years must be strictly increasing, got {years.tolist()}")
    if data.dtype.kind == "f":
        n_inf = int(np.isinf(data).sum())
        if n_inf:  # NaN is "no observation" by convention; an infinity is a computation gone wrong
            import warnings

            warnings.warn(f"{path}: {n_inf} values +/-inf (of {data.size}) were written as nodata; use NaN for "
                          "missing values", UserWarning, stacklevel=2)
    if nodata is None:
        nodata = NODATA_INT16 if dtype == "int16" else (np.nan if np.dtype(dtype).kind == "f" else None)
    return write_raster(path, data, grid, band_names=year_band_names(years), nodata=nodata, dtype=dtype,
                        tags={"name": name or Path(path).stem, "scale": scale if scale is not None else 1.0})


def write_raster(path, data, grid: Grid, *, band_names=None, nodata=None, dtype=None, colormap=None, tags=None) -> Path:
    """Write a map (H, W) or a multi-band image (B, H, W) as GeoTIFF on ``grid``.

    ``colormap`` ({value: "#rrggbb"}) writes a colour table (single-band uint8/uint16 only),
    so GIS software shows class maps in their legend colours.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"write_raster needs (H, W) or (B, H, W) data, got shape {data.shape}")
    if data.shape[1:] != grid.shape:
        raise ValueError(f"write_raster: data {data.shape[1:]} does not match grid {grid.shape}")
    if band_names is not None and len(band_names) != data.shape[0]:
        raise ValueError(f"write_raster: {len(band_names)} band names for {data.shape[0]} bands")
    dtype = dtype or str(data.dtype)
    if dtype == "bool":
        dtype = "uint8"
    if colormap is not None and (data.shape[0] != 1 or dtype not in ("uint8", "uint16")):
        raise ValueError("a colour table needs a single-band uint8 or uint16 raster")
    out = _to_dtype(data, dtype, nodata, path)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **geotiff_profile(grid, data.shape[0], dtype, nodata)) as dst:
            dst.write(out)
            if band_names is not None:
                for i, n in enumerate(band_names, start=1):
                    dst.set_band_description(i, str(n))
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
            if colormap is not None:
                dst.write_colormap(1, {int(k): _hex_to_rgba(v) for k, v in colormap.items()})
    return path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    Every file ltlib writes goes through here, so an interrupted write leaves the old file
    (or none), never a truncated one. The parent folder is created; on error the temporary
    file is removed.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder, expected a file path")
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {blocker} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = exclusive_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.errno is None or e.filename not in (None, str(tmp), tmp):
            raise
        # name the file being written, not the temporary (same OSError subclass for the errno)
        raise OSError(e.errno, f"writing {path} failed, the previous file is kept: {e.strerror}", str(path)) from e
    finally:
        if tmp.exists():
            tmp.unlink()


def exclusive_temp(path, suffix: str = ".part") -> Path:
    """A new, empty temporary file beside ``path`` (same folder, so a rename replaces ``path``).

    Created with ``O_CREAT | O_EXCL`` (:func:`tempfile.mkstemp`) under an unpredictable name
    (``.NAME.PID.<random><suffix>``): a file or symlink planted at that name makes the creation
    fail rather than be written through, so shared scratch folders are safe."""
    import tempfile

    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would make every output private after the rename
    finally:
        os.close(fd)
    return Path(name)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    return mask


_UMASK = _umask()


def inside(folder, name, what: str = "file") -> Path:
    """``folder / name`` for a file name read from a file (a summary's ``files``), confined to
    ``folder``: an absolute name, one with ``..`` or one that resolves (through symlinks)
    outside ``folder`` raises ValueError, so a crafted summary cannot make ltlib open (or
    quote) files elsewhere."""
    folder = Path(folder)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a file name in {folder}, got a JSON {type(name).__name__}")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or not (folder / rel).resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"{what} names a file outside {folder} (absolute, '..' or a link out of the folder); "
                         "expected a file in that folder")
    return folder / rel


def copy_file(src, dst) -> Path:
    """Copy ``src`` to ``dst`` atomically (nothing when they are the same file); returns ``dst``."""
    import shutil

    src, dst = Path(src), Path(dst)
    if src.resolve() != dst.resolve():
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    return dst


def write_text(path, text: str) -> Path:
    """Write a text file (JSON, CSV) atomically; returns the path."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays become numbers and lists)."""
    return write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def read_json(path, what: str = "a JSON object") -> dict:
    """Read a JSON object (summary.json, scene.json ...); an empty, damaged or non-object file
    raises ValueError naming the file and ``what`` was expected (FileNotFoundError when missing)."""
    path = Path(path)
    text = path.read_text()
    try:
        obj = json.loads(text)
    except ValueError as e:
        state = "is empty (0 bytes)" if not text else f"is not valid JSON ({e})"
        raise ValueError(f"{path} {state}; expected {what}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a JSON {type(obj).__name__}; expected {what}")
    return obj


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _hex_to_rgba(color: str) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255)


def read_raster(path):
    """Read any GeoTIFF: ``(data float32 (B, H, W) with NaN for nodata, grid, band_names)``."""
    path = Path(path)
    with open_geotiff(path) as src:
        data = _read_pixels(src, path, "a GeoTIFF")
        if src.nodata is not None and not np.isnan(src.nodata):
            data[data == np.float32(src.nodata)] = np.nan
        names = [d or f"band{i}" for i, d in enumerate(src.descriptions, start=1)]
        grid = Grid(src.crs, src.transform, src.height, src.width)
    return data, grid, names


def check_same_grid(a, b, what: str = "rasters") -> None:
    """Raise ValueError when two Stacks/Grids are not on the same grid, naming both."""
    ga = a.grid if isinstance(a, Stack) else a
    gb = b.grid if isinstance(b, Stack) else b
    if not ga.same_as(gb):
        na = getattr(a, "path", None) or getattr(a, "name", "first")
        nb = getattr(b, "path", None) or getattr(b, "name", "second")
        raise ValueError(f"{what} are on different grids: {na} is {ga.describe()}, {nb} is {gb.describe()}")


def _as_array3(stack_or_array) -> np.ndarray:
    arr = stack_or_array.data if isinstance(stack_or_array, Stack) else np.asarray(stack_or_array)
    if arr.ndim != 3:
        raise ValueError(f"expected a (T, H, W) stack, got shape {arr.shape}")
    return arr


def stack_to_series(stack_or_array):
    """(T, H, W) -> ``(series (n_valid, T) float32, mask (H, W) bool)``.

    A pixel is valid when it has at least one observation; its NaN years stay NaN.
    """
    arr = _as_array3(stack_or_array)
    t = arr.shape[0]
    flat = arr.reshape(t, -1).T  # (H*W, T)
    valid = np.isfinite(flat).any(axis=1)
    return np.ascontiguousarray(flat[valid], dtype=np.float32), valid.reshape(arr.shape[1:])


def stacks_to_series(stacks):
    """Several (T, H, W) stacks of the same grid -> ``((n, T, n_vars), mask (H, W))``.

    A pixel is valid when every variable has at least one observation.
    """
    if len(stacks) == 0:
        raise ValueError("stacks_to_series needs at least one stack")
    arrays = [_as_array3(s) for s in stacks]
    for i, s in enumerate(stacks[1:], start=1):
        if isinstance(s, Stack) and isinstance(stacks[0], Stack):
            check_same_grid(stacks[0], s, "stacks")
        if arrays[i].shape != arrays[0].shape:
            raise ValueError(f"stack {i} has shape {arrays[i].shape}, stack 0 has {arrays[0].shape}")
    cube = np.stack(arrays, axis=-1)  # (T, H, W, V)
    t, h, w, v = cube.shape
    flat = cube.reshape(t, h * w, v).transpose(1, 0, 2)  # (H*W, T, V)
    valid = np.isfinite(flat).any(axis=1).all(axis=1)
    return np.ascontiguousarray(flat[valid], dtype=np.float32), valid.reshape(h, w)


def series_to_image(values, mask, fill=np.nan):
    """Put per-pixel values back on the image: (n,) -> (H, W); (n, K) -> (K, H, W)."""
    values = np.asarray(values)
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    if values.shape[0] != n:
        raise ValueError(f"series_to_image: {values.shape[0]} values for a mask with {n} valid pixels")
    dtype = np.result_type(values.dtype, np.asarray(fill).dtype)
    if values.ndim == 1:
        out = np.full(mask.shape, fill, dtype=dtype)
        out[mask] = values
        return out
    if values.ndim == 2:
        out = np.full((values.shape[1],) + mask.shape, fill, dtype=dtype)
        out[:, mask] = values.T
        return out
    raise ValueError(f"series_to_image takes (n,) or (n, K) values, got shape {values.shape}")
