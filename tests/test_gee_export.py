"""ltlib.gee.export_tiled and mosaic_export_tiles, offline: the tiles, the tasks (the real
``ee.batch`` code over :class:`tests.ee_offline.FakeBatch`), resuming from the state file,
restarts and failure reports, the concurrency limit, and the mosaic of tiles on disk."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import rasterio
from affine import Affine

from ltlib.io import Grid

from .ee_offline import ee_offline, fake_batch, invocations  # noqa: F401

ee = pytest.importorskip("ee")
from ltlib import gee  # noqa: E402
from ltlib.gee import export as ex_mod  # noqa: E402

GRID = Grid("EPSG:32612", Affine(30.0, 0.0, 405000.0, 0.0, -30.0, 4490010.0), 100, 83)  # odd: partial edge tiles


def _run(tmp_path, image=None, *, name="state.json", **kw):
    kw = {"prefix": "ndvi", "folder": "ltlib", "tile_px": 37, "poll_seconds": 0, "sleep": lambda s: None,
          "max_running": 50, **kw}
    return gee.export_tiled(image if image is not None else ee.Image(1).rename("ndvi"), kw.pop("region", GRID),
                            state_path=tmp_path / name, **kw)


# --- tiles -----------------------------------------------------------------------------------
@pytest.mark.parametrize("tile_px", [16, 37, 64, 100, 500])
def test_tiles_cover_the_grid_exactly_once(tile_px):
    tiles = gee.plan_export_tiles(GRID, tile_px)
    count = np.zeros(GRID.shape, int)
    for t in tiles:
        assert 0 < t.height <= tile_px and 0 < t.width <= tile_px
        assert t.row_off % tile_px == 0 and t.col_off % tile_px == 0  # on the tile lattice
        count[t.row_off:t.row_off + t.height, t.col_off:t.col_off + t.width] += 1
        tt = t.transform(GRID)  # on the grid's pixels: the corner is a whole number of pixels away
        assert (tt.c - GRID.transform.c) / 30 == t.col_off and (GRID.transform.f - tt.f) / 30 == t.row_off
    assert (count == 1).all()  # no gap, no overlap
    assert len(tiles) == -(-100 // tile_px) * -(-83 // tile_px)


def test_tile_size_from_max_bytes_and_bad_sizes():
    side = ex_mod._tile_px_for(None, 3 * 4 * 50 * 50 + 7, ["a", "b", "c"], "float32")
    assert side == 50
    with pytest.raises(ValueError, match="tile_px or max_bytes, not both"):
        ex_mod._tile_px_for(37, 1000, ["a"], "int16")
    with pytest.raises(ValueError, match="max_bytes needs band_names"):
        ex_mod._tile_px_for(None, 10**6, None, "int16")
    with pytest.raises(ValueError, match="at least 16 px"):
        ex_mod._tile_px_for(None, 100, ["a"], "float32")
    with pytest.raises(ValueError, match="tile_px must be an integer >= 16"):
        gee.plan_export_tiles(GRID, 8)


# --- one task per tile -----------------------------------------------------------------------
def test_one_drive_task_per_tile_with_the_tile_grid(fake_batch, tmp_path):
    ex = _run(tmp_path, band_names=["ndvi"], dtype="int16")
    assert ex.done and len(ex.tiles) == 9 and len(fake_batch.tasks) == 9
    for rec in ex.tiles:
        (task,) = fake_batch.by_description(rec["name"])
        tile = gee.Tile(rec["index"], rec["row_off"], rec["col_off"], rec["height"], rec["width"])
        cfg = task["config"]
        assert task["destination"] == "drive" and cfg["folder"] == "ltlib" and cfg["fileNamePrefix"] == rec["name"]
        assert cfg["crs"] == "EPSG:32612" and cfg["crsTransform"] == list(tile.transform(GRID))[:6]
        assert cfg["dimensions"] == f"{rec['width']}x{rec['height']}" and cfg["formatOptions"] == {"noData": -32768.0}
        # what reaches the server: the Cloud API request built by ee.batch from those arguments
        req = task["request"]
        assert req["fileExportOptions"]["driveDestination"] == {"folder": "ltlib", "filenamePrefix": rec["name"]}
        calls = dict(invocations(req["expression"]))
        assert calls["Image.reproject"]["crsTransform"] == list(tile.transform(GRID))[:6]
        assert calls["GeometryConstructors.Rectangle"]["coordinates"] == [0, 0, rec["width"], rec["height"]]
        assert "Image.toInt16" in calls and rec["file"] == f"{rec['name']}.tif" and rec["attempts"] == 1
    assert [r["name"] for r in ex.tiles] == [f"ndvi_{k:04d}" for k in range(9)]
    state = json.loads((tmp_path / "state.json").read_text())
    assert [t["state"] for t in state["tiles"]] == ["COMPLETED"] * 9
    assert {t["task_id"] for t in state["tiles"]} == set(fake_batch.tasks)


def test_cloud_storage_and_asset_destinations(fake_batch, tmp_path):
    gcs = _run(tmp_path, name="gcs.json", destination="gcs", bucket="my-bucket", folder="exports/ndvi", tile_px=64)
    req = fake_batch.by_description("ndvi_0001")[0]["request"]
    assert req["fileExportOptions"]["cloudStorageDestination"] == {"bucket": "my-bucket",
                                                                   "filenamePrefix": "exports/ndvi/ndvi_0001"}
    assert gcs.tiles[1]["output"] == "gs://my-bucket/exports/ndvi/ndvi_0001.tif"
    fake_batch.tasks.clear()
    asset = _run(tmp_path, name="asset.json", destination="asset", folder=None,
                 asset_root="projects/my-project/assets/tiles", tile_px=64, prefix="lt")
    task = fake_batch.by_description("lt_0003")[0]
    assert task["destination"] == "asset" and task["config"]["assetId"] == "projects/my-project/assets/tiles/lt_0003"
    assert task["request"]["assetExportOptions"]["earthEngineDestination"]["name"] == \
        "projects/my-project/assets/tiles/lt_0003"
    assert "Image.updateMask" in dict(invocations(task["request"]["expression"]))  # assets keep the mask
    assert asset.files == [f"projects/my-project/assets/tiles/lt_{k:04d}" for k in range(4)]


@pytest.mark.parametrize("kw, match", [
    (dict(destination="gcs"), "needs bucket"),
    (dict(destination="asset", folder=None), "needs asset_root"),
    (dict(destination="ftp"), "destination must be one of"),
    (dict(prefix="ndvi stack/2020"), "prefix must be"),
    (dict(max_running=0), "max_running must be an integer >= 1"),
    (dict(max_retries=-1), "max_retries must be an integer >= 0"),
    (dict(scale=10), "Grid of 30.0 m pixels but scale=10"),
])
def test_bad_parameters_are_named(fake_batch, tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        _run(tmp_path, **kw)
    assert not fake_batch.tasks and not (tmp_path / "state.json").exists()


# --- resume ----------------------------------------------------------------------------------
def test_resume_skips_completed_tiles_and_polls_running_ones(fake_batch, tmp_path):
    fake_batch.script = lambda d, a: ["READY", "RUNNING", "RUNNING", "RUNNING", "COMPLETED"]
    first = _run(tmp_path, max_running=4, poll=False)  # starts 4 tasks
    for _ in range(5):
        first.status()  # the first 4 complete after 5 polls (READY..COMPLETED), 4 more are started
    first.status()
    first.status()  # those 4 are now RUNNING
    before = {t["name"]: (t["state"], t["task_id"]) for t in json.loads((tmp_path / "state.json").read_text())["tiles"]}
    states = [s for s, _ in before.values()]
    assert states.count("COMPLETED") == 4 and states.count("RUNNING") == 4 and states.count("PENDING") == 1
    del first  # the notebook dies; Earth Engine keeps the running tasks

    second = _run(tmp_path, max_running=4)  # a new session, same state file
    assert second.done
    for name, (state, task_id) in before.items():
        tasks = fake_batch.by_description(name)
        assert len(tasks) == 1, f"{name} ({state} before the resume) was started {len(tasks)} times"
        if state == "RUNNING":  # polled again under its old id, not restarted
            assert tasks[0]["id"] == task_id and tasks[0]["polls"] > 2
    assert len(fake_batch.tasks) == 9


def test_failed_tiles_are_restarted_then_reported(fake_batch, tmp_path):
    def script(description, attempt):
        if description == "ndvi_0003":
            return ["READY", "RUNNING", "FAILED"], "User memory limit exceeded."
        if description == "ndvi_0005" and attempt == 1:
            return ["READY", "FAILED"], "Computation timed out."
        return ["READY", "COMPLETED"]

    fake_batch.script = script
    with pytest.raises(gee.TiledExportError) as err:
        _run(tmp_path, max_retries=2)
    msg = str(err.value)
    assert "1 of 9 tiles" in msg and "ndvi_0003 (tile 3, rows 37-73, cols 0-36) FAILED after 3 attempt(s): " \
                                     "User memory limit exceeded." in msg
    assert err.value.failed == [("ndvi_0003", "User memory limit exceeded.")]
    assert len(fake_batch.by_description("ndvi_0003")) == 3  # 1 + max_retries
    assert len(fake_batch.by_description("ndvi_0005")) == 2  # failed once, restarted, completed
    state = {t["name"]: t for t in json.loads((tmp_path / "state.json").read_text())["tiles"]}
    assert state["ndvi_0003"]["state"] == "FAILED" and state["ndvi_0005"]["state"] == "COMPLETED"

    # running again restarts only the failed tile (the cause was fixed: it now completes)
    fake_batch.script = lambda d, a: ["READY", "COMPLETED"]
    n = len(fake_batch.tasks)
    again = _run(tmp_path, max_retries=2)
    assert again.done and len(fake_batch.tasks) == n + 1 and fake_batch.started[-1] == "ndvi_0003"
    assert again.tiles[3]["attempts"] == 4


def test_a_start_that_raises_is_a_failed_attempt(fake_batch, tmp_path, monkeypatch):
    calls = []

    def refuse(request_id, params):
        calls.append(params["description"])
        raise ee.EEException("Too many tasks already in the queue (3000).")

    monkeypatch.setattr(ee.data, "exportImage", refuse)
    with pytest.raises(gee.TiledExportError, match=r"9 of 9 tiles .*EEException: Too many tasks"):
        _run(tmp_path, max_retries=1)
    assert len(calls) == 18  # each tile: the start and one restart


def test_a_state_file_of_another_export_is_refused(fake_batch, tmp_path):
    _run(tmp_path)
    n = len(fake_batch.tasks)
    with pytest.raises(gee.ExportStateError, match=r"belongs to another export: image_sha256"):
        _run(tmp_path, ee.Image(2).rename("ndvi"))
    with pytest.raises(gee.ExportStateError, match=r"tile_px \(state file: 37, now: 40\)"):
        _run(tmp_path, tile_px=40)
    with pytest.raises(gee.ExportStateError, match=r"folder \(state file: 'ltlib', now: 'other'\)"):
        _run(tmp_path, folder="other")
    shifted = Grid(GRID.crs, GRID.transform * Affine.translation(1, 0), GRID.height, GRID.width)
    with pytest.raises(gee.ExportStateError, match=r"transform"):
        _run(tmp_path, region=shifted)
    assert len(fake_batch.tasks) == n  # nothing was started
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(gee.ExportStateError, match="not a tiled-export state file"):
        _run(tmp_path, name="bad.json")


def test_max_running_is_respected(fake_batch, tmp_path):
    fake_batch.script = lambda d, a: ["READY", "RUNNING", "RUNNING", "COMPLETED"]
    ex = _run(tmp_path, tile_px=25, max_running=3)  # 4 x 4 = 16 tiles
    assert ex.done and len(fake_batch.tasks) == 16
    assert fake_batch.peak_active == 3


def test_the_state_file_is_replaced_atomically(fake_batch, tmp_path, monkeypatch):
    fake_batch.script = lambda d, a: ["RUNNING", "COMPLETED"]
    ex = _run(tmp_path, poll=False, max_running=2)
    path = tmp_path / "state.json"
    saved = path.read_text()
    real_write = pathlib.Path.write_text

    def dies_half_way(self, text, *a, **k):
        real_write(self, text[: len(text) // 2])
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(pathlib.Path, "write_text", dies_half_way)
    with pytest.raises(OSError, match="No space left"):
        ex.status()  # the tasks moved on: the state is rewritten, and the write dies
    monkeypatch.undo()
    assert path.read_text() == saved and json.loads(saved)["tiles"][0]["state"] == "READY"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no half-written file left


def test_wait_times_out_and_the_tasks_keep_running(fake_batch, tmp_path):
    fake_batch.script = lambda d, a: ["READY", "RUNNING"]  # never finishes
    clock = iter(range(0, 10000, 60))
    with pytest.raises(TimeoutError, match=r"0/9 completed, .* after 300 s; the tasks keep running.*resume"):
        _run(tmp_path, timeout=300, clock=lambda: next(clock), max_running=2)
    assert len(fake_batch.tasks) == 2


def test_summary_and_local_files(fake_batch, tmp_path):
    fake_batch.script = lambda d, a: (["READY", "FAILED"], "Image.reduceRegions: too many pixels") \
        if d == "ndvi_0002" else ["READY", "COMPLETED"]
    with pytest.raises(gee.TiledExportError):
        _run(tmp_path, max_retries=0)
    ex = gee.TiledExport(None, GRID, json.loads((tmp_path / "state.json").read_text()), tmp_path / "state.json",
                         max_running=1, max_retries=0, poll_seconds=0, sleep=None, clock=None, export_kwargs={})
    text = ex.summary()
    assert "100 x 83 px on EPSG:32612 in 9 tiles of <= 37 px to Google Drive folder ltlib" in text
    assert "8/9 completed, 1 failed" in text and "ndvi_0002: FAILED after 1 attempt(s): Image.reduceRegions" in text
    folder = tmp_path / "drive"
    folder.mkdir()
    for name in ex.files:
        if name != "ndvi_0004.tif":
            (folder / name).write_bytes(b"")
    (folder / "ndvi_0004-0000000000-0000000000.tif").write_bytes(b"")  # a tile Earth Engine split in two
    (folder / "ndvi_0004-0000000000-0000000256.tif").write_bytes(b"")
    assert len(ex.local_files(folder)) == 10
    (folder / "ndvi_0007.tif").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 9 tile files missing: ndvi_0007.tif"):
        ex.local_files(folder)


# --- mosaic ----------------------------------------------------------------------------------
def _write_tile(path, data, transform, crs="EPSG:32612", nodata=None, names=None):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(data)
        for i, n in enumerate(names or [], start=1):
            dst.set_band_description(i, n)


def _source(dtype, shape=(3, 601, 533), seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "int16":
        a = rng.integers(-1000, 1000, shape).astype(np.int16)
        a[:, 10:20, 30:45] = -32768
        return a, -32768
    a = rng.normal(size=shape).astype(np.float32)
    a[1, 100:130, 200:260] = np.nan
    return a, np.nan


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_mosaic_of_exported_tiles_equals_the_source(fake_batch, tmp_path, dtype):
    src, nodata = _source(dtype)
    grid = Grid("EPSG:32612", Affine(30.0, 0.0, 405000.0, 0.0, -30.0, 4490010.0), *src.shape[1:])
    ex = _run(tmp_path, region=grid, tile_px=197)  # 4 x 3 tiles, partial at the edges
    folder = tmp_path / "drive"
    folder.mkdir()
    for t in ex.tiles:  # what Earth Engine would write: each tile on its own piece of the grid
        tile = gee.Tile(t["index"], t["row_off"], t["col_off"], t["height"], t["width"])
        _write_tile(folder / t["file"], src[:, tile.row_off:tile.row_off + tile.height,
                                           tile.col_off:tile.col_off + tile.width],
                    tile.transform(grid), nodata=nodata, names=["b1", "b2", "b3"])
    out = gee.mosaic_export_tiles(ex.local_files(folder)[::-1], tmp_path / "mosaic.tif", block_px=256)
    with rasterio.open(out) as m:
        np.testing.assert_array_equal(m.read(), src)  # NaN where NaN, nodata where nodata
        assert m.transform == grid.transform and m.crs == grid.crs and m.dtypes[0] == dtype
        assert (m.nodata == nodata) or (np.isnan(m.nodata) and np.isnan(nodata))
        assert m.descriptions == ("b1", "b2", "b3") and m.profile["tiled"] and m.block_shapes[0] == (256, 256)
        assert m.overviews(1) == [2, 4] and m.profile["compress"] == "deflate"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drive", "mosaic.tif", "state.json"]


def test_mosaic_refuses_tiles_that_do_not_fit(tmp_path):
    a = np.ones((2, 40, 50), np.int16)
    t0 = Affine(30.0, 0.0, 0.0, 0.0, -30.0, 3000.0)
    _write_tile(tmp_path / "a.tif", a, t0, nodata=-32768)

    def case(name, data=a, transform=t0 * Affine.translation(50, 0), **kw):
        kw.setdefault("nodata", -32768)
        _write_tile(tmp_path / name, data, transform, **kw)
        return [tmp_path / "a.tif", tmp_path / name]

    with pytest.raises(ValueError, match="b.tif: CRS .* differs"):
        gee.mosaic_export_tiles(case("b.tif", crs="EPSG:32613"), tmp_path / "m.tif")
    with pytest.raises(ValueError, match="c.tif: pixel size"):
        gee.mosaic_export_tiles(case("c.tif", transform=Affine(20.0, 0, 1500, 0, -20.0, 3000)), tmp_path / "m.tif")
    with pytest.raises(ValueError, match="d.tif: band count 3 differs from 2"):
        gee.mosaic_export_tiles(case("d.tif", data=np.ones((3, 40, 50), np.int16)), tmp_path / "m.tif")
    with pytest.raises(ValueError, match="e.tif: data type 'float32' differs from 'int16'"):
        gee.mosaic_export_tiles(case("e.tif", data=a.astype(np.float32)), tmp_path / "m.tif")
    with pytest.raises(ValueError, match="off the pixel grid"):
        gee.mosaic_export_tiles(case("f.tif", transform=t0 * Affine.translation(50.5, 0)), tmp_path / "m.tif")
    with pytest.raises(ValueError, match="g.tif overlap"):
        gee.mosaic_export_tiles(case("g.tif", transform=t0 * Affine.translation(49, 3)), tmp_path / "m.tif")
    gap = case("h.tif", transform=t0 * Affine.translation(50, 10))  # shifted down: the union has gaps
    with pytest.raises(ValueError, match=r"cover 4000 of the 50 x 100 px .*1000 px missing"):
        gee.mosaic_export_tiles(gap, tmp_path / "m.tif")
    out = gee.mosaic_export_tiles(gap, tmp_path / "m.tif", allow_gaps=True)
    with rasterio.open(out) as m:
        got = m.read(1)
    assert (got[40:, :50] == -32768).all() and (got[:10, 50:] == -32768).all() and (got[:40, :50] == 1).all()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        gee.mosaic_export_tiles(gap, tmp_path / "m.tif", allow_gaps=True)
    with pytest.raises(FileNotFoundError, match="nope.tif"):
        gee.mosaic_export_tiles([tmp_path / "nope.tif"], tmp_path / "m2.tif")
    with pytest.raises(ValueError, match="block_px must be a multiple of 256"):
        gee.mosaic_export_tiles(gap, tmp_path / "m2.tif", block_px=100)
