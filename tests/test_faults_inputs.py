"""Faults: bad input files and scene folders. Each case names the file and what was expected.

Small synthetic 8 x 9 px stacks in tmp_path, read through ltlib.scene.load (what every notebook
calls) or the io readers. The cases and their outcomes are in docs/faults.md (tests/faults.py).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine

from ltlib import io, report, scene
from ltlib.io import RasterFileError

from .faults import Fault, cases, expect_error

GRID = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), 8, 9)
YEARS = np.arange(2000, 2008)


def _stack(path, years=YEARS, grid=GRID, fill=None):
    data = np.random.default_rng(0).integers(100, 900, (len(years),) + grid.shape).astype(float)
    if fill is not None:
        data[:] = fill
    return io.write_stack(path, data, years, grid, scale=0.001)


def _ndvi(tmp_path, **kw):
    return _stack(tmp_path / "landsat" / "ndvi.tif", **kw)


def _bytes(content):
    """A landsat/ndvi.tif holding ``content`` (bytes or a function of a good stack's bytes)."""
    def make(tmp_path):
        path = _ndvi(tmp_path)
        path.write_bytes(content(path.read_bytes()) if callable(content) else content)
        return lambda: scene.load(tmp_path, quiet=True)
    return make


def _zero_pixels(good: bytes) -> bytes:
    """A 600 x 600 stack's pixel tiles zeroed: the header opens, the pixels do not decode."""
    b = bytearray(good)
    b[1000:200000] = bytes(199000)
    return bytes(b)


def _damaged_pixels(tmp_path):
    grid = io.Grid(GRID.crs, GRID.transform, 600, 600)
    path = _stack(tmp_path / "landsat" / "ndvi.tif", years=np.arange(2000, 2006), grid=grid)
    path.write_bytes(_zero_pixels(path.read_bytes()))
    return lambda: scene.load(tmp_path, quiet=True)


def _png_renamed(tmp_path):
    path = tmp_path / "landsat" / "ndvi.png"
    path.parent.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NotGeoreferencedWarning
        with rasterio.open(path, "w", driver="PNG", width=9, height=8, count=1, dtype="uint8") as dst:
            dst.write(np.zeros((1, 8, 9), np.uint8))
    path.rename(path.with_suffix(".tif"))
    return lambda: scene.load(tmp_path, quiet=True)


def _no_crs(tmp_path):
    path = tmp_path / "landsat" / "ndvi.tif"
    path.parent.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio's NotGeoreferencedWarning: that is the point
        with rasterio.open(path, "w", driver="GTiff", width=9, height=8, count=8, dtype="int16") as dst:
            dst.write(np.ones((8, 8, 9), np.int16))
    return lambda: scene.load(tmp_path, quiet=True)


def _folder_named_tif(tmp_path):
    (tmp_path / "landsat" / "ndvi.tif").mkdir(parents=True)
    return lambda: scene.load(tmp_path, quiet=True)


def _two(nbr_kw):
    """ndvi.tif and an nbr.tif that differs as ``nbr_kw`` says."""
    def make(tmp_path):
        _ndvi(tmp_path)
        _stack(tmp_path / "landsat" / "nbr.tif", **nbr_kw)
        return lambda: scene.load(tmp_path, quiet=True)
    return make


def _load(years=None, stack_years=YEARS, fill=None):
    def make(tmp_path):
        _ndvi(tmp_path, years=stack_years, fill=fill)
        return lambda: scene.load(tmp_path, years=years, quiet=True)
    return make


def _all_nodata_years(tmp_path):
    path = _ndvi(tmp_path)
    data = io.read_stack(path).data
    data[:6] = np.nan  # 2000-2005 empty
    io.write_stack(path, data, YEARS, GRID, scale=0.001)
    return lambda: scene.load(tmp_path, years=(2000, 2005), quiet=True)


def _band_names(names, tags=None):
    def make(tmp_path):
        path = tmp_path / "landsat" / "ndvi.tif"
        io.write_raster(path, np.ones((len(names),) + GRID.shape), GRID, band_names=names, nodata=-32768,
                        dtype="int16", tags=tags)
        return lambda: scene.load(tmp_path, quiet=True)
    return make


def _unnamed_bands(tmp_path):
    path = tmp_path / "landsat" / "ndvi.tif"
    io.write_raster(path, np.ones((8,) + GRID.shape), GRID, nodata=-32768, dtype="int16")
    return lambda: scene.load(tmp_path, quiet=True)


def _truth_grid(tmp_path):
    _ndvi(tmp_path)
    g = io.Grid(GRID.crs, GRID.transform, 8, 10)
    io.write_raster(tmp_path / "truth" / "landsat_truth.tif", np.ones((1, 8, 10)), g, band_names=["class"],
                    dtype="int16", nodata=-1)
    return lambda: scene.load(tmp_path, quiet=True)


def _truth_empty(tmp_path):
    _ndvi(tmp_path)
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "landsat_truth.tif").write_bytes(b"")
    return lambda: scene.load(tmp_path, quiet=True)


