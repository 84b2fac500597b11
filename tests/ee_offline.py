"""Offline Earth Engine for tests: object graphs are built and serialised with no server.

The recipe (verified with earthengine-api 1.7.50) uses the algorithm signatures shipped in
the wheel (``ee/tests/algorithms.json``) instead of asking the server, and stubs the two
calls ``ee.Initialize`` would otherwise make. Any attempt to reach the service from a test
(``computeValue``, ``computePixels``, ``getDownloadId``...) raises instead of hanging.

Fixtures: ``ee_offline`` (function scope, yields the ``ee`` module) and ``fake_batch`` (a
:class:`FakeBatch`: Earth Engine's batch service offline, for export tasks). Helpers: :func:`graph`,
:func:`graph_text` (normalised JSON, for snapshots), :func:`invocations` (the algorithms a
graph calls, with their constant arguments) and :class:`Evaluator`, a small numpy
interpreter of serialised graphs for checking the numbers a graph computes (including
``TemporalSegmentation.LandTrendr``, run by the local port :mod:`ltlib.landtrendr`).
:mod:`tests.ee_served` uses the Evaluator to serve ``computePixels``/``computeValue``.
"""
from __future__ import annotations

import json

import pytest

__all__ = ["ee_offline", "fake_batch"]  # what `from .ee_offline import *` in conftest.py picks up

# Signature added to the harness if a future wheel's algorithms.json lacks it (it is there
# in 1.7.50; the test suite checks).
_LANDTRENDR_SIGNATURE = {
    "name": "algorithms/TemporalSegmentation.LandTrendr",
    "description": "LandTrendr temporal segmentation (signature for offline tests).",
    "returnType": "Image<unknown bands>",
    "arguments": [
        {"argumentName": "timeSeries", "type": "ImageCollection"},
        {"argumentName": "maxSegments", "type": "Integer"},
        {"argumentName": "spikeThreshold", "type": "Float", "optional": True, "defaultValue": 0.9},
        {"argumentName": "vertexCountOvershoot", "type": "Integer", "optional": True, "defaultValue": 3},
        {"argumentName": "preventOneYearRecovery", "type": "Boolean", "optional": True, "defaultValue": False},
        {"argumentName": "recoveryThreshold", "type": "Float", "optional": True, "defaultValue": 0.25},
        {"argumentName": "pvalThreshold", "type": "Float", "optional": True, "defaultValue": 0.1},
        {"argumentName": "bestModelProportion", "type": "Float", "optional": True, "defaultValue": 0.75},
        {"argumentName": "minObservationsNeeded", "type": "Integer", "optional": True, "defaultValue": 6},
    ],
}


def _algorithms():
    from ee import _cloud_api_utils, apitestcase

    algs = apitestcase.GetAlgorithms()
    if "TemporalSegmentation.LandTrendr" not in algs:
        algs = dict(algs)
        algs.update(_cloud_api_utils.convert_algorithms({"algorithms": [_LANDTRENDR_SIGNATURE]}))
    return algs


class NetworkCall(AssertionError):
    """A test tried to reach the Earth Engine service."""


@pytest.fixture
def ee_offline(monkeypatch):
    """Initialise earthengine-api offline; yields ``ee``. State is reset afterwards."""
    ee = pytest.importorskip("ee")

    def _no_network(*args, **kwargs):
        raise NetworkCall("offline test attempted an Earth Engine server call")

    ee.Reset()
    monkeypatch.setattr(ee.data, "_install_cloud_api_resource", lambda: None)
    monkeypatch.setattr(ee.data, "getAlgorithms", _algorithms)
    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    for name in ("computeValue", "computePixels", "computeImages", "getDownloadId", "getThumbId", "getMapId",
                 "getInfo", "getList", "listAssets"):
        if hasattr(ee.data, name):
            monkeypatch.setattr(ee.data, name, _no_network)
    ee.Initialize(None, "", project="test")
    yield ee
    ee.Reset()


class FakeBatch:
    """Earth Engine's batch service, offline, under the real ``ee.batch`` code.

    It replaces the three server calls ``ee.batch.Task`` makes: ``ee.data.exportImage``
    (``Task.start()``: records the Cloud API request and gives the task an id),
    ``ee.data.getOperation`` (``Task.status()``: each call moves the task one state along
    its script, then it stays in its last state) and ``ee.data.cancelOperation``. The keyword
    arguments given to ``ee.batch.Export.image.toDrive/toCloudStorage/toAsset`` are recorded
    too (``config``). A task's script is ``script(description, attempt)`` -> list of states,
    or (states, error message) for a FAILED end; default READY, RUNNING, COMPLETED.

    Attributes: ``tasks`` (id -> dict with description, destination, config, request,
    states, error, attempt, polls, state), ``started`` (descriptions in start order),
    ``peak_active`` (most tasks READY/RUNNING at once, as last reported or just started).
    """

    DEFAULT = ("READY", "RUNNING", "COMPLETED")

    def __init__(self, ee, monkeypatch):
        self.ee = ee
        self.tasks = {}
        self.started = []
        self.peak_active = 0
        self.script = lambda description, attempt: list(self.DEFAULT)
        self._pending_config = []
        from ee import _cloud_api_utils

        self._to_operation_state = _cloud_api_utils.TASK_TO_OPERATION_STATE
        for kind, dest in (("toDrive", "drive"), ("toCloudStorage", "gcs"), ("toAsset", "asset")):
            monkeypatch.setattr(ee.batch.Export.image, kind, self._recording(getattr(ee.batch.Export.image, kind), dest))
        monkeypatch.setattr(ee.data, "exportImage", self._export_image)
        monkeypatch.setattr(ee.data, "getOperation", self._get_operation)
        monkeypatch.setattr(ee.data, "cancelOperation", self._cancel)

    def _recording(self, original, destination):
        def export(**kw):
            # copies: ee.batch pops keys out of formatOptions while building the request
            self._pending_config.append((destination, {k: json.loads(json.dumps(v)) if isinstance(v, (dict, list))
                                                       else v for k, v in kw.items()}))
            return original(**kw)

        return export

    def active(self) -> int:
        return sum(t["state"] in ("READY", "RUNNING") for t in self.tasks.values())

    def by_description(self, description) -> list[dict]:
        """Every task started under ``description``, in start order."""
        return [t for t in self.tasks.values() if t["description"] == description]

    def _export_image(self, request_id, params):
        destination, config = self._pending_config.pop(0)
        description = params.get("description")
        attempt = len(self.by_description(description)) + 1
        script = self.script(description, attempt)
        states, error = (script if isinstance(script, tuple) else (script, None))
        task_id = f"FAKE{len(self.tasks):06d}"
        name = f"projects/test/operations/{task_id}"
        self.tasks[task_id] = dict(id=task_id, name=name, description=description, destination=destination,
                                   config=config, request=params, states=list(states), error=error,
                                   attempt=attempt, polls=0, state="READY")
        self.started.append(description)
        self.peak_active = max(self.peak_active, self.active())
        return {"name": name, "metadata": {"state": "PENDING", "description": description}, "done": False}

    def _get_operation(self, name):
        task = self.tasks.get(name.rsplit("/", 1)[-1])
        if task is None:
            raise self.ee.EEException(f"operation {name} not found")
        task["polls"] += 1
        states = task["states"]
        task["state"] = states.pop(0) if len(states) > 1 else states[0]
        op = {"name": name, "metadata": {"state": self._to_operation_state[task["state"]],
                                         "description": task["description"]},
              "done": task["state"] in ("COMPLETED", "FAILED", "CANCELLED")}
        if task["state"] == "FAILED":
            op["error"] = {"message": task["error"] or "Internal error."}
        return op

    def _cancel(self, name):
        task = self.tasks[name.rsplit("/", 1)[-1]]
        task["states"] = ["CANCELLED"]


