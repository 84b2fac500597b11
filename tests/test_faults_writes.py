"""Faults while writing: every file ltlib writes goes through ltlib.io.atomic_path, so a refused
or failed write leaves the previous file byte for byte and no temporary beside it.

Each case overwrites an existing file and asserts the error (naming the file) and the old
bytes. A child process killed mid-write is in :func:`test_killed_json_writer_leaves_the_old_file`
(and tests/test_io.py for a stack).
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine

from ltlib import io, report

from .faults import Fault, cases

GRID = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), 4, 5)
YEARS = [2000, 2001, 2002]


def _old_stack(tmp_path) -> Path:
    return io.write_stack(tmp_path / "ndvi.tif", np.full((3, 4, 5), 250.0), YEARS, GRID, scale=0.001)


def _old_json(tmp_path) -> Path:
    return io.write_json(tmp_path / "summary.json", {"status": "complete", "files": {"a": "a.tif"}})


def _stack_over(data, **kw):
    def make(tmp_path):
        path = _old_stack(tmp_path)
        return path, lambda: io.write_stack(path, data, YEARS, GRID, **kw)
    return make


def _json_over(obj):
    def make(tmp_path):
        path = _old_json(tmp_path)
        return path, lambda: io.write_json(path, obj)
    return make


def _disk_full_text(tmp_path, monkeypatch=None):
    path = _old_json(tmp_path)

    def half_then_fail(self, text, *a, **k):
        with open(self, "w") as f:
            f.write(text[: len(text) // 2])
        raise OSError(28, "No space left on device (simulated)")

    def trigger():
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Path, "write_text", half_then_fail)
            io.write_json(path, {"status": "complete", "files": {"b": "b.tif"}})
    return path, trigger


def _target_is_folder(tmp_path):
    path = tmp_path / "loss_map.tif"
    (path / "inside").mkdir(parents=True)
    (path / "inside" / "keep.txt").write_text("the user's file")
    return path / "inside" / "keep.txt", lambda: io.write_raster(path, np.ones((4, 5)), GRID, dtype="float32")


def _parent_is_file(writer):
    def make(tmp_path):
        path = tmp_path / "outputs"
        path.write_text("a file where a folder was meant")
        return path, lambda: writer(path / "02" / "loss_map.tif")
    return make


def _report_over_file(tmp_path):
    path = tmp_path / "02_fit_landtrendr"
    path.write_text("a file")
    return path, lambda: report.Report("02_fit_landtrendr", path, scene=SimpleNamespace(folder=str(tmp_path)))


NAN = np.full((3, 4, 5), 250.0)
NAN[0, 0, 0] = np.nan
PHYSICAL = np.full((3, 4, 5), 0.25)
PHYSICAL[1] = 0.71
BIG = np.full((3, 4, 5), 250.0)
BIG[2, 3, 4] = 40000

WRITE_FAULTS = [
    Fault("stack-values-overflow", "writes", "overwrite a stack with a value 40000 as int16",
          "ValueError without the file name; old file kept", ValueError,
          r"ndvi\.tif: 1 values do not fit int16 \(range -32768\.\.32767, nodata -32768\)", _stack_over(BIG)),
    Fault("stack-physical-floats", "writes", "overwrite a stack with NDVI 0.25/0.71 as int16",
          "issue: stored as 0/1; refused at this session's start",
          ValueError, r"ndvi\.tif: values 0\.25\.\.0\.71 are not whole numbers and would be rounded to int16 "
          r"\(2 distinct values left\)", _stack_over(PHYSICAL)),
    Fault("stack-nan-no-nodata", "writes", "NaN in a uint16 stack without nodata",
          "ValueError without the file name; old file kept",
          ValueError, r"ndvi\.tif: data has NaN but no nodata value was given for uint16 output",
          _stack_over(NAN, dtype="uint16")),
    Fault("json-not-serialisable", "writes", "write_json of an object JSON cannot hold (a set)", "", TypeError,
          r"set is not JSON serialisable", _json_over({"classes": {1, 2}})),
    Fault("json-disk-full", "writes", "disk full half way through summary.json",
          "OSError `[Errno 28] No space left on device` without the file name; old file kept", OSError,
          r"\[Errno 28\] writing .*summary\.json failed, the previous file is kept: No space left on device "
          r"\(simulated\): '.*summary\.json'", _disk_full_text),
    Fault("target-is-folder", "writes", "write_raster to a path that is a folder",
          "raw IsADirectoryError `Is a directory: '.loss_map.tif.<pid>.part' -> 'loss_map.tif'` after writing",
          IsADirectoryError, r"cannot write .*loss_map\.tif: it is a folder, expected a file path", _target_is_folder),
    Fault("parent-is-file-raster", "writes", "write_raster into outputs/02/ where outputs is a file",
          "raw `[Errno 20] Not a directory: '.../outputs/02'`", NotADirectoryError,
          r"cannot write .*outputs/02/loss_map\.tif: .*outputs is a file, not a folder",
          _parent_is_file(lambda p: io.write_raster(p, np.ones((4, 5)), GRID, dtype="float32"))),
    Fault("parent-is-file-json", "writes", "write_json into outputs/02/ where outputs is a file",
          "raw `[Errno 20] Not a directory: '.../outputs/02'`", NotADirectoryError,
          r"cannot write .*outputs/02/loss_map\.tif: .*outputs is a file, not a folder",
          _parent_is_file(lambda p: io.write_json(p, {}))),
    Fault("report-output-dir-file", "writes", "Report (every notebook's outputs) into an output_dir that is a file",
          "", NotADirectoryError, r"output_dir .*02_fit_landtrendr is a file, not a folder", _report_over_file),
]

WRITE_FAULTS = [replace(f, kept=True) for f in WRITE_FAULTS]  # each test also asserts the old bytes

TABLE = [("test_failed_write_names_the_file_and_keeps_the_old_one", WRITE_FAULTS),
         ("test_killed_json_writer_leaves_the_old_file",
          Fault("killed-json-writer", "writes", "process killed (SIGKILL) while writing summary.json", "",
                None, "", now="old summary.json preserved byte for byte; only a hidden "
                              ".summary.json.<pid>.<random>.part is left"))]


@pytest.mark.parametrize("fault", cases(WRITE_FAULTS))
def test_failed_write_names_the_file_and_keeps_the_old_one(fault, tmp_path):
    kept, trigger = fault.run(tmp_path)
    before = kept.read_bytes()
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(fault.error) as err:
        trigger()
    assert type(err.value) is fault.error
    assert err.match(fault.match)
    assert kept.read_bytes() == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing, "a temporary or partial file was left"


def test_killed_json_writer_leaves_the_old_file(tmp_path):
    path = _old_json(tmp_path)
    before = path.read_bytes()
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "from ltlib import io\n"
        "real = Path.write_text\n"
        "def slow(self, text, *a, **k):\n"
        "    with open(self, 'w') as f:\n"
        "        f.write(text[:10]); f.flush()\n"
        "        print('writing', flush=True); time.sleep(30)\n"
        "Path.write_text = slow\n"
        f"io.write_json({str(path)!r}, {{'status': 'running'}})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert path.read_bytes() == before and json.loads(before)["status"] == "complete"
    # the killed process could not remove its temporary: a hidden .part file (readers skip dot-files)
    # (created exclusively under an unpredictable name: .summary.json.<pid>.<random>.part)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[1] == "summary.json"
    assert re.fullmatch(rf"\.summary\.json\.{proc.pid}\.[A-Za-z0-9_]+\.part", names[0]), names
