"""Trajectory classification: six classes of 51-year series with tsai/pyts models and GAF images.

Step 4 of the seed labels each pixel's trajectory as 0 downward, 1 down-then-up, 2 upward,
3 up-then-down, 4 stable or 5 multi-disturbance (``config.CLASS_NAMES``). This module trains
the seed's model families on labelled series and applies them to a whole image:

- deep models from tsai (Oguiza 2023): ``InceptionTime`` (Ismail Fawaz et al. 2020), ``TST``
  (Zerveas et al. 2021), ``FCN`` and ``ResNet`` (Wang et al. 2017), trained with a fastai
  ``Learner`` (one-cycle schedule, optional early stopping);
- ``MiniRocket`` (Dempster et al. 2021): tsai's PyTorch MiniRocket features + a ridge
  classifier, as the paper does;
- pyts ``TSF`` (TimeSeriesForest, Deng et al. 2013; 500 trees) and ``BOSSVS`` (Schaefer 2016);
  ``TSF100``, the same forest with 100 trees, maps whole scenes: on the sample it is as
  accurate as InceptionTime within 0.005 and predicts about 10x faster per pixel on CPU
  (``benchmarks/bench_classify_rate.py``, docs/scale.md), the default of notebook 04 for
  scenes opened in chunks;
- image models ``GADF``, ``GASF`` (Gramian angular fields, Wang & Oates 2015), ``MTF``
  (Markov transition field) and ``RP`` (recurrence plot), each an image per series fed to a
  fastai ``xresnet18``.

Every model sees series in physical index units (NDVI -1..1) passed through one
normalisation, :func:`normalize`, stored with the model and re-applied at prediction time.
The seed min-max scaled each series to 0..1; done literally that blows a flat (stable) series'
noise up to full range, so the default scales by ``max(range, min_range)`` instead: a series
that changes by more than ``min_range`` spans 0..1, a stable one stays near a flat line.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import config, io
# The model names live in config (params checks the notebook parameter without importing pandas).
from .config import DEEP_MODELS, IMAGE_MODELS, MODELS, TSF_TREES  # noqa: F401

N_CLASSES = len(config.CLASS_NAMES)
#: Class map nodata value (pixels with no valid observation).
NODATA = 255

# Architecture defaults. InceptionTime with nf=16 (tsai default 32) maps the seed's 389k-pixel
# scene about 5x faster at the same accuracy on the seed set (see benchmarks/bench_classify.py).
ARCH_DEFAULTS = {
    "InceptionTime": dict(nf=16),
    "TST": dict(n_layers=3, d_model=64, n_heads=8, d_ff=128, dropout=0.1, fc_dropout=0.1),
    "FCN": dict(),
    "ResNet": dict(),
}


# --------------------------------------------------------------------------- preprocessing
def _check_series(X, what="X") -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_series, n_years), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{what} has no series")
    if not np.isfinite(X).all():
        n = int((~np.isfinite(X).all(1)).sum())
        raise ValueError(f"{what} has {n} series with NaN/inf values: fill gaps first "
                         "(ltlib.trainingset.fill_series) or classify LandTrendr fitted values")
    if np.abs(X).max() > 10:
        raise ValueError(f"{what} has values up to {np.abs(X).max():.0f}: expected physical index units "
                         "(NDVI -1..1); stored stacks are index x 1000, use Stack.physical()")
    return X


def normalize(X, *, method: str = "minmax", min_range: float = 0.2) -> np.ndarray:
    """Normalise each series (row) for classification.

    X: (n, T) physical index units. ``method``: ``"minmax"`` -> ``(x - min) / max(max - min,
    min_range)`` (0..1 for a series that changes by more than ``min_range``), ``"center"`` ->
    ``x - mean`` (keeps amplitude), ``"none"``. Returns float32 (n, T).
    """
    return _normalize(_check_series(X), method, min_range)


def _normalize(X: np.ndarray, method: str = "minmax", min_range: float = 0.2) -> np.ndarray:
    """:func:`normalize` of series already checked by :func:`_check_series`."""
    if method == "minmax":
        lo = X.min(1, keepdims=True)
        rng = np.maximum(X.max(1, keepdims=True) - lo, min_range)
        return ((X - lo) / rng).astype(np.float32)
    if method == "center":
        return (X - X.mean(1, keepdims=True)).astype(np.float32)
    if method == "none":
        return X.copy()
    raise ValueError(f"unknown normalisation {method!r}: use 'minmax', 'center' or 'none'")


def gramian_angular_field(Xn, *, kind: str = "difference") -> np.ndarray:
    """Gramian angular field (Wang & Oates 2015) of normalised series.

    Xn: (n, T) values in 0..1 (from :func:`normalize`), rescaled to cos(phi) in [-1, 1].
    GADF[i, j] = sin(phi_i - phi_j), GASF[i, j] = cos(phi_i + phi_j). Returns float32 (n, T, T).
    """
    x = np.clip(2 * np.asarray(Xn, np.float32) - 1, -1, 1)
    s = np.sqrt(np.clip(1 - x * x, 0, 1))
    xi, xj, si, sj = x[:, :, None], x[:, None, :], s[:, :, None], s[:, None, :]
    if kind == "difference":
        return (si * xj - xi * sj).astype(np.float32)
    if kind == "summation":
        return (xi * xj - si * sj).astype(np.float32)
    raise ValueError(f"unknown GAF kind {kind!r}: 'difference' or 'summation'")


def to_images(Xn, method: str = "GADF") -> np.ndarray:
    """Series -> one-channel images for the image models. Xn: (n, T) normalised; returns (n, 1, T, T).

    GADF/GASF from :func:`gramian_angular_field`; MTF (8 quantile bins) and RP (recurrence
    plot, unthresholded distance) from pyts.
    """
    Xn = np.asarray(Xn, np.float32)
    if method == "GADF":
        img = gramian_angular_field(Xn, kind="difference")
    elif method == "GASF":
        img = gramian_angular_field(Xn, kind="summation")
    elif method == "MTF":
        from pyts.image import MarkovTransitionField

        img = MarkovTransitionField(n_bins=8).fit_transform(Xn)
    elif method == "RP":
        from pyts.image import RecurrencePlot

        img = RecurrencePlot().fit_transform(Xn)
    else:
        raise ValueError(f"unknown image method {method!r}: one of {IMAGE_MODELS}")
    return img[:, None].astype(np.float32)


# --------------------------------------------------------------------------- networks
def _build_net(name: str, n_steps: int, arch_kwargs: dict):
    if name == "InceptionTime":
        from tsai.models.InceptionTime import InceptionTime

        return InceptionTime(1, N_CLASSES, **arch_kwargs)
    if name == "TST":
        from tsai.models.TST import TST

        return TST(1, N_CLASSES, n_steps, **arch_kwargs)
    if name == "FCN":
        from tsai.models.FCN import FCN

        return FCN(1, N_CLASSES, **arch_kwargs)
    if name == "ResNet":
        from tsai.models.ResNet import ResNet

        return ResNet(1, N_CLASSES, **arch_kwargs)
    if name in IMAGE_MODELS:
        from fastai.vision.models.xresnet import xresnet18, xresnet34

        depth = arch_kwargs.get("depth", 18)
        return {18: xresnet18, 34: xresnet34}[depth](c_in=1, n_out=N_CLASSES)
    raise ValueError(f"unknown model {name!r}: one of {MODELS}")


def _inputs(name: str, Xn: np.ndarray) -> np.ndarray:
    """Network input for normalised series Xn (n, T): (n, 1, T) or images (n, 1, T, T)."""
    return to_images(Xn, name) if name in IMAGE_MODELS else Xn[:, None, :]


def _device(device):
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


# --------------------------------------------------------------------------- the model object
@dataclass
class TrainedModel:
    """A fitted classifier with its normalisation; predicts from physical-unit series.

    ``kind`` is ``"torch"`` (deep and image models: ``net``), ``"minirocket"`` (``features``
    + ``estimator``) or ``"sklearn"`` (pyts estimators). ``history`` has one row per epoch
    for torch models. Accuracies/losses are on the split passed to :func:`fit`.
    """

    name: str
    kind: str
    n_steps: int
    norm: dict
    net: object = None
    arch_kwargs: dict = field(default_factory=dict)
    estimator: object = None
    features: object = None
    history: pd.DataFrame | None = None
    fit_seconds: float = float("nan")
    scores: dict = field(default_factory=dict)

    def predict_proba(self, X, *, batch_size: int = 8192, progress: bool = False, device=None) -> np.ndarray:
        """Class probabilities (n, 6) float32 for series X (n, T) in physical units.

        Runs in batches of ``batch_size`` series (memory stays bounded for whole scenes);
        ``progress`` shows a tqdm bar.
        """
        from tqdm.auto import tqdm

        X = _check_series(X)
        if X.shape[1] != self.n_steps:
            raise ValueError(f"series have {X.shape[1]} years, the model {self.name} was trained on {self.n_steps}")
        out = np.empty((len(X), N_CLASSES), np.float32)
        starts = range(0, len(X), batch_size)
        for s in tqdm(starts, disable=not progress, desc=f"{self.name} predict", unit="batch"):
            out[s:s + batch_size] = self._proba_batch(_normalize(X[s:s + batch_size], **self.norm), device)
        return out

    def _proba_batch(self, Xn: np.ndarray, device) -> np.ndarray:
        if self.kind == "torch":
            import torch

            dev = _device(device)
            net = self.net.to(dev).eval()
            inp = _inputs(self.name, Xn)
            res = []
            with torch.inference_mode():
                # sub-batches keep image models' activations small
                step = 1024 if self.name in IMAGE_MODELS else 8192
                for s in range(0, len(inp), step):
                    logits = net(torch.from_numpy(inp[s:s + step]).to(dev))
                    res.append(torch.softmax(logits.float(), 1).cpu().numpy())
            return np.concatenate(res)
        if self.kind == "minirocket":
            F = _minirocket_transform(self.features, Xn)
            return _softmax(self.estimator.decision_function(F))
        if hasattr(self.estimator, "predict_proba"):
            return self.estimator.predict_proba(Xn).astype(np.float32)
        return _softmax(self.estimator.decision_function(Xn) * 10)  # BOSSVS: cosine similarities

    def predict(self, X, **kw) -> np.ndarray:
        """Class labels (n,) int64 for series X (n, T) in physical units."""
        return self.predict_proba(X, **kw).argmax(1)

    def save(self, path) -> Path:
        """Write the model (weights, estimator, normalisation, history) to one file.

        The model is serialised once; the file holds those bytes with their SHA-256 and the
        library versions that wrote them, so :meth:`load` detects any change to the file.
        Loading unpickles (sklearn/pyts estimators), so only load files you trust.
        """
        import io as _io

        import torch

        path = Path(path)
        state = {k: getattr(self, k) for k in ("name", "kind", "n_steps", "norm", "arch_kwargs",
                                              "estimator", "features", "history", "fit_seconds", "scores")}
        state["net"] = None if self.net is None else {k: v.cpu() for k, v in self.net.state_dict().items()}
        buf = _io.BytesIO()
        torch.save(state, buf)
        payload = buf.getvalue()
        outer = {"ltlib_model_format": MODEL_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
                 "versions": _library_versions(), "payload": payload}
        with io.atomic_path(path) as tmp:  # an interrupted save leaves no truncated model file
            torch.save(outer, tmp)
        return path

    @classmethod
    def load(cls, path) -> "TrainedModel":
        """Read a model written by :meth:`save`.

        Raises ValueError naming the file when it is not an ltlib model, cannot be read
        (truncated, overwritten) or its checksum does not match (corrupted); warns when it was
        written with other versions of torch, tsai, pyts or scikit-learn.
        """
        import io as _io

        import torch

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"model file not found: {path}")
        try:
            outer = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - torch/pickle raise many types for a damaged file
            raise ValueError(f"cannot read {path} as an ltlib model file (damaged or not a model): "
                             f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
        if not isinstance(outer, dict) or outer.get("ltlib_model_format") not in (1, MODEL_FORMAT):
            raise ValueError(f"{path} is not an ltlib model file")
        if outer["ltlib_model_format"] == 1:  # written before checksums: nothing to verify
            warnings.warn(f"{path}: an ltlib model file without checksum (older ltlib); it cannot be verified",
                          stacklevel=2)
            state = dict(outer)
        else:
            payload = outer.get("payload")
            if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != outer.get("sha256"):
                raise ValueError(f"{path}: the model's checksum does not match: the file is corrupted. Train the "
                                 f"model again or restore the file")
            saved = outer.get("versions", {})
            now = _library_versions()
            differ = [f"{k} {saved[k]} (now {now.get(k)})" for k in saved if saved.get(k) != now.get(k)]
            if differ:
                warnings.warn(f"{path} was saved with {', '.join(differ)}; predictions may differ slightly",
                              stacklevel=2)
            state = torch.load(_io.BytesIO(payload), map_location="cpu", weights_only=False)
        state.pop("ltlib_model_format", None)
        weights = state.pop("net")
        m = cls(**state)
        if weights is not None:
            m.net = _build_net(m.name, m.n_steps, m.arch_kwargs)
            m.net.load_state_dict(weights)
            m.net.eval()
        return m


#: Model file layout written by :meth:`TrainedModel.save` (1: no checksum, still readable).
MODEL_FORMAT = 2


def _library_versions() -> dict:
    """Versions of the libraries a saved model depends on (None where not installed)."""
    from importlib import metadata

    out = {}
    for dist in ("ltlib", "torch", "tsai", "fastai", "pyts", "scikit-learn", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _softmax(z) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _minirocket_transform(features, Xn) -> np.ndarray:
    import torch

    with torch.inference_mode():
        feats = features(torch.from_numpy(np.ascontiguousarray(Xn[:, None, :])))
    return feats.numpy()


# --------------------------------------------------------------------------- training
def _check_labels(X, y, what):
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{what}: {len(X)} series but labels of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= N_CLASSES:
        raise ValueError(f"{what}: labels must be integers 0..{N_CLASSES - 1}, got {np.unique(y)[:10]}")
    return y.astype(np.int64)


def fit(name: str, X_train, y_train, X_valid, y_valid, *, epochs: int = 30, lr: float = 1e-3,
        batch_size: int = 64, seed: int = 0, patience: int | None = None, device=None,
        norm: dict | None = None, arch_kwargs: dict | None = None, progress: bool = True) -> TrainedModel:
    """Train one model ``name`` (one of :data:`MODELS`) on labelled series.

    X_*: (n, T) float, physical index units, no NaN; y_*: (n,) int 0..5. ``epochs``, ``lr``,
    ``batch_size``, ``patience`` (early stopping on validation loss: stop after this many
    epochs without improvement; the final weights are kept, not the best epoch's) apply to
    the torch models. ``seed`` fixes weights, shuffling and random kernels/forests.
    ``device``: None = GPU when present, else CPU. Returns a :class:`TrainedModel` whose
    ``scores`` hold train/valid accuracy and loss (cross-entropy) and ``fit_seconds``.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: one of {MODELS}")
    norm = dict(method="minmax", min_range=0.2) if norm is None else dict(norm)
    Xt, Xv = _check_series(X_train, "X_train"), _check_series(X_valid, "X_valid")
    if Xt.shape[1] != Xv.shape[1]:
        raise ValueError(f"X_train has {Xt.shape[1]} years, X_valid {Xv.shape[1]}")
    yt, yv = _check_labels(Xt, y_train, "y_train"), _check_labels(Xv, y_valid, "y_valid")
    Xtn, Xvn = _normalize(Xt, **norm), _normalize(Xv, **norm)
    t0 = time.perf_counter()
    if name in DEEP_MODELS or name in IMAGE_MODELS:
        kw = dict(ARCH_DEFAULTS.get(name, {}))
        kw.update(arch_kwargs or {})
        model = _fit_torch(name, Xtn, yt, Xvn, yv, kw, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                           patience=patience, device=device, progress=progress)
    elif name == "MiniRocket":
        model = _fit_minirocket(Xtn, yt, seed)
    else:
        model = _fit_pyts(name, Xtn, yt, seed)
    model.n_steps, model.norm = Xt.shape[1], norm
    model.fit_seconds = time.perf_counter() - t0
    model.scores = {}
    for split, X, y in (("train", Xt, yt), ("valid", Xv, yv)):
        p = model.predict_proba(X, device=device)
        model.scores[f"{split}_accuracy"] = float((p.argmax(1) == y).mean())
        model.scores[f"{split}_loss"] = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1))))
    return model