@pytest.fixture
def fake_batch(ee_offline, monkeypatch):
    """A :class:`FakeBatch` installed on the offline ``ee``; set ``fake_batch.script`` to script tasks."""
    return FakeBatch(ee_offline, monkeypatch)


def graph(obj) -> dict:
    """The Cloud API serialisation of an ee object as plain JSON data (sorted keys)."""
    import ee

    return json.loads(json.dumps(ee.serializer.encode(obj, for_cloud_api=True), sort_keys=True))


def graph_text(obj) -> str:
    """Normalised, stable text of an object graph (for snapshots)."""
    return json.dumps(graph(obj), sort_keys=True, indent=1) + "\n"


def invocations(obj) -> list[tuple[str, dict]]:
    """Every function invocation in the graph as (functionName, arguments with references
    resolved to constants where possible), depth first; a shared sub-graph is listed once."""
    g = graph(obj)
    values = g["values"]
    out = []
    seen = set()

    def walk(node):
        if isinstance(node, dict):
            if "valueReference" in node:
                if node["valueReference"] not in seen:  # shared sub-graphs are listed once
                    seen.add(node["valueReference"])
                    walk(values[node["valueReference"]])
                return
            if "functionInvocationValue" in node:
                f = node["functionInvocationValue"]
                args = {k: constant(v) for k, v in f.get("arguments", {}).items()}
                out.append((f["functionName"], args))
                for v in f.get("arguments", {}).values():
                    walk(v)
                return
            if "functionDefinitionValue" in node:
                walk({"valueReference": node["functionDefinitionValue"]["body"]})
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    def constant(node):
        if isinstance(node, dict) and "valueReference" in node:
            return constant(values[node["valueReference"]])
        if isinstance(node, dict) and "constantValue" in node:
            return node["constantValue"]
        if isinstance(node, dict) and "arrayValue" in node:
            return [constant(v) for v in node["arrayValue"]["values"]]
        return node

    walk(values[g["result"]])
    return out


# --- A small numpy evaluator of serialised graphs ------------------------------------------
# Evaluates the subset of Earth Engine algorithms that ltlib.gee uses, on tiny images held in
# memory, with Earth Engine's documented semantics (masks combine by AND, reducers skip masked
# pixels, array images hold one array per pixel). It lets tests check the *numbers* a graph
# would compute (masking, scaling, indices, medoid choice, change-map selection) offline.
import datetime as _dt
import warnings

import numpy as _np


#: Pixel types of the interpreter (Earth Engine's precisions), the integer ones with their range.
INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
              "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1), "int64": (-2**63, 2**63 - 1)}
FLOAT_TYPES = ("float32", "float64")
#: Type of a band nobody gave a type (computed or loaded without one): Earth Engine's double.
DEFAULT_TYPE = "float64"


class Img:
    """An image of H x W pixels: bands [(name, values object array (H, W), mask bool (H, W))],
    each with a pixel type (``types``, parallel to ``bands``; default ``DEFAULT_TYPE``).

    Each band has its own mask (Earth Engine's per-band masks); the type follows Earth
    Engine's rules closely enough to catch casts (:meth:`Evaluator._cast`) and exports
    of bands of incompatible types (:func:`check_export_types`).
    """

    def __init__(self, bands, props=None, types=None):
        self.bands = list(bands)
        self.props = dict(props or {})
        self._types = None if types is None else list(types)

    @property
    def types(self):
        t = getattr(self, "_types", None)
        n = len(self.bands)
        if t is None or len(t) != n:
            return [DEFAULT_TYPE] * n
        return list(t)

    def band_type(self, name):
        return self.types[self.names.index(name)]

    @property
    def names(self):
        return [b[0] for b in self.bands]

    def band(self, name):
        for b in self.bands:
            if b[0] == name:
                return b
        raise KeyError(f"no band {name!r} in {self.names}")

    def values(self, name):
        """float array (H, W) with NaN where masked (scalar bands)."""
        _, v, m = self.band(name)
        out = _np.full(v.shape, _np.nan)
        for idx in _np.ndindex(v.shape):
            if m[idx]:
                out[idx] = float(v[idx])
        return out


def make_image(shape, props=None, types=None, **bands):
    """An Img from numpy arrays (H, W) (NaN = masked) or per-pixel array lists.

    ``types``: {band: pixel type} (e.g. ``{"LandTrendr": "int16"}``); integer-typed
    bands have their values truncated and clamped to the type's range, as stored.
    """
    out = []
    for name, arr in bands.items():
        if isinstance(arr, _np.ndarray) and arr.dtype != object:
            vals = _np.empty(shape, dtype=object)
            mask = _np.isfinite(arr)
            for idx in _np.ndindex(shape):
                vals[idx] = float(arr[idx]) if mask[idx] else 0.0
        else:  # object array of per-pixel arrays (None = masked)
            vals = _np.empty(shape, dtype=object)
            mask = _np.zeros(shape, bool)
            for idx in _np.ndindex(shape):
                a = arr[idx]
                mask[idx] = a is not None
                vals[idx] = _np.asarray(a, dtype=float) if a is not None else _np.zeros((0,))
        out.append((name, vals, mask))
    types = dict(types or {})
    unknown = set(types) - set(bands)
    if unknown:
        raise ValueError(f"make_image: types for missing bands {sorted(unknown)}")
    band_types = [types.get(name, DEFAULT_TYPE) for name in bands]
    out = [_cast_band(b, t) for b, t in zip(out, band_types)]
    return Img(out, props, band_types)


def _cast_value(x, ptype):
    """One pixel value (scalar or array) cast to ``ptype`` as Earth Engine does: integer
    types truncate towards zero and clamp to their range (``toUint16`` of -5 is 0)."""
    if ptype in FLOAT_TYPES:
        a = _np.asarray(x, dtype=float)
        a = a.astype(_np.float32).astype(float) if ptype == "float32" else a
        return float(a) if a.ndim == 0 else a
    lo, hi = INT_RANGES[ptype]
    a = _np.clip(_np.trunc(_np.asarray(x, dtype=float)), lo, hi)
    return float(a) if a.ndim == 0 else a


