# Two commands a newcomer needs: `make run` and `make test`. Both build ./.venv themselves
# from pyproject.toml, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell $(PYTHON) -c "import hashlib,sys;print(hashlib.sha256(open('pyproject.toml','rb').read()).hexdigest()[:12])")
STAMP := $(VENV)/.installed-$(HASH)
# `make bench` also needs the bench extra (FAISS); `make test` and `make run` never install it.
# A new pyproject.toml removes every stamp, this one too, so the extra is installed again.
BENCH_STAMP := $(VENV)/.installed-bench-$(HASH)

.PHONY: run test lint bench clean-venv postgres-server chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rfr serve

test: $(STAMP) lint postgres-server chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The PostgreSQL suites (issue 10) start a private cluster of their own on loopback from
# Debian's server binaries (tests/postgres_cluster.py); installed here when missing. Without
# root or sudo the install is skipped: the suites then skip, and fail when CI=true.
postgres-server:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then \
	  echo "installing Debian's postgresql package for the PostgreSQL test suites"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends postgresql \
	    >/dev/null || echo "could not install postgresql: the PostgreSQL suites will skip"; \
	fi

# The web client's browser tests (tests/web) drive Debian's Chromium with Playwright (the `playwright`
# package of the test extra, given /usr/bin/chromium: `playwright install` is never run); installed
# here when missing. Without root or sudo the install is skipped: the browser tests then skip, and
# fail when CI=true.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian's chromium package for the web client's browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium \
	    >/dev/null || echo "could not install chromium: the browser tests will skip"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check rfr tests bench
	$(BIN)/lint-imports

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run_all.py

clean-venv:
	rm -rf $(VENV)