def _fit_torch(name, Xtn, yt, Xvn, yv, arch_kwargs, *, epochs, lr, batch_size, seed, patience, device, progress):
    import torch
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (patches Learner)
    from fastai.callback.tracker import EarlyStoppingCallback
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    from fastai.torch_core import set_seed

    set_seed(seed, reproducible=True)
    dev = _device(device)
    it, iv = _inputs(name, Xtn), _inputs(name, Xvn)
    train_ds = list(zip(torch.from_numpy(it), torch.from_numpy(yt)))
    valid_ds = list(zip(torch.from_numpy(iv), torch.from_numpy(yv)))
    dls = DataLoaders.from_dsets(train_ds, valid_ds, bs=batch_size, device=dev, num_workers=0)
    net = _build_net(name, Xtn.shape[1], arch_kwargs)
    learn = Learner(dls, net, loss_func=CrossEntropyLossFlat(), metrics=accuracy)
    cbs = [EarlyStoppingCallback(monitor="valid_loss", patience=patience)] if patience else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if progress:
            learn.fit_one_cycle(epochs, lr, cbs=cbs)
        else:
            with learn.no_bar(), learn.no_logging():
                learn.fit_one_cycle(epochs, lr, cbs=cbs)
    vals = np.array([list(map(float, v)) for v in learn.recorder.values])
    hist = pd.DataFrame(vals, columns=["train_loss", "valid_loss", "valid_accuracy"])
    hist.index.name = "epoch"
    net = learn.model.cpu().eval()
    return TrainedModel(name=name, kind="torch", n_steps=Xtn.shape[1], norm={}, net=net,
                        arch_kwargs=arch_kwargs, history=hist)


