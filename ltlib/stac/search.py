"""Finding STAC items: a STAC API (paged search with retries) or a static catalog, and signing.

:func:`find_items` answers one question - which items of a collection cover an area in a
date range - whether ``url`` is a STAC API (Planetary Computer's by default, searched with
pystac-client, every ``next`` page followed) or a local ``catalog.json`` / ``collection.json``
(walked with pystac). :func:`default_signer` signs Planetary Computer's asset URLs
(``planetary-computer``) and leaves others as they are. Network faults are retried with
exponential backoff and end in a :class:`StacError` that says what failed.
"""
from __future__ import annotations

import datetime as _dt
import os
import time
from pathlib import Path
from urllib.parse import urlparse

#: Planetary Computer's STAC API (anonymous; asset URLs need a SAS token from ``planetary-computer``).
PC_STAC_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
#: Collection 2 Level-2 Landsat 4-9 and Sentinel-1 RTC on Planetary Computer.
LANDSAT_COLLECTION = "landsat-c2-l2"
S1_COLLECTION = "sentinel-1-rtc"
#: Items per page asked of a STAC API.
PAGE_SIZE = 100


class StacError(RuntimeError):
    """A STAC search or read that cannot go on (the message says what and what to do)."""


def is_local(url) -> bool:
    """True when ``url`` is a static catalog on disk (a path or file:// URL), not an API."""
    text = str(url)
    return urlparse(text).scheme in ("", "file") or Path(text).exists()


def is_planetary_computer(url) -> bool:
    return "planetarycomputer.microsoft.com" in str(url)


class PlanetaryComputerSigner:
    """Signs asset URLs with a Planetary Computer SAS token (``planetary_computer.sign_url``,
    whose tokens are cached and renewed an hour before expiry); :meth:`renew` drops the cached
    tokens so the next call asks for a new one (after a read refused as expired)."""

    def __call__(self, href: str) -> str:
        import planetary_computer

        return planetary_computer.sign_url(href)

    def renew(self) -> None:
        from planetary_computer import sas

        sas.TOKEN_CACHE.clear()


def default_signer(url):
    """The signer for ``url``'s assets: :class:`PlanetaryComputerSigner` for Planetary Computer,
    else None (assets read as they are)."""
    return PlanetaryComputerSigner() if is_planetary_computer(url) else None


def with_retries(what: str, fn, *, retries: int = 4, backoff: float = 2.0, sleep=time.sleep,
                 on_failure=None, errors=(OSError, RuntimeError, ValueError)):
    """``fn()``, tried ``retries + 1`` times with waits of ``backoff * 2**k`` s between tries.

    ``on_failure(err)`` is called after each failed try (e.g. to renew a signature). After the
    last, a :class:`StacError` says ``what`` failed how often and the last error."""
    last = None
    for k in range(retries + 1):
        try:
            return fn()
        except StacError:
            raise
        except errors as err:  # network faults surface as these (requests, GDAL, pystac-client)
            last = err
            if on_failure is not None:
                on_failure(err)
            if k < retries:
                sleep(backoff * 2**k)
    raise StacError(f"{what} failed {retries + 1} times in a row (last: {type(last).__name__}: "
                    f"{str(last).splitlines()[0] if str(last) else ''}); check the network connection and try "
                    "again later") from last


def _dates(start, end) -> tuple[_dt.datetime, _dt.datetime]:
    """Dates, datetimes or ISO strings -> UTC datetimes (naive ones taken as UTC)."""
    out = []
    for d in (start, end):
        if isinstance(d, str):
            d = _dt.datetime.fromisoformat(d)
        elif isinstance(d, _dt.date) and not isinstance(d, _dt.datetime):
            d = _dt.datetime.combine(d, _dt.time())
        out.append(d.replace(tzinfo=_dt.timezone.utc) if d.tzinfo is None else d)
    return out[0], out[1]


