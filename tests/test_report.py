"""ltlib.report: summary.json, skipped sections, and re-runs into the same output_dir."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from ltlib import report, scene  # noqa: E402


def _figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def _run(out, names, *, finish=True, scene_=None):
    rep = report.Report("02_fit_landtrendr", out, scene=scene_)
    for n in names:
        rep.savefig(_figure(), n)
    plt.close("all")
    if finish:
        rep.write()
    return rep


def test_summary_lists_this_runs_files_sections_and_values(tmp_path):
    rep = report.Report("02_fit_landtrendr", tmp_path / "out")
    assert rep.needs("accuracy", False, "no truth here") is False
    assert rep.needs("fit", True, "unused") is True
    rep.add("n", 3)
    rep.add("obj", SimpleNamespace(summary=lambda: {"k": 2}))
    rep.savefig(_figure(), "a.png")
    s = rep.write()
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk == s and s["status"] == "complete" and s["files"] == {"a": "a.png"}
    assert s["sections"] == {"accuracy": "skipped: no truth here", "fit": "ran"}
    assert s["n"] == 3 and s["obj"] == {"k": 2}
    with pytest.raises(ValueError, match="is not inside output_dir"):
        rep.file("x", tmp_path / "elsewhere.tif")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="afile is a file, not a folder"):
        report.Report("02_fit_landtrendr", tmp_path / "afile")


def test_rerun_removes_the_previous_runs_files_and_nothing_else(tmp_path, capsys):
    out = tmp_path / "out"
    _run(out, ["a.png", "b.png"])
    (out / "my_notes.txt").write_text("the user's own file")
    _run(out, ["a.png"])
    assert "removed 2 file(s) of the previous run" in capsys.readouterr().out
    assert (out / "a.png").exists() and not (out / "b.png").exists()  # b belonged to the old run only
    assert (out / "my_notes.txt").read_text() == "the user's own file"
    assert json.loads((out / "summary.json").read_text())["files"] == {"a": "a.png"}


def test_failed_rerun_leaves_no_complete_folder_to_trust(tmp_path):
    root = tmp_path / "runs"
    first = root / "02_fit_landtrendr"
    _run(first, ["a.png"])
    assert report.earlier_output(root / "03_cluster_trajectories", "02_fit_landtrendr") == first
    _run(first, ["a.png"], finish=False)  # the re-run dies before writing its summary
    s = json.loads((first / "summary.json").read_text())
    assert s["status"] == "running" and "files" not in s
    assert report.earlier_output(root / "03_cluster_trajectories", "02_fit_landtrendr") is None
    with pytest.raises(ValueError, match="did not finish"):
        report.earlier_output(root / "03", "02_fit_landtrendr", given=str(first))


def test_rerun_keeps_files_of_the_scene_it_reads(tmp_path, capsys):
    """Notebook 01 run again with data_dir = its own output_dir: the stacks it reads stay."""
    out = tmp_path / "01"
    (out / "landsat").mkdir(parents=True)
    (out / "landsat" / "ndvi.tif").write_bytes(b"stack")
    (out / "summary.json").write_text(json.dumps({"status": "complete", "files": {"landsat_ndvi": "landsat/ndvi.tif",
                                                                                 "fig": "fig.png"}}))
    (out / "fig.png").write_bytes(b"png")
    report.Report("01_collect_landsat", out, scene=SimpleNamespace(folder=str(out), summary=dict))
    assert (out / "landsat" / "ndvi.tif").read_bytes() == b"stack" and not (out / "fig.png").exists()
    assert "removed 1 file(s) of the previous run; kept 1 of the scene it reads" in capsys.readouterr().out


def test_stop_writes_a_stopped_summary_and_raises(tmp_path):
    rep = report.Report("04_classify_trajectories", tmp_path)
    with pytest.raises(scene.MissingInputError, match="needs NDVI"):
        rep.stop("the classes needs NDVI")
    s = json.loads(Path(tmp_path / "summary.json").read_text())
    assert s["status"] == "stopped" and s["sections"]["stopped"] == "the classes needs NDVI"
