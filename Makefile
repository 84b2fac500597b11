# ltlib: two commands on a fresh machine.
#   make demo  - create .venv if needed, run every notebook on data/sample into outputs/
#   make test  - create .venv if needed, run the test suite (includes every notebook)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: venv demo test test-all lab bench sample clean-outputs

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
	  echo "== $$name"; \
	  (cd notebooks && ../$(PY) -m papermill --cwd . -k python3 $$name.ipynb ../outputs/$$name/$$name.ipynb \
	     -p output_dir ../outputs/$$name) || exit 1; \
	done
	@echo
	@echo "Done. Executed notebooks, figures, GeoTIFFs and summary.json are in outputs/<notebook>/:"
	@ls -d outputs/*/
	@echo "Open them interactively with: make lab"

test: venv
	$(PY) -m pytest

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