def _cast_band(band, ptype):
    name, vals, mask = band
    out = _np.empty(vals.shape, dtype=object)
    for idx in _np.ndindex(vals.shape):
        out[idx] = _cast_value(vals[idx], ptype)
    return (name, out, mask)


def promote(*types):
    """Earth Engine's type of an operation on these types (the union of their ranges):
    double if any is double, float if any is float, else a 32-bit integer."""
    if any(t == "float64" for t in types):
        return "float64"
    if any(t == "float32" for t in types):
        return "float32"
    return "int32"


class ExportTypeError(Exception):
    """Earth Engine refuses an export whose bands have incompatible types."""


def _type_label(t):
    return {"float32": "Float32", "float64": "Float64"}.get(t, t.capitalize())


def check_export_types(img):
    """Raise like Earth Engine's batch export (and a multi-band GeoTIFF computePixels) when
    the bands do not share one type (Earth Engine: "Exported bands must have compatible data
    types"); stricter than the service for mixed integer widths, which ltlib never exports.
    Returns the common type."""
    if len(set(img.types)) > 1:
        found = sorted({_type_label(t) for t in img.types})
        raise ExportTypeError("Exported bands must have compatible data types; found inconsistent types: "
                              + " and ".join(found) + ".")
    return img.types[0] if img.types else None


def _millis(y, m, d):
    return int(_dt.datetime(int(y), int(m), int(d), tzinfo=_dt.timezone.utc).timestamp() * 1000)


def _to_millis(v):
    if isinstance(v, str):
        return _millis(*v.split("-"))
    return int(v)


