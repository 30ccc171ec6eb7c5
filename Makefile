# cloaca-nb: every target works on a fresh machine (Linux or macOS) with python3 >= 3.11.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
PYTEST_ARGS ?=

.PHONY: install system-deps test lint format typecheck demo bench docs screenshots clean

install: $(VENV)/.installed

# graphviz (dot) and rustc are needed by the suite, Debian's chromium by the browser test
# (tests/notebook/browser; never a downloaded browser); install them when missing and we are root.
system-deps:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	command -v rustc >/dev/null 2>&1 || missing="$$missing rustc"; \
	if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then missing="$$missing chromium"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  elif command -v brew >/dev/null 2>&1; then brew install $$missing; \
	  else echo "warning: missing$$missing (install them for the full suite)"; fi; \
	fi

$(VENV)/.installed: pyproject.toml uv.lock
	@$(MAKE) --no-print-directory system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install -q "uv>=0.5"
	$(UV) sync --frozen --all-extras --group dev --inexact
	@touch $@

# Every notebook in notebooks/, examples/ and binder/ runs top to bottom in a real kernel (nbmake,
# per-cell timeout), then the suite runs.
test: install
	$(VENV)/bin/pytest -n 2 --nbmake --nbmake-timeout=300 --timeout=900 \
	  $$(find notebooks examples binder -name '*.ipynb' ! -path '*/.ipynb_checkpoints/*' 2>/dev/null)
	$(VENV)/bin/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check cloaca cloaca_nb tests benchmarks
	$(VENV)/bin/ruff format --check cloaca cloaca_nb tests benchmarks
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format cloaca cloaca_nb tests benchmarks
	$(VENV)/bin/ruff check --fix cloaca cloaca_nb tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

demo: install
	$(PY) scripts/demo.py

bench: install
	$(UV) sync --frozen --all-extras --group dev --group bench --inexact
	$(PY) -m benchmarks.run

# the screenshots in docs/notebooks.md, taken by the real-browser test (JupyterLab + chromium)
screenshots: install
	CLOACA_SCREENSHOT_DIR=$(abspath docs/img) $(VENV)/bin/pytest -q -p no:cacheprovider \
	  -m browser tests/notebook/test_browser.py

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache

# docs/cli.md from the CLIs' --help, then the site with warnings as errors (build/site)
docs: install
	$(PY) scripts/gen_cli_docs.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site
