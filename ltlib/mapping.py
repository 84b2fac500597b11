"""Map the six trajectory classes over a scene: the seed's comparison, the mapping models, the map.

Step 4 of the seed, as notebook 04 runs it:

1. :func:`load_labelled` reads the labelled series (the seed's set by default) and
   :func:`compare_on_seed` trains every model on it with the seed's split: the seed's table
   (:class:`SeedComparison`). It does not depend on the scene.
2. :func:`scene_series` gives the series to classify: the scene's NDVI composites with gaps
   filled, or notebook 02's fitted NDVI (:class:`SceneSeries`).
3. :func:`map_scene` trains the mapping models and classifies every pixel
   (:class:`MappingRun`). A scene on the labelled set's years (the seed's 1972-2022) gets
   models trained on the labelled training split plus generated Landsat-like series
   (:func:`ltlib.trainingset.with_synthetic`); a scene of other years gets models trained on
   generated series of its own length, because the labelled series cannot be cut to other
   years without changing their labels (a loss in 1980 is outside a 1984-2020 record).
4. :func:`reference_sample` draws a stratified random sample of the map for the estimators of
   Olofsson et al. (2014), labelled from truth where the scene has truth
   (:class:`ReferenceSample`).

Series are in physical NDVI units (-1..1) throughout; class maps are uint8 (H, W) with
:data:`ltlib.classify.NODATA` (255) where a pixel was not classified.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import accuracy, blocks, classify, config, io, resources, trainingset
from .classify import NODATA

#: Classes 0..5 (``config.CLASS_NAMES``).
CLASSES = tuple(range(len(config.CLASS_NAMES)))


def _span(years) -> str:
    return f"{int(years[0])}-{int(years[-1])} ({len(years)} years)"


# --------------------------------------------------------------------------- the labelled set
@dataclass
class LabelledSet:
    """Labelled series and the seed's split of them.

    Attributes
    ----------
    X : float32 (n, T)
        Series in physical NDVI units.
    y : int64 (n,)
        Classes 0..5.
    path : Path
        The CSV they were read from.
    first_year : int
        The year of each series' first value (the seed's: 1972).
    train, valid : int arrays
        The seed's split (``train_test_split(test_size=0.2, random_state=42)``).
    """

    X: np.ndarray
    y: np.ndarray
    path: Path
    first_year: int
    train: np.ndarray
    valid: np.ndarray

    @property
    def years(self) -> np.ndarray:
        return np.arange(self.first_year, self.first_year + self.X.shape[1])

    def covers(self, years) -> bool:
        """True when ``years`` are exactly the labelled series' years."""
        years = np.asarray(years)
        return len(years) == len(self.years) and bool(np.all(years == self.years))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(CLASSES))
        return {config.CLASS_NAMES[c]: int(counts[c]) for c in CLASSES}

    def __str__(self) -> str:
        return (f"{len(self.X)} labelled series of {self.X.shape[1]} years ({_span(self.years)}) from "
                f"{self.path.name}; per class: {self.class_counts()}")


def load_labelled(csv=None, *, first_year: int = config.START_YEAR) -> LabelledSet:
    """Read labelled series (columns ``dataset``, ``label``) and make the seed's split.

    Parameters
    ----------
    csv : path or None
        None: the seed's set shipped with ltlib (``resources.seed_training_csv()``, 1,379
        series of 51 years).
    first_year : int
        The year of each series' first value (the seed's series start in 1972).
    """
    path = resources.seed_training_csv() if csv is None else Path(csv)
    X, y = trainingset.load_seed_csv(path)
    tr, va = trainingset.seed_split(y)
    return LabelledSet(X, y, path, int(first_year), tr, va)


