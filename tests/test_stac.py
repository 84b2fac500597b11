"""The STAC path (ltlib.stac) on a static catalog and a STAC API served on 127.0.0.1, offline.

The catalog's COGs hold the scenes of the world the Earth Engine stand-in serves
(tests/ee_served.py), so the two paths are compared value for value.
"""
from __future__ import annotations

import numpy as np
import pytest

from .ee_served import World, served_ee_in_process  # noqa: F401 - fixture
from .stac_catalog import StacServer, TokenSigner, build_catalog

pytest.importorskip("odc.stac")
from ltlib import io, landsat_c2  # noqa: E402
from ltlib.stac import StacError, collect_landsat_to_dir, find_items, landsat_composites  # noqa: E402

YEARS = list(range(1984, 1996))
LATE = list(range(2009, 2015))  # LT05 + LE07 (SLC-off) + LC08: several observations a year


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def catalog(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("stac")
    return build_catalog(root, world, YEARS + LATE, tier2={("LE07", 2014)})


# --------------------------------------------------------------------------- the array definitions
def test_medoid_picks_the_observation_nearest_the_median_first_of_ties():
    obs = np.full((4, 6, 1, 3), np.nan)
    obs[0, :, 0, 0], obs[1, :, 0, 0], obs[2, :, 0, 0] = 100.0, 130.0, 400.0  # median 130 -> obs 1
    obs[0, :, 0, 1], obs[1, :, 0, 1] = 100.0, 200.0  # two: both at distance 50^2 * 6, the first wins
    obs[3, :, 0, 1] = np.nan
    obs[2, :5, 0, 2] = 50.0  # one band masked: not a candidate -> NaN
    out = landsat_c2.medoid(obs)
    np.testing.assert_array_equal(out[:, 0, 0], 130.0)
    np.testing.assert_array_equal(out[:, 0, 1], 100.0)
    assert np.isnan(out[:, 0, 2]).all()


def test_median_equals_numpy_nanmedian():
    rng = np.random.default_rng(3)
    obs = np.round(rng.uniform(0, 5000, (7, 6, 20, 20)))
    obs[rng.uniform(size=obs.shape) < 0.4] = np.nan
    obs[:, :, 0, 0] = np.nan  # no observation: NaN
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanmedian(obs, axis=0)
    np.testing.assert_array_equal(landsat_c2.median(obs), ref)


def test_scaling_and_qa_bits_as_the_earth_engine_path():
    dn = np.array([7273.0, 0.0, 20000.0, 65535.0]).reshape(1, 1, 4)
    sr = landsat_c2.sr_from_dn(dn, 2.75e-05, -0.2)
    # ((DN * 0.0000275) - 0.2) * 10000 truncated to uint16: negatives become 0
    np.testing.assert_array_equal(sr.ravel(), [0.0, 0.0, 3500.0, 16022.0])
    qa = np.array([21824, 21824 | 8, 21824 | 16, 21824 | 32, 21824 | 2, 1])
    np.testing.assert_array_equal(landsat_c2.qa_clear(qa, "lt-gee"), [True, False, False, False, True, True])
    np.testing.assert_array_equal(landsat_c2.qa_clear(qa, "llr"), [True, False, False, True, False, False])


# --------------------------------------------------------------------------- STAC vs Earth Engine
def _ee_and_stac(served, catalog, tmp_path, years, **kw):
    from ltlib import gee

    assert gee.initialize("test") is True
    indices = ("NDVI", "NBR", "TCW", "TCA")
    ee_paths = gee.collect_landsat_to_dir(tmp_path / "ee", aoi=served.bbox, start_year=years[0], end_year=years[-1],
                                          indices=indices, progress=False, **kw)
    st_paths = collect_landsat_to_dir(tmp_path / "stac", aoi=served.bbox, start_year=years[0], end_year=years[-1],
                                      indices=indices, stac_url=catalog, progress=False, **kw)
    return indices, ee_paths, st_paths


@pytest.mark.parametrize("years, kw", [
    (YEARS, {}),
    (LATE, {"harmonize": True}),
    (LATE, {"method": "median", "mask": "llr"}),
    (YEARS, {"season": ("12-01", "02-01")}),  # across New Year: only the January scenes of 1985, 1990, 1995
])
def test_stac_composites_equal_the_earth_engine_path(served_ee_in_process, catalog, tmp_path, years, kw):
    indices, ee_paths, st_paths = _ee_and_stac(served_ee_in_process, catalog, tmp_path, years, **kw)
    for name in indices:
        a = io.read_stack(ee_paths[name], expected_years=years)
        b = io.read_stack(st_paths[name], expected_years=years)
        assert a.grid.same_as(b.grid)
        with io.open_geotiff(st_paths[name]) as src:
            assert float(src.tags()["scale"]) == landsat_c2.EE_INDICES[name].scale
        np.testing.assert_array_equal(np.isnan(a.data), np.isnan(b.data), err_msg=name)
        np.testing.assert_array_equal(a.data[np.isfinite(a.data)], b.data[np.isfinite(b.data)], err_msg=name)
        assert np.isfinite(b.data).sum() > 0.5 * b.data.size or kw.get("season")
    summary = io.read_json(st_paths["summary"])
    if kw.get("season"):  # no scene in the other winters: gaps, counted
        assert summary["gap_years"] == [y for y in years if y % 5 != 0]
        b = io.read_stack(st_paths["NDVI"]).data
        assert np.isfinite(b[years.index(1990)]).all() and np.isnan(b[years.index(1991)]).all()
    if years == LATE:  # several observations a year (LT05 + LE07; LE07 + LC08), the Tier 2 copy left out
        assert summary["n_observations"]["2010"] == 2 and summary["n_observations"]["2014"] == 2
        assert any("1 Tier 2" in n for n in summary["notes"])


def test_clouds_and_shadows_masked_and_values_by_hand(world, catalog):
    from .ee_served import C2_OFFSET, C2_SCALE

    c = landsat_composites(world.bbox, 1984, 1995, stac_url=catalog, indices=("NDVI",), progress=False)
    grid = c.grid
    ndvi = c.float_stack("NDVI")
    assert c.stacks["NDVI"].dtype == np.int16
    cloud, shadow = world.cloudy("LT05", 1985, grid)
    assert cloud.sum() >= 3 and shadow.sum() >= 1
    assert np.isnan(ndvi[1][cloud | shadow]).all() and np.isfinite(ndvi[2][cloud | shadow]).all()
    dn = world.landsat_dn("LT05", 1988, grid)
    red, nir = (np.clip(np.trunc((dn[b] * C2_SCALE + C2_OFFSET) * 10000), 0, 65535) for b in ("SR_B3", "SR_B4"))
    np.testing.assert_array_equal(ndvi[4], np.round((1000 * ((nir - red) / (nir + red)).astype(np.float32)
                                                     .astype(np.float64))))
    assert c.info["clear_fraction"][1985] == pytest.approx(1 - (cloud | shadow).mean(), abs=1e-6)


def test_years_before_1982_said_in_one_line(world, catalog, capsys):
    c = landsat_composites(world.bbox, 1975, 1986, stac_url=catalog, indices=("NDVI",), progress=False)
    assert c.years[0] == 1982 and "1975-1981 have no Collection 2 Level-2" in capsys.readouterr().out
    assert c.info["gap_years"] == [1982, 1983]  # the world has no Landsat before 1984


def test_clear_errors(world, catalog, tmp_path, monkeypatch):
    far = (10.0, 45.0, 10.01, 45.01)
    with pytest.raises(StacError, match=r"no items of landsat-c2-l2 .* for the area \(10\.0, 45\.0.*1990-1991"):
        landsat_composites(far, 1990, 1991, stac_url=catalog, progress=False)
    bad = build_catalog(tmp_path / "noqa", world, [1990], drop_asset="qa_pixel")
    with pytest.raises(StacError, match=r"has no asset qa_pixel .* 1 of 1 items lack"):
        landsat_composites(world.bbox, 1990, 1990, stac_url=bad, progress=False)
    with pytest.raises(ValueError, match="Earth Engine data sets"):
        landsat_composites(world.bbox, 1990, 1990, stac_url=catalog, mask=("cloud", "waterplus"), progress=False)
    with pytest.raises(ValueError, match="NDFI"):
        landsat_composites(world.bbox, 1990, 1990, stac_url=catalog, indices=("NDFI",), progress=False)


def test_requester_pays_without_credentials(world, tmp_path, monkeypatch):
    import pystac

    from ltlib.stac.search import check_assets

    cat = build_catalog(tmp_path / "s3", world, [1990])
    items = list(pystac.Catalog.from_file(str(cat)).get_items(recursive=True))
    for it in items:
        for a in it.assets.values():
            a.href = "s3://usgs-landsat/collection02/level-2/" + a.href.rsplit("/", 1)[-1]
    for var in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(StacError, match="requester-pays S3 bucket and no AWS credentials"):
        check_assets(items, ["red", "qa_pixel"], "landsat-c2l2-sr", "https://landsatlook.usgs.gov/stac-server")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    check_assets(items, ["red", "qa_pixel"], "landsat-c2l2-sr", "https://landsatlook.usgs.gov/stac-server")


def test_area_across_two_utm_zones_is_put_on_one(catalog, capsys):
    with pytest.raises(StacError, match="no items"):
        landsat_composites((-114.08, 40.5, -113.96, 40.55), 1990, 1990, stac_url=catalog, progress=False)
    out = capsys.readouterr().out
    assert "spans UTM zones EPSG:32611, EPSG:32612: all of it is put on EPSG:32611" in out


# --------------------------------------------------------------------------- the same catalog behind an API
@pytest.fixture
def api(catalog, httpserver):
    return StacServer(httpserver, catalog, catalog.parent.parent / "assets", page_size_max=2)


def test_api_search_pages_through_next_links_and_retries(api, world, catalog):
    sleeps = []
    api.fail = {3}  # the third request (a 'next' page) fails once
    items = find_items(api.url, "landsat-c2-l2", world.bbox, "1984-01-01", "1996-01-01", sleep=sleeps.append,
                       backoff=0.5)
    static = find_items(catalog, "landsat-c2-l2", world.bbox, "1984-01-01", "1996-01-01")
    assert [it.id for it in items] == [it.id for it in static] and len(items) == 15  # 12 summers + 3 Januaries
    searches = [e for e in api.log if e[0] == "search"]
    assert len(searches) == 3 + 8 and sleeps == [0.5]  # 2 pages, the failure, then a retry of 8 pages
    assert searches[1][2].get("token") == "2"
    api.fail = set(range(1, 100))
    with pytest.raises(StacError, match=r"STAC search of landsat-c2-l2 .* failed 3 times in a row"):
        find_items(api.url, "landsat-c2-l2", world.bbox, "1984-01-01", "1996-01-01", retries=2, sleep=sleeps.append)
    assert sleeps[1:] == [2.0, 4.0]


def test_api_load_renews_an_expired_signature(api, world, catalog):
    api.require_token = True
    api.expire_after = 5  # the first token expires after 5 asset reads
    signer = TokenSigner(api)
    sleeps = []
    c = landsat_composites(world.bbox, 1988, 1991, stac_url=api.url, indices=("NDVI",), signer=signer,
                           sleep=sleeps.append, backoff=0.0, progress=False)
    ref = landsat_composites(world.bbox, 1988, 1991, stac_url=catalog, indices=("NDVI",), progress=False)
    assert api.refused >= 1 and signer.renewed >= 1 and signer.issued == signer.renewed + 1
    np.testing.assert_array_equal(c.float_stack("NDVI"), ref.float_stack("NDVI"))
    # a token that cannot be renewed: a clear stop after the retries
    api.tokens.clear()

    class Stale(TokenSigner):
        def __call__(self, href):
            return f"{href}?st=expired"

    with pytest.raises(StacError, match=r"reading the 1988 assets .* failed 2 times in a row"):
        landsat_composites(world.bbox, 1988, 1988, stac_url=api.url, indices=("NDVI",), signer=Stale(api),
                           retries=1, sleep=sleeps.append, progress=False)


# --------------------------------------------------------------------------- scene.load(source="stac")
def test_scene_load_stac_writes_a_scene_folder_reused_only_for_the_same_request(world, catalog, tmp_path, capsys):
    from ltlib import scene

    out = tmp_path / "scene"
    kw = dict(source="stac", stac_url=str(catalog), aoi=world.bbox, years=(1984, 1995), indices=["NDVI", "NBR"],
              download_dir=out)
    sc = scene.load(None, **kw)
    assert sc.source == "stac" and sc.indices == ["NDVI", "NBR"] and sc.years.tolist() == YEARS
    assert (out / "stac_request.json").exists() and (out / "scene.json").exists()
    assert sc.provenance.startswith("STAC composites")
    first = (out / "landsat" / "ndvi.tif").stat().st_mtime_ns
    sc2 = scene.load(out, **kw)  # the same request: nothing rebuilt
    assert "already in" in capsys.readouterr().out and (out / "landsat" / "ndvi.tif").stat().st_mtime_ns == first
    np.testing.assert_array_equal(sc2.stack("NDVI").data, sc.stack("NDVI").data)
    sc3 = scene.load(out, **(kw | {"composite": {"method": "median"}}))  # another request: rebuilt
    assert io.read_json(out / "stac_request.json")["composite"]["method"] == "median"
    assert (out / "landsat" / "ndvi.tif").stat().st_mtime_ns != first and sc3.years.tolist() == YEARS
    with pytest.raises(ValueError, match="composite: unknown option"):
        scene.load(out, **(kw | {"composite": {"methd": "median"}}))


# --------------------------------------------------------------------------- Sentinel-1 RTC
def test_sentinel1_rtc_daily_mosaics_on_the_landsat_grid(world, tmp_path, capsys):
    from ltlib.areas import grid_for_bounds
    from ltlib.stac.sentinel1 import collect_s1_to_dir

    from .stac_catalog import build_s1_catalog, padded_grid

    grid = grid_for_bounds(world.bbox)
    cat = build_s1_catalog(tmp_path / "s1", world, padded_grid(world))
    out = collect_s1_to_dir(tmp_path / "scene" / "sentinel1", grid, stac_url=cat, start=world.s1_start,
                            end=world.s1_end, orbit_pass=None)
    # orbit 20 ascending is the most frequent (every 12 days, two slices a day); the VV-only and
    # EW scenes of that orbit are left out
    assert out["orbit_pass"] == "ASCENDING" and out["relative_orbit"] == world.s1_orbit
    assert out["dates"] == world.s1_dates() and "most frequent" in capsys.readouterr().out
    vv, g, names = io.read_raster(out["vv"])
    vh, _, _ = io.read_raster(out["vh"])
    assert g.same_as(grid) and names == out["dates"] and np.isfinite(vv).all()  # the two slices joined
    patch = world.in_patch(grid)
    k = next(i for i, d in enumerate(out["dates"]) if d >= world.s1_change_date)
    ratio = vv[k:, patch].mean() / vv[:k, patch].mean()
    assert 3.0 < ratio < 5.0 and 0.5 < vv[k:, ~patch].mean() / vv[:k, ~patch].mean() < 1.5  # VV x4 in the patch
    # 30 m averages of ~9 independent 10 m looks of ENL 4.4: far more looks than the test assumes
    assert 4.4 * 3 < out["enl_estimate"] < 4.4 * 12
    with io.open_geotiff(out["vv"]) as src:
        assert float(src.tags()["enl_estimate"]) == round(out["enl_estimate"], 2)
    with pytest.warns(UserWarning, match="below the enl=100"):
        collect_s1_to_dir(tmp_path / "again", grid, stac_url=cat, start=world.s1_start, end=world.s1_end, enl=100)


def test_loading_leaves_the_warning_filters_as_they_were(world, catalog):
    """odc-stac's reader threads enter and leave warnings.catch_warnings out of order, which can
    leave a global 'ignore' behind; ltlib's later warnings must still be seen."""
    import warnings

    before = list(warnings.filters)
    landsat_composites(world.bbox, 1988, 1990, stac_url=catalog, indices=("NDVI",), progress=False)
    assert warnings.filters == before


def test_large_area_written_block_by_block_gives_the_same_stack(world, catalog, tmp_path, monkeypatch):
    from ltlib import config

    small = collect_landsat_to_dir(tmp_path / "small", aoi=world.bbox, start_year=1984, end_year=1990,
                                   indices=("NDVI",), stac_url=catalog, progress=False)
    monkeypatch.setattr(config, "IN_MEMORY_MAX_BYTES", 0)  # as if the area were too large for memory
    large = collect_landsat_to_dir(tmp_path / "large", aoi=world.bbox, start_year=1984, end_year=1990,
                                   indices=("NDVI",), stac_url=catalog, progress=False)
    a, b = io.read_stack(small["NDVI"]), io.read_stack(large["NDVI"])
    np.testing.assert_array_equal(a.data, b.data)
    cloud, shadow = world.cloudy("LT05", 1985, a.grid)
    assert a.grid.same_as(b.grid) and np.isnan(a.data).sum() == 2 * (cloud | shadow).sum()  # 1985 and 1989
