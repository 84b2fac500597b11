"""Faults: wrong-type and out-of-range notebook parameters, checked by ltlib.params.check_notebook
before any work. Each case starts from the notebook's own parameters cell (so the check sees
exactly what papermill would inject into) and changes one or two values.

Policy for a string that spells a value of the right type (papermill ``-r max_segments 6``):
converted, with a warning naming the parameter, the string and the value. Any other wrong type
is a ParameterError naming the parameter and what it must be.
"""
from __future__ import annotations

import json
import warnings

import pytest

from ltlib import params
from ltlib.params import ParameterError

from .conftest import NOTEBOOKS
from .faults import Fault, cases, expect_error


def parameters_cell(name: str) -> dict:
    """The values of the notebook's ``parameters`` cell, as its kernel has them."""
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    ns: dict = {}
    exec("".join(cell["source"]), ns)
    ns.pop("__builtins__")
    return ns


def _with(notebook, **changes):
    def make(tmp_path):
        ns = {**parameters_cell(notebook), **{k: v(tmp_path) if callable(v) else v for k, v in changes.items()}}
        return lambda: (params.check_notebook(notebook, ns), ns)[1]
    return make


def _a_file(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    return str(tmp_path / "out")


def _under_a_file(tmp_path):
    return _a_file(tmp_path) + "/02"


NB1, NB2, NB3, NB4, NB5 = (f"0{i}_{n}" for i, n in enumerate(
    ["collect_landsat", "fit_landtrendr", "cluster_trajectories", "classify_trajectories", "detect_sar_change"], 1))
P = r"parameter "  # every message: "<notebook>: parameter <name> must be <what>, got <value>"


def _bad(id, nb, case, before, match, **changes):
    return Fault(id, "parameters", f"{nb}: {case}", before, ParameterError, f"{nb}: {match}", _with(nb, **changes))


RAW = "TypeError/ValueError deep in the step"
TYPE_FAULTS = [
    _bad("max_segments-word", NB2, "-r max_segments six", "", P + r"max_segments must be an integer >= 1, got the "
         r"string 'six'", max_segments="six"),
    _bad("max_segments-float", NB2, "max_segments 2.5", "", P + r"max_segments must be an integer >= 1, got 2\.5",
         max_segments=2.5),
    _bad("max_segments-zero", NB2, "max_segments 0", "", P + r"max_segments must be an integer >= 1, got 0",
         max_segments=0),
    _bad("max_segments-bool", NB2, "max_segments True", "", P + r"max_segments must be an integer >= 1, got True",
         max_segments=True),
    _bad("pval-above-1", NB2, "pval_threshold 1.5", "", P + r"pval_threshold must be a number in \(0, 1\], got 1\.5",
         pval_threshold=1.5),
    _bad("median_filter-yes", NB2, "-r median_filter yes", "no error: 'yes' is truthy, filter on", P +
         r"median_filter must be True or False, got the string 'yes'", median_filter="yes"),
    _bad("median_filter-int", NB2, "median_filter 1", "", P + r"median_filter must be True or False, got 1",
         median_filter=1),
    _bad("mmu-negative", NB2, "mmu -5 (negative size)", "", P + r"mmu must be an integer >= 1 or None, got -5",
         mmu=-5),
    _bad("index-unknown", NB2, "index 'EVI'", "MissingInputError after loading", P + r"index must be an index name "
         r"\(NDVI, NBR, NDMI, TCB, TCG, TCW\) or None, got 'EVI'", index="EVI"),
    _bad("ftv-string", NB2, "-p ftv_indices NBR (a string)",
         "iterated letter by letter: MissingInputError `has no N stack` after loading", P + r"ftv_indices must be a "
         r"list of index names such as \['NDVI', 'NBR'\] or None, got 'NBR' \(papermill: -y \"ftv_indices: \[NBR\]\"\)",
         ftv_indices="NBR"),
    _bad("loss_mag-negative", NB2, "loss_mag_min -10", "", P + r"loss_mag_min must be a number >= 0 or None, got -10",
         loss_mag_min=-10),
    _bad("indices-string", NB1, "-p indices NDVI (a string)", "scene.load ValueError (after the notebook started)",
         P + r"indices must be a list of index names .* got 'NDVI' \(papermill: -y \"indices: \[NDVI\]\"\)",
         indices="NDVI"),
    _bad("indices-unknown", NB1, "indices ['NDVI', 'FOO']", "", P + r"indices must be a list of index names .*, got "
         r"\['NDVI', 'FOO'\]", indices=["NDVI", "FOO"]),
    _bad("n_pixels-negative", NB1, "n_pixels_per_class -1", "", P + r"n_pixels_per_class must be an integer >= 1, "
         r"got -1", n_pixels_per_class=-1),
    _bad("start_year-1850", NB1, "start_year 1850", "", P + r"start_year must be an integer in \[1972, 2100\] or "
         r"None, got 1850", start_year=1850),
    _bad("aoi-west-east", NB1, "aoi (10, 0, 5, 1): west > east", "Earth Engine error", P + r"aoi must be \(west, "
         r"south, east, north\) in degrees or a GeoJSON geometry or None, got \(10, 0, 5, 1\)", aoi=(10, 0, 5, 1)),
    _bad("aoi-string", NB1, "-p aoi bingham", "", P + r"aoi must be .*, got 'bingham'", aoi="bingham"),
    _bad("n_clusters-1", NB3, "n_clusters 1", "", P + r"n_clusters must be an integer >= 2 or None, got 1",
         n_clusters=1),
    _bad("k_range-1", NB3, "k_range [1, 2]", "", P + r"k_range must be a list of integers >= 2, got \[1, 2\]",
         k_range=[1, 2]),
    _bad("k_range-string", NB3, "-p k_range 2,3,4 (a string)", "", P + r"k_range must be a list of integers >= 2, "
         r"got '2,3,4' \(papermill: -y \"k_range: \[2,3,4\]\"\)", k_range="2,3,4"),
    _bad("kshape_init-kmeans", NB3, "kshape_init 'kmeans'", "", P + r"kshape_init must be one of 'k-shape\+\+', "
         r"'random', 'random-labels', got 'kmeans'", kshape_init="kmeans"),
    _bad("elbow_max_series-negative", NB3, "elbow_max_series -100", "", P + r"elbow_max_series must be an integer >= 2",
         elbow_max_series=-100),
    _bad("models-string", NB4, "-p models TSF (a string)",
         "list('TSF') = ['T', 'S', 'F']: unknown models, after the training data is built",
         P + r"models must be a list "
         r"of model names from InceptionTime, .*, got 'TSF' \(papermill: -y \"models: \[TSF\]\"\)", models="TSF"),
    _bad("models-unknown", NB4, "models ['XGBoost']", "", P + r"models must be a list of model names .*, got "
         r"\['XGBoost'\]", models=["XGBoost"]),
    _bad("epochs-zero", NB4, "epochs 0", "", P + r"epochs must be an integer >= 1, got 0", epochs=0),
    _bad("batch_size-float", NB4, "batch_size 0.5", "", P + r"batch_size must be an integer >= 1, got 0\.5",
         batch_size=0.5),
    _bad("first_year-word", NB4, "-r training_first_year 1972a", "", P + r"training_first_year must be an integer in "
         r"\[1972, 2100\], got the string '1972a'", training_first_year="1972a"),
    _bad("enl-below-1", NB5, "enl 0.5", "", P + r"enl must be a number >= 1 or None, got 0\.5", enl=0.5),
    _bad("alpha-1", NB5, "alpha 1.0", "", P + r"alpha must be a number in \(0, 1\), got 1\.0", alpha=1.0),
    _bad("alpha-nan", NB5, "alpha nan", "", P + r"alpha must be a number in \(0, 1\), got nan", alpha=float("nan")),
    _bad("orbit-lowercase", NB5, "orbit_pass 'ascending'", "", P + r"orbit_pass must be one of 'ASCENDING', "
         r"'DESCENDING', got 'ascending'", orbit_pass="ascending"),
    _bad("s1_start-bad-date", NB5, "s1_start '2020-13-01'", "", P + r"s1_start must be a date 'YYYY-MM-DD' or None, "
         r"got '2020-13-01'", s1_start="2020-13-01", s1_end="2021-01-01"),
    _bad("sensitivity-alpha-2", NB5, "sensitivity_alphas [0.01, 2]", "", P + r"sensitivity_alphas must be a list of "
         r"numbers in \(0, 1\), got \[0\.01, 2\]", sensitivity_alphas=[0.01, 2]),
    _bad("relative_orbit-0", NB5, "relative_orbit 0", "", P + r"relative_orbit must be an integer in \[1, 175\] or "
         r"None, got 0", relative_orbit=0),
]

CROSS_FAULTS = [
    _bad("years-swapped", NB1, "start_year 2010, end_year 2000", "", r"start_year 2010 is after end_year 2000",
         start_year=2010, end_year=2000),
    _bad("s1-start-only", NB5, "s1_start without s1_end", "", r"give both s1_start and s1_end or neither, got "
         r"s1_start='2020-01-01', s1_end=None", s1_start="2020-01-01"),
    _bad("s1-start-after-end", NB5, "s1_start after s1_end", "", r"s1_start 2021-01-01 must be before s1_end "
         r"2020-01-01", s1_start="2021-01-01", s1_end="2020-01-01"),
    _bad("data_dir-missing", NB2, "data_dir that does not exist", "FileNotFoundError from scene.load (clear)",
         r"data_dir .*nope is not a folder \(absolute: .*nope\); give a scene folder",
         data_dir=lambda t: str(t / "nope")),
    _bad("data_dir-none", NB2, "data_dir None without use_gee", "ValueError from scene.load (clear)",
         r"data_dir is None: give a scene folder such as \.\./data/sample, or use_gee=True", data_dir=None),
    _bad("output_dir-file", NB2, "output_dir that is an existing file", "NotADirectoryError after loading the scene; "
         "with use_gee after the downloads", r"output_dir .*out: .*out is a file, not a folder", output_dir=_a_file),
    _bad("output_dir-under-file", NB2, "output_dir inside a file (file/02)",
         "raw `[Errno 20] Not a directory` from mkdir, after loading the scene",
         r"output_dir .*out/02: .*out is a file, not a folder", output_dir=_under_a_file),
    Fault("several-at-once", "parameters", f"{NB3}: three bad parameters", "", ParameterError,
          rf"3 bad parameters:\n{NB3}: parameter n_clusters .*\n{NB3}: parameter max_iter .*\n{NB3}: start_year 2020 "
          r"is after end_year 2000", _with(NB3, n_clusters="two", max_iter=-1, start_year=2020, end_year=2000)),
]

#: (fault, parameter, value after the check); the warning says what was done.
CONVERSIONS = [
    (Fault("max_segments-'6'", "parameters", f"{NB2}: -r max_segments 6 (the string '6')", "ValueError in "
           "LandTrendrParams after loading the scene", None,
           rf"{NB2}: parameter max_segments: the string '6' was read as 6 \(an integer >= 1\); papermill's -r "
           r"passes strings, -p max_segments 6 passes the value", _with(NB2, max_segments="6"),
           now="UserWarning: `parameter max_segments: the string '6' was read as 6 (an integer >= 1); papermill's -r "
               "passes strings, -p max_segments 6 passes the value`; value int 6"), "max_segments", 6),
    (Fault("median_filter-'False'", "parameters", f"{NB2}: -r median_filter False", "'False' is truthy: filter "
           "silently on", None, r"parameter median_filter: the string 'False' was read as False \(True or False\)",
           _with(NB2, median_filter="False"),
           now="UserWarning: `the string 'False' was read as False (True or False)`; value False"),
     "median_filter", False),
    (Fault("enl-'4.4'", "parameters", f"{NB5}: -r enl 4.4", "", None, r"parameter enl: the string '4\.4' was read as "
           r"4\.4 \(a number >= 1 or None\)", _with(NB5, enl="4.4"),
           now="UserWarning: `the string '4.4' was read as 4.4 (a number >= 1)`; value float 4.4"), "enl", 4.4),
    (Fault("n_clusters-'None'", "parameters", f"{NB3}: -r n_clusters None", "", None, r"parameter n_clusters: the "
           r"string 'None' was read as None", _with(NB3, n_clusters="None"),
           now="UserWarning: `the string 'None' was read as None`; value None"), "n_clusters", None),
]


#: Values of another type but the same value: accepted without a word (nothing is changed).
SAME_VALUE = [
    (Fault("max_segments-6.0", "parameters", f"{NB2}: max_segments 6.0", "", None, "", _with(NB2, max_segments=6.0),
           now="accepted as int 6, no warning (same value)"), "max_segments", 6),
    (Fault("data_dir-none-gee", "parameters", f"{NB1}: data_dir None with use_gee True", "", None, "",
           _with(NB1, data_dir=None, use_gee=True), now="accepted: Earth Engine needs no data_dir"), "data_dir", None),
    (Fault("aoi-list", "parameters", f"{NB1}: aoi as a list [w, s, e, n]", "", None, "",
           _with(NB1, aoi=[-112.2, 40.45, -112.0, 40.6]),
           now="accepted as a tuple of floats, no warning"), "aoi", (-112.2, 40.45, -112.0, 40.6)),
]

TABLE = [("test_bad_parameter_is_named_before_any_work", TYPE_FAULTS),
         ("test_inconsistent_parameters_are_named", CROSS_FAULTS),
         ("test_string_spelling_a_value_is_converted_with_a_warning", [c[0] for c in CONVERSIONS]),
         ("test_same_value_of_another_type_is_accepted_silently", [c[0] for c in SAME_VALUE]),
         ("test_papermill_raw_string_parameter_stops_the_notebook_before_any_output",
          Fault("papermill-r-max_segments", "parameters", f"{NB2} run by papermill with -r max_segments six",
                "ValueError in LandTrendrParams after the scene was loaded and output_dir created", ParameterError,
                f"{NB2}: parameter max_segments must be an integer >= 1, got the string 'six'",
                now="PapermillExecutionError (ParameterError): `02_fit_landtrendr: parameter max_segments must be an "
                    "integer >= 1, got the string 'six'`; output_dir not created"))]


@pytest.fixture(autouse=True)
def _in_notebooks_folder(monkeypatch):
    monkeypatch.chdir(NOTEBOOKS)  # where papermill runs them: relative data_dir as in the cell


@pytest.mark.parametrize("fault", cases(TYPE_FAULTS))
def test_bad_parameter_is_named_before_any_work(fault, tmp_path):
    expect_error(fault, tmp_path)


@pytest.mark.parametrize("fault", cases(CROSS_FAULTS))
def test_inconsistent_parameters_are_named(fault, tmp_path):
    expect_error(fault, tmp_path)


@pytest.mark.parametrize("fault, name, value", [pytest.param(*c, id=c[0].id) for c in CONVERSIONS])
def test_string_spelling_a_value_is_converted_with_a_warning(fault, name, value, tmp_path):
    with pytest.warns(UserWarning, match=fault.match) as rec:
        ns = fault.run(tmp_path)()
    assert len(rec) == 1
    assert ns[name] == value and type(ns[name]) is type(value)


@pytest.mark.parametrize("fault, name, value", [pytest.param(*c, id=c[0].id) for c in SAME_VALUE])
def test_same_value_of_another_type_is_accepted_silently(fault, name, value, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ns = fault.run(tmp_path)()
    assert ns[name] == value and type(ns[name]) is type(value)


@pytest.mark.parametrize("name", sorted(params.NOTEBOOK_PARAMETERS))
def test_every_notebook_parameter_has_a_type_and_the_defaults_pass(name):
    ns = parameters_cell(name)
    assert sorted(ns) == sorted(params.NOTEBOOK_PARAMETERS[name]), "parameters cell and NOTEBOOK_PARAMETERS differ"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = params.check_notebook(name, dict(ns))
    assert checked == ns


@pytest.mark.parametrize("name", sorted(params.NOTEBOOK_PARAMETERS))
def test_each_notebook_checks_its_parameters_before_loading_the_scene(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    check = code.find(f'params.check_notebook("{name}", globals())')
    assert 0 < check < code.find("scene.load(")


def test_papermill_raw_string_parameter_stops_the_notebook_before_any_output(tmp_path):
    """The one case run through papermill: -r max_segments six stops at the check, and the
    output folder is not even created (nothing loaded, downloaded or written)."""
    import os

    import papermill as pm

    out = tmp_path / "run"
    os.environ.setdefault("MPLBACKEND", "Agg")
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOKS / f"{NB2}.ipynb"), str(tmp_path / "nb.ipynb"),
                            parameters={"output_dir": str(out), "max_segments": "six"}, cwd=str(NOTEBOOKS),
                            kernel_name="python3", progress_bar=False)
    assert err.value.ename == "ParameterError"
    assert err.value.evalue == f"{NB2}: parameter max_segments must be an integer >= 1, got the string 'six'"
    assert not out.exists()