def missing_input(scene, labelled: LabelledSet, *, n_synthetic_per_class: int) -> str | None:
    """Why the classes cannot be mapped on ``scene`` (one sentence), or None when they can.

    The classes are defined on NDVI; a scene on other years than the labelled set needs
    generated series (``n_synthetic_per_class > 0``) of at least
    :data:`ltlib.trainingset.MIN_YEARS` years.
    """
    landsat = Path(scene.folder) / "landsat"
    if not scene.has("NDVI"):
        return (f"the six trajectory classes are defined on NDVI: {landsat} has only {', '.join(scene.indices)} "
                "(add ndvi.tif, or run notebook 01 with NDVI)")
    if labelled.covers(scene.years):
        return None
    if n_synthetic_per_class <= 0:
        return (f"n_synthetic_per_class=0 trains on the labelled series only, which cover {_span(labelled.years)}; "
                f"this scene has {_span(scene.years)}: give n_synthetic_per_class > 0 to train on generated "
                "series of the scene's years")
    if len(scene.years) < trainingset.MIN_YEARS:
        return (f"the generated training series need at least {trainingset.MIN_YEARS} years (two losses, each "
                f"with a recovery); this scene has {_span(scene.years)} and the labelled series cover "
                f"{_span(labelled.years)}")
    return None


def seed_set_assessable(scene, labelled: LabelledSet) -> tuple[bool, str]:
    """(ok, reason): can models trained on the labelled set alone be scored on ``scene``?

    That needs truth and the labelled set's years.
    """
    if not scene.has_truth:
        return False, f"no truth in {Path(scene.folder) / 'truth'} (the sample has it)"
    if not labelled.covers(scene.years):
        return False, (f"the labelled series cover {_span(labelled.years)}, this scene "
                       f"{_span(scene.years)}")
    return True, ""


# --------------------------------------------------------------------------- the seed's comparison
@dataclass
class SeedComparison:
    """Models trained on the labelled set's training split, scored on its validation split.

    Attributes
    ----------
    labelled : LabelledSet
    models : {name: TrainedModel}
    epochs : int
    """

    labelled: LabelledSet
    models: dict
    epochs: int

    @property
    def table(self):
        """The seed's table: train/valid accuracy and loss and fit seconds per model (DataFrame)."""
        return classify.compare(self.models.values())

    @property
    def best(self) -> str:
        """The model with the best validation accuracy (the first of equals)."""
        return max(self.models, key=lambda n: self.models[n].scores["valid_accuracy"])

    def valid_predictions(self, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities float32 (n_valid, 6), true classes (n_valid,)) of model ``name``
        (default: :attr:`best`) on the validation split."""
        lab = self.labelled
        model = self.models[name or self.best]
        return model.predict_proba(lab.X[lab.valid]), lab.y[lab.valid]

    def map_accuracy(self, series: "SceneSeries", truth, *, batch_size: int = 8192) -> dict[str, float]:
        """Overall accuracy against ``truth`` (H, W) of each model's map of ``series``."""
        out = {}
        for name, model in self.models.items():
            cmap = classify.classify_image(model, series.data, batch_size=batch_size, progress=False)
            out[name] = _census(cmap, truth)["overall"]
        return out

    def summary(self) -> dict:
        lab = self.labelled
        return {
            "training_csv": lab.path.name,
            "n_training_series": int(len(lab.X)),
            "training_years": [int(lab.years[0]), int(lab.years[-1])],
            "seed_split": {"train": int(len(lab.train)), "valid": int(len(lab.valid))},
            "epochs": int(self.epochs),
            "best_valid_model": self.best,
        }

    def write(self, output_dir) -> dict[str, Path]:
        """``models/<name>_seed.pt`` for every model (atomic). Returns {key: path}."""
        out = Path(output_dir) / "models"
        return {f"model_{n}_seed": m.save(out / f"{n}_seed.pt") for n, m in self.models.items()}


def model_names(models, *, use_gadf: bool = False) -> list[str]:
    """The models to train: ``models`` (checked against :data:`ltlib.classify.MODELS`), plus
    ``GADF`` with ``use_gadf``."""
    names = list(models) + (["GADF"] if use_gadf and "GADF" not in models else [])
    unknown = [m for m in names if m not in classify.MODELS]
    if unknown:
        raise ValueError(f"unknown models {unknown} in the parameter models: choose from {list(classify.MODELS)}")
    if not names:
        raise ValueError("the parameter models is empty: give at least one of " + ", ".join(classify.MODELS))
    return names


