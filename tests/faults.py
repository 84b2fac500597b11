"""Fault cases of issue 16, shared by the ``test_faults_*`` files and the table in docs/faults.md.

Each :class:`Fault` is one bad input or fault with the exact outcome its test asserts. Run
``python -m tests.faults`` to run the fault tests and write docs/faults.md from their results:
one row per case (the parametrised ones here and the fault tests elsewhere, :data:`ELSEWHERE`),
with the test id and whether it passed in that run.
"""
from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ("tests/test_faults_inputs.py", "tests/test_faults_params.py", "tests/test_faults_writes.py",
         "tests/test_faults_sites.py")


@dataclass(frozen=True)
class Fault:
    """One fault case.

    ``error`` is the exception type expected (None: no error, see ``now``), ``match`` a regex its
    message (or the warning) must match; ``before`` what happened before issue 16's fixes.
    ``run(tmp_path)`` makes the fault and returns what triggers it.
    """

    id: str
    klass: str
    case: str
    before: str
    error: type | None
    match: str
    run: Callable | None = None
    now: str = ""
    kept: bool = False  # the test also asserts the old file is preserved byte for byte

    def outcome(self) -> str:
        if self.now:
            return self.now
        text = re.sub(r"\\(.)", r"\1", self.match).replace(".*", " ... ")
        return f"{self.error.__name__}: `{text}`" + ("; old file preserved byte for byte, no temporary left"
                                                     if self.kept else "")


