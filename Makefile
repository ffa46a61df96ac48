# The README's two commands. Both create .venv when missing and install the app into it
# with the tested versions pinned by constraints.txt.
#   make run    install and open the window
#   make test   install with the test extra and run the whole suite headless
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check -c constraints.txt
# Test processes (pytest-xdist); each test file runs whole in one of them.
TEST_JOBS ?= 2

.PHONY: run test test-fast lint bench icons clean cluster-deps

run: $(VENV)/.installed-run
	$(PY) packaging/check_system_libs.py --for run
	$(VENV)/bin/effnet-app-gui

test: $(VENV)/.installed-test
	$(PY) packaging/check_system_libs.py --for test
	$(PY) -m ruff check effnet_app tests benchmarks packaging
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -ra --durations=25 -n $(TEST_JOBS) --dist loadfile

# The quick loop while editing: everything but the tests marked slow.
test-fast: $(VENV)/.installed-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -ra -m "not slow" -n $(TEST_JOBS) --dist loadfile

lint: $(VENV)/.installed-test
	$(PY) -m ruff check effnet_app tests benchmarks packaging

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "effnet_app needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)."; \
	  echo "Run with another one: make run PYTHON=python3.12"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv \
	    && $(PYTHON) -m venv $(VENV); \
	  else echo "Python cannot create a virtual environment here. On Debian/Ubuntu:"; \
	    echo "    sudo apt-get install python3-venv"; exit 1; fi; }

$(VENV)/.installed-run: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e '.[test]'
	touch $@ $(VENV)/.installed-run

# Ray, for `effnet-app classify --ray` (the test extra has it already).
cluster-deps: $(VENV)/.installed-run
	$(PIP) -e '.[cluster]'

# Every benchmark, then one table of figures and goals (long: tens of minutes on two
# cores). `make bench BENCH_ARGS=--quick` for a shorter run, `BENCH_ARGS="--only backends"`.
bench: $(VENV)/.installed-test
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

icons: $(VENV)/.installed-test
	QT_QPA_PLATFORM=offscreen $(PY) resources/make_icons.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
