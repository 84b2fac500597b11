"""A static STAC catalog of Landsat Collection 2 Level-2 items built at test time, and the same
catalog behind a STAC API on 127.0.0.1.

The items are laid out as Planetary Computer's ``landsat-c2-l2`` items (stactools-landsat):
asset keys ``blue green red nir08 swir16 swir22 qa_pixel`` with ``raster:bands`` (scale
2.75e-05, offset -0.2, nodata 0; ``qa_pixel`` nodata 1), ``eo:bands``, ``proj:code`` and
``proj:epsg``, ``platform`` (``landsat-5`` ...), ``landsat:wrs_path``/``wrs_row``,
``landsat:collection_category``, ``eo:cloud_cover``. Each asset is a small COG holding the
DN of one scene of a :class:`tests.ee_served.World` (the world the Earth Engine stand-in
serves), so both paths see the same scenes; masked pixels (SLC-off) are DN 0 and QA_PIXEL 1
(fill), as in the real files.

:class:`StacServer` serves ``/`` (landing page), ``/search`` (GET and POST, paged through
``next`` links), and the COGs under ``/assets/`` (with HTTP ranges, as GDAL reads COGs),
requiring a token issued by :class:`TokenSigner` (a stand-in for Planetary Computer's SAS
signing) when ``require_token`` is set; ``fail`` makes chosen requests answer 500 and
``expire_after`` makes a token expire (403) after that many asset reads.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np

from .ee_served import _SR, SENSOR_YEARS, World, grid_for_bbox

ASSETS = {"blue": 0, "green": 1, "red": 2, "nir08": 3, "swir16": 4, "swir22": 5}
PLATFORM = {"LT05": "landsat-5", "LE07": "landsat-7", "LC08": "landsat-8", "LC09": "landsat-9"}
INSTRUMENTS = {"LT05": ["tm"], "LE07": ["etm+"], "LC08": ["oli", "tirs"], "LC09": ["oli", "tirs"]}


def padded_grid(world: World, pad: int = 4):
    """The world's AOI grid (as ``grid_for_aoi`` makes it) widened by ``pad`` px each side."""
    from affine import Affine

    from ltlib.io import Grid

    g = grid_for_bbox(world.bbox, 30.0)
    a, b, c, d, e, f = g.transform
    return Grid(g.crs, Affine(a, 0.0, c - pad * a, 0.0, e, f - pad * e), g.height + 2 * pad, g.width + 2 * pad)


def _write_cog(path: Path, data: np.ndarray, grid, nodata):
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="COG", width=grid.width, height=grid.height, count=1, dtype="uint16",
                       crs=grid.crs, transform=grid.transform, nodata=nodata, blocksize=256) as dst:
        dst.write(data.astype(np.uint16), 1)


def scenes(world: World, years, sensors=("LT05", "LE07", "LC08", "LC09")):
    """(sensor, year, winter) of every scene of ``years`` the Earth Engine stand-in serves."""
    out = []
    for sensor in sensors:
        y0, y1 = SENSOR_YEARS[sensor]
        for year in years:
            if y0 <= year <= y1:
                for winter in ((False, True) if sensor == "LT05" and year % 5 == 0 else (False,)):
                    out.append((sensor, year, winter))
    return out