#: Models notebook 04 uses by default for a scene opened in chunks (too large for memory):
#: TimeSeriesForest with 100 trees, within 0.005 of InceptionTime's map accuracy on the sample
#: (0.947 vs 0.951) at about 10x its per-pixel rate on CPU (docs/scale.md).
LARGE_SCENE_MODELS = ("TSF100",)


def models_for_scene(scene, models, models_large=LARGE_SCENE_MODELS) -> tuple[list[str], str]:
    """The models to train and map with, and one sentence saying which and why.

    ``models`` for a scene held in memory; ``models_large`` (when not None or empty) for a
    scene opened in chunks (``scene.is_lazy``), where every model classifies every pixel: at
    InceptionTime's CPU rate a 7,000 x 7,000 px scene takes 3.5 h on 2 cores, TSF100 about 30-40 min.
    """
    h, w = scene.grid.shape
    if scene.is_lazy and models_large:
        return list(models_large), (
            f"The scene ({h:,} x {w:,} px) is opened in chunks: its pixels are classified by "
            f"{', '.join(models_large)} (parameter models_large) rather than {', '.join(models)} (models), "
            "which can be many times slower per pixel on CPU (InceptionTime about 10x: hours for a whole "
            "Landsat scene)")
    return list(models), f"The scene ({h:,} x {w:,} px) is held in memory: models {', '.join(models)}"


def compare_on_seed(labelled: LabelledSet, models, *, use_gadf: bool = False, epochs: int = 10, seed: int = 0,
                    progress: bool = True) -> SeedComparison:
    """Train each of ``models`` on the labelled training split, scored on the validation split.

    Parameters
    ----------
    labelled : LabelledSet
    models : list of str
        Names from :data:`ltlib.classify.MODELS`; ``use_gadf`` adds ``GADF``.
    epochs : int
        Epochs of the deep and image models.
    seed : int
        Fixes weights, shuffling, random kernels and forests.
    """
    lab = labelled
    trained = {}
    for name in model_names(models, use_gadf=use_gadf):
        print(f"== {name}")
        trained[name] = classify.fit(name, lab.X[lab.train], lab.y[lab.train], lab.X[lab.valid], lab.y[lab.valid],
                                     epochs=epochs, seed=seed, progress=progress)
    return SeedComparison(lab, trained, int(epochs))


# --------------------------------------------------------------------------- the scene's series
@dataclass
class SceneSeries:
    """The series of every pixel to classify.

    Attributes
    ----------
    data : float32 (T, H, W)
        Physical NDVI, gaps filled by linear interpolation in time; NaN where not classified.
        A dask array (filled block by block) when the scene is lazy.
    valid : bool (H, W)
        Pixels with at least ``min_observations`` values (the others stay unclassified);
        dask when the scene is lazy.
    years : int (T,)
    grid : ltlib.io.Grid
    source : str
        What the series are and which file they come from.
    min_observations : int
    """

    data: np.ndarray
    valid: np.ndarray
    years: np.ndarray
    grid: io.Grid
    source: str
    min_observations: int

    @property
    def is_lazy(self) -> bool:
        """True when the series are a dask array (a scene opened in chunks: classified block by block)."""
        return blocks.is_lazy(self.data)

    def classifiable_fraction(self) -> float:
        """Share of the pixels that are classified (one streamed pass when lazy)."""
        if self.is_lazy:
            return float(blocks.compute(self.valid.mean(), progress=False)[0])
        return float(self.valid.mean())

    def summary(self) -> dict:
        return {"source": self.source, "years": [int(self.years[0]), int(self.years[-1])],
                "n_years": int(len(self.years)), "min_observations": int(self.min_observations),
                "classifiable_fraction": round(self.classifiable_fraction(), 4)}

    def __str__(self) -> str:
        return (f"source: {self.source}\n{self.grid.height} x {self.grid.width} px, {_span(self.years)}, "
                f"{self.classifiable_fraction():.1%} classifiable (>= {self.min_observations} valid years)")


