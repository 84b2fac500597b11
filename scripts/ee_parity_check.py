"""Live parity check of ltlib's Earth Engine LandTrendr against the local port and the shipped
reference (five Oregon pixels of gee_truth.json). Needs Earth Engine credentials:

    python scripts/ee_parity_check.py [--project MY_CLOUD_PROJECT]

Prints one line per pixel and exits 1 when Earth Engine's LandTrendr and the local port,
run on the same composites, disagree on the vertices of any pixel. What it does:
:mod:`ltlib.gee.parity`.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from ltlib.gee import parity

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", default=None, help="Cloud project for Earth Engine (default: EE_PROJECT)")
    args = ap.parse_args(argv)
    rows = parity.run(args.project)
    return 0 if all(r["vertices_server_eq_local"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