def _static_items(url, collection, bbox, start, end):
    import pystac

    path = urlparse(str(url)).path if str(url).startswith("file:") else str(url)
    if not Path(path).exists():
        raise FileNotFoundError(f"stac_url {url}: no such catalog file (expected a catalog.json or collection.json)")
    cat = pystac.read_file(path)
    if not isinstance(cat, pystac.Catalog):
        raise ValueError(f"stac_url {url} is a STAC {type(cat).__name__}, expected a Catalog or Collection")
    w, s, e, n = bbox
    out = []
    for item in cat.get_items(recursive=True):
        if item.collection_id not in (None, collection):
            continue
        iw, is_, ie, in_ = item.bbox
        if iw > e or ie < w or is_ > n or in_ < s:
            continue
        t = item.datetime
        if t is not None and start <= t < end:
            out.append(item)
    return out


def _api_items(url, collection, bbox, start, end, page_size):
    from pystac_client import Client

    client = Client.open(str(url))
    search = client.search(collections=[collection], bbox=list(bbox),
                           datetime=[start.isoformat(), (end - _dt.timedelta(seconds=1)).isoformat()],
                           limit=page_size)
    return list(search.items())  # follows every 'next' link


def find_items(url, collection: str, bbox, start, end, *, page_size: int = PAGE_SIZE, retries: int = 4,
               backoff: float = 2.0, sleep=time.sleep) -> list:
    """The items of ``collection`` over ``bbox`` acquired in [``start``, ``end``).

    Parameters
    ----------
    url : str or path
        A STAC API root (e.g. :data:`PC_STAC_URL`) or a local static catalog
        (``catalog.json`` / ``collection.json``, walked recursively).
    collection : str
    bbox : (west, south, east, north) degrees
    start, end : datetime.date, datetime.datetime or ISO string (UTC when naive), end exclusive.
    page_size : items per page of an API search (every ``next`` page is followed).
    retries, backoff, sleep : a failed search is tried again ``retries`` times after
        ``backoff * 2**k`` s (``sleep`` is injectable for tests).

    Returns
    -------
    list of pystac.Item, sorted by datetime then id.
    """
    start, end = _dates(start, end)
    if is_local(url):
        items = _static_items(url, collection, bbox, start, end)
    else:
        from pystac_client.exceptions import APIError

        items = with_retries(f"the STAC search of {collection} at {url}",
                             lambda: _api_items(url, collection, bbox, start, end, page_size),
                             retries=retries, backoff=backoff, sleep=sleep, errors=(OSError, APIError))
    return sorted(items, key=lambda it: (it.datetime, it.id))


def _has_aws_credentials() -> bool:
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    return Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", Path.home() / ".aws" / "credentials")).exists()


def check_assets(items, keys, collection: str, url) -> None:
    """Refuse items that lack any asset of ``keys`` or whose assets sit in a requester-pays
    bucket (``s3://``) with no AWS credentials, in one sentence each."""
    for item in items:
        missing = [k for k in keys if k not in item.assets]
        if missing:
            bad = sum(any(k not in it.assets for k in keys) for it in items)
            raise StacError(f"{url}: item {item.id} of {collection} has no asset {', '.join(missing)} (it has "
                            f"{', '.join(sorted(item.assets)) or 'none'}; {bad} of {len(items)} items lack some): "
                            f"this catalog does not hold {collection} as expected (asset keys "
                            f"{', '.join(keys)})")
    hrefs = [item.assets[k].href for item in items[:1] for k in keys]
    if any(h.startswith("s3://") for h in hrefs) and not _has_aws_credentials():
        raise StacError(f"{url}: the assets of {collection} (e.g. {hrefs[0]}) are in a requester-pays S3 bucket "
                        "and no AWS credentials are set (AWS_ACCESS_KEY_ID / AWS_PROFILE / ~/.aws/credentials, "
                        "with AWS_REQUEST_PAYER=requester); set them, or use Planetary Computer's free "
                        f"stac_url {PC_STAC_URL}")