def expect_error(fault: Fault, tmp_path, *, one_line: bool = False) -> BaseException:
    """Make ``fault`` in ``tmp_path``, trigger it and assert its exact error type and message;
    returns the error."""
    import warnings

    trigger = fault.run(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes on units and conversions; the error is what is asserted
        with pytest.raises(fault.error) as err:
            trigger()
    assert type(err.value) is fault.error, f"{type(err.value).__name__}: {err.value}"
    assert not one_line or len(str(err.value).splitlines()) == 1
    assert err.match(fault.match)
    return err.value


def cases(faults) -> list:
    """pytest parameters with the cases' ids."""
    return [pytest.param(f, id=f.id) for f in faults]


#: Fault tests outside the test_faults_* files (earlier items of issue 16): (class, case,
#: before, outcome now, test id).
ELSEWHERE = [
    ("writes", "process killed (SIGKILL) while overwriting a 600 x 600 stack",
     "old stack destroyed, new file reads as 100% nodata", "old stack preserved, reads back unchanged",
     "tests/test_io.py::test_killed_writer_process_leaves_the_old_stack"),
    ("writes", "exception (disk full) in the middle of write_raster", "old file destroyed",
     "OSError raised; old file preserved byte for byte, no temporary left",
     "tests/test_io.py::test_failed_overwrite_keeps_the_old_file_and_leaves_no_temporary"),
    ("writes", "physical NDVI 0..1 written with the default int16", "stored as 0/1 with scale 1.0, no warning",
     "ValueError: `x.tif: values ... are not whole numbers and would be rounded to int16 ... x 1000`; no file written",
     "tests/test_io.py::test_physical_floats_are_not_rounded_away"),
    ("writes", "values beyond int16 or equal to the nodata value", "",
     "ValueError: `... do not fit int16`", "tests/test_io.py::test_write_refuses_values_that_do_not_fit"),
    ("inputs", "int16 stack with -32768 gaps and no nodata tag", "read as NDVI -32.768 (median loss 13,235 vs 231)",
     "UserWarning: `124 values -32768 were read as nodata`; values NaN",
     "tests/test_scene.py::test_forest_folder_reads_years_tag_gaps_and_units"),
    ("inputs", "float NDVI in physical units without a scale tag", "",
     "UserWarning: multiplied by 1000 (says so)",
     "tests/test_scene.py::test_float_physical_ndvi_is_scaled_with_a_warning"),
    ("downloads", "resume after an interrupted download of another image", "tiles of two images silently mixed",
     "other request's tiles removed (printed), B fetched whole",
     "tests/test_gee.py::test_resume_never_mixes_tiles_of_another_request"),
    ("downloads", "finished tile 0 bytes", "raw numpy error", "tile named as unreadable, fetched again",
     "tests/test_gee.py::test_damaged_finished_tile_is_fetched_again[empty]"),
    ("downloads", "finished tile garbage bytes", "raw numpy error", "tile named as unreadable, fetched again",
     "tests/test_gee.py::test_damaged_finished_tile_is_fetched_again[garbage]"),
    ("downloads", "finished tile truncated (valid header)", "raw numpy error", "tile named, fetched again",
     "tests/test_gee.py::test_damaged_finished_tile_is_fetched_again[truncated]"),
    ("downloads", "finished tile with another band count", "raw rasterio error",
     "tile named (`expected int16 (2, ...`), fetched again",
     "tests/test_gee.py::test_damaged_finished_tile_is_fetched_again[bands]"),
    ("downloads", "network outage (every computePixels call fails)", "4 retries per tile, 720 s for 24 tiles",
     "DownloadError: `stopped after 3 tiles in a row failed ... looks down ... resume`; resumable",
     "tests/test_gee.py::test_outage_stops_early_and_resumes"),
    ("downloads", "one tile fails after its retries", "",
     "DownloadError: `1 of N tiles failed after 3 attempts ... tile 2 ... memory limit`; only it fetched on resume",
     "tests/test_gee.py::test_failing_tile_is_reported_and_the_rest_resumes"),
    ("downloads", "computePixels returns another band count", "", "DownloadError: `shape (1, ... expected (2,`",
     "tests/test_gee.py::test_wrong_tile_shape_is_an_error"),
    ("SAR", "enl=44 on ENL-4.4 speckle", "100% of unchanged pixels flagged",
     "ValueError: `vv: the speckle looks like 4.x looks, far fewer than enl=44`",
     "tests/test_sar.py::test_wrong_enl_or_amplitudes_are_refused_not_mapped"),
    ("SAR", "amplitudes given as intensities", "0% of a 4x change detected",
     "ValueError: `... far more than enl=4.4. Amplitudes instead of intensities?`",
     "tests/test_sar.py::test_wrong_enl_or_amplitudes_are_refused_not_mapped"),
    ("k-Shape", "(n, d, T) input for (n, T, d)", "clustered wrongly, no word",
     "ValueError: `... looks like (n, d, T); pass X.transpose(0, 2, 1)`",
     "tests/test_kshape_quality.py::test_swapped_axes_are_refused_or_flagged"),
    ("k-Shape", "(T, n) input for (n, T)", "clustered wrongly, no word",
     "UserWarning: `If these are 400 pixels of 6 years, pass X.T`",
     "tests/test_kshape_quality.py::test_swapped_axes_are_refused_or_flagged"),
    ("re-runs", "re-run into an existing output_dir", "old files stay listed / replaced silently",
     "previous run's listed files removed (printed), user's own files kept",
     "tests/test_report.py::test_rerun_removes_the_previous_runs_files_and_nothing_else"),
    ("re-runs", "re-run that fails half way", "new figures beside old GeoTIFFs, looks complete",
     "summary.json status 'running'; later notebooks refuse it (`did not finish`)",
     "tests/test_report.py::test_failed_rerun_leaves_no_complete_folder_to_trust"),
    ("re-runs", "re-run of notebook 01 into its own data folder", "",
     "scene files kept (`kept 1 of the scene it reads`)",
     "tests/test_report.py::test_rerun_keeps_files_of_the_scene_it_reads"),
    ("parameters", "segment(pval_threshold=-0.1), recovery_threshold -1 or vertex_count_overshoot -1",
     "no error: every real loss removed",
     "ParameterError: `LandTrendr parameter pval_threshold must be a number in (0, 1], got -0.1` (one per parameter)",
     "tests/test_landtrendr.py::test_segment_names_a_bad_parameter_and_its_range"),
    ("parameters", "segment(max_segments=None) or spike_threshold='high'",
     "TypeError/ValueError from int()/float(), parameter not named",
     "ParameterError: `LandTrendr parameter max_segments must be an integer >= 1, got None`",
     "tests/test_landtrendr.py::test_segment_names_a_bad_parameter_and_its_range"),
    ("parameters", "segment or gee.landtrendr with index='TCB', distdir=-1", "no word: losses read as gains",
     "UserWarning: `distdir=-1 contradicts index 'TCB', which rises on disturbance`",
     "tests/test_landtrendr.py::test_distdir_from_the_index_and_a_warning_when_it_contradicts_it"),
    ("inputs", "segment on values with 3 infinities in two chunks", "same (ValueError without a count)",
     "ValueError: `values contain 3 infinities; use NaN for missing years`",
     "tests/test_landtrendr.py::test_bad_input_errors"),
    ("models", "model file with one flipped byte in the weights", "loaded silently",
     "ValueError: `flipped.pt: the model's checksum does not match: the file is corrupted`",
     "tests/test_classify.py::test_damaged_model_files_give_one_clear_error"),
    ("models", "truncated or text model file", "raw pickle error",
     "ValueError: `cannot read ... truncated.pt as an ltlib model file`",
     "tests/test_classify.py::test_damaged_model_files_give_one_clear_error"),
    ("models", "model saved with other library versions", "", "UserWarning: `saved with torch 1.0.0 (now ...`",
     "tests/test_classify.py::test_damaged_model_files_give_one_clear_error"),
    ('recovery', 'a pixel with no greatest loss', '-',
     'every recovery band NaN, status 0, counted as `no_loss`',
     'tests/test_recovery.py::test_flat_series_and_no_loss'),
    ('recovery', 'pre-disturbance value at or below the value at t (no loss on the recovery index, e.g. an FTV index that did not drop)', '-',
     'every band NaN, status 3, counted as `undefined`',
     'tests/test_recovery.py::test_flat_series_and_no_loss'),
    ('recovery', 'a loss in the last five years (window incomplete)', '-',
     'rri, r80p, yryr NaN, counted as `window_incomplete`; y2r only if reached within the record',
     'tests/test_recovery.py::test_loss_in_the_last_year_and_incomplete_window'),
    ('recovery', 'a pixel that never reaches 80% of pre', '-',
     'y2r NaN (censored at the last year), status 2, counted as `not_yet_recovered`',
     'tests/test_recovery.py::test_never_recovers'),
    ('recovery', 'pre-disturbance value <= 0, or an index that rises with disturbance (TCB)', '-',
     'r80p and y2r NaN (a share of a non-positive value), status 3; rri/yryr on the turned series',
     'tests/test_recovery.py::test_non_positive_pre_and_rising_indices'),
    ('recovery', 'a gap at t (source series) or a year missing from the record', '-',
     "NaN for what reads it (status 3 for t), never a neighbour's value",
     'tests/test_recovery.py::test_gaps_in_the_source_and_in_the_record'),
    ('recovery', 'recovery_index not among the fitted indices', '-',
     "ValueError: `recovery index 'NDVI' was not fitted: the run has ['NBR'] (segmented NBR; add it to ftv_indices)`",
     'tests/test_recovery.py::test_scene_recovery_block_wise_file_equals_in_memory'),
    ('reference', 'reference CSV with an unknown label', '-',
     "ValueError: `ref.csv: unknown reference label(s) ['burnt'] at rows [2]; expected one of none, loss, gain, loss_gain`",
     'tests/test_change_area.py::test_reference_file_faults'),
    ('reference', 'reference CSV with an unlabelled point', '-',
     'ValueError: `ref.csv: 1 point(s) have no reference label (rows [2]); label each ... or delete the point`',
     'tests/test_change_area.py::test_reference_file_faults'),
    ('reference', 'reference point off the grid', '-',
     'ValueError: `ref.csv: 1 point(s) off the 60 x 50 px grid (rows [2]); the points must lie on the scene`',
     'tests/test_change_area.py::test_reference_file_faults'),
    ('reference', 'two reference points in one pixel', '-',
     'ValueError: `ref.csv: 2 points fall in a pixel another point also falls in (rows [2, 3]); a pixel is one sample unit: keep one of each`',
     'tests/test_change_area.py::test_reference_file_faults'),
    ('reference', "a loss without a year, or a year outside the scene's", '-',
     "ValueError: `ref.csv: a loss needs its year (column 'year' between 2000 and 2010): missing or invalid at rows [2]`",
     'tests/test_change_area.py::test_reference_file_faults'),
    ('reference', 'reference file without coordinates or without a reference column; not .csv/.geojson; missing', '-',
     'ValueError naming the file and the columns expected; FileNotFoundError',
     'tests/test_change_area.py::test_reference_file_type_and_existence'),
    ('reference', 'a stratum with mapped pixels but no reference point', '-',
     "area estimate None (NaN) with the estimator's note in `change_area.notes`",
     'tests/test_change_area.py::test_estimate_notes_a_stratum_without_points'),
    ("install", "no writable numba cache folder (read-only package folder and home, NUMBA_CACHE_DIR unwritable)",
     "RuntimeError at `import ltlib.landtrendr`: `cannot cache function '_f_pvalue': no locator available`",
     "RuntimeWarning: `numba finds no writable cache folder ... Set NUMBA_CACHE_DIR to a writable folder`; "
     "the kernels compile at every start and run",
     "tests/test_jit.py::test_no_writable_cache_folder_compiles_without_cache"),
    ("install", "corrupt numba cache file (.nbc) of a kernel",
     "_pickle.UnpicklingError on the first call",
     "RuntimeWarning: `numba cache of ... could not be read (UnpicklingError ...); compiling it again`; "
     "same result, the entry is rewritten",
     "tests/test_jit.py::test_corrupt_cache_file_is_compiled_again"),
    ('stac', "source='stac': no items for the area and years", '-', 'StacError: `no items of landsat-c2-l2 at ... for the area (10.0, 45.0, 10.01, 45.01) in 1990-1991 (season 06-20..09-20; 0 item(s) ...)`',
     'tests/test_stac.py::test_clear_errors'),
    ('stac', 'catalog whose items lack the qa_pixel asset', '-', 'StacError: `item ... has no asset qa_pixel (it has blue, green, ...; 1 of 1 items lack some): this catalog does not hold landsat-c2-l2 as expected`',
     'tests/test_stac.py::test_clear_errors'),
    ('stac', "mask 'waterplus' or 'nonforest' on the STAC path", '-', 'ValueError: `mask waterplus uses Earth Engine data sets (JRC water, Proba-V forest); on the STAC path choose QA_PIXEL masks`',
     'tests/test_stac.py::test_clear_errors'),
    ('stac', 'index NDFI on the STAC path', '-', "ValueError: `index NDFI (spectral unmixing with LT-GEE's endmembers) is built on Earth Engine only`",
     'tests/test_stac.py::test_clear_errors'),
    ('stac', 'requester-pays s3:// assets without AWS credentials', '-', 'StacError: `the assets of landsat-c2l2-sr ... are in a requester-pays S3 bucket and no AWS credentials are set`',
     'tests/test_stac.py::test_requester_pays_without_credentials'),
    ('stac', 'area across two UTM zones', '-', 'one printed line: `the area spans UTM zones EPSG:32611, EPSG:32612: all of it is put on EPSG:32611 (the zone of its centre)`',
     'tests/test_stac.py::test_area_across_two_utm_zones_is_put_on_one'),
    ('stac', 'years before 1982 asked', '-', 'one printed line `years 1975-1981 have no Collection 2 Level-2 data ...: using 1982-...`; stacks start in 1982',
     'tests/test_stac.py::test_years_before_1982_said_in_one_line'),
    ('stac', 'a year with no clear observation', '-', "kept as a NaN year, listed in gap_years of landsat/stac_summary.json and in the scene's notes (summary.json)",
     'tests/test_stac.py::test_stac_composites_equal_the_earth_engine_path'),
    ('stac', 'STAC API answers 500 once during paging', '-', 'search retried after backoff (sleep 0.5 s), the same 15 items as the static catalog',
     'tests/test_stac.py::test_api_search_pages_through_next_links_and_retries'),
    ('stac', 'STAC API fails on every request', '-', 'StacError: `the STAC search of landsat-c2-l2 at ... failed 3 times in a row (last: APIError ...)`',
     'tests/test_stac.py::test_api_search_pages_through_next_links_and_retries'),
    ('stac', 'asset signature expires during the load (HTTP 403)', '-', "signature renewed, year read again; values equal to the static catalog's",
     'tests/test_stac.py::test_api_load_renews_an_expired_signature'),
    ('stac', 'asset signature refused on every try', '-', 'StacError: `reading the 1988 assets of landsat-c2-l2 from ... failed 2 times in a row`',
     'tests/test_stac.py::test_api_load_renews_an_expired_signature'),
    ('stac', 'scene folder of another STAC request in download_dir', '-', 'request file removed first, composites rebuilt; the same request reuses the folder untouched',
     'tests/test_stac.py::test_scene_load_stac_writes_a_scene_folder_reused_only_for_the_same_request'),
    ('stac', 'unknown composite option', '-', "ValueError: `composite: unknown option(s) ['methd']`",
     'tests/test_stac.py::test_scene_load_stac_writes_a_scene_folder_reused_only_for_the_same_request'),
    ('stac', 'Sentinel-1 mosaics with fewer looks than the enl asked', '-', 'UserWarning: `estimated ENL of ..., below the enl=100 the omnibus test assumes: it would flag too many changes`',
     'tests/test_stac.py::test_sentinel1_rtc_daily_mosaics_on_the_landsat_grid'),
]


def _results(xml: Path) -> dict[str, str]:
    """{test id: "passed" | "failed" | "skipped"} from a JUnit XML report."""
    out = {}
    for tc in ET.parse(xml).getroot().iter("testcase"):
        name = tc.get("name")
        state = "failed" if tc.find("failure") is not None or tc.find("error") is not None else (
            "skipped" if tc.find("skipped") is not None else "passed")
        out[name] = state
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def main(out=ROOT / "docs" / "faults.md") -> int:
    """Run the fault test files and write the table of cases and outcomes to ``out``."""
    import importlib

    xml = ROOT / ".faults-junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
                           *FILES], cwd=ROOT)
    results = _results(xml)
    xml.unlink()
    rows = []
    for f in FILES:
        mod = importlib.import_module("tests." + Path(f).stem)
        for test_name, faults in mod.TABLE:
            single = hasattr(faults, "klass")  # one Fault (run as __main__, Fault is another class object)
            for fault in [faults] if single else faults:
                tid = test_name if single else f"{test_name}[{fault.id}]"
                rows.append((fault.klass, fault.case, fault.before or "-", fault.outcome(), f"{f}::{tid}",
                             results.get(tid, "not run")))
    n_here = len(rows)
    rows += [(k, c, b or "-", n, t, "elsewhere") for k, c, b, n, t in ELSEWHERE]
    lines = ["# Bad inputs and faults: cases and outcomes", "",
             "Issues 16 and 30: no silent wrong result, no lost file, no file content in a message. Each row is one "
             "fault case and the exact outcome its "
             "test asserts (error type and message excerpt, warning, or preserved file). Generated by "
             "`python -m tests.faults` from a run of " + ", ".join(f"`{f}`" for f in FILES) +
             f" (column *run*); rows marked *elsewhere* are the fault tests of the earlier items in other files "
             "(not re-run by the script). *Outcome before*: measured on commit 1856662 (before this change) where "
             "given, else the issue's words; *same*: that outcome was already the one now; -: not recorded.", "",
             f"**{len(rows)} cases**: {n_here} in the test_faults files "
             f"({sum(r[5] == 'passed' for r in rows)} passed in the run that wrote this table), "
             f"{len(ELSEWHERE)} elsewhere.", "",
             "| # | class | case | outcome before | outcome now | test | run |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, start=1):
        lines.append(f"| {i} | " + " | ".join(_cell(v) for v in r[:4]) + f" | `{r[4]}` | {r[5]} |")
    from ltlib.io import write_text

    write_text(out, "\n".join(lines) + "\n")
    print(f"{out}: {len(rows)} cases")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
