"""Reference data that ships with the package (found with the package, never under ``data_dir``).

- ``reference/seed/``: the seed workflow's labelled training set (1,379 NDVI series of 51
  years, labels 0-5), MIT, Copyright (c) 2024 zplzmzmpl.
- ``reference/gee_landtrendr/``: real Earth Engine LandTrendr outputs on real Landsat NBR
  composites of an Oregon forest (from nthh/LT-rust), MIT, Copyright (c) 2026 J N Hearns.

Each folder carries its LICENSE; ``ltlib/data/reference/README.md`` describes the files.
"""
from __future__ import annotations

from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "data" / "reference"


def _existing(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"package reference file {path} is missing: reinstall ltlib "
                                "(pip install -e . from a full clone)")
    return path


def seed_training_csv() -> Path:
    """The seed's labelled training set ``dataset_update3_bkup.csv`` (columns dataset, label)."""
    return _existing(REFERENCE / "seed" / "dataset_update3_bkup.csv")


def gee_reference(name: str = "") -> Path:
    """A file of the Earth Engine LandTrendr reference (``gee_truth.json``,
    ``forest_or_source.tif``, ``forest_or_distyear.tif``), or its folder for ``name=""``."""
    return _existing(REFERENCE / "gee_landtrendr" / name) if name else _existing(REFERENCE / "gee_landtrendr")