def build_catalog(root, world: World, years, *, sensors=("LT05", "LE07", "LC08", "LC09"), pad: int = 4,
                  tier2=(), drop_asset=None, href_base=None) -> Path:
    """Write COGs and a self-contained static catalog under ``root``; returns catalog.json.

    ``tier2``: (sensor, year) pairs that get one more item, a day later, marked Tier 2 and
    holding other (leaves-off) values: the Earth Engine path (Tier 1) does not see it, and a
    composite that took it in would differ; ``drop_asset``: an asset key left out of
    every item; ``href_base``: asset hrefs as ``<href_base>/<file>`` (an HTTP server) instead
    of relative paths.
    """
    import pystac
    from pystac.extensions.eo import EOExtension  # noqa: F401 - the schema URIs below

    root = Path(root)
    grid = padded_grid(world, pad)
    w, s, e, n = grid.bounds_lonlat()
    footprint = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    cat = pystac.Catalog("test-landsat", "Landsat C2 L2 test catalog")
    col = pystac.Collection("landsat-c2-l2", "Landsat Collection 2 Level-2 (test)",
                            pystac.Extent(pystac.SpatialExtent([[w, s, e, n]]),
                                          pystac.TemporalExtent([[None, None]])))
    cat.add_child(col)
    epsg = int(grid.crs.to_epsg())
    extra = [(sensor, year, "T2") for sensor, year in tier2]
    for sensor, year, winter in scenes(world, years, sensors) + extra:
        t2 = winter == "T2"
        date = world.scene_date(sensor, year, False) + _dt.timedelta(days=1) if t2 else \
            world.scene_date(sensor, year, winter)
        sid = f"{sensor}_L2SP_038032_{date:%Y%m%d}_02_{'T2' if t2 else 'T1'}"
        arrs = world.landsat_dn(sensor, year, grid, bool(winter))
        m = arrs["mask"]
        item = pystac.Item(sid, footprint, [w, s, e, n], date.replace(tzinfo=_dt.timezone.utc), {
            "platform": PLATFORM[sensor], "instruments": INSTRUMENTS[sensor], "eo:cloud_cover": 1.0,
            "landsat:wrs_path": "038", "landsat:wrs_row": "032", "landsat:collection_number": "02",
            "landsat:collection_category": "T2" if t2 else "T1",
            "landsat:correction": "L2SP", "proj:epsg": epsg, "proj:code": f"EPSG:{epsg}",
            "proj:shape": [grid.height, grid.width], "proj:transform": list(grid.transform)[:6]},
            stac_extensions=["https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                             "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                             "https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
            collection=col)
        files = {}
        for key, b in ASSETS.items():
            band = _SR[sensor][b]
            files[key] = (f"{sid}_{band}.TIF", np.where(m, np.nan_to_num(arrs[band]), 0), 0, {
                "raster:bands": [{"scale": 2.75e-05, "offset": -0.2, "nodata": 0, "data_type": "uint16",
                                  "spatial_resolution": 30, "unit": "none"}],
                "eo:bands": [{"name": band, "common_name": key.rstrip("0123456789") if key != "nir08" else "nir"}]})
        files["qa_pixel"] = (f"{sid}_QA_PIXEL.TIF", np.where(m, np.nan_to_num(arrs["QA_PIXEL"]), 1), 1, {
            "raster:bands": [{"nodata": 1, "data_type": "uint16", "spatial_resolution": 30, "unit": "bit index"}]})
        for key, (fname, data, nodata, extra) in files.items():
            if key == drop_asset:
                continue
            _write_cog(root / "assets" / fname, data, grid, nodata)
            href = f"{href_base}/{fname}" if href_base else str(root / "assets" / fname)
            item.add_asset(key, pystac.Asset(href, media_type="image/tiff; application=geotiff; profile=cloud-optimized",
                                             roles=["data"], extra_fields=extra))
        col.add_item(item)
    cat.normalize_hrefs(str(root / "stac"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "stac" / "catalog.json"


# ----------------------------------------------------------------------------- a STAC API
class TokenSigner:
    """Planetary Computer's signing step, locally: appends ``?st=<token>`` to asset hrefs, the
    token asked of the server once and kept until :meth:`renew` (as ``planetary_computer``
    caches its SAS tokens)."""

    def __init__(self, server):
        self.server = server
        self.token = None
        self.issued = 0
        self.renewed = 0

    def __call__(self, href: str) -> str:
        if self.token is None:
            self.token = self.server.issue_token()
            self.issued += 1
        return f"{href}?st={self.token}"

    def renew(self):
        self.token = None
        self.renewed += 1


class StacServer:
    """The items of a static catalog behind ``/search`` of a pytest-httpserver, and its COGs."""

    def __init__(self, httpserver, catalog_json, asset_dir, *, page_size_max=2, require_token=False):
        import pystac

        self.http = httpserver
        self.items = [it.to_dict() for it in pystac.Catalog.from_file(str(catalog_json)).get_items(recursive=True)]
        self.asset_dir = Path(asset_dir)
        self.page_size_max = page_size_max
        self.require_token = require_token
        self.fail = set()  # request numbers (1-based, /search only) that answer 500
        self.expire_after = None  # asset reads after which the current token expires
        self.log = []
        self.tokens = {}
        self.asset_reads = 0
        self.refused = 0
        self.base = httpserver.url_for("").rstrip("/")
        for item in self.items:
            for a in item["assets"].values():
                a["href"] = f"{self.base}/assets/{Path(a['href']).name}"
        httpserver.expect_request("/").respond_with_handler(self._landing)
        httpserver.expect_request("/search").respond_with_handler(self._search)
        httpserver.expect_request("/token").respond_with_handler(lambda r: self._json({"token": self.issue_token()}))
        import re

        httpserver.expect_request(re.compile(r"^/assets/.*")).respond_with_handler(self._asset)

    @property
    def url(self):
        return self.base

    def issue_token(self) -> str:
        tok = f"t{len(self.tokens) + 1}"
        self.tokens[tok] = True
        return tok

    @staticmethod
    def _json(obj, status=200):
        from werkzeug import Response

        return Response(json.dumps(obj), status=status, mimetype="application/json")

    def _landing(self, request):
        return self._json({"type": "Catalog", "id": "test-api", "description": "test STAC API", "stac_version": "1.0.0",
                           "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                                          "https://api.stacspec.org/v1.0.0/item-search"],
                           "links": [{"rel": "self", "href": self.base + "/"}, {"rel": "root", "href": self.base + "/"},
                                     {"rel": "search", "href": self.base + "/search", "method": "GET",
                                      "type": "application/geo+json"},
                                     {"rel": "search", "href": self.base + "/search", "method": "POST",
                                      "type": "application/geo+json"}]})

    def _search(self, request):
        n_search = sum(1 for e in self.log if e[0] == "search") + 1
        if request.method == "POST":
            params = request.get_json() or {}
        else:
            params = {k: request.args.get(k) for k in request.args}
            for k in ("bbox", "collections"):
                if isinstance(params.get(k), str):
                    params[k] = params[k].split(",")
        self.log.append(("search", request.method, params))
        if n_search in self.fail:
            return self._json({"code": "InternalServerError", "description": "injected failure"}, status=500)
        cols = params.get("collections") or []
        w, s, e, n = (float(v) for v in params.get("bbox", [-180, -90, 180, 90]))
        dt = params.get("datetime") or "../.."
        lo, hi = (dt.split("/") + [".."])[:2]
        out = []
        for it in self.items:
            iw, is_, ie, in_ = it["bbox"]
            t = it["properties"]["datetime"]
            if cols and it.get("collection") not in cols:
                continue
            if iw > e or ie < w or is_ > n or in_ < s:
                continue
            if (lo not in ("..", "") and t < lo) or (hi not in ("..", "") and t > hi):
                continue
            out.append(it)
        limit = min(int(params.get("limit") or 10), self.page_size_max)
        start = int(params.get("token") or 0)
        page = out[start:start + limit]
        links = []
        if start + limit < len(out):
            body = dict(params, token=str(start + limit))
            if request.method == "POST":
                links.append({"rel": "next", "href": self.base + "/search", "method": "POST", "body": body})
            else:
                from urllib.parse import urlencode

                q = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in body.items()}
                links.append({"rel": "next", "href": self.base + "/search?" + urlencode(q), "method": "GET"})
        return self._json({"type": "FeatureCollection", "features": page, "links": links,
                           "numberMatched": len(out), "numberReturned": len(page)})

    def _asset(self, request):
        from werkzeug import Response

        self.log.append(("asset", request.method, request.path))
        if self.require_token:
            tok = request.args.get("st")
            if tok not in self.tokens or not self.tokens[tok]:
                self.refused += 1
                return Response("<Error><Code>AuthenticationFailed</Code><Message>Signature expired</Message></Error>",
                                status=403, mimetype="application/xml")
            self.asset_reads += 1
            if self.expire_after is not None and self.asset_reads >= self.expire_after:
                self.tokens[tok] = False  # this token expires now: later reads with it are refused
                self.expire_after = None
        path = self.asset_dir / Path(request.path).name
        if not path.exists():
            return Response("not found", status=404)
        data = path.read_bytes()
        resp = Response(data, mimetype="image/tiff")
        return resp.make_conditional(request, accept_ranges=True, complete_length=len(data))


# ----------------------------------------------------------------------------- Sentinel-1 RTC
def build_s1_catalog(root, world: World, landsat_grid, *, start=None, end=None) -> Path:
    """Sentinel-1 RTC items (``sentinel-1-rtc`` layout: assets ``vv``/``vh`` float32 linear
    gamma0 COGs at 10 m, nodata -32768; ``sat:orbit_state``, ``sat:relative_orbit``,
    ``sar:instrument_mode``, ``sar:polarizations``) of the world's acquisitions in
    ``start``..``end`` (default the world's S1 window); returns catalog.json."""
    import pystac
    import rasterio
    from affine import Affine

    from ltlib.io import Grid

    root = Path(root)
    a, _, c, _, e, f = tuple(landsat_grid.transform)[:6]
    grid = Grid(landsat_grid.crs, Affine(10.0, 0.0, c, 0.0, -10.0, f), landsat_grid.height * 3, landsat_grid.width * 3)
    w, s, e_, n = grid.bounds_lonlat()
    footprint = {"type": "Polygon", "coordinates": [[[w, s], [e_, s], [e_, n], [w, n], [w, s]]]}
    cat = pystac.Catalog("test-s1", "Sentinel-1 RTC test catalog")
    col = pystac.Collection("sentinel-1-rtc", "Sentinel-1 RTC (test)",
                            pystac.Extent(pystac.SpatialExtent([[w, s, e_, n]]), pystac.TemporalExtent([[None, None]])))
    cat.add_child(col)
    d0 = _dt.date.fromisoformat(start or world.s1_start)
    d1 = _dt.date.fromisoformat(end or world.s1_end)
    epsg = int(grid.crs.to_epsg())
    for t, orbit, pas, mode, pol, sl in world._s1_acquisitions():
        if not d0 <= t.date() <= d1:
            continue
        sid = f"S1A_{mode}_GRDH_1SDV_{t:%Y%m%dT%H%M%S}_{orbit:03d}_rtc"
        item = pystac.Item(sid, footprint, [w, s, e_, n], t.replace(tzinfo=_dt.timezone.utc), {
            "platform": "SENTINEL-1A", "constellation": "Sentinel-1", "sat:orbit_state": pas.lower(),
            "sat:relative_orbit": orbit, "sar:instrument_mode": mode, "sar:polarizations": list(pol),
            "sar:product_type": "RTC", "proj:epsg": epsg, "proj:code": f"EPSG:{epsg}"}, collection=col)
        arrs = world.s1_scene(t, orbit, sl, grid) if mode == "IW" else None
        for p in pol:
            key = p.lower()
            path = root / "assets" / f"{sid}_{key}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = np.full(grid.shape, 0.05, np.float32) if arrs is None else \
                np.where(arrs["mask"], arrs[p], -32768).astype(np.float32)
            with rasterio.open(path, "w", driver="COG", width=grid.width, height=grid.height, count=1,
                               dtype="float32", crs=grid.crs, transform=grid.transform, nodata=-32768,
                               blocksize=256) as dst:
                dst.write(data, 1)
            item.add_asset(key, pystac.Asset(str(path), media_type="image/tiff; application=geotiff; "
                                             "profile=cloud-optimized", roles=["data"], extra_fields={
                                                 "raster:bands": [{"nodata": -32768, "data_type": "float32",
                                                                   "unit": "linear power"}]}))
        col.add_item(item)
    cat.normalize_hrefs(str(root / "stac"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "stac" / "catalog.json"
