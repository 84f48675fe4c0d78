# Two commands: `make run` serves the demo, `make test` runs every check. Both set up
# what they need first (system packages via apt-get when missing, then .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck system browser clean bench soak conformance

run: $(STAMP)
	$(BIN)/edgeproxy serve --config config/distribution.yaml

test: $(STAMP) browser system
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q
	$(BIN)/pytest -q examples/tests  # the demo's staging suite, through the pytest plugin

# Side-by-side benchmark (edgeproxy, nginx proxy_cache, Varnish) on loopback; takes 21-25
# minutes, prints the table and rewrites the generated part of docs/performance.md.
# BENCH_ARGS passes options through, e.g. BENCH_ARGS='--repeats 5' (python -m bench --help).
bench: $(STAMP)
	./scripts/apt-install nginx varnish wrk util-linux
	@test -x $(BIN)/py-spy || $(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)
	./scripts/apt-install redis-server
	$(BIN)/python -m bench.regional

# Soak: mixed load (hits, misses, invalidations, handler and origin errors) at half the edge's
# measured peak, loopback only, about 10 minutes; prints unexpected statuses, p99 latency, the
# edge's RSS and open fds every minute and writes the report into docs/reliability.md.
# SOAK_SECONDS=60 for a quick check.
SOAK_SECONDS ?= 600
soak: $(STAMP)
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS)

# The public HTTP caching conformance suite (github.com/http-tests/cache-tests), run against
# this checkout in a loopback-only network namespace (conformance/run.sh); prints edgeproxy's
# figures beside the suite's published ones (docs/fidelity.md). Not part of `make test`: the
# first run clones the suite, at CACHE_TESTS_REF, into the git-ignored .cache-tests/ and runs
# npm install there, which needs the internet. CACHE_TESTS=DIR uses a checkout made elsewhere
# (CACHE_TESTS_REF= leaves it at its own commit).
CACHE_TESTS ?= .cache-tests
CACHE_TESTS_REF ?= b55b8bda3dbb8c927c04e85bd8d496a8caa3e4ba
conformance: $(STAMP)
	@command -v npm >/dev/null 2>&1 || ./scripts/apt-install npm
	@command -v git >/dev/null 2>&1 || ./scripts/apt-install git
	@command -v curl >/dev/null 2>&1 || ./scripts/apt-install curl
	@command -v ip >/dev/null 2>&1 || ./scripts/apt-install iproute2
	@command -v unshare >/dev/null 2>&1 || ./scripts/apt-install util-linux
	@test -f $(CACHE_TESTS)/tests/index.mjs || \
	  git clone -q https://github.com/http-tests/cache-tests $(CACHE_TESTS)
	@if [ -n "$(CACHE_TESTS_REF)" ]; then \
	  git -C $(CACHE_TESTS) cat-file -e "$(CACHE_TESTS_REF)^{commit}" 2>/dev/null || \
	    git -C $(CACHE_TESTS) fetch -q origin; \
	  git -C $(CACHE_TESTS) checkout -q "$(CACHE_TESTS_REF)"; fi
	@test -d $(CACHE_TESTS)/node_modules || \
	  (cd $(CACHE_TESTS) && npm install --no-audit --no-fund --loglevel=error)
	conformance/run.sh $(CACHE_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# System packages: a Python with venv and pip (Debian splits them out), Node.js for
# handlers written in JavaScript (edgeproxy/functions/node_runtime.mjs), and redis-server
# for the regional tier's tests (each starts its own on a loopback port; no service).
system:
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || ./scripts/apt-install python3-venv python3-pip
	@command -v node >/dev/null 2>&1 || ./scripts/apt-install nodejs
	@command -v redis-server >/dev/null 2>&1 || ./scripts/apt-install redis-server

# Debian's headless Chromium and its driver, for tests/test_browser.py (Playwright drives it).
browser:
	@./scripts/apt-install chromium chromium-driver

$(STAMP): pyproject.toml | system
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