def scene_series(scene, *, fitted=None, min_observations: int = 6) -> SceneSeries:
    """The NDVI series of every pixel of ``scene``, ready for the classifiers.

    Parameters
    ----------
    scene : ltlib.scene.Scene
        Must have NDVI (a clear error otherwise).
    fitted : ltlib.io.Stack or None
        Notebook 02's fitted NDVI (``scene.read_output(folder, "ndvi_fit", stack=True)``, which
        checks grid and years) to classify instead of the composites.
    min_observations : int
        Pixels with fewer valid years are left unclassified.
    """
    if fitted is None:
        stack = scene.stack("NDVI")
        what = "NDVI composites, gaps filled by linear interpolation in time"
    else:
        stack = fitted
        scene.check_grid(stack.grid, stack.path, "fitted NDVI")
        if len(stack.years) != len(scene.years) or np.any(stack.years != scene.years):
            raise ValueError(f"{stack.path} (fitted NDVI) has years {_span(stack.years)}, the scene in "
                             f"{scene.folder} {_span(scene.years)}")
        what = "notebook 02's LandTrendr-fitted NDVI"
    if not 1 <= int(min_observations) <= len(stack.years):
        raise ValueError(f"min_observations must be in 1..{len(stack.years)} (the years of {stack.path}), "
                         f"got {min_observations}")
    data, ok = classify.fill_stack(stack.physical(), min_observations=int(min_observations))
    if not (blocks.compute(ok.any(), progress=False)[0] if blocks.is_lazy(ok) else ok.any()):
        raise ValueError(f"{stack.path}: no pixel has {min_observations} or more valid years; lower "
                         "min_observations or check the stack")
    return SceneSeries(data, ok, np.asarray(stack.years), stack.grid, f"{what} ({stack.path})", int(min_observations))


# --------------------------------------------------------------------------- mapping
def _census(class_map, truth) -> dict:
    return accuracy.census_accuracy(class_map, truth, CLASSES, valid=class_map != NODATA)


