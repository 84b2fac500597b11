"""What a notebook ran, skipped and wrote, ending as ``<output_dir>/summary.json``.

Every notebook makes one :class:`Report` right after its parameters. Steps add their result
objects (anything with a ``summary()`` method, or plain values); sections that need data the
scene does not have are skipped with one printed line; every written file is registered, so
``summary.json`` lists exactly this run's outputs under ``files`` (later notebooks find them
there, see :meth:`ltlib.scene.Scene.read_output`).

Examples
--------
>>> rep = Report("02_fit_landtrendr", tmp_dir, scene=scene)          # doctest: +SKIP
>>> if rep.needs("accuracy", scene.has_truth, "no truth in this scene"):  # doctest: +SKIP
...     rep.add("accuracy", {...})
>>> rep.write()                                                       # doctest: +SKIP
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import io
from .scene import LANDSAT_DIR, MANIFEST, S1_DIR, TRUTH_FILE, MissingInputError

SUMMARY = "summary.json"
#: Parts of a scene folder (see :mod:`ltlib.scene`) that a re-run never removes.
SCENE_DATA = (LANDSAT_DIR, str(TRUTH_FILE.parent), S1_DIR, MANIFEST)


def earlier_output(output_dir, notebook: str, given=None) -> Path | None:
    """The output folder of an earlier notebook, or None when there is none to use.

    ``given`` (a notebook parameter such as ``landtrendr_dir``): a folder to use, or ``""`` for
    none; None: ``<output_dir>/../<notebook>`` when it holds a ``summary.json`` (the layout of
    ``make demo`` and of chained papermill runs). A given folder without ``summary.json`` is an
    error naming it.
    """
    if given == "":
        return None
    if given is not None:
        folder = Path(given)
        if not (folder / SUMMARY).exists():
            raise FileNotFoundError(f"{folder} has no {SUMMARY}: give the output_dir of a finished {notebook} run")
        if io.read_json(folder / SUMMARY, f"the summary of a {notebook} run").get("status") != "complete":
            raise ValueError(f"{folder}: the {notebook} run there did not finish (status in {SUMMARY})")
        return folder
    folder = Path(output_dir).resolve().parent / notebook
    if not (folder / SUMMARY).exists():
        return None
    if io.read_json(folder / SUMMARY, f"the summary of a {notebook} run").get("status") != "complete":
        print(f"not using {folder}: its {notebook} run did not finish")
        return None
    return folder


def _jsonable(value):
    if hasattr(value, "summary") and callable(value.summary):
        return value.summary()
    return value


class Report:
    """The record of one notebook run.

    Parameters
    ----------
    notebook : str
        The notebook's name, e.g. ``"02_fit_landtrendr"``.
    output_dir : path
        Created if missing; a file there is an error.
    scene : ltlib.scene.Scene, optional
        Its ``summary()`` goes under ``scene``.

    Re-running into the same ``output_dir``: the files the previous run listed in its
    ``summary.json`` are removed first (one printed line says how many), except those inside
    the scene's own folder (a scene may live in an earlier run's output); other files are
    never touched. Until this run writes its summary, ``summary.json`` says
    ``"status": "running"``, so a run that fails half-way leaves no "complete" folder of
    mixed old and new files for the next notebook or batch to trust.
    """

    def __init__(self, notebook: str, output_dir, *, scene=None):
        self.output_dir = Path(output_dir)
        if self.output_dir.exists() and not self.output_dir.is_dir():
            raise NotADirectoryError(f"output_dir {self.output_dir} is a file, not a folder")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.notebook = notebook
        self.scene = scene
        self.sections: dict[str, str] = {}
        self.values: dict = {}
        self.files: dict[str, str] = {}
        self._t0 = time.perf_counter()
        self._supersede_previous_run()

    def _supersede_previous_run(self) -> None:
        path = self.output_dir / SUMMARY
        if not path.exists():
            return
        try:
            listed = json.loads(path.read_text()).get("files", {}) or {}
        except (ValueError, AttributeError):
            listed = {}
        root = self.output_dir.resolve()
        # the scene's data (stacks, truth, Sentinel-1, manifest), which a run may be reading
        base = Path(self.scene.folder).resolve() if getattr(self.scene, "folder", None) else None
        keep = [] if base is None else [base / d for d in SCENE_DATA]
        removed, kept = 0, 0
        for rel in listed.values():
            f = (self.output_dir / str(rel)).resolve()
            if not f.is_relative_to(root) or not f.is_file():
                continue
            if any(f == k or f.is_relative_to(k) for k in keep):
                kept += 1
                continue
            f.unlink()
            removed += 1
        io.write_json(path, {"notebook": self.notebook, "status": "running"})
        if removed or kept:
            print(f"{self.output_dir}: removed {removed} file(s) of the previous run"
                  + (f"; kept {kept} of the scene it reads" if kept else ""))

    # -- sections
    def needs(self, section: str, ok: bool, reason: str) -> bool:
        """True (section marked as run) when ``ok``; else print ``reason`` in one line and skip."""
        if ok:
            self.sections.setdefault(section, "ran")
            return True
        self.skip(section, reason)
        return False

    def skip(self, section: str, reason: str) -> None:
        print(f"Skipped {section}: {reason}")
        self.sections[section] = f"skipped: {reason}"

    def stop(self, reason: str):
        """Write summary.json with status "stopped" and raise :class:`MissingInputError`."""
        self.sections["stopped"] = reason
        self.write(status="stopped")
        raise MissingInputError(reason)

    # -- values and files
    def add(self, key: str, value):
        """Record ``value`` (or its ``summary()``) under ``key``; returns ``value``."""
        self.values[key] = _jsonable(value)
        return value

    def update(self, result) -> None:
        """Record every key of ``result.summary()`` (or of a dict) at the top level."""
        for key, value in _jsonable(result).items():
            self.values[key] = value

    def file(self, key: str, path) -> Path:
        """Register a file this run wrote (under ``output_dir``)."""
        path = Path(path)
        try:
            rel = path.resolve().relative_to(self.output_dir.resolve())
        except ValueError:
            raise ValueError(f"{path} is not inside output_dir {self.output_dir}") from None
        self.files[key] = str(rel)
        return path

    def files_from(self, written: dict) -> dict:
        """Register several files ({key: path}); returns them."""
        for k, p in written.items():
            self.file(k, p)
        return written

    def savefig(self, fig, name: str, *, key: str | None = None, dpi: int = 90, **kw) -> Path:
        """Save a matplotlib figure atomically in ``output_dir`` and register it."""
        path = self.output_dir / name
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png", bbox_inches="tight", **kw)
        return self.file(key or Path(name).stem, path)

    def write_csv(self, frame, name: str, *, key: str | None = None, **kw) -> Path:
        """Write a pandas DataFrame as CSV atomically and register it."""
        path = self.output_dir / name
        with io.atomic_path(path) as tmp:
            frame.to_csv(tmp, **kw)
        return self.file(key or Path(name).stem, path)

    # -- the end
    def summary(self, status: str = "complete") -> dict:
        return {
            "notebook": self.notebook,
            "status": status,
            "scene": None if self.scene is None else self.scene.summary(),
            "sections": dict(self.sections),
            **self.values,
            "files": dict(self.files),
            "seconds": round(time.perf_counter() - self._t0, 2),
        }

    def write(self, status: str = "complete") -> dict:
        """Write ``summary.json`` (atomically) and return its content."""
        out = self.summary(status)
        io.write_json(self.output_dir / SUMMARY, out)
        return out