class Evaluator:
    """``Evaluator(shape, images={id: Img}, collections={id: [Img]}).run(ee_object)``.

    ``images``/``collections`` values may be callables ``f(shape)`` (data made on demand).
    ``run`` takes an ee object or an already serialised graph (``{"result", "values"}``).

    Results of sub-graphs are cached: a sub-graph is evaluated once per binding of the
    function arguments it actually uses (one evaluation when it uses none, e.g. the scene
    collection referenced inside a mapped per-year function). ``memo``, a dict shared by
    runs on the same data and shape, also keeps image and image-collection results of
    argument-free sub-graphs across runs, keyed by their content (the same LandTrendr run
    referenced by several downloads is computed once). Neither changes any result.
    """

    def __init__(self, shape, images=None, collections=None, memo=None):
        self.shape = tuple(shape)
        self.images = images or {}
        self.collections = collections or {}
        self.memo = memo
        self.calls = []

    def run(self, obj):
        if isinstance(obj, dict) and "result" in obj and "values" in obj:
            return self.run_graph(obj)
        return self.run_graph(graph(obj))

    def run_graph(self, g):
        self.values = g["values"]
        self._cache = {}
        self._envs = []
        self._free = {}
        self._ckeys = {}
        return self._eval({"valueReference": g["result"]}, {})

    # -- graph analysis (per run; graph nodes are identified by id(), the graph is alive)
    def _free_vars(self, node) -> frozenset:
        """Names of the function arguments a node refers to and does not bind itself."""
        if isinstance(node, dict):
            if "valueReference" in node:
                return self._free_vars(self.values[node["valueReference"]])
            if "argumentReference" in node:
                return frozenset([node["argumentReference"]])
            if "constantValue" in node:
                return frozenset()
            key = id(node)
            if key not in self._free:
                if "functionDefinitionValue" in node:
                    fd = node["functionDefinitionValue"]
                    out = self._free_vars(self.values[fd["body"]]) - frozenset(fd.get("argumentNames", ()))
                else:
                    out = frozenset()
                    for v in node.values():
                        out |= self._free_vars(v)
                self._free[key] = out
            return self._free[key]
        if isinstance(node, list):
            out = frozenset()
            for v in node:
                out |= self._free_vars(v)
            return out
        return frozenset()

    def _content_key(self, node) -> str:
        """A digest of a sub-graph's content (equal for equal sub-graphs of any graph)."""
        import hashlib

        key = id(node)
        if key not in self._ckeys:
            def canon(n):
                if isinstance(n, dict):
                    if "valueReference" in n:
                        return {"@": self._content_key(self.values[n["valueReference"]])}
                    if "functionInvocationValue" in n and n is not node:
                        return {"@": self._content_key(n)}
                    if "functionDefinitionValue" in n:
                        fd = n["functionDefinitionValue"]
                        return {"@fn": [fd.get("argumentNames", []), self._content_key(self.values[fd["body"]])]}
                    return {k: canon(v) for k, v in n.items()}
                if isinstance(n, list):
                    return [canon(v) for v in n]
                return n

            text = json.dumps(canon(node), sort_keys=True)
            self._ckeys[key] = hashlib.sha1(text.encode()).hexdigest()
        return self._ckeys[key]

    @staticmethod
    def _memoisable(value) -> bool:
        if isinstance(value, Img):
            return True
        return isinstance(value, list) and all(isinstance(v, Img) for v in value)

    # -- graph walking
    def _eval(self, node, env):
        if "valueReference" in node:
            return self._eval(self.values[node["valueReference"]], env)
        if "constantValue" in node:
            return node["constantValue"]
        if "arrayValue" in node:
            return [self._eval(v, env) for v in node["arrayValue"]["values"]]
        if "dictionaryValue" in node:
            return {k: self._eval(v, env) for k, v in node["dictionaryValue"]["values"].items()}
        if "argumentReference" in node:
            return env[node["argumentReference"]]
        if "functionDefinitionValue" in node:
            fd = node["functionDefinitionValue"]

            def fn(*args, _fd=fd, _env=env):
                new_env = dict(_env)
                new_env.update(zip(_fd["argumentNames"], args))
                self._envs.append(new_env)  # keep ids unique while cached
                return self._eval({"valueReference": _fd["body"]}, new_env)

            return fn
        if "functionInvocationValue" in node:
            # an invocation's value depends only on the function arguments its sub-graph
            # uses: cache it per binding of those (envs are kept alive in self._envs, so
            # the ids of their values stay unique during the run)
            free = self._free_vars(node)
            key = (id(node),) + tuple(id(env[n]) for n in sorted(free))
            if key in self._cache:
                return self._cache[key]
            mkey = None
            if not free and self.memo is not None:
                mkey = self._content_key(node)
                if mkey in self.memo:
                    self._cache[key] = self.memo[mkey]
                    return self._cache[key]
            f = node["functionInvocationValue"]
            args = {k: self._eval(v, env) for k, v in f.get("arguments", {}).items()}
            name = f["functionName"]
            self.calls.append(name)
            impl = getattr(self, "f_" + name.replace(".", "_"), None)
            if impl is None:
                raise NotImplementedError(f"the offline Earth Engine evaluator has no {name}")
            value = impl(**args)
            self._cache[key] = value
            if mkey is not None and self._memoisable(value):
                self.memo[mkey] = value
            return value
        raise ValueError(f"cannot evaluate node {node}")

    # -- helpers
    def _const(self, value, name="constant"):
        vals = _np.empty(self.shape, dtype=object)
        for idx in _np.ndindex(self.shape):
            vals[idx] = value
        return (name, vals, _np.ones(self.shape, bool))

    def _img(self, x):
        if isinstance(x, Img):
            return x
        return self.f_Image_constant(x)

    def _scalars(self, band):
        """The band's values as a float array (H, W) when every pixel holds a scalar
        (masked pixels included), else None (array pixels)."""
        flat = band[1].ravel().tolist()
        try:
            arr = _np.asarray(flat, dtype=float)
        except (TypeError, ValueError):  # ragged: some pixels hold arrays
            return None
        if arr.shape != (len(flat),):  # every pixel holds an array
            return None
        return arr.reshape(self.shape)

    def _pix(self, fn, *bands, name=None, vec=None):
        """Apply fn per pixel to (values...) of the given bands; mask = AND of masks.

        ``vec``, the same function on float arrays, is used instead when every pixel of
        every band is a scalar (same numbers, much faster); masked pixels get 0.0 either way.
        """
        vals = _np.empty(self.shape, dtype=object)
        mask = _np.ones(self.shape, bool)
        for b in bands:
            mask &= b[2]
        if vec is not None:
            arrs = [self._scalars(b) for b in bands]
            if all(a is not None for a in arrs):
                with _np.errstate(all="ignore"):
                    res = _np.broadcast_to(_np.asarray(vec(*arrs), dtype=float), self.shape)
                return (name or bands[0][0], _np.where(mask, res, 0.0).astype(object), mask)
        for idx in _np.ndindex(self.shape):
            if mask[idx]:
                vals[idx] = fn(*[b[1][idx] for b in bands])
            else:
                vals[idx] = 0.0
        return (name or bands[0][0], vals, mask)

    def _binary(self, a, b, fn, vec=None, out_type=None):
        """Band-wise ``fn(a, b)``; the output type is ``out_type`` or the union of the
        inputs' types (:func:`promote`)."""
        a, b = self._img(a), self._img(b)
        ta, tb = a.types, b.types
        if len(b.bands) == 1:
            pairs = [(x, b.bands[0]) for x in a.bands]
            tpairs = [(t, tb[0]) for t in ta]
        elif len(a.bands) == 1:
            pairs = [(a.bands[0], y) for y in b.bands]
            tpairs = [(ta[0], t) for t in tb]
        elif len(a.bands) == len(b.bands):
            pairs = list(zip(a.bands, b.bands))
            tpairs = list(zip(ta, tb))
        else:
            raise ValueError(f"band counts differ: {a.names} vs {b.names}")
        names = a.names if len(a.bands) >= len(b.bands) else b.names
        types = [out_type or promote(x, y) for x, y in tpairs]
        return Img([self._pix(fn, x, y, name=n, vec=vec) for (x, y), n in zip(pairs, names)], a.props, types)

    def _unary(self, img, fn, vec=None, out_type=None):
        img = self._img(img)
        types = [out_type or t for t in img.types]
        return Img([self._pix(fn, b, vec=vec) for b in img.bands], img.props, types)

    def _compare(self, a, b, ufunc):
        """A comparison or logical operation: 0/1 values of type uint8 (Earth Engine's boolean)."""
        return self._binary(a, b, lambda x, y: ufunc(x, y).astype(float), ufunc, out_type="uint8")

    def _cast(self, img, ptype):
        """Earth Engine's ``toInt16``, ``toUint16``, ``toFloat``... : values truncated and
        clamped to the type's range (``toUint16`` turns -5 into 0), type set."""
        img = self._img(img)
        return Img([_cast_band(b, ptype) for b in img.bands], img.props, [ptype] * len(img.bands))

    # -- loading and constants
    def f_Image_load(self, id, **_):
        if id not in self.images:
            raise LookupError(f"Image.load: Image asset '{id}' not found (not in the offline data)")
        img = self.images[id]
        return img(self.shape) if callable(img) else img

    def f_ImageCollection_load(self, id, **_):
        col = self.collections.get(id, [])
        return list(col(self.shape) if callable(col) else col)

    def f_Array(self, values, **_):
        return _np.asarray(values, dtype=float)

    @staticmethod
    def _constant_type(v):
        # Earth Engine: an integer constant is an integer image, a float one a double
        return "int32" if isinstance(v, (int, bool)) and not isinstance(v, float) else "float64"

    def f_Image_constant(self, value, **_):
        if isinstance(value, list):
            return Img([self._const(float(v), f"constant_{i}") for i, v in enumerate(value)], None,
                       [self._constant_type(v) for v in value])
        if isinstance(value, _np.ndarray):
            return Img([self._const(value)], None, ["float64"])
        return Img([self._const(float(value))], None, [self._constant_type(value)])

    # -- band selection and metadata
    def f_Image_select(self, input, bandSelectors, newNames=None, **_):
        """Earth Engine's select: an index, or a name matched as a regular expression
        (the whole name; ``(ftv_)?ndvi_fit`` matches ``ndvi_fit`` and ``ftv_ndvi_fit``)."""
        import re

        idx = []
        for s in bandSelectors:
            if isinstance(s, int):
                idx.append(s)
                continue
            hits = [i for i, n in enumerate(input.names) if re.fullmatch(str(s), n)]
            if not hits:
                raise LookupError(f"Image.select: Pattern '{s}' did not match any bands. "
                                  f"Available bands: {input.names}")
            idx += hits
        sel = [input.bands[i] for i in idx]
        types = [input.types[i] for i in idx]
        if newNames is not None:
            if len(newNames) != len(sel):
                raise ValueError(f"Image.select: {len(newNames)} new names for {len(sel)} bands")
            sel = [(n, v, m) for n, (_, v, m) in zip(newNames, sel)]
        return Img(sel, input.props, types)

    def f_Image_rename(self, input, names, **_):
        if len(names) != len(input.bands):
            raise ValueError(f"rename: {len(names)} names for bands {input.names}")
        return Img([(n, v, m) for n, (_, v, m) in zip(names, input.bands)], input.props, input.types)

    def f_Image_addBands(self, dstImg, srcImg, names=None, overwrite=False, **_):
        bands, types = list(dstImg.bands), list(dstImg.types)
        for b, t in zip(srcImg.bands, srcImg.types):
            have = [x[0] for x in bands]
            if b[0] in have and overwrite:
                k = have.index(b[0])
                bands[k], types[k] = b, t
            elif b[0] in have:  # Earth Engine renames a repeated name: x, x_1, x_2...
                k = 1
                while f"{b[0]}_{k}" in have:
                    k += 1
                bands.append((f"{b[0]}_{k}", b[1], b[2]))
                types.append(t)
            else:
                bands.append(b)
                types.append(t)
        return Img(bands, dstImg.props, types)

    def f_Image_bandNames(self, image, **_):
        return image.names

    def f_List_map(self, list, baseAlgorithm, dropNulls=False, **_):
        return [baseAlgorithm(x) for x in list]

    def f_String(self, input, **_):
        return str(input)

    def f_String_toLowerCase(self, **kw):
        (value,) = kw.values()
        return value.lower()

    def f_Element_set(self, object, key, value, **_):
        obj = self._copy(object)
        obj.props[key] = value
        return obj

    def f_Element_setMulti(self, object, properties, **_):
        obj = self._copy(object)
        obj.props.update(properties)
        return obj

    def f_Element_get(self, object, property, **_):
        return object.props.get(property)

    def f_Image_copyProperties(self, destination, source, properties=None, exclude=None, **_):
        obj = self._copy(destination)
        for k in properties or source.props:
            if k in source.props:
                obj.props[k] = source.props[k]
        return obj

    @staticmethod
    def _copy(obj):
        return Img(obj.bands, obj.props, obj.types) if isinstance(obj, Img) else obj

    # -- pixel maths
    def f_Image_add(self, image1, image2):
        return self._binary(image1, image2, lambda a, b: a + b, _np.add)

    def f_Image_subtract(self, image1, image2):
        return self._binary(image1, image2, lambda a, b: a - b, _np.subtract)

    def f_Image_multiply(self, image1, image2):
        return self._binary(image1, image2, lambda a, b: a * b, _np.multiply)

    def f_Image_divide(self, image1, image2):
        a, b = self._img(image1), self._img(image2)
        if all(t in INT_RANGES for t in a.types + b.types):  # integer division, as on the server
            return self._binary(a, b, lambda x, y: _np.trunc(_np.divide(x, y)),
                                lambda x, y: _np.trunc(_np.divide(x, y)))
        return self._binary(a, b, lambda x, y: _np.divide(x, y), _np.divide)

    def f_Image_pow(self, image1, image2):
        return self._binary(image1, image2, lambda a, b: a ** b, lambda a, b: a ** b)

    def f_Image_gt(self, image1, image2):
        return self._compare(image1, image2, _np.greater)

    def f_Image_lt(self, image1, image2):
        return self._compare(image1, image2, _np.less)

    def f_Image_gte(self, image1, image2):
        return self._compare(image1, image2, _np.greater_equal)

    def f_Image_lte(self, image1, image2):
        return self._compare(image1, image2, _np.less_equal)

    def f_Image_eq(self, image1, image2):
        return self._compare(image1, image2, _np.equal)

    def f_Image_and(self, image1, image2):
        return self._compare(image1, image2, _np.logical_and)

    def f_Image_bitwiseAnd(self, image1, image2):
        return self._binary(image1, image2, lambda a, b: float(int(a) & int(b)),
                            lambda a, b: _np.bitwise_and(a.astype(_np.int64), b.astype(_np.int64)))

    def f_Image_abs(self, value):
        return self._unary(value, _np.abs, _np.abs)

    def f_Image_round(self, value):
        return self._unary(value, lambda a: float(_np.round(a)), _np.round)

    # casts: Earth Engine truncates and clamps to the type's range
    def f_Image_toFloat(self, value):
        return self._cast(value, "float32")

    f_Image_float = f_Image_toFloat

    def f_Image_toDouble(self, value):
        return self._cast(value, "float64")

    f_Image_double = f_Image_toDouble

    def f_Image_toInt16(self, value):
        return self._cast(value, "int16")

    f_Image_int16 = f_Image_toShort = f_Image_short = f_Image_toInt16

    def f_Image_toUint16(self, value):
        return self._cast(value, "uint16")

    f_Image_uint16 = f_Image_toUint16

    def f_Image_toInt32(self, value):
        return self._cast(value, "int32")

    f_Image_toInt = f_Image_int = f_Image_toInt32

    def f_Image_toUint8(self, value):
        return self._cast(value, "uint8")

    f_Image_toByte = f_Image_byte = f_Image_toUint8

    def f_Image_toInt8(self, value):
        return self._cast(value, "int8")

    def f_Image_not(self, value):
        return self._unary(value, lambda a: float(a == 0), lambda a: (a == 0).astype(float), out_type="uint8")

    def f_Image_or(self, image1, image2):
        return self._compare(image1, image2, _np.logical_or)

    def f_Image_neq(self, image1, image2):
        return self._compare(image1, image2, _np.not_equal)

    def f_Image_atan(self, value):
        return self._unary(value, _np.arctan, _np.arctan, out_type="float64")

    def f_Image_mask(self, image, mask=None):
        """``image.mask()``: each band's mask as a 0/1 band; ``image.mask(m)``: updateMask."""
        if mask is not None:
            return self.f_Image_updateMask(image, mask)
        bands = [(n, _np.where(m, 1.0, 0.0).astype(object), _np.ones(self.shape, bool)) for n, _, m in image.bands]
        return Img(bands, image.props, ["float32"] * len(bands))

    def f_Image_unmix(self, image, endmembers, sumToOne=False, nonNegative=False):
        """Least-squares unmixing per pixel into ``endmembers`` (bands ``band_0``...);
        ``sumToOne`` and ``nonNegative`` as constraints (NNLS with a heavily weighted
        sum-to-one row)."""
        from scipy.optimize import nnls

        E = _np.asarray(endmembers, dtype=float).T  # (bands, k)
        k = E.shape[1]
        vals = [self._band_floats(b) for b in image.bands]
        x = _np.stack(vals, axis=-1)  # (H, W, bands)
        mask = _np.all(_np.isfinite(x), axis=-1)
        out = _np.zeros(self.shape + (k,))
        w = 1e4 * max(1.0, _np.abs(E).max())
        for idx in _np.ndindex(self.shape):
            if not mask[idx]:
                continue
            A, b = E, x[idx]
            if sumToOne:
                A, b = _np.vstack([E, _np.full((1, k), w)]), _np.append(b, w)
            f = nnls(A, b)[0] if nonNegative else _np.linalg.lstsq(A, b, rcond=None)[0]
            out[idx] = f
        bands = [(f"band_{j}", _np.where(mask, out[..., j], 0.0).astype(object), mask.copy()) for j in range(k)]
        return Img(bands, image.props, ["float64"] * k)

    def f_Image_arrayReduce(self, input, reducer, axes, fieldAxis=None):
        kind = reducer[0]
        fn = {"min": _np.min, "max": _np.max, "sum": _np.sum}[kind]

        def red(a):
            a = _np.asarray(a, dtype=float)
            if any(a.shape[ax] == 0 for ax in axes):
                raise ValueError("Array.reduce: empty array")
            return fn(a, axis=tuple(axes), keepdims=True)
        return self._unary(input, red)

    def f_Image_arrayPad(self, image, lengths, pad=0):
        """Pad each pixel's array at the end of every axis to ``lengths`` with ``pad``."""
        def padded(a):
            a = _np.asarray(a, dtype=float)
            widths = [(0, max(0, int(n) - s)) for n, s in zip(lengths, a.shape)]
            return _np.pad(a, widths, constant_values=float(pad))
        return self._unary(image, padded)

    def f_Reducer_max(self, numInputs=1):
        return ("max", int(numInputs))

    def f_Image_arrayLength(self, input, axis):
        return self._unary(input, lambda a: float(_np.asarray(a).shape[int(axis)]), out_type="int32")

    def f_Image_selfMask(self, image):
        return self.f_Image_updateMask(image, image)

    def f_Image_clamp(self, input, low, high):
        low, high = (float(x.bands[0][1].flat[0]) if isinstance(x, Img) else float(x) for x in (low, high))
        return self._unary(input, lambda a: min(max(a, low), high), lambda a: _np.minimum(_np.maximum(a, low), high))

    def f_Image_unmask(self, input, value=0, sameFootprint=True, **_):
        """Fill masked pixels with ``value``. An image may carry a footprint (property
        ``footprint_mask``, bool (H, W), e.g. a test asset clipped to its granule): with
        ``sameFootprint=True`` (Earth Engine's default) pixels outside it stay masked, as
        on the server (where computePixels then returns 0); ``False`` fills them too."""
        fp = input.props.get("footprint_mask")
        inside = _np.ones(self.shape, bool) if fp is None or not sameFootprint else _np.asarray(fp, bool)
        out = []
        for n, v, m in input.bands:
            v2 = v.copy()
            off = ~m & inside
            if off.any():
                if isinstance(value, Img):
                    v2[off] = [float(x) for x in value.bands[0][1][off]]
                else:
                    v2[off] = float(value)
            out.append((n, v2, m | inside))
        return Img(out, input.props, input.types)

    def f_Image_updateMask(self, image, mask):
        mask = self._img(mask)
        out = []
        for i, (n, v, m) in enumerate(image.bands):
            mb = mask.bands[0] if len(mask.bands) == 1 else mask.bands[i]
            num = self._scalars(mb)
            if num is not None:
                nz = num != 0
            else:
                nz = _np.array([[bool(_np.all(mb[1][r, c] != 0)) for c in range(self.shape[1])]
                                for r in range(self.shape[0])])
            out.append((n, v, m & mb[2] & nz))
        return Img(out, image.props, image.types)

    def f_Image_normalizedDifference(self, input, bandNames):
        a, b = input.band(bandNames[0]), input.band(bandNames[1])
        return Img([self._pix(lambda x, y: (x - y) / (x + y), a, b, name="nd", vec=lambda x, y: (x - y) / (x + y))],
                   input.props, ["float32"])

    def f_Image_reduce(self, image, reducer):
        assert reducer in (("sum",), ("sum", 1)), reducer
        return Img([self._pix(lambda *xs: float(sum(xs)), *image.bands, name="sum", vec=lambda *xs: sum(xs))],
                   image.props, [promote(*image.types)])

    def f_Reducer_sum(self):
        return ("sum",)

    def f_Reducer_min(self, numInputs=1):
        return ("min", int(numInputs))

    # -- collections
    def f_ImageCollection_fromImages(self, images):
        return list(images)

    def f_ImageCollection_merge(self, collection1, collection2):
        return list(collection1) + list(collection2)

    def f_Collection_map(self, collection, baseAlgorithm, dropNulls=False):
        return [baseAlgorithm(img) for img in collection]

    def f_Collection_filter(self, collection, filter):
        return [img for img in collection if filter(img)]

    def f_Filter_intersects(self, leftField=None, rightValue=None, **_):
        """A scene with a ``footprint`` property (west, south, east, north) is kept when it
        overlaps the AOI rectangle; a scene without one covers every AOI."""
        def keep(img):
            fp = img.props.get("footprint")
            if fp is None or not (isinstance(rightValue, tuple) and rightValue[:1] == ("bbox",)):
                return True
            w, s, e, n = rightValue[1:]
            return fp[0] <= e and fp[2] >= w and fp[1] <= n and fp[3] >= s
        return keep

    def f_Filter_not(self, filter):
        return lambda img: not filter(img)

    def f_Filter_notEquals(self, leftField, rightValue, **_):
        return lambda img: img.props.get(leftField) != rightValue

    f_Filter_neq = f_Filter_notEquals

    def f_Filter_and(self, filters):
        return lambda img: all(f(img) for f in filters)

    def f_Filter_dateRangeContains(self, leftValue, rightField, **_):
        start, end = leftValue
        return lambda img: start <= img.props[rightField] < end

    def f_Filter_equals(self, leftField, rightValue, **_):
        return lambda img: img.props.get(leftField) == rightValue

    def f_Filter_listContains(self, leftField=None, rightValue=None, leftValue=None, rightField=None, **_):
        if leftField is not None:  # the property (a list) contains the value
            return lambda img: rightValue in img.props.get(leftField, [])
        # ee.Filter.inList(field, values): the constant list contains the property
        return lambda img: img.props.get(rightField) in list(leftValue)

    def f_DateRange(self, start, end=None, **_):
        return (_to_millis(start), _to_millis(end))

    def f_Date_fromYMD(self, year, month, day, **_):
        return _millis(year, month, day)

    def f_Date_millis(self, date):
        return date

    def f_List_sequence(self, start, end, step=1, **_):
        return list(range(int(start), int(end) + 1, int(step)))

    def f_Number_subtract(self, left, right):
        return left - right

    def f_Number_add(self, left, right):
        return left + right

    def f_GeometryConstructors_Rectangle(self, coordinates=None, **_):
        """("bbox", west, south, east, north) for the footprint filter."""
        c = _np.asarray(coordinates, dtype=float).reshape(-1) if coordinates is not None else None
        if c is None or c.size != 4:
            return None
        return ("bbox", float(min(c[0], c[2])), float(min(c[1], c[3])), float(max(c[0], c[2])),
                float(max(c[1], c[3])))

    def f_Projection(self, **_):
        return None

    def f_Feature(self, geometry=None, **_):
        return geometry  # filterBounds wraps the AOI in a Feature: its geometry is what counts

    def _stack(self, collection):
        names = collection[0].names if collection else []
        return names

    def f_reduce_median(self, collection):
        names = collection[0].names
        out = []
        for j, name in enumerate(names):
            mask = _np.zeros(self.shape, bool)
            for img in collection:
                mask |= img.bands[j][2]
            arrs = [self._scalars(img.bands[j]) for img in collection]
            if all(a is not None for a in arrs):  # median over the unmasked values, vectorised
                stack = _np.stack([_np.where(img.bands[j][2], a, _np.nan) for img, a in zip(collection, arrs)])
                with _np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels are masked
                    med = _np.nanmedian(stack, axis=0)
                out.append((name, _np.where(mask, med, 0.0).astype(object), mask))
                continue
            vals = _np.empty(self.shape, dtype=object)
            for idx in _np.ndindex(self.shape):
                xs = [img.bands[j][1][idx] for img in collection if img.bands[j][2][idx]]
                vals[idx] = float(_np.median(xs)) if xs else 0.0
            out.append((name, vals, mask))
        return Img(out)

    def f_ImageCollection_reduce(self, collection, reducer, parallelScale=1):
        kind, n = reducer
        assert kind == "min"
        names = ["min"] + [f"min{i}" for i in range(1, n)]
        bands = [(nm, _np.empty(self.shape, dtype=object), _np.zeros(self.shape, bool)) for nm in names]
        for idx in _np.ndindex(self.shape):
            # a multi-input reducer takes a pixel only where all its inputs are unmasked
            cands = [img for img in collection if all(b[2][idx] for b in img.bands[:n])]
            if not cands:
                for b in bands:
                    b[1][idx] = 0.0
                continue
            best = min(cands, key=lambda img: img.bands[0][1][idx])  # first minimum wins
            for k, b in enumerate(bands):
                b[1][idx] = best.bands[k][1][idx]
                b[2][idx] = True
        return Img(bands, None, collection[0].types[:n] if collection else None)

    def f_ImageCollection_toBands(self, collection):
        """Bands ``<system:index>_<band>`` (the position when an image has no index)."""
        bands, types = [], []
        for i, img in enumerate(collection):
            prefix = img.props.get("system:index", i)
            bands += [(f"{prefix}_{n}", v, m) for n, v, m in img.bands]
            types += img.types
        return Img(bands, None, types)

    # -- array images
    def f_Image_toArray(self, image, axis=0):
        def cat(*xs):
            arrs = [_np.atleast_1d(_np.asarray(x, dtype=float)) for x in xs]
            return _np.concatenate(arrs, axis=axis)
        return Img([self._pix(cat, *image.bands, name="array")], image.props, [promote(*image.types)])

    def f_Image_arrayCat(self, image1, image2, axis):
        return self._binary(image1, image2, lambda a, b: _np.concatenate([a, b], axis=int(axis)))

    @staticmethod
    def _scalar(x):
        # start/end/step arrive as constant images: read their (uniform) value
        if isinstance(x, Img):
            return int(x.bands[0][1].flat[0])
        return None if x is None else int(x)

    def f_Image_arraySlice(self, input, axis=0, start=0, end=None, step=1):
        start, end, step = self._scalar(start), self._scalar(end), self._scalar(step)
        def sl(a):
            idx = [slice(None)] * a.ndim
            idx[int(axis)] = slice(int(start), None if end is None else int(end), int(step))
            return a[tuple(idx)]
        return self._unary(input, sl)

    @staticmethod
    def _mask_axis(a, m):
        # Earth Engine arrayMask: the mask has length 1 on all axes but one (broadcast);
        # elements along that axis whose mask is 0 are removed.
        m = _np.asarray(m)
        if m.ndim != a.ndim:
            raise ValueError(f"arrayMask: mask shape {m.shape} vs array shape {a.shape}")
        axes = [k for k in range(m.ndim) if m.shape[k] != 1]
        axis = axes[0] if axes else a.ndim - 1
        if m.shape[axis] == 0:  # an empty array stays empty
            keep = _np.zeros(0, bool)
        else:
            keep = _np.moveaxis(m, axis, -1).reshape(-1, m.shape[axis])[0] != 0
        return _np.compress(keep, a, axis=axis)

    def f_Image_arrayMask(self, input, mask):
        return self._binary(input, mask, self._mask_axis)

    def f_Image_arraySort(self, image, keys=None):
        def srt(a, k):
            k = _np.asarray(k)
            axis = a.ndim - 1
            order = _np.argsort(k.reshape(-1), kind="stable")
            return _np.take(a, order, axis=axis)
        return self._binary(image, keys, srt)

    def f_Image_arrayProject(self, input, axes):
        def proj(a):
            keep = list(axes)
            other = tuple(k for k in range(a.ndim) if k not in keep)
            if any(a.shape[k] != 1 for k in other):
                raise ValueError(f"arrayProject: shape {a.shape} has length > 1 off axes {axes}")
            return a.reshape([a.shape[k] for k in keep])
        return self._unary(input, proj)

    def f_Image_arrayFlatten(self, image, coordinateLabels, separator="_"):
        """One band per array element, named by joining the labels of its coordinates
        (row-major: a_x, a_y, b_x, b_y); every pixel's array must have that shape."""
        import itertools

        shape = tuple(len(lab) for lab in coordinateLabels)
        names = [separator.join(c) for c in itertools.product(*coordinateLabels)]
        (name, vals, mask) = image.bands[0]
        out = []
        for i, lab in enumerate(names):
            v = _np.empty(self.shape, dtype=object)
            for idx in _np.ndindex(self.shape):
                if mask[idx]:
                    a = _np.asarray(vals[idx])
                    if a.size != len(names) or (a.ndim == len(shape) and a.shape != shape):
                        raise ValueError(f"arrayFlatten: array of shape {a.shape} for labels of shape {shape}")
                    v[idx] = float(a.reshape(-1)[i])
                else:
                    v[idx] = 0.0
            out.append((lab, v, mask.copy()))
        return Img(out, image.props, [image.types[0]] * len(out))

    def f_Image_connectedPixelCount(self, input, maxSize=100, eightConnected=True):
        from scipy import ndimage

        name, vals, mask = input.bands[0]
        out = _np.empty(self.shape, dtype=object)
        structure = _np.ones((3, 3)) if eightConnected else None
        num = _np.array([[float(vals[r, c]) for c in range(self.shape[1])] for r in range(self.shape[0])])
        counts = _np.zeros(self.shape)
        for value in _np.unique(num[mask]):
            lab, _ = ndimage.label(mask & (num == value), structure=structure)
            sizes = _np.bincount(lab.ravel())
            sel = lab > 0
            counts[sel] = _np.minimum(sizes[lab[sel]], maxSize)
        for idx in _np.ndindex(self.shape):
            out[idx] = float(counts[idx])
        return Img([(name, out, mask.copy())], None, ["int32"])

    # -- mosaics and collection metadata
    def f_ImageCollection_mosaic(self, collection):
        """Per pixel and band the last unmasked image of the collection (later on top);
        no properties (Earth Engine's mosaic drops them)."""
        names, types = [], []
        for img in collection:
            types += [t for n, t in zip(img.names, img.types) if n not in names]
            names += [n for n in img.names if n not in names]
        bands = []
        for name in names:
            vals = _np.empty(self.shape, dtype=object)
            vals[...] = 0.0
            mask = _np.zeros(self.shape, bool)
            for img in collection:
                if name not in img.names:
                    continue
                _, v, m = img.band(name)
                vals[m] = v[m]
                mask |= m
            bands.append((name, vals, mask))
        return Img(bands, None, types)

    def f_Collection_size(self, collection):
        return len(collection)

    def f_Collection_first(self, collection):
        if not collection:
            raise ValueError("Collection.first: Empty collection.")
        return collection[0]

    def f_AggregateFeatureCollection_array(self, collection, property):
        """The property's values in collection order; elements without it are skipped."""
        return [img.props[property] for img in collection if img.props.get(property) is not None]

    def f_AggregateFeatureCollection_count(self, collection, property):
        return len(self.f_AggregateFeatureCollection_array(collection, property))

    def f_AggregateFeatureCollection_histogram(self, collection, property):
        """{value as a string: count}, like the server's JSON (integers without '.0')."""
        out: dict = {}
        for v in self.f_AggregateFeatureCollection_array(collection, property):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                k = str(v)
            else:
                k = str(int(v)) if float(v).is_integer() else repr(float(v))
            out[k] = out.get(k, 0) + 1
        return out

    # -- LandTrendr
    def _band_floats(self, band):
        """float array (H, W), NaN where the band is masked."""
        _, v, m = band
        out = _np.full(self.shape, _np.nan)
        if m.any():
            out[m] = _np.asarray(v[m].tolist(), dtype=float)
        return out

    def f_TemporalSegmentation_LandTrendr(self, timeSeries, maxSegments, spikeThreshold=0.9,
                                          vertexCountOvershoot=3, preventOneYearRecovery=False,
                                          recoveryThreshold=0.25, pvalThreshold=0.1, bestModelProportion=0.75,
                                          minObservationsNeeded=6):
        """``ee.Algorithms.TemporalSegmentation.LandTrendr`` by the local port.

        The first band of every image is segmented as it comes (increase = disturbance,
        the caller orients it); years are those of ``system:time_start``, one image per
        year. Output as on Earth Engine (LT-GEE guide, "LT-GEE Outputs"):

        - ``LandTrendr``: per pixel a 4 x n array over the n unmasked years of the first
          band: year, source value, fitted value, is-vertex (1/0);
        - ``rmse``: of the fit against the source values;
        - ``<band>_fit`` for every further band of the input: that band fitted to the
          first band's vertices (FTV), an array over *all* years of the collection
          (masked years on the fitted line, years before/after the first/last
          observation at its value).

        A pixel with no unmasked first-band value is masked in every band.
        """
        from ltlib import landtrendr

        images = list(timeSeries)
        if not images:
            raise ValueError("TemporalSegmentation.LandTrendr: the time series is empty")
        stamps = [img.props.get("system:time_start") for img in images]
        if any(t is None for t in stamps):
            raise ValueError("TemporalSegmentation.LandTrendr: every image needs system:time_start")
        order = sorted(range(len(images)), key=lambda i: stamps[i])
        images = [images[i] for i in order]
        years = _np.array([_dt.datetime.fromtimestamp(stamps[i] / 1000, _dt.timezone.utc).year for i in order])
        if len(set(years.tolist())) != len(years):
            raise ValueError(f"TemporalSegmentation.LandTrendr: more than one image per year in {years.tolist()}")
        names = images[0].names
        for img in images:
            if img.names != names:
                raise ValueError(f"TemporalSegmentation.LandTrendr: bands differ: {img.names} vs {names}")
        first = _np.stack([self._band_floats(img.bands[0]) for img in images])  # (T, H, W)
        res = landtrendr.segment(
            first, years, max_segments=int(maxSegments), spike_threshold=float(spikeThreshold),
            vertex_count_overshoot=int(vertexCountOvershoot), prevent_one_year_recovery=bool(preventOneYearRecovery),
            recovery_threshold=float(recoveryThreshold), pval_threshold=float(pvalThreshold),
            best_model_proportion=float(bestModelProportion), min_observations_needed=int(minObservationsNeeded),
            distdir=1)
        valid = _np.isfinite(first)  # (T, H, W)
        has = valid.any(axis=0)
        lt_vals = _np.empty(self.shape, dtype=object)
        rmse_vals = _np.empty(self.shape, dtype=object)
        for idx in _np.ndindex(self.shape):
            sel = (slice(None),) + idx
            ok = valid[sel]
            if has[idx]:
                lt_vals[idx] = _np.stack([years[ok].astype(float), first[sel][ok], res.fitted[sel][ok],
                                          res.is_vertex[sel][ok].astype(float)])
                rmse_vals[idx] = float(res.rmse[idx])
            else:
                lt_vals[idx] = _np.zeros((4, 0))
                rmse_vals[idx] = 0.0
        bands = [("LandTrendr", lt_vals, has.copy()), ("rmse", rmse_vals, has & _np.isfinite(res.rmse))]
        for j, name in enumerate(names[1:], start=1):
            values = _np.stack([self._band_floats(img.bands[j]) for img in images])
            fit = landtrendr.fit_to_vertices(values, years, res.is_vertex)
            fit_vals = _np.empty(self.shape, dtype=object)
            mask = has & _np.isfinite(values).any(axis=0)
            for idx in _np.ndindex(self.shape):
                fit_vals[idx] = fit[(slice(None),) + idx].copy() if mask[idx] else _np.zeros((0,))
            bands.append((f"{name}_fit", fit_vals, mask))
        return Img(bands, None, ["float32"] * len(bands))


