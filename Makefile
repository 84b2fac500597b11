# ltlib: two commands on a fresh machine.
#   make demo  - create .venv if needed, run every notebook on data/sample into outputs/
#                (make demo DATA=/path/to/scene: notebook 01 reads that scene folder, 02-05 read 01's output)
#   make test  - create .venv if needed, run the test suite (includes every notebook)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
DATA ?= data/sample

.PHONY: venv demo test test-network test-browser test-all lab bench sample batch clean-outputs

venv: $(STAMP)

# pip (not uv) so the torch wheels on this machine's disk are used; the constraints
# file pins every package to a set verified to install and import together.
$(STAMP): pyproject.toml requirements/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e ".[all]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ltlib)" >/dev/null
	touch $(STAMP)

demo: venv
	@for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb .ipynb); mkdir -p outputs/$$name; \
	  src=$(abspath outputs/01_collect_landsat); [ $$name = 01_collect_landsat ] && src=$(abspath $(DATA)); \
	  echo "== $$name (data_dir $$src)"; \
	  (cd notebooks && ../$(PY) -m papermill --cwd . -k python3 $$name.ipynb ../outputs/$$name/$$name.ipynb \
	     -p data_dir $$src -p output_dir ../outputs/$$name) || exit 1; \
	done
	@echo
	@echo "Done. Executed notebooks, figures, GeoTIFFs and summary.json are in outputs/<notebook>/:"
	@ls -d outputs/*/
	@echo "Open them interactively with: make lab"

# make batch SITES=sites.csv [OUT=outputs/batch]: notebooks 01-05 for every site (ltlib.batch)
OUT ?= outputs/batch
batch: venv
	@test -n "$(SITES)" || { echo "usage: make batch SITES=sites.csv [OUT=outputs/batch]"; exit 2; }
	$(PY) -m ltlib.batch $(SITES) --out $(OUT)

test: venv
	$(PY) -m pytest

# needs PyPI: the dependency ranges resolve for Python 3.11, 3.12 and 3.13 (pip --dry-run), Colab's install
test-network: venv
	$(PY) -m pytest -m network tests/test_colab.py

# notebooks 01, 02, 05 in JupyterLab in headless chromium (apt-get install chromium chromium-driver);
# screenshots in outputs/browser/ (LTLIB_BROWSER_OUT=dir to change)
test-browser: venv
	$(PY) -m pytest -m browser -s tests/test_browser.py

test-all: venv
	$(PY) -m pytest -m "" 

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

sample: venv
	$(PY) -m ltlib.sample data/sample

clean-outputs:
	rm -rf outputs