def _s1(vh=True, vh_dates=None):
    def make(tmp_path):
        _ndvi(tmp_path)
        dates = ["2019-04-02", "2019-04-14", "2019-04-26"]
        s1 = tmp_path / "sentinel1"
        io.write_raster(s1 / "s1_vv.tif", np.full((3,) + GRID.shape, 0.1), GRID, band_names=dates, dtype="float32")
        if vh:
            io.write_raster(s1 / "s1_vh.tif", np.full((3,) + GRID.shape, 0.02), GRID, band_names=vh_dates or dates,
                            dtype="float32")
        return lambda: scene.load(tmp_path, quiet=True)
    return make


def _no_landsat(tmp_path):
    (tmp_path / "sentinel1").mkdir()
    return lambda: scene.load(tmp_path, quiet=True)


def _no_tifs(tmp_path):
    (tmp_path / "landsat").mkdir()
    (tmp_path / "landsat" / "ndvi.txt").write_text("1,2,3")
    return lambda: scene.load(tmp_path, quiet=True)


def _read(fn, **kw):
    def make(tmp_path):
        path = _stack(tmp_path / "s.tif")
        return lambda: fn(path, **kw)
    return make


def _raster_missing(tmp_path):
    return lambda: io.read_raster(tmp_path / "loss_map.tif")


def _indices_string(tmp_path):
    _ndvi(tmp_path)
    return lambda: scene.load(tmp_path, indices="NDVI", quiet=True)


def _unknown_index(tmp_path):
    _ndvi(tmp_path)
    return lambda: scene.load(tmp_path, indices=["NDVI", "EVI2"], quiet=True)


def _scene_json(content):
    def make(tmp_path):
        _ndvi(tmp_path)
        (tmp_path / "scene.json").write_text(content)
        return lambda: scene.load(tmp_path, quiet=True)
    return make


def _earlier_summary(content):
    def make(tmp_path):
        (tmp_path / "02").mkdir()
        (tmp_path / "02" / "summary.json").write_text(content)
        return lambda: report.earlier_output(tmp_path / "03", "02_fit_landtrendr", str(tmp_path / "02"))
    return make


def _read_output_summary(tmp_path):
    _ndvi(tmp_path)
    sc = scene.load(tmp_path, quiet=True)
    (tmp_path / "02").mkdir()
    (tmp_path / "02" / "summary.json").write_text('{"files": {"ndvi_fit": "ndvi_fit.tif"')
    return lambda: sc.read_output(tmp_path / "02", "ndvi_fit", stack=True)


RAW_JSON = "JSONDecodeError: `Expecting value: line 1 column 1 (char 0)` (no file name)"
JSON_FAULTS = [
    Fault("scene-json-empty", "json", "0-byte scene.json in data_dir", RAW_JSON, ValueError,
          r"scene\.json is empty \(0 bytes\); expected a scene's provenance \(written by Scene\.write\)",
          _scene_json("")),
    Fault("scene-json-list", "json", "scene.json holding a JSON list", "AttributeError: `'list' object has no "
          "attribute 'get'`", ValueError, r"scene\.json holds a JSON list; expected a scene's provenance",
          _scene_json("[1, 2]")),
    Fault("summary-json-damaged", "json", "landtrendr_dir whose summary.json is cut short", "JSONDecodeError: "
          "`Expecting property name enclosed in double quotes` (no file name)", ValueError, r"02/summary\.json is not valid JSON \(.*\); expected "
          r"the summary of a 02_fit_landtrendr run", _earlier_summary('{"status": "complete", "files": {')),
    Fault("read-output-json-damaged", "json", "Scene.read_output from a damaged summary.json", "JSONDecodeError: `Expecting ',' "
          "delimiter` (no file name)", ValueError, r"02/summary\.json is not valid JSON .*; expected the summary of a notebook run",
          _read_output_summary),
]

