# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# plotly.js's partial (cartesian) bundle, the same version as the `plotly` package's full one:
# the chart pages load it (cryolive.web.bundle). Fetched by npm (which checks the registry's
# integrity hash), checked against the digest pinned in the repository, never committed.
PLOTLY_CARTESIAN := plotly.js-cartesian-dist-min@4.1.1
BUNDLE_SHA := src/cryolive/web/plotly-cartesian.sha256
CHART_BUNDLE := $(VENV)/share/cryolive/plotly-cartesian.min.js

.PHONY: demo test test-fast screenshots lint typecheck pytest clean tools chart-bundle

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# topaz: the optional (GPL) Topaz picker, for its tests; next to dev's CPU torch it adds
	# topaz-em, torchvision 0.28 and small packages (measured 32 s, +173 MB), no other torch
	# zocalo-test: python-workflows, for the round trip with Zocalo's own services (tests only;
	# cryolive never imports it)
	$(BIN)/python -m pip install -q -e '.[dev,topaz,zocalo-test]'
	touch $(STAMP)

$(CHART_BUNDLE): $(BUNDLE_SHA)
	@# without npm cryolive serves the full plotly.min.js (slower pages); the tests fail in CI
	@if ! command -v npm >/dev/null; then echo "no npm: $(PLOTLY_CARTESIAN) not fetched"; exit 0; fi; \
	set -ex; tmp=$(VENV)/share/cryolive/.npm; rm -rf $$tmp; mkdir -p $$tmp; \
	(cd $$tmp && npm pack --silent $(PLOTLY_CARTESIAN) >/dev/null && tar -xzmf *.tgz package/plotly-cartesian.min.js); \
	(cd $$tmp/package && sha256sum --check --strict $(abspath $(BUNDLE_SHA))); \
	mv $$tmp/package/plotly-cartesian.min.js $@; rm -rf $$tmp

chart-bundle: $(CHART_BUNDLE)

demo: $(STAMP) $(CHART_BUNDLE)
	$(BIN)/cryolive demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	# the layers, no circles, no private reach-ins ([tool.importlinter], docs/architecture.md)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy src

# Debian packages the tests drive: chromium for the browser tests (never a downloaded browser)
# relion (RELION 3.1.3), the peer whose programs read what cryolive writes; poppler-utils
# (pdftoppm), which turns the session report into pictures for its test; slurm-wlm and munge
# for the single-node Slurm of the `slurm` tests (.ci/slurm-up starts it).
tools:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v relion_stack_create >/dev/null || missing="$$missing relion"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	command -v slurmctld >/dev/null || missing="$$missing slurm-wlm"; \
	command -v munged >/dev/null || missing="$$missing munge"; \
	if [ -n "$$missing" ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

pytest: $(STAMP) $(CHART_BUNDLE) tools
	$(BIN)/pytest -W error $(PYTEST_ARGS)

test: lint typecheck pytest

# The inner loop: unit tests and the SQLite/embedded integration, no servers, browser,
# RELION or minute-long runs (the markers are applied in tests/conftest.py).
FAST := not slow and not mariadb and not rabbitmq and not browser and not relion and not slurm
test-fast: $(STAMP) $(CHART_BUNDLE)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/pytest -W error -q -m "$(FAST)" $(PYTEST_ARGS)

# The README's and docs' screenshots, written only when asked (a test run leaves the tree
# clean), from a real `cryolive demo` run, never from test fixtures: the demo runs to its end
# without serving (live 3D from 60 selected particles, so that it reaches the 3D panel), then
# bench/demo_screenshots.py serves its database and takes every page (docs/web.md).
SCREENSHOTS_DEMO ?= $(or $(TMPDIR),/tmp)/cryolive-screenshots-demo
screenshots: $(STAMP) $(CHART_BUNDLE) tools
	rm -rf $(SCREENSHOTS_DEMO)
	$(BIN)/cryolive demo --out $(SCREENSHOTS_DEMO) --no-serve --class3d-particles 60
	$(BIN)/python bench/demo_screenshots.py --demo $(SCREENSHOTS_DEMO) --out docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