def training_set(labelled: LabelledSet, years, n_synthetic_per_class: int, *, seed: int = 0) -> dict:
    """The mapping models' training and validation series for a scene of ``years``.

    On the labelled set's years: its training split plus ``n_synthetic_per_class`` generated
    series per class, validated on its validation split plus a fifth as many generated series
    (another seed). On other years: generated series of ``len(years)`` years only (the
    labelled series cannot be cut to other years without changing their labels).

    Returns a dict with ``X``, ``y``, ``X_valid``, ``y_valid`` (physical NDVI, gaps filled),
    ``uses_labelled_set`` (bool) and ``note`` (one line saying what was used).
    """
    n = int(n_synthetic_per_class)
    years = np.asarray(years)
    if labelled.covers(years):
        lab = labelled
        X, y = trainingset.with_synthetic(lab.X[lab.train], lab.y[lab.train], n, seed=seed)
        Xv, yv = trainingset.with_synthetic(lab.X[lab.valid], lab.y[lab.valid], max(n // 5, 0), seed=seed + 1000)
        note = (f"mapping training set: {len(X)} series ({len(X) - len(lab.train)} generated); "
                f"validation {len(Xv)}")
        return dict(X=X, y=y, X_valid=Xv, y_valid=yv, uses_labelled_set=True, note=note)
    if n <= 0:
        raise ValueError(f"n_synthetic_per_class={n_synthetic_per_class}: a scene of {_span(years)} needs generated "
                         f"series (the labelled series cover {_span(labelled.years)}); give n_synthetic_per_class > 0")
    T = len(years)
    if T < trainingset.MIN_YEARS:
        raise ValueError(f"a scene of {_span(years)} is too short for the generated training series "
                         f"(trainingset.generate needs at least {trainingset.MIN_YEARS} years)")
    X, y = trainingset.generate(n, n_years=T, seed=seed, gap_fraction=0.05)
    Xv, yv = trainingset.generate(max(n // 5, 2), n_years=T, seed=seed + 1000, gap_fraction=0.05)
    X, Xv = trainingset.fill_series(X), trainingset.fill_series(Xv)
    note = (f"mapping models train on {len(X)} generated series of {_span(years)}, validated on {len(Xv)} more, "
            f"not on {labelled.path.name}: its series cover {_span(labelled.years)} and cannot be cut to other "
            "years without changing their labels")
    return dict(X=X, y=y, X_valid=Xv, y_valid=yv, uses_labelled_set=False, note=note)


@dataclass
class MappingRun:
    """The mapping models and their class maps of one scene.

    Attributes
    ----------
    series : SceneSeries
    comparison : SeedComparison
        The seed's comparison (its scores go into the models table).
    models : {name: TrainedModel}
        The mapping models (the seed's models when no generated series were asked for).
    class_maps : {name: uint8 (H, W)}
        Classes 0..5, :data:`~ltlib.classify.NODATA` where not classified.
    probabilities : {name: float32 (6, H, W)} or None
        Class probabilities (NaN where not classified), when asked for.
    map_seconds : {name: float}
        Seconds to classify the scene.
    map_accuracy : {name: float or None}
        Overall accuracy against truth (None without truth).
    seed_set_only : {name: float} or None
        Map accuracy of the models trained on the labelled set alone (None: not computed).
    training : dict
        ``n_series``, ``n_generated``, ``n_valid``, ``uses_labelled_set``, ``note``.
    n_synthetic_per_class : int
    census : dict or None
        :func:`ltlib.accuracy.census_accuracy` of the chosen map against truth.
    files : {key: Path}
        What a block-by-block run (lazy series) wrote while it ran: ``class_map`` (the chosen
        model's), ``class_map_<name>`` (the others'), ``class_probabilities``; its class maps
        are then read back lazily from them.
    counts : {name: (256,) int} or None
        Pixels per value of each class map, counted while it was written (lazy runs).
    """

    series: SceneSeries
    comparison: SeedComparison
    models: dict
    class_maps: dict
    probabilities: dict | None
    map_seconds: dict
    map_accuracy: dict
    seed_set_only: dict | None
    training: dict
    n_synthetic_per_class: int
    census: dict | None = None
    files: dict = field(default_factory=dict)
    counts: dict | None = None

    @property
    def chosen(self) -> str:
        """The map model: the best validation accuracy of the mapping models, chosen without truth."""
        return max(self.models, key=lambda n: self.models[n].scores["valid_accuracy"])

    @property
    def class_map(self) -> np.ndarray:
        """The chosen model's class map, uint8 (H, W)."""
        return self.class_maps[self.chosen]

    @property
    def grid(self) -> io.Grid:
        return self.series.grid

    def class_pixels(self) -> dict[str, int]:
        """Pixels mapped in each class: {class name: count}."""
        if self.counts is not None:
            counts = self.counts[self.chosen]
            bad = np.flatnonzero(counts[len(CLASSES):NODATA])
            if bad.size:  # as class_pixel_counts: nothing dropped silently
                raise ValueError(f"class map of {self.chosen} holds values {bad + len(CLASSES)} that are no class")
        else:
            counts = accuracy.class_pixel_counts(self.class_map, CLASSES, nodata=NODATA)
        return {config.CLASS_NAMES[c]: int(counts[c]) for c in CLASSES}

    def unclassified_pixels(self) -> int:
        if self.counts is not None:
            return int(self.counts[self.chosen][NODATA])
        return int((self.class_map == NODATA).sum())

    def model_rows(self) -> dict[str, dict]:
        """Per model: the seed comparison's scores, the mapping model's, map accuracy and time."""
        rows = {}
        for name, mdl in self.models.items():
            seed_m = self.comparison.models[name]
            seed_only = None if not self.seed_set_only else self.seed_set_only.get(name)
            acc = self.map_accuracy.get(name)
            rows[name] = {
                "valid_accuracy": round(seed_m.scores["valid_accuracy"], 4),
                "train_accuracy": round(seed_m.scores["train_accuracy"], 4),
                "valid_loss": round(seed_m.scores["valid_loss"], 4),
                "fit_seconds": round(seed_m.fit_seconds, 2),
                "map_model_valid_accuracy": round(mdl.scores["valid_accuracy"], 4),
                "map_model_fit_seconds": round(mdl.fit_seconds, 2),
                "map_accuracy": None if acc is None else round(acc, 4),
                "map_accuracy_seed_set_only": None if seed_only is None else round(seed_only, 4),
                "map_seconds": round(self.map_seconds[name], 2),
            }
        return rows

    def table(self):
        """:meth:`model_rows` as a DataFrame, one row per model."""
        import pandas as pd

        return pd.DataFrame(self.model_rows()).T

    def summary(self) -> dict:
        c = self.census
        return {
            "n_years": int(len(self.series.years)),
            "input": self.series.summary(),
            "n_synthetic_per_class": int(self.n_synthetic_per_class),
            "mapping_training": dict(self.training),
            "models": self.model_rows(),
            "map_model": self.chosen,
            "map_accuracy": None if c is None else round(c["overall"], 4),
            "map_producers": None if c is None else [round(float(v), 4) for v in c["producers"]],
            "map_users": None if c is None else [round(float(v), 4) for v in c["users"]],
            "class_pixels": self.class_pixels(),
            "unclassified_pixels": self.unclassified_pixels(),
        }

    def write(self, output_dir) -> dict[str, Path]:
        """``class_map.tif`` (uint8 with the classes' colour table, nodata 255, tag ``model``),
        ``class_probabilities.tif`` (float32, six bands, when computed) and
        ``models/<name>_map.pt`` for every mapping model trained here. Returns {key: path}."""
        out = Path(output_dir)
        written = {}
        for key, spec in self._map_specs(out, self.chosen, self.class_map,
                                         None if self.probabilities is None else self.probabilities[self.chosen]):
            done = self.files.get(key)
            if done is not None and Path(done).resolve() == Path(spec["path"]).resolve():
                written[key] = Path(done)  # written block by block while the run ran
            elif blocks.is_lazy(spec["data"]):
                written[key] = blocks.write_rasters([spec])[0]
            else:
                written[key] = io.write_raster(**spec)
        for name, mdl in self.models.items():
            if mdl is not self.comparison.models[name]:
                written[f"model_{name}_map"] = mdl.save(out / "models" / f"{name}_map.pt")
        return written

    def _map_specs(self, out: Path, name: str, class_map, proba, key: str = "class_map"):
        """[(key, write_raster keywords)] of a class map (and its probabilities)."""
        names = config.CLASS_NAMES
        # unclassified pixels go in as NaN: the writers store NaN as the nodata value (a 255 given
        # as a value would be refused as colliding with nodata)
        if blocks.is_lazy(class_map):
            import dask.array as da

            class_map = da.where(class_map == NODATA, np.float32(np.nan), class_map.astype(np.float32))
        else:
            class_map = np.where(class_map == NODATA, np.float32(np.nan), class_map.astype(np.float32))
        specs = [(key, dict(path=out / f"{key}.tif", data=class_map, grid=self.grid, dtype="uint8", nodata=NODATA,
                            colormap=config.CLASS_COLORS, tags={"model": name, "classes": json.dumps(names)}))]
        if proba is not None:
            specs.append(("class_probabilities", dict(path=out / "class_probabilities.tif", data=proba,
                                                      grid=self.grid, dtype="float32", nodata=np.nan,
                                                      band_names=[names[c] for c in CLASSES])))
        return specs


def _map_blocks(run: MappingRun, output_dir, batch_size: int) -> None:
    """Classify a lazy scene with every mapping model, block by block: the chosen model's map
    into ``class_map.tif`` (and ``class_probabilities.tif``), the others' into
    ``class_map_<name>.tif``, each with its value counts in the same pass; the maps are then
    read back lazily."""
    import dask.array as da

    out = Path(output_dir)
    chunks = int(run.series.data.chunksize[-1])
    run.counts = {}
    for name, mdl in run.models.items():
        t = time.perf_counter()
        chosen = name == run.chosen
        res = classify.classify_image(mdl, run.series.data, batch_size=batch_size,
                                      probabilities=chosen and run.probabilities is not None)
        cmap, proba = res if isinstance(res, tuple) else (res, None)
        key = "class_map" if chosen else f"class_map_{name}"
        specs = run._map_specs(out, name, cmap, proba, key)
        paths, (counts,) = blocks.write_rasters([s for _, s in specs],
                                                also=[da.bincount(cmap.ravel(), minlength=256)])
        run.map_seconds[name] = time.perf_counter() - t
        run.counts[name] = np.asarray(counts, dtype=np.int64)
        run.files.update({k: p for (k, _), p in zip(specs, paths)})
        data = blocks.open_raster(paths[0], chunks=chunks)[0][0]
        run.class_maps[name] = da.where(da.isnan(data), NODATA, data).astype(np.uint8)
        if proba is not None:
            run.probabilities[name] = blocks.open_raster(paths[1], chunks=chunks)[0]


def map_scene(series: SceneSeries, comparison: SeedComparison, *, n_synthetic_per_class: int = 300,
              epochs: int = 10, seed: int = 0, truth=None, seed_set_only: dict | None = None,
              probabilities: bool = False, batch_size: int = 8192, progress: bool = True,
              output_dir=None) -> MappingRun:
    """Train the mapping models (see :func:`training_set`) and classify every pixel of ``series``.

    Parameters
    ----------
    series : SceneSeries
    comparison : SeedComparison
        Its labelled set and model names; its models are reused as the mapping models when
        ``n_synthetic_per_class`` is 0 on the labelled set's years.
    n_synthetic_per_class : int
        Generated series per class added to (or, on other years, making) the training set.
    epochs, seed : int
        As in :func:`compare_on_seed`.
    truth : (H, W) int or None
        Truth classes: each map's overall accuracy and the chosen map's census.
    seed_set_only : {name: accuracy} or None
        From :meth:`SeedComparison.map_accuracy`, reported beside each model.
    probabilities : bool
        Keep the six class probabilities of every map.
    batch_size : int
        Series per prediction batch.
    output_dir : path or None
        Needed when ``series`` is lazy (a scene opened in chunks): every model's class map is
        written there block by block as it is computed (``class_map.tif`` the chosen model's,
        ``class_map_<name>.tif`` the others'), then read back lazily; ``MappingRun.write`` into
        the same folder keeps those files.
    """
    if series.is_lazy and output_dir is None:
        raise ValueError(f"the series ({series.source}) are opened in chunks (too large for memory): map_scene "
                         "needs output_dir, where the class maps are written block by block")
    ts = training_set(comparison.labelled, series.years, n_synthetic_per_class, seed=seed)
    print(ts["note"])
    reuse = ts["uses_labelled_set"] and int(n_synthetic_per_class) <= 0
    models, maps_, probas, seconds, accs = {}, {}, {} if probabilities else None, {}, {}
    for name in comparison.models:
        if reuse:
            mdl = comparison.models[name]
        else:
            print(f"== {name}")
            mdl = classify.fit(name, ts["X"], ts["y"], ts["X_valid"], ts["y_valid"], epochs=epochs, seed=seed,
                               progress=progress)
        models[name] = mdl
        if series.is_lazy:
            continue  # classified block by block below, once the map model is known
        t = time.perf_counter()
        out = classify.classify_image(mdl, series.data, batch_size=batch_size, progress=progress,
                                      probabilities=probabilities)
        seconds[name] = time.perf_counter() - t
        cmap = out[0] if probabilities else out
        if probabilities:
            probas[name] = out[1]
        maps_[name] = cmap
    n_lab = len(comparison.labelled.train) if ts["uses_labelled_set"] else 0
    training = {"n_series": int(len(ts["X"])), "n_generated": int(len(ts["X"]) - n_lab),
                "n_valid": int(len(ts["X_valid"])), "uses_labelled_set": ts["uses_labelled_set"],
                "note": ts["note"]}
    run = MappingRun(series, comparison, models, maps_, probas, seconds, accs, seed_set_only, training,
                     int(n_synthetic_per_class))
    if series.is_lazy:
        _map_blocks(run, output_dir, batch_size)
    if truth is not None:  # counted block by block for lazy maps
        censuses = {name: _census(run.class_maps[name], truth) for name in models}
        accs.update({name: c["overall"] for name, c in censuses.items()})
        run.census = censuses[run.chosen]
    else:
        accs.update({name: None for name in models})
    return run


# --------------------------------------------------------------------------- the reference sample
@dataclass
class ReferenceSample:
    """A stratified random sample of a class map for accuracy and area estimates.

    Attributes
    ----------
    points : pandas.DataFrame
        One row per point (:func:`ltlib.accuracy.reference_points`): pixel, centre in the map
        CRS and lon/lat, map class, reference class (empty without truth).
    report : ltlib.accuracy.AccuracyReport or None
        Olofsson et al. (2014) estimates, when the reference classes are known.
    mapped : bool (H, W)
        The map's classified pixels (the population sampled).
    n_per_class : int
    notes : list of str
        Strata smaller than ``n_per_class`` (taken whole).
    """

    points: object
    report: accuracy.AccuracyReport | None
    mapped: np.ndarray
    n_per_class: int
    notes: list = field(default_factory=list)

    @property
    def olofsson(self) -> dict | None:
        return None if self.report is None else self.report.as_dict()

    def table(self, census: dict | None = None, truth=None):
        """Per class: the sample's estimates, and with ``census`` / ``truth`` the census user's
        and producer's accuracy and the true area beside them (DataFrame)."""
        frame = self.report.to_frame(names=config.CLASS_NAMES)
        if census is not None:
            frame["census_users"] = census["users"]
            frame["census_producers"] = census["producers"]
        if truth is not None:
            mapped = blocks.compute(self.mapped, progress=False)[0] if blocks.is_lazy(self.mapped) else self.mapped
            counts = np.bincount(np.asarray(truth)[mapped], minlength=len(CLASSES))
            frame["true_area_ha"] = counts * self.report.pixel_area / 1e4
        return frame

    def summary(self) -> dict:
        return {"n_points": int(len(self.points)), "n_per_class": int(self.n_per_class),
                "labelled": self.report is not None, "notes": list(self.notes)}

    def __str__(self) -> str:
        notes = "".join(f"\n{n}" for n in self.notes)
        if self.report is None:
            return (f"No truth for this scene: label the 'reference' column of reference_points.csv "
                    f"({len(self.points)} points, lon/lat given) on imagery, then call accuracy.area_adjusted."
                    + notes)
        return (f"overall accuracy from {len(self.points)} reference points: {self.report.overall:.3f} "
                f"± {self.report.overall_ci:.3f} (95 % confidence interval)" + notes)


def reference_sample(class_map, grid: io.Grid, n_per_class: int, *, seed: int = 0, truth=None) -> ReferenceSample:
    """Stratified random reference points of ``class_map`` (strata = mapped classes).

    With ``truth`` (H, W) the points' reference classes come from it and the Olofsson et al.
    (2014) estimators give accuracy and areas with 95 % confidence intervals; without, the
    reference column is left for an interpreter. A class with fewer pixels than
    ``n_per_class`` is taken whole (a note says so).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", accuracy.AccuracyWarning)
        rows, cols = accuracy.stratified_sample(class_map, n_per_class, seed=seed, nodata=NODATA)
    notes = [str(w.message) for w in caught if issubclass(w.category, accuracy.AccuracyWarning)]
    points = accuracy.reference_points(class_map, rows, cols, grid, reference=truth, names=config.CLASS_NAMES)
    report = None
    if truth is not None:
        counts = accuracy.class_pixel_counts(class_map, CLASSES, nodata=NODATA)
        report = accuracy.area_adjusted(points["map_class"].to_numpy(), points["reference"].to_numpy(int), counts,
                                        CLASSES, pixel_area=float(grid.pixel_areas_m2().mean()))
    mapped = class_map != NODATA if blocks.is_lazy(class_map) else np.asarray(class_map) != NODATA
    return ReferenceSample(points, report, mapped, int(n_per_class), notes)