NOT_SUPPORTED = "RasterioIOError: `... not recognized as being in a supported file format` (no reason)"
STACK = r"expected an annual GeoTIFF stack \(one band per year\)"

FILE_FAULTS = [
    Fault("empty-file", "inputs", "0-byte landsat/ndvi.tif", NOT_SUPPORTED, RasterFileError,
          r"landsat/ndvi\.tif is an empty file \(0 bytes\), " + STACK, _bytes(b"")),
    Fault("text-file", "inputs", "text file renamed ndvi.tif", NOT_SUPPORTED, RasterFileError,
          r"landsat/ndvi\.tif is a text file \(28 bytes\), " + STACK,
          _bytes(b"year,ndvi\n2000,0.41\n2001,0.5")),
    Fault("png-signature", "inputs", "PNG signature with a broken body, named ndvi.tif",
          "RasterioIOError: `libpng: bad header (invalid type)` without the file name", RasterFileError,
          r"landsat/ndvi\.tif is a PNG image \(108 bytes\), " + STACK, _bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))),
    Fault("png-readable", "inputs", "a readable PNG renamed ndvi.tif", "ValueError: `band 1 is named None` (a "
          "PNG read as a stack)", RasterFileError, r"landsat/ndvi\.tif is a PNG file \(PNG driver\), " + STACK,
          _png_renamed),
    Fault("jpeg-signature", "inputs", "JPEG bytes named ndvi.tif",
          "RasterioIOError: `libjpeg: JPEG datastream contains no image` (no file name)",
          RasterFileError, r"landsat/ndvi\.tif is a JPEG image \(\d+ bytes\), " + STACK,
          _bytes(b"\xff\xd8\xff\xe0" + bytes(60))),
    Fault("truncated-half", "inputs", "GeoTIFF cut to half its length", "RasterioIOError: `ndvi.tif: "
          "TIFFReadDirectory:Failed to read directory` (no folder)", RasterFileError,
          r"landsat/ndvi\.tif is a truncated or damaged TIFF \(\d+ bytes\), " + STACK,
          _bytes(lambda b: b[: len(b) // 2])),
    Fault("truncated-header", "inputs", "GeoTIFF cut to 8 bytes (its header only)", "RasterioIOError, raw",
          RasterFileError, r"landsat/ndvi\.tif is a truncated or damaged TIFF \(8 bytes\)", _bytes(lambda b: b[:8])),
    Fault("damaged-pixels", "inputs", "GeoTIFF whose header opens but whose pixel tiles are zeroed",
          "RasterioIOError: `Read failed. See previous exception for details.` (no file name)", RasterFileError,
          r"landsat/ndvi\.tif: reading its pixels failed, the file is truncated or damaged \(\d+ bytes\); " + STACK,
          _damaged_pixels),
    Fault("folder-named-tif", "inputs", "a folder named landsat/ndvi.tif", NOT_SUPPORTED, RasterFileError,
          r"landsat/ndvi\.tif is a folder, " + STACK, _folder_named_tif),
    Fault("no-crs", "inputs", "plain TIFF without CRS or transform",
          "ValueError: `band 1 is named None` (the missing CRS not named)", RasterFileError,
          r"landsat/ndvi\.tif has no coordinate reference system", _no_crs),
    Fault("truth-empty", "inputs", "0-byte truth/landsat_truth.tif", NOT_SUPPORTED, RasterFileError,
          r"truth/landsat_truth\.tif is an empty file \(0 bytes\), expected a GeoTIFF", _truth_empty),
    Fault("raster-missing", "inputs", "io.read_raster of a missing file", "same", FileNotFoundError,
          r"No such raster: .*loss_map\.tif", _raster_missing),
]

STACK_FAULTS = [
    Fault("all-nodata", "stacks", "ndvi.tif with every value nodata", "issue: `got shape (0, 51)` in a later step; "
          "refused by scene.load at this session's start", ValueError,
          r"landsat/ndvi\.tif: every value is nodata \(8 bands of 8 x 9 px\)",
          _load(fill=np.nan)),
    Fault("all-nodata-years", "stacks", "years chosen (start_year, end_year) all nodata",
          "no error: a scene of NaN only", ValueError,
          r"landsat/ndvi\.tif: every value of the years 2000-2005 is nodata; choose other years", _all_nodata_years),
    Fault("band-count-mismatch", "stacks", "nbr.tif has 9 bands, ndvi.tif 8", "same", ValueError,
          r"landsat/nbr\.tif has years 2000-2008 \(9 bands\), .*ndvi\.tif 2000-2007 \(8\): stacks of a scene need "
          r"the same years", _two({"years": np.arange(2000, 2009)})),
    Fault("years-mismatch", "stacks", "nbr.tif 2001-2008, ndvi.tif 2000-2007 (same band count)", "same", ValueError,
          r"landsat/nbr\.tif has years 2001-2008 \(8 bands\), .*ndvi\.tif 2000-2007", _two({"years": YEARS + 1})),
    Fault("crs-mismatch", "stacks", "nbr.tif in EPSG:32613, ndvi.tif in EPSG:32612",
          "ValueError naming both files and CRSs", ValueError,
          r"landsat/nbr\.tif and .*landsat/ndvi\.tif are on different grids \(8 x 9 px, EPSG:32613.* vs 8 x 9 px, "
          r"EPSG:32612", _two({"grid": io.Grid("EPSG:32613", GRID.transform, 8, 9)})),
    Fault("transform-mismatch", "stacks", "nbr.tif shifted half a pixel (same CRS and size)",
          "ValueError naming both files but showing the same `(8, 9) EPSG:32612` twice", ValueError,
          r"nbr\.tif and .*ndvi\.tif are on different grids \(8 x 9 px, EPSG:32612, origin \(400015, 4\.5e\+06\)",
          _two({"grid": io.Grid(GRID.crs, Affine(30, 0, 400015, 0, -30, 4500000), 8, 9)})),
    Fault("pixel-size-mismatch", "stacks", "nbr.tif with 60 m pixels, ndvi.tif 30 m",
          "ValueError showing the same `(8, 9) EPSG:32612` twice", ValueError,
          r"nbr\.tif and .*ndvi\.tif are on different grids \(.*pixel 60 x -60 vs .*pixel 30 x -30\)",
          _two({"grid": io.Grid(GRID.crs, Affine(60, 0, 400000, 0, -60, 4500000), 8, 9)})),
    Fault("too-few-years", "stacks", "a stack of 4 years (LandTrendr needs 6)", "same", ValueError,
          r"landsat/ndvi\.tif: 4 years \(\[2000, 2001, 2002, 2003\]\); LandTrendr and the trajectory steps need at "
          r"least 6", _load(stack_years=np.arange(2000, 2004))),
    Fault("too-few-years-selected", "stacks", "years=(2000, 2003) of an 8-year stack", "same", ValueError,
          r"landsat/ndvi\.tif: 4 years .*need at least 6", _load(years=(2000, 2003))),
    Fault("years-outside", "stacks", "years=(1980, 1990), the stack has 2000-2007", "same", ValueError,
          r"years 1980-1990 are not in .*landsat \(its stacks have 2000-2007\)", _load(years=(1980, 1990))),
    Fault("bands-not-years", "stacks", "band names 'yod', 'mag' (not yrYYYY)", "same", ValueError,
          r"landsat/ndvi\.tif: band 1 is named 'yod'; annual stacks need band names yrYYYY",
          _band_names(["yod", "mag"])),
    Fault("bands-unnamed", "stacks", "bands without names or a years tag", "ValueError: `band 1 is named None`",
          ValueError, r"landsat/ndvi\.tif: band 1 is named None; annual stacks need band names yrYYYY or yr_YYYY "
          r".*or a 'years' tag", _unnamed_bands),
    Fault("years-tag-count", "stacks", "'years' tag 1984-2016 on an 8-band stack", "same", ValueError,
          r"landsat/ndvi\.tif: its 'years' tag '1984-2016' gives 33 years for 8 bands",
          _band_names([f"b{i}" for i in range(8)], {"years": "1984-2016"})),
    Fault("years-tag-garbage", "stacks", "'years' tag 'recent'", "same", ValueError,
          r"landsat/ndvi\.tif: cannot read its 'years' tag 'recent'; expected e\.g\. '1984-2016'",
          _band_names([f"b{i}" for i in range(8)], {"years": "recent"})),
    Fault("years-not-increasing", "stacks", "band names yr2001, yr2000, ...", "same", ValueError,
          r"landsat/ndvi\.tif: band years are not strictly increasing",
          _band_names(["yr2001", "yr2000"] + [f"yr{y}" for y in range(2002, 2008)])),
    Fault("expected-years", "stacks", "read_stack(expected_years=2000-2009) of an 8-year stack", "same", ValueError,
          r"s\.tif: expected 10 bands for years 2000-2009, found 8 bands for years 2000-2007",
          _read(io.read_stack, expected_years=range(2000, 2010))),
    Fault("truth-grid", "stacks", "truth on an 8 x 10 grid, stacks 8 x 9",
          "ValueError naming both shapes", ValueError,
          r"truth/landsat_truth\.tif is not on the grid of the stacks in .*\(8 x 10 px, .* vs 8 x 9 px", _truth_grid),
    Fault("s1-vh-missing", "stacks", "sentinel1/s1_vv.tif without s1_vh.tif", "same", FileNotFoundError,
          r"sentinel1/s1_vh\.tif is missing: a Sentinel-1 stack needs both", _s1(vh=False)),
    Fault("s1-dates-mismatch", "stacks", "s1_vv.tif and s1_vh.tif with other dates",
          "ValueError: `have different dates` (which?)", ValueError,
          r"s1_vv\.tif and .*s1_vh\.tif have different dates \(3: 2019-04-02\.\.2019-04-26 vs 3: "
          r"2019-05-02\.\.2019-05-26\)", _s1(vh_dates=["2019-05-02", "2019-05-14", "2019-05-26"])),
]

FOLDER_FAULTS = [
    Fault("no-landsat-folder", "folders", "data_dir without landsat/", "same", FileNotFoundError,
          r"landsat does not exist: a scene folder holds landsat/<index>\.tif stacks", _no_landsat),
    Fault("no-tif", "folders", "landsat/ holds no .tif", "same", FileNotFoundError,
          r"landsat has no \.tif stacks \(expected e\.g\. ndvi\.tif, nbr\.tif\)", _no_tifs),
    Fault("indices-string", "folders", "scene.load(indices='NDVI') (papermill -p indices NDVI)",
          "NDVI read as the letters N, D, V, I", ValueError,
          r"indices must be a list of index names such as \['NDVI', 'NBR'\], got the string 'NDVI' "
          r"\(papermill: -y \"indices: \[NDVI\]\"\)", _indices_string),
    Fault("unknown-index", "folders", "indices=['NDVI', 'EVI2']", "same", ValueError,
          r"unknown index EVI2: ltlib knows NDVI, NBR", _unknown_index),
]

TABLE = [("test_bad_file_names_the_file_and_what_was_expected", FILE_FAULTS + JSON_FAULTS),
         ("test_inconsistent_stacks_are_refused_naming_the_files", STACK_FAULTS),
         ("test_bad_scene_folders_say_what_a_folder_holds", FOLDER_FAULTS)]


@pytest.mark.parametrize("fault", cases(FILE_FAULTS + JSON_FAULTS))
def test_bad_file_names_the_file_and_what_was_expected(fault, tmp_path):
    expect_error(fault, tmp_path, one_line=True)


@pytest.mark.parametrize("fault", cases(STACK_FAULTS))
def test_inconsistent_stacks_are_refused_naming_the_files(fault, tmp_path):
    expect_error(fault, tmp_path, one_line=True)


@pytest.mark.parametrize("fault", cases(FOLDER_FAULTS))
def test_bad_scene_folders_say_what_a_folder_holds(fault, tmp_path):
    expect_error(fault, tmp_path, one_line=True)


def test_the_good_stack_of_these_cases_loads(tmp_path):
    """The fault cases start from this stack: it loads, so each error is the fault's."""
    _ndvi(tmp_path)
    _stack(tmp_path / "landsat" / "nbr.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a scaled int16 stack: read without a note
        sc = scene.load(tmp_path, quiet=True)
    assert sc.indices == ["NDVI", "NBR"] and sc.years.tolist() == YEARS.tolist() and sc.grid.same_as(GRID)