# --- test assets that look like real LandsatLinkr outputs ------------------------------------
def llr_landtrendr_asset(shape, pixels, years=range(1972, 2023), ftv=("tcb", "tcg", "tcw")):
    """An Img laid out as a LandsatLinkr ``landtrendr`` asset (``exportLt`` of
    gee-community/ee-LandsatLinkr ``landsatlinkr.py``): ``lt.int16()`` of a run on NDVI x -1,
    i.e. ``LandTrendr`` int16 (4 x len(years): year, source, fitted, is-vertex over the
    observed years, then ``arrayPad`` zeros), ``rmse`` int16 (truncated) and ``<ftv>_fit``
    int16 arrays over all years.

    ``pixels``: {(row, col): dict(vert_years, ndvi (x 1000 at the vertices), rmse (float, as
    LandTrendr computed it), ftv={band: values at the vertices}, missing=(years with no
    observation))}; other pixels are masked.
    """
    years = _np.asarray(list(years), dtype=float)
    n = len(years)
    lt = _np.empty(shape, dtype=object)
    rmse = _np.full(shape, _np.nan)
    fits = {b: _np.empty(shape, dtype=object) for b in ftv}
    for idx in _np.ndindex(shape):
        px = pixels.get(idx)
        if px is None:
            lt[idx] = None
            for b in ftv:
                fits[b][idx] = None
            continue
        vy = _np.asarray(px["vert_years"], dtype=float)
        keep = ~_np.isin(years, list(px.get("missing", ())))
        fit = -_np.interp(years, vy, _np.asarray(px["ndvi"], dtype=float))  # LLR segments NDVI x -1
        arr = _np.zeros((4, n))
        arr[:, :keep.sum()] = _np.stack([years[keep], fit[keep], fit[keep], _np.isin(years[keep], vy)])
        lt[idx] = arr
        rmse[idx] = px["rmse"]
        for b in ftv:
            fits[b][idx] = _np.interp(years, vy, _np.asarray(px["ftv"][b], dtype=float))
    types = {"LandTrendr": "int16", "rmse": "int16", **{f"{b}_fit": "int16" for b in ftv}}
    return make_image(shape, types=types, LandTrendr=lt, rmse=rmse, **{f"{b}_fit": v for b, v in fits.items()})