def _fit_minirocket(Xtn, yt, seed):
    import torch
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tsai.models.MINIROCKET_Pytorch import MiniRocketFeatures

    torch.manual_seed(seed)
    mrf = MiniRocketFeatures(1, Xtn.shape[1], num_features=10_000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mrf.fit(np.ascontiguousarray(Xtn[:, None, :]))
    mrf.eval()
    F = _minirocket_transform(mrf, Xtn)
    # Dempster et al.: ridge regression with cross-validated alpha on the features
    est = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    est.fit(F, yt)
    return TrainedModel(name="MiniRocket", kind="minirocket", n_steps=Xtn.shape[1], norm={},
                        estimator=est, features=mrf)


def _fit_pyts(name, Xtn, yt, seed):
    from pyts.classification import BOSSVS, TimeSeriesForest

    if name in TSF_TREES:
        est = TimeSeriesForest(n_estimators=TSF_TREES[name], random_state=seed, n_jobs=-1)
    else:
        est = BOSSVS(word_size=4, n_bins=4, window_size=12)
    est.fit(Xtn, yt)
    return TrainedModel(name=name, kind="sklearn", n_steps=Xtn.shape[1], norm={}, estimator=est)


def compare(models) -> pd.DataFrame:
    """The seed's comparison table: one row per model with train/valid accuracy and loss and fit time."""
    rows = []
    for m in models:
        rows.append(dict(model=m.name, **m.scores, fit_seconds=m.fit_seconds))
    cols = ["model", "train_accuracy", "valid_accuracy", "train_loss", "valid_loss", "fit_seconds"]
    return pd.DataFrame(rows, columns=cols).set_index("model")


# --------------------------------------------------------------------------- whole images
def classify_image(model: TrainedModel, data, *, batch_size: int = 8192, probabilities: bool = False,
                   progress: bool = True, device=None):
    """Classify every pixel of a stack.

    data: (T, H, W) physical index units (e.g. LandTrendr fitted NDVI, ``stack.physical()``);
    pixels with any NaN year are not classified. Returns ``class_map`` (H, W) uint8 with
    :data:`NODATA` for unclassified pixels, and with ``probabilities`` also ``proba``
    (6, H, W) float32 (NaN where unclassified).

    A dask ``data`` (a scene opened in chunks) gives dask results, one inference task per
    block (:func:`classify_blocks`), nothing computed; each block's pixels are classified as
    the in-memory path classifies them.
    """
    from .blocks import is_lazy

    if is_lazy(data):
        return classify_blocks(model, data, batch_size=batch_size, probabilities=probabilities, device=device)
    data = np.asarray(data, np.float32)
    _check_image(model, data)
    flat = data.reshape(data.shape[0], -1).T
    if not np.isfinite(flat).all(1).any():
        raise ValueError("no pixel has a complete series (every pixel has NaN years): fill gaps first")
    return _classify_array(model, data, batch_size=batch_size, probabilities=probabilities, progress=progress,
                           device=device)


def _check_image(model: TrainedModel, data) -> None:
    if data.ndim != 3:
        raise ValueError(f"image stack must be (years, rows, cols), got shape {data.shape}")
    if data.shape[0] != model.n_steps:
        raise ValueError(f"the stack has {data.shape[0]} years, the model {model.name} was trained on {model.n_steps}")


def _classify_array(model: TrainedModel, data, *, batch_size, probabilities, progress=False, device=None):
    """:func:`classify_image` of a numpy (T, h, w) stack (a block may have no complete pixel)."""
    T, H, W = data.shape
    flat = data.reshape(T, -1).T
    ok = np.isfinite(flat).all(1)
    if ok.any():
        proba = model.predict_proba(flat[ok], batch_size=batch_size, progress=progress, device=device)
    else:
        proba = np.empty((0, N_CLASSES), np.float32)
    ok = ok.reshape(H, W)
    cmap = io.series_to_image(proba.argmax(1).astype(np.uint8), ok, fill=np.uint8(NODATA))
    if not probabilities:
        return cmap
    return cmap, io.series_to_image(proba, ok, fill=np.float32(np.nan)).reshape(N_CLASSES, H, W)


def _classify_block(block, model, batch_size, probabilities, device):
    """One (T, h, w) block -> class map (h, w) uint8, or (1 + 6, h, w) float32 with the
    probabilities after the class (NODATA as 255.0)."""
    out = _classify_array(model, np.asarray(block, np.float32), batch_size=batch_size, probabilities=probabilities,
                          device=device)
    if not probabilities:
        return out
    cmap, proba = out
    return np.concatenate([cmap[None].astype(np.float32), proba])


def classify_blocks(model: TrainedModel, data, *, batch_size: int = 8192, probabilities: bool = False, device=None):
    """:func:`classify_image` of a dask (T, H, W) stack, block by block (``map_blocks``).

    Returns dask arrays: ``class_map`` (H, W) uint8 (:data:`NODATA` unclassified) and with
    ``probabilities`` also (6, H, W) float32; write them with
    :func:`ltlib.blocks.write_rasters` (one pass computes both).
    """
    _check_image(model, data)
    data = data.rechunk({0: -1})  # every year of a pixel in one block
    if not probabilities:
        return data.map_blocks(_classify_block, model, batch_size, False, device, drop_axis=0, dtype=np.uint8)
    chunks = ((1 + N_CLASSES),) + data.chunks[1:]
    both = data.map_blocks(_classify_block, model, batch_size, True, device, chunks=chunks, dtype=np.float32)
    return both[0].astype(np.uint8), both[1:]


def fill_stack(data, *, min_observations: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Gap-filled series of every pixel for classification.

    data: (T, H, W) physical units with NaN gaps. Pixels with at least ``min_observations``
    values are filled by linear interpolation in time (nearest value at the ends, as
    :func:`ltlib.trainingset.fill_series`); the others stay NaN and are left unclassified.
    Returns ``(filled (T, H, W) float32, classified_mask (H, W) bool)``.
    """
    from .blocks import is_lazy
    from .trainingset import fill_series

    if is_lazy(data):  # block by block: each pixel is filled from its own series
        if data.ndim != 3:
            raise ValueError(f"image stack must be (years, rows, cols), got shape {data.shape}")
        data = data.astype(np.float32).rechunk({0: -1})
        filled = data.map_blocks(lambda b: fill_stack(b, min_observations=min_observations)[0], dtype=np.float32)
        import dask.array as da

        return filled, da.isfinite(data).sum(axis=0) >= min_observations
    data = np.asarray(data, np.float32)
    if data.ndim != 3:
        raise ValueError(f"image stack must be (years, rows, cols), got shape {data.shape}")
    T, H, W = data.shape
    flat = data.reshape(T, -1).T
    ok = np.isfinite(flat).sum(1) >= min_observations
    filled = fill_series(flat[ok]) if ok.any() else flat[ok]  # fill_series keeps float32
    ok = ok.reshape(H, W)
    return io.series_to_image(filled, ok, fill=np.float32(np.nan)), ok
