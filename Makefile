# limited-drop: `make run` sets up and starts the demo, `make test` runs the whole suite.
# Every step installs what is missing on a fresh Debian/Ubuntu machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := build-essential pkg-config libsqlite3-dev libev-dev python3-dev python3-venv
# only `make test` needs these: nginx for tests/integration/test_deploy.py, Chromium for tests/browser/
TEST_APT_PACKAGES := nginx chromium
ENGINE_SRC   := $(wildcard _engine/*.pyx _engine/*.pxi _engine/*.pxd _engine/includes/*.pxd _engine/*.h) \
                $(filter-out _engine/engine.c,$(wildcard _engine/*.c)) setup.py

# the Debian packages of $(1) that are not installed yet, installed (as root, or through sudo)
define apt_install
@missing=""; for p in $(1); do \
  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then \
  echo "installing:$$missing"; \
  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
fi
endef

FORCE:

.PHONY: run test lint build deps system-deps test-deps bench-engine wheel clean

run: build ## install what is missing, build the engine, serve the demo on http://127.0.0.1:8000
	$(BIN)/dropsvc serve --demo

test: build test-deps ## lint, then the whole suite (unit, integration, browser)
	$(BIN)/ruff check dropsvc tests bench
	$(BIN)/python -m pytest

system-deps: ## apt packages the build needs (only those missing)
	$(call apt_install,$(APT_PACKAGES))

test-deps: ## apt packages only the tests need: nginx, and Debian's Chromium (never a downloaded browser)
	$(call apt_install,$(TEST_APT_PACKAGES))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	$(MAKE) system-deps
	$(BIN)/pip install -q 'setuptools>=68' 'Cython>=3.0,<4' wheel
	$(BIN)/pip install -q --no-build-isolation -e '.[dev]'
	@# meinheld 1.0.2 pins greenlet<0.5, which does not build on Python 3.11; it builds and serves
	@# against the greenlet 3 that playwright needs, so it is installed without its pins
	$(BIN)/pip install -q --no-deps --no-build-isolation meinheld==1.0.2
	touch $@

deps: $(VENV)/.installed

build: deps $(VENV)/.engine-built static-assets ## the compiled engine, in place; the page's assets

.PHONY: static-assets
STATIC_VENDOR := static/vendor

static-assets: $(STATIC_VENDOR)/alpine.min.js ## Alpine.js from npm (exact version in package-lock.json) into static/vendor/

$(STATIC_VENDOR)/alpine.min.js: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "installing: nodejs npm"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }
	npm ci --ignore-scripts --no-audit --no-fund
	mkdir -p $(STATIC_VENDOR)
	cp node_modules/alpinejs/dist/cdn.min.js $@

$(VENV)/.engine-built: $(ENGINE_SRC) $(VENV)/.installed $(if $(wildcard dropsvc/_engine*.so),,FORCE)
	@# unlink first: overwriting a loaded .so in place crashes the processes using it
	rm -f dropsvc/_engine*.so
	$(BIN)/python setup.py -q build_ext --inplace
	touch $@

bench-engine: build ## engine purchases/s against a C loop and stdlib sqlite3, NORMAL and FULL (~3 min)
	$(BIN)/python -m bench.engine_rates

.PHONY: bench-crash
bench-crash: build ## power loss and I/O errors injected over every write path, the mutants (bench/crash.py, ~2 min)
	$(BIN)/python -m bench.crash

.PHONY: bench-micro
bench-micro: build ## pytest-benchmark micro-benchmarks, saved in bench/results/micro for --benchmark-compare
	$(BIN)/python -m pytest bench/micro --benchmark-autosave --benchmark-storage=bench/results/micro

.PHONY: bench-http bench-locust bench-herd bench-deps
BENCH_APT := wrk redis-server

bench-deps: build ## wrk and redis-server (apt), the `bench` extra (locust, redis-py): only what is missing
	$(call apt_install,$(BENCH_APT))
	$(MAKE) $(VENV)/.bench-installed

# the `bench` extra's pins, installed as they are (re-installing the project would rebuild the engine)
$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['bench']))" | $(BIN)/pip install -q -r /dev/stdin
	touch $@

bench-http: bench-deps ## wrk: purchases/s against the server's ceilings, a naive app and Redis+Lua (~6 min)
	$(BIN)/python -m bench.http_rates

bench-locust: bench-deps ## locust: 200 shoppers for 30 s against dropsvc serve, then the invariant checks
	$(BIN)/python -m bench.journey_check

bench-herd: build ## 5,000 shoppers + 200 bots on 100 units, open then queue: bots' share, finish, verify-fairness (~3 min)
	$(BIN)/python -m bench.herd

wheel: deps static-assets ## a wheel in dist/, carrying the page (static/ with Alpine.js) as dropsvc/static/
	$(BIN)/pip wheel --no-deps -w dist .

clean:
	rm -rf build dist *.egg-info dropsvc/_engine*.so _engine/engine.c $(VENV)/.engine-built
